package cfapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Cloudflare's error codes for a DNS record Create that collides with an existing
// record. Neither is documented by Cloudflare; certbot and lexicon treat both as "the
// record is there" (docs/emulator.md lists what the emulator answers each for).
const (
	CodeRecordAlreadyExists   = 81057 // "Record already exists."
	CodeIdenticalRecordExists = 81058 // "An identical record already exists."
)

// Paging of the list calls. DNS records: 100 per page is the API's default and what
// cert-manager asks for (the OpenAPI maximum is far higher). Zones: 50 is the API's
// maximum. A list longer than maxListPages pages is refused rather than followed
// forever.
const (
	dnsRecordsPerPage = 100
	zonesPerPage      = 50
	maxListPages      = 100
)

// ErrTooManyPages is returned (not inside an APIError) when a list has more than 100
// pages: a server that keeps answering full pages is not followed forever.
var ErrTooManyPages = errors.New("cfapi: list has more than 100 pages")

// Zone is a Cloudflare zone as GET /zones returns it, reduced to what the operator
// needs.
type Zone struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// DNSRecord is a DNS record as the API returns it. Cloudflare no longer sends zone_id.
// TXT content is what was written: use TXTContent to compare it with a value.
type DNSRecord struct {
	ID         string     `json:"id"`
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Content    string     `json:"content"`
	Comment    string     `json:"comment,omitempty"`
	TTL        int        `json:"ttl"`
	Tags       []string   `json:"tags,omitempty"`
	CreatedOn  *time.Time `json:"created_on,omitempty"`
	ModifiedOn *time.Time `json:"modified_on,omitempty"`
}

// DNSRecordParams is the body of a record Create. Name is the full record name,
// zone included. TTL 1 (or 0, sent as 1) is "automatic"; otherwise 60 to 86400 (30 on
// Enterprise). An empty Comment is not sent. The API does not quote TXT content for
// you: pass QuoteTXT(value).
type DNSRecordParams struct {
	Type    string
	Name    string
	Content string
	Comment string
	TTL     int
}

// DNSRecordFilter narrows ListDNSRecords; empty fields do not filter. Cloudflare
// compares case-insensitively and requires every given filter to match.
type DNSRecordFilter struct {
	// Type is the record type, e.g. "TXT" (query type=).
	Type string
	// Name is the full record name (name.exact=).
	Name string
	// Content is the exact content as stored, quotes included (content.exact=).
	Content string
	// CommentContains is a substring of the comment (comment.contains=).
	CommentContains string
}

type dnsRecordBody struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Content string `json:"content"`
	TTL     int    `json:"ttl"`
	Comment string `json:"comment,omitempty"`
}

// ListZones returns the zones named name (Cloudflare's default "equal" operator,
// case-insensitive), following every page; "" lists every zone the token can see.
// A token without Zone Read on all zones may get nothing back, or a 403
// (docs/emulator.md).
func (c *Client) ListZones(ctx context.Context, name string) ([]Zone, error) {
	// A name may not carry an operator ("contains:x") or anything a header or log
	// line would mangle.
	if strings.ContainsFunc(name, func(r rune) bool { return r == ':' || r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: zone name %q has a colon, a space or a control character", ErrInvalidArgument, name)
	}
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	return listPages[Zone](ctx, c, "list_zones", "/zones", q, zonesPerPage, requireZoneID)
}

// GetZone returns one zone; IsNotFound(err) when it does not exist.
func (c *Client) GetZone(ctx context.Context, zoneID string) (Zone, error) {
	path, err := zonePath(zoneID, "")
	if err != nil {
		return Zone{}, err
	}
	var out Zone
	if err := c.do(ctx, call{op: "get_zone", method: http.MethodGet, path: path, decode: decodeInto(&out, requireZoneID)}); err != nil {
		return Zone{}, err
	}
	return out, nil
}

// ListDNSRecords returns the zone's records that match f, following every page.
func (c *Client) ListDNSRecords(ctx context.Context, zoneID string, f DNSRecordFilter) ([]DNSRecord, error) {
	path, err := zonePath(zoneID, "/dns_records")
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []struct{ key, value string }{
		{"type", f.Type}, {"name.exact", f.Name}, {"content.exact", f.Content}, {"comment.contains", f.CommentContains},
	} {
		if p.value != "" {
			q.Set(p.key, p.value)
		}
	}
	return listPages[DNSRecord](ctx, c, "list_dns_records", path, q, dnsRecordsPerPage, requireRecordID)
}

// CreateDNSRecord creates a record and returns it. IsRecordExists(err) when the zone
// already holds it (or, for 81057, a record that excludes it): list to find out which.
func (c *Client) CreateDNSRecord(ctx context.Context, zoneID string, p DNSRecordParams) (DNSRecord, error) {
	path, err := zonePath(zoneID, "/dns_records")
	if err != nil {
		return DNSRecord{}, err
	}
	if p.Type == "" || p.Name == "" {
		return DNSRecord{}, fmt.Errorf("%w: a DNS record needs a type and a name", ErrInvalidArgument)
	}
	body := dnsRecordBody{Type: p.Type, Name: p.Name, Content: p.Content, TTL: p.TTL, Comment: p.Comment}
	if body.TTL == 0 {
		body.TTL = 1
	}
	var out DNSRecord
	if err := c.do(ctx, call{op: "create_dns_record", method: http.MethodPost, path: path, body: body,
		decode: decodeInto(&out, requireRecordID)}); err != nil {
		return DNSRecord{}, err
	}
	return out, nil
}

// DeleteDNSRecord deletes a record; IsNotFound(err) when it is already gone, which a
// caller cleaning up treats as done.
func (c *Client) DeleteDNSRecord(ctx context.Context, zoneID, recordID string) error {
	path, err := zonePath(zoneID, "/dns_records")
	if err != nil {
		return err
	}
	if err := checkID("DNS record", recordID); err != nil {
		return err
	}
	return c.do(ctx, call{op: "delete_dns_record", method: http.MethodDelete, path: path + "/" + url.PathEscape(recordID)})
}

// zonePath is /zones/{zone_id}[suffix].
func zonePath(zoneID, suffix string) (string, error) {
	if err := checkID("zone", zoneID); err != nil {
		return "", err
	}
	return "/zones/" + url.PathEscape(zoneID) + suffix, nil
}

// checkID accepts what a Cloudflare identifier can be (32 hex in practice): letters,
// digits, '-' and '_', at most 64. Anything else (a '/', "..", a '?', a space) would
// change which URL is called.
func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s id", ErrInvalidArgument, what)
	}
	if len(id) > 64 || strings.ContainsFunc(id, notIDRune) {
		return fmt.Errorf("%w: %s id %q is not a Cloudflare identifier", ErrInvalidArgument, what, id)
	}
	return nil
}

