package cfemu

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Record types the emulator holds. Cloudflare has many more; the others answer 400
// CodeRecordType.
const (
	typeA     = "A"
	typeAAAA  = "AAAA"
	typeCNAME = "CNAME"
	typeMX    = "MX"
	typeTXT   = "TXT"
)

var recordTypes = []string{typeA, typeAAAA, typeCNAME, typeMX, typeTXT}

// Limits from the API reference and Cloudflare's TXT docs.
const (
	maxRecordName    = 255
	maxTXTPerRecord  = 2048
	maxTXTPerName    = 8192
	maxRecordTTL     = 86400
	defaultRecordsPP = 100
	maxRecordsPP     = 5_000_000 // the OpenAPI maximum of dns-records_per_page
)

// record is a stored DNS record.
type record struct {
	id, typ, name, content, comment string
	ttl                             int
	tags                            []string // never nil
	proxied                         bool
	priority                        *int // MX only
	created, modified               time.Time
	commentModified, tagsModified   time.Time
}

// recordView is a record as the API shows it. zone_id is not sent: Cloudflare removed
// it from record responses (2024-11-30).
type recordView struct {
	ID                string     `json:"id"`
	Name              string     `json:"name"`
	Type              string     `json:"type"`
	Content           string     `json:"content"`
	Priority          *int       `json:"priority,omitempty"`
	Proxiable         bool       `json:"proxiable"`
	Proxied           bool       `json:"proxied"`
	TTL               int        `json:"ttl"`
	Settings          struct{}   `json:"settings"`
	Meta              struct{}   `json:"meta"`
	Comment           *string    `json:"comment"`
	Tags              []string   `json:"tags"`
	CreatedOn         time.Time  `json:"created_on"`
	ModifiedOn        time.Time  `json:"modified_on"`
	CommentModifiedOn *time.Time `json:"comment_modified_on,omitempty"`
	TagsModifiedOn    *time.Time `json:"tags_modified_on,omitempty"`
}

func (r *record) view() recordView {
	v := recordView{ID: r.id, Name: r.name, Type: r.typ, Content: r.content, Priority: clonePtr(r.priority),
		Proxiable: proxiable(r.typ), Proxied: r.proxied, TTL: r.ttl, Tags: slices.Clone(r.tags),
		CreatedOn: r.created, ModifiedOn: r.modified}
	if r.comment != "" {
		v.Comment = ptr(r.comment)
		v.CommentModifiedOn = ptr(r.commentModified)
	}
	if len(r.tags) > 0 {
		v.TagsModifiedOn = ptr(r.tagsModified)
	}
	return v
}

// public is the record as cfapi decodes it.
func (r *record) public() cfapi.DNSRecord {
	return cfapi.DNSRecord{ID: r.id, Type: r.typ, Name: r.name, Content: r.content, Comment: r.comment, TTL: r.ttl,
		Tags: slices.Clone(r.tags), CreatedOn: ptr(r.created), ModifiedOn: ptr(r.modified)}
}

func proxiable(typ string) bool { return typ == typeA || typ == typeAAAA || typ == typeCNAME }

// recordFields are the writable fields of a record body; nil is "not sent" (JSON null
// too). settings is accepted and ignored.
type recordFields struct {
	Type     *string          `json:"type"`
	Name     *string          `json:"name"`
	Content  *string          `json:"content"`
	TTL      *float64         `json:"ttl"`
	Comment  *string          `json:"comment"`
	Tags     *[]string        `json:"tags"`
	Proxied  *bool            `json:"proxied"`
	Priority *float64         `json:"priority"`
	Settings *json.RawMessage `json:"settings"`
}

// dnsWrite is a parsed record write: Create (recordID is the id the new record gets),
// PATCH, PUT or DELETE.
type dnsWrite struct {
	route    string
	zoneID   string
	recordID string
	fields   recordFields
}

func parseDNSWrite(q *request) (dnsWrite, *cfapi.ErrorDetail) {
	w := dnsWrite{route: q.route(), zoneID: q.zoneID, recordID: q.recordID}
	if w.route == RouteCreateDNSRecord {
		w.recordID = randomHex(16)
	}
	if w.route == RouteDeleteDNSRecord {
		return w, nil
	}
	return w, decodeBody(q.body, &w.fields)
}

// runDNSWrite makes w as of at, or with dryRun only checks that it would succeed now
// (for FaultRule.CommitAfter). Verifications are settled before the zone changes and
// follow its new records afterwards.
func (s *Server) runDNSWrite(w dnsWrite, at time.Time, dryRun bool) response {
	z := s.dns.zones[w.zoneID]
	if z == nil {
		return s.errorResponse(apiError(CodeZoneNotFound, "Zone not found", ""))
	}
	old := z.records[w.recordID]
	if old == nil && w.route != RouteCreateDNSRecord {
		return s.errorResponse(apiError(CodeRecordNotFound, "DNS record not found", ""))
	}
	if w.route == RouteDeleteDNSRecord {
		if !dryRun {
			s.changeZoneLocked(at, func() { z.remove(w.recordID) })
		}
		return s.success(map[string]string{"id": w.recordID}, nil)
	}
	next, errs := s.planRecord(z, old, w, at)
	if len(errs) > 0 {
		return s.errorResponse(errs...)
	}
	if !dryRun {
		s.changeZoneLocked(at, func() { z.put(next) })
	}
	return s.success(next.view(), nil)
}

// changeZoneLocked settles every verification as of at, runs change, and lets the
// verifications see the zone as it is now.
func (s *Server) changeZoneLocked(at time.Time, change func()) {
	s.settleVerificationsLocked(at)
	change()
	s.trackAllDNSLocked(at)
}

func (z *zone) put(r *record) {
	if z.records[r.id] == nil {
		z.order = append(z.order, r.id)
	}
	z.records[r.id] = r
}

func (z *zone) remove(id string) {
	delete(z.records, id)
	z.order = slices.DeleteFunc(z.order, func(o string) bool { return o == id })
}