func notIDRune(r rune) bool {
	idRune := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
	return !idRune
}

func requireZoneID(z *Zone) error {
	if z.ID == "" {
		return errors.New("result has no zone id")
	}
	return nil
}

func requireRecordID(r *DNSRecord) error {
	if r.ID == "" {
		return errors.New("result has no DNS record id")
	}
	return nil
}

// listPages GETs path with q plus page and per_page until a page holds fewer items
// than asked for (the last one), and returns every item, each passing check. The
// query never reaches an error: APIError.Path is the path alone.
//
// The end is found from the page size because the shared request path hands back
// only the envelope's result; result_info would save the empty request that follows
// a last page that happens to be full.
func listPages[T any](ctx context.Context, c *Client, op, path string, q url.Values, perPage int, check func(*T) error) ([]T, error) {
	out := []T{}
	q.Set("per_page", strconv.Itoa(perPage))
	for page := 1; page <= maxListPages; page++ {
		q.Set("page", strconv.Itoa(page))
		var items []T
		err := c.do(ctx, call{op: op, method: http.MethodGet, path: path + "?" + q.Encode(),
			decode: func(raw json.RawMessage) error {
				// null (and an absent result) is an empty page.
				if len(raw) == 0 {
					return nil
				}
				if err := json.Unmarshal(raw, &items); err != nil {
					return err
				}
				for i := range items {
					if err := check(&items[i]); err != nil {
						return err
					}
				}
				return nil
			}})
		if ae, ok := errors.AsType[*APIError](err); ok {
			ae.Path = path
		}
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if len(items) < perPage {
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: GET %s", ErrTooManyPages, path)
}

// QuoteTXT writes a TXT value in the presentation format the API expects: one or more
// double-quoted RFC 1035 character-strings of at most 255 bytes each, separated by a
// space, with '"' and '\' escaped by a backslash and control characters as \DDD. The
// API stores content as sent and, unlike the dashboard, adds no quotes itself.
// TXTContent(QuoteTXT(s)) == s for every s.
func QuoteTXT(s string) string {
	var b strings.Builder
	for first := true; first || s != ""; first = false {
		chunk := s[:min(len(s), 255)]
		s = s[len(chunk):]
		if !first {
			b.WriteByte(' ')
		}
		b.WriteByte('"')
		for i := 0; i < len(chunk); i++ {
			switch c := chunk[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < ' ' || c == 0x7f:
				fmt.Fprintf(&b, "\\%03d", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// TXTContent is the value a TXT record's content stands for, to compare with what was
// meant to be published: content written quoted (`"v=1"`, or split into several
// quoted strings, as Cloudflare does past 255 bytes) is unquoted, unescaped and
// joined; content written without quotes (the API accepts it, and other tools write
// it) is returned as is, and so is anything that is not a clean sequence of quoted
// strings.
func TXTContent(s string) string {
	if !strings.HasPrefix(s, `"`) {
		return s
	}
	var b strings.Builder
	rest := s
	for rest != "" {
		value, tail, ok := cutQuoted(rest)
		if !ok {
			return s
		}
		b.WriteString(value)
		rest = strings.TrimLeft(tail, " \t")
		if rest != "" && rest[0] != '"' {
			return s
		}
	}
	return b.String()
}

// cutQuoted reads one quoted character-string at the start of s and returns its
// unescaped value and what follows it.
func cutQuoted(s string) (value, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], true
		case '\\':
			if i+3 < len(s) && isDigits(s[i+1:i+4]) {
				n, _ := strconv.Atoi(s[i+1 : i+4])
				if n > 255 {
					return "", "", false
				}
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			if i+1 >= len(s) {
				return "", "", false
			}
			i++
			b.WriteByte(s[i])
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