// planRecord builds the record w leaves behind (Create and PUT from the body alone,
// PATCH merged onto old) and checks it; old is nil for Create.
func (s *Server) planRecord(z *zone, old *record, w dnsWrite, at time.Time) (*record, []cfapi.ErrorDetail) {
	f := w.fields
	next := &record{id: w.recordID, tags: []string{}, created: at.UTC()}
	if w.route == RoutePatchDNSRecord {
		c := *old
		c.tags, c.priority = slices.Clone(old.tags), clonePtr(old.priority)
		next = &c
	} else {
		var missing []cfapi.ErrorDetail
		for _, req := range []struct {
			name string
			sent bool
		}{{"type", f.Type != nil}, {"name", f.Name != nil}, {"content", f.Content != nil}, {"ttl", f.TTL != nil}} {
			if !req.sent {
				missing = append(missing, apiError(CodeMissingField, req.name+" is required", "/"+req.name))
			}
		}
		if len(missing) > 0 {
			return nil, missing
		}
		if old != nil { // PUT: a new body, the same record
			next.created, next.modified = old.created, old.modified
			next.commentModified, next.tagsModified = old.commentModified, old.tagsModified
		}
	}
	var errs problems
	f.apply(next, &errs)
	s.validateRecord(z, next, &errs)
	if len(errs) == 0 {
		if e := conflict(z, next); e != nil {
			errs = append(errs, *e)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	stamp(old, next, at)
	return next, nil
}

// apply merges the sent fields into r; numbers that are not whole are reported.
func (f recordFields) apply(r *record, p *problems) {
	if f.Type != nil {
		r.typ = strings.ToUpper(*f.Type)
	}
	if f.Name != nil {
		r.name = strings.TrimSuffix(strings.ToLower(*f.Name), ".")
	}
	if f.Content != nil {
		r.content = *f.Content
	}
	if f.TTL != nil {
		if t := *f.TTL; t != math.Trunc(t) || t < 0 || t > math.MaxInt32 {
			p.add(CodeRecordTTL, "/ttl", "ttl must be a whole number of seconds")
			r.ttl = 1 // reported once: validateRecord checks the rest
		} else {
			r.ttl = int(t)
		}
	}
	if f.Comment != nil {
		r.comment = *f.Comment
	}
	if f.Tags != nil {
		r.tags = slices.Clone(*f.Tags)
	}
	if f.Proxied != nil {
		r.proxied = *f.Proxied
	}
	if f.Priority != nil {
		if v := *f.Priority; v != math.Trunc(v) || v < 0 || v > 65535 {
			p.add(CodeRecordPriority, "/priority", "priority must be a whole number from 0 to 65535")
			r.priority = ptr(0) // reported once
		} else {
			r.priority = ptr(int(v))
		}
	}
}

// stamp sets the modification times of next: all of them on Create; on a change,
// modified, and the comment and tags times when those changed.
func stamp(old, next *record, at time.Time) {
	at = at.UTC()
	if old == nil {
		next.modified, next.commentModified, next.tagsModified = at, at, at
		return
	}
	commentChanged, tagsChanged := next.comment != old.comment, !slices.Equal(next.tags, old.tags)
	if commentChanged {
		next.commentModified = at
	}
	if tagsChanged {
		next.tagsModified = at
	}
	if commentChanged || tagsChanged || old.typ != next.typ || old.name != next.name || old.content != next.content ||
		old.ttl != next.ttl || old.proxied != next.proxied || !equalPtr(old.priority, next.priority) {
		next.modified = at
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

var recordLabel = regexp.MustCompile(`^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$`)

// validName reports a DNS name of valid labels, of which only the first may be the
// wildcard "*".
func validName(name string) bool {
	labels := strings.Split(name, ".")
	if labels[0] == "*" && len(labels) > 1 {
		labels = labels[1:]
	}
	return !slices.ContainsFunc(labels, func(l string) bool { return !recordLabel.MatchString(l) })
}

// validateRecord checks a record as it would be stored in z.
func (s *Server) validateRecord(z *zone, r *record, p *problems) {
	if !slices.Contains(recordTypes, r.typ) {
		p.add(CodeRecordType, "/type", "type %q is not one the emulator holds (%s)", r.typ, strings.Join(recordTypes, ", "))
	}
	switch {
	case r.name == "" || len(r.name) > maxRecordName || !validName(r.name):
		p.add(CodeRecordName, "/name", "name must be a full DNS name in Punycode, at most %d characters", maxRecordName)
	case r.name != z.spec.Name && !strings.HasSuffix(r.name, "."+z.spec.Name):
		p.add(CodeRecordName, "/name", "name %q is not inside the zone %s: give the full name, zone included", r.name, z.spec.Name)
	}
	validateContent(z, r, p)
	minTTL := 60
	if z.spec.Plan == PlanEnterprise {
		minTTL = 30
	}
	if r.ttl != 1 && (r.ttl < minTTL || r.ttl > maxRecordTTL) {
		p.add(CodeRecordTTL, "/ttl", "ttl must be 1 (automatic) or from %d to %d seconds", minTTL, maxRecordTTL)
	}
	if n := utf8.RuneCountInString(r.comment); n > z.spec.CommentLimit {
		p.add(CodeRecordComment, "/comment", "comment is %d characters; this zone allows %d", n, z.spec.CommentLimit)
	}
	for i, tag := range r.tags {
		name, _, ok := strings.Cut(tag, ":")
		if !ok || !tagName.MatchString(name) {
			p.add(CodeRecordTags, "/tags/"+strconv.Itoa(i), "tag %q is not name:value with a name of letters, digits, '-' and '_'", tag)
		}
	}
	if r.proxied && !proxiable(r.typ) {
		p.add(CodeNotProxiable, "/proxied", "%s records cannot be proxied", r.typ)
	}
}

var tagName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validateContent checks content against the type, and TXT length per record and,
// with the zone's other TXT records at the name, per name.
func validateContent(z *zone, r *record, p *problems) {
	bad := func(format string, args ...any) { p.add(CodeRecordContent, "/content", format, args...) }
	switch r.typ {
	case typeA:
		if a, err := netip.ParseAddr(r.content); err != nil || !a.Is4() {
			bad("content of an A record must be an IPv4 address")
		}
	case typeAAAA:
		if a, err := netip.ParseAddr(r.content); err != nil || !a.Is6() {
			bad("content of an AAAA record must be an IPv6 address")
		}
	case typeCNAME, typeMX:
		host := strings.TrimSuffix(strings.ToLower(r.content), ".")
		if host == "" || slices.ContainsFunc(strings.Split(host, "."), func(l string) bool { return !recordLabel.MatchString(l) }) {
			bad("content of a %s record must be a host name", r.typ)
		}
		if r.typ == typeMX && r.priority == nil {
			p.add(CodeRecordPriority, "/priority", "MX records need a priority")
		}
	case typeTXT:
		n := utf8.RuneCountInString(r.content)
		if n == 0 || n > maxTXTPerRecord {
			bad("content of a TXT record must be 1 to %d characters", maxTXTPerRecord)
			return
		}
		for _, id := range z.order {
			if o := z.records[id]; o.id != r.id && o.typ == typeTXT && o.name == r.name {
				n += utf8.RuneCountInString(o.content)
			}
		}
		if n > maxTXTPerName {
			bad("TXT records at %s would hold %d characters; at most %d per name", r.name, n, maxTXTPerName)
		}
	}
}

// conflict is 81058 for a record identical to another (type, name, content, MX
// priority; content compared case-insensitively except for TXT), or 81057 when a
// CNAME would share its name with another record.
func conflict(z *zone, r *record) *cfapi.ErrorDetail {
	for _, id := range z.order {
		o := z.records[id]
		if o.id == r.id || o.name != r.name {
			continue
		}
		same := o.content == r.content || r.typ != typeTXT && strings.EqualFold(o.content, r.content)
		if o.typ == r.typ && same && equalPtr(o.priority, r.priority) {
			e := apiError(CodeIdenticalRecord, "An identical record already exists.", "")
			return &e
		}
		if o.typ == typeCNAME || r.typ == typeCNAME {
			e := apiError(CodeRecordExists, "Record already exists: a CNAME record cannot share its name with another record.", "")
			return &e
		}
	}
	return nil
}

// listDNSRecords answers GET /zones/{zone_id}/dns_records: the records matching the
// filters, creation order, one page.
func (s *Server) listDNSRecords(q *request) response {
	query, err := url.ParseQuery(q.query)
	if err != nil {
		return s.errorResponse(apiError(CodeInvalidQuery, "the query string is malformed", ""))
	}
	if e := unsupportedParams(query, "search", "order", "direction", "tag", "tag_match", "shadowed_by_name", "shadowing_name"); e != nil {
		return s.errorResponse(*e)
	}
	matches, e := recordConditions(query)
	if e != nil {
		return s.errorResponse(*e)
	}
	page, perPage, e := pageParams(query, defaultRecordsPP, 1, maxRecordsPP)
	if e != nil {
		return s.errorResponse(*e)
	}
	z := s.dns.zones[q.zoneID]
	out := []recordView{}
	for _, id := range z.order {
		if r := z.records[id]; matches(r) {
			out = append(out, r.view())
		}
	}
	items, info := pageOf(out, page, perPage)
	return s.success(items, info)
}

// textOps are the operators of the name, content and comment filters; Cloudflare
// compares case-insensitively.
var textOps = map[string]func(have, want string) bool{
	"exact":      strings.EqualFold,
	"contains":   func(h, w string) bool { return strings.Contains(strings.ToLower(h), strings.ToLower(w)) },
	"startswith": func(h, w string) bool { return strings.HasPrefix(strings.ToLower(h), strings.ToLower(w)) },
	"endswith":   func(h, w string) bool { return strings.HasSuffix(strings.ToLower(h), strings.ToLower(w)) },
}

// recordConditions builds the record filters: type; name, content and comment with
// .exact/.contains/.startswith/.endswith (the bare name= and content= are the legacy
// exact match); comment.present/absent; proxied; combined by match. Parameters it does
// not know are ignored, as an HTTP API usually does.
func recordConditions(query url.Values) (func(*record) bool, *cfapi.ErrorDetail) {
	var conds []func(*record) bool
	fields := map[string]func(*record) string{
		"name":    func(r *record) string { return r.name },
		"content": func(r *record) string { return r.content },
		"comment": func(r *record) string { return r.comment },
	}
	for key, values := range query {
		base, op, dotted := strings.Cut(key, ".")
		get := fields[base]
		for _, v := range values {
			switch {
			case key == "type":
				conds = append(conds, func(r *record) bool { return strings.EqualFold(r.typ, v) })
			case key == "proxied":
				b, err := strconv.ParseBool(v)
				if err != nil {
					e := apiError(CodeInvalidQuery, fmt.Sprintf("proxied %q is not true or false", v), "")
					return nil, &e
				}
				conds = append(conds, func(r *record) bool { return r.proxied == b })
			case get != nil && !dotted && base != "comment":
				conds = append(conds, func(r *record) bool { return strings.EqualFold(get(r), v) })
			case get != nil && textOps[op] != nil:
				f := textOps[op]
				conds = append(conds, func(r *record) bool { return f(get(r), v) })
			case key == "comment.present":
				conds = append(conds, func(r *record) bool { return r.comment != "" })
			case key == "comment.absent":
				conds = append(conds, func(r *record) bool { return r.comment == "" })
			}
		}
	}
	return combine(conds, query.Get("match"))
}

// recordFromPublic is an out-of-band record (AddDNSRecord, PutDNSRecord): no
// validation beyond lying in the zone; an empty id is drawn, TTL 0 is 1, missing
// times are at.
func recordFromPublic(z *zone, in cfapi.DNSRecord, at time.Time) (*record, error) {
	r := &record{id: in.ID, typ: strings.ToUpper(in.Type), name: strings.TrimSuffix(strings.ToLower(in.Name), "."),
		content: in.Content, comment: in.Comment, ttl: in.TTL, tags: slices.Clone(in.Tags)}
	if r.id == "" {
		r.id = randomHex(16)
	}
	if r.tags == nil {
		r.tags = []string{}
	}
	if r.ttl == 0 {
		r.ttl = 1
	}
	if r.typ == typeMX {
		r.priority = ptr(10)
	}
	if r.name != z.spec.Name && !strings.HasSuffix(r.name, "."+z.spec.Name) {
		return nil, fmt.Errorf("cfemu: record name %q is not inside the zone %s", in.Name, z.spec.Name)
	}
	if strings.ContainsAny(r.id, "/?#") {
		return nil, fmt.Errorf("cfemu: record id %q is not an identifier", r.id)
	}
	r.created, r.modified = at.UTC(), at.UTC()
	if in.CreatedOn != nil {
		r.created = in.CreatedOn.UTC()
	}
	if in.ModifiedOn != nil {
		r.modified = in.ModifiedOn.UTC()
	}
	r.commentModified, r.tagsModified = r.modified, r.modified
	return r, nil
}

// dnsLaterLocked plans a record write now and lands it when due (FaultRule.CommitAfter):
// checked now, and again against the zone as it is then, when it is dropped if it no
// longer fits. A Create keeps the id drawn now.
func (s *Server) dnsLaterLocked(q *request, due time.Time) response {
	w, e := parseDNSWrite(q)
	if e != nil {
		return s.errorResponse(*e)
	}
	if resp := s.runDNSWrite(w, s.now(), true); resp.status != http.StatusOK {
		return resp
	}
	s.enqueueLocked(due, func(at time.Time) { s.runDNSWrite(w, at, false) })
	return s.success(nil, nil)
}

// recordCountsLocked is Stats.DNSRecords.
func (s *Server) recordCountsLocked() map[string]int {
	out := map[string]int{}
	for id, z := range s.dns.zones {
		if len(z.records) > 0 {
			out[id] = len(z.records)
		}
	}
	return out
}
