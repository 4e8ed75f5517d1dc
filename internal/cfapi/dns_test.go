package cfapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	dnsZone   = "023e105f4ecef8ad9ca31a8372d0c353"
	dnsRecord = "372e67954025e0ba6aaa6d586b9e0b59"
)

const okRecord = `{"success":true,"errors":[],"messages":[],"result":{"id":"` + dnsRecord + `","type":"TXT","name":"app.example.com",` +
	`"content":"\"v=1\"","ttl":1,"comment":"c","tags":["a:b"],"created_on":"2026-06-10T12:00:00Z","modified_on":"2026-06-10T12:00:00Z",` +
	`"proxiable":false,"proxied":false,"meta":{},"settings":{}}}`

// wantCall is the request a method must send.
type wantCall struct {
	method, path string
	query        url.Values // nil: no query
	body         string     // "" = no body; else compared as JSON
}

func checkCall(t *testing.T, s *stub, want wantCall) {
	t.Helper()
	r := s.last.Load()
	if r == nil {
		t.Fatal("no request reached the server")
	}
	if r.Method != want.method || r.URL.EscapedPath() != "/client/v4"+want.path {
		t.Errorf("request = %s %s, want %s /client/v4%s", r.Method, r.URL.EscapedPath(), want.method, want.path)
	}
	if diff := cmp.Diff(want.query, r.URL.Query(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("query (-want +got):\n%s", diff)
	}
	body := *s.lastBody.Load()
	switch {
	case want.body == "" && body != "":
		t.Errorf("body = %s, want none", body)
	case want.body != "":
		if diff := cmp.Diff(jsonValue(t, want.body), jsonValue(t, body)); diff != "" {
			t.Errorf("body (-want +got):\n%s", diff)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type = %q", ct)
		}
	}
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q is not JSON: %v", s, err)
	}
	return v
}

func TestDNSRequests(t *testing.T) {
	created := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	wantRecord := cfapi.DNSRecord{ID: dnsRecord, Type: "TXT", Name: "app.example.com", Content: `"v=1"`, Comment: "c", TTL: 1,
		Tags: []string{"a:b"}, CreatedOn: &created, ModifiedOn: &created}
	tests := []struct {
		name  string
		reply string
		call  func(*cfapi.Client) (any, error)
		want  wantCall
		got   any
	}{
		{"ListZones by name",
			`{"success":true,"errors":[],"result":[{"id":"z1","name":"example.com","status":"active","plan":{"id":"free"}}],"result_info":{"page":1}}`,
			func(c *cfapi.Client) (any, error) { return c.ListZones(t.Context(), "example.com") },
			wantCall{method: http.MethodGet, path: "/zones", query: url.Values{"name": {"example.com"}, "page": {"1"}, "per_page": {"50"}}},
			[]cfapi.Zone{{ID: "z1", Name: "example.com", Status: "active"}}},
		{"ListZones without a name lists all", `{"success":true,"errors":[],"result":[]}`,
			func(c *cfapi.Client) (any, error) { return c.ListZones(t.Context(), "") },
			wantCall{method: http.MethodGet, path: "/zones", query: url.Values{"page": {"1"}, "per_page": {"50"}}},
			[]cfapi.Zone{}},
		{"ListZones with a null result", `{"success":true,"errors":[],"result":null}`,
			func(c *cfapi.Client) (any, error) { return c.ListZones(t.Context(), "a.example") },
			wantCall{method: http.MethodGet, path: "/zones", query: url.Values{"name": {"a.example"}, "page": {"1"}, "per_page": {"50"}}},
			[]cfapi.Zone{}},
		{"GetZone", `{"success":true,"errors":[],"result":{"id":"` + dnsZone + `","name":"example.com","status":"pending"}}`,
			func(c *cfapi.Client) (any, error) { return c.GetZone(t.Context(), dnsZone) },
			wantCall{method: http.MethodGet, path: "/zones/" + dnsZone},
			cfapi.Zone{ID: dnsZone, Name: "example.com", Status: "pending"}},
		{"ListDNSRecords with every filter", `{"success":true,"errors":[],"result":[` + strings.TrimSuffix(strings.SplitN(okRecord, `"result":`, 2)[1], "}") + `]}`,
			func(c *cfapi.Client) (any, error) {
				return c.ListDNSRecords(t.Context(), dnsZone, cfapi.DNSRecordFilter{Type: "TXT", Name: "app.example.com",
					Content: `"cloudflare_oauth_client_publisher=x y"`, CommentContains: "ns/name&x"})
			},
			wantCall{method: http.MethodGet, path: "/zones/" + dnsZone + "/dns_records", query: url.Values{
				"type": {"TXT"}, "name.exact": {"app.example.com"}, "content.exact": {`"cloudflare_oauth_client_publisher=x y"`},
				"comment.contains": {"ns/name&x"}, "page": {"1"}, "per_page": {"100"}}},
			[]cfapi.DNSRecord{wantRecord}},
		{"ListDNSRecords without filters", `{"success":true,"errors":[],"result":[]}`,
			func(c *cfapi.Client) (any, error) {
				return c.ListDNSRecords(t.Context(), dnsZone, cfapi.DNSRecordFilter{})
			},
			wantCall{method: http.MethodGet, path: "/zones/" + dnsZone + "/dns_records", query: url.Values{"page": {"1"}, "per_page": {"100"}}},
			[]cfapi.DNSRecord{}},
		{"CreateDNSRecord", okRecord,
			func(c *cfapi.Client) (any, error) {
				return c.CreateDNSRecord(t.Context(), dnsZone, cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.com",
					Content: cfapi.QuoteTXT("v=1"), Comment: "managed-by=op", TTL: 60})
			},
			wantCall{method: http.MethodPost, path: "/zones/" + dnsZone + "/dns_records",
				body: `{"type":"TXT","name":"app.example.com","content":"\"v=1\"","ttl":60,"comment":"managed-by=op"}`},
			wantRecord},
		{"CreateDNSRecord: TTL 0 is automatic, no comment is not sent", okRecord,
			func(c *cfapi.Client) (any, error) {
				return c.CreateDNSRecord(t.Context(), dnsZone, cfapi.DNSRecordParams{Type: "A", Name: "a.example.com", Content: "192.0.2.1"})
			},
			wantCall{method: http.MethodPost, path: "/zones/" + dnsZone + "/dns_records",
				body: `{"type":"A","name":"a.example.com","content":"192.0.2.1","ttl":1}`},
			wantRecord},
		{"DeleteDNSRecord", `{"success":true,"errors":[],"result":{"id":"` + dnsRecord + `"}}`,
			func(c *cfapi.Client) (any, error) { return nil, c.DeleteDNSRecord(t.Context(), dnsZone, dnsRecord) },
			wantCall{method: http.MethodDelete, path: "/zones/" + dnsZone + "/dns_records/" + dnsRecord},
			nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, reply(200, tt.reply))
			got, err := tt.call(s.client(t, cfapi.Credentials{APIToken: secretToken}))
			if err != nil {
				t.Fatal(err)
			}
			checkCall(t, s, tt.want)
			if diff := cmp.Diff(tt.got, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if n := s.requests.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

// pager serves a list of n items, ids "r<i>", honouring page and per_page up to max
// (0: no maximum), and remembers the pages asked for.
type pager struct {
	n, max int
	empty  bool // answer "result": [] past the end instead of null
	mu     sync.Mutex
	pages  []string
}

func (p *pager) handle(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	perPage, _ := strconv.Atoi(q.Get("per_page"))
	if p.max > 0 {
		perPage = min(perPage, p.max)
	}
	p.mu.Lock()
	p.pages = append(p.pages, q.Get("page")+"/"+q.Get("per_page"))
	p.mu.Unlock()
	items := []string{}
	for i := (page - 1) * perPage; i < min(page*perPage, p.n); i++ {
		items = append(items, fmt.Sprintf(`{"id":"r%d","name":"x%d.example.com","type":"TXT","content":"c","ttl":1}`, i, i))
	}
	result := "[" + strings.Join(items, ",") + "]"
	if len(items) == 0 && !p.empty {
		result = "null"
	}
	_, _ = fmt.Fprintf(w, `{"success":true,"errors":[],"messages":[],"result":%s,"result_info":{"page":%d,"per_page":%d,"count":%d,"total_count":%d}}`,
		result, page, perPage, len(items), p.n)
}

func TestListDNSRecordsPages(t *testing.T) {
	tests := []struct {
		name      string
		pager     *pager
		wantPages []string
		wantN     int
		wantErr   error
	}{
		{"empty zone", &pager{n: 0}, []string{"1/100"}, 0, nil},
		{"one short page", &pager{n: 3}, []string{"1/100"}, 3, nil},
		{"two pages", &pager{n: 150}, []string{"1/100", "2/100"}, 150, nil},
		{"a full last page costs one empty request", &pager{n: 200, empty: true}, []string{"1/100", "2/100", "3/100"}, 200, nil},
		{"a server that never ends is not followed past 100 pages", &pager{n: 1 << 30}, nil, 0, cfapi.ErrTooManyPages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, tt.pager.handle)
			got, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).ListDNSRecords(t.Context(), dnsZone, cfapi.DNSRecordFilter{Type: "TXT"})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				if got != nil || len(tt.pager.pages) != 100 {
					t.Errorf("got %d records after %d pages; want nil after 100", len(got), len(tt.pager.pages))
				}
				return
			}
			if diff := cmp.Diff(tt.wantPages, tt.pager.pages); diff != "" {
				t.Errorf("pages requested (-want +got):\n%s", diff)
			}
			if len(got) != tt.wantN {
				t.Fatalf("got %d records, want %d", len(got), tt.wantN)
			}
			for i, r := range got {
				if r.ID != fmt.Sprintf("r%d", i) {
					t.Fatalf("record %d is %s: pages out of order or repeated", i, r.ID)
				}
			}
		})
	}
}

func TestListZonesPages(t *testing.T) {
	p := &pager{n: 51}
	s := newStub(t, p.handle)
	got, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).ListZones(t.Context(), "example.com")
	if err != nil || len(got) != 51 {
		t.Fatalf("ListZones = %d zones, %v; want 51", len(got), err)
	}
	if diff := cmp.Diff([]string{"1/50", "2/50"}, p.pages); diff != "" {
		t.Errorf("pages (-want +got):\n%s", diff)
	}
}

func TestDNSErrors(t *testing.T) {
	exists := func(code int, msg string) string {
		return fmt.Sprintf(`{"success":false,"errors":[{"code":%d,"message":%q}],"messages":[],"result":null}`, code, msg)
	}
	tests := []struct {
		name    string
		status  int
		body    string
		call    func(context.Context, *cfapi.Client) error
		path    string
		method  string
		check   func(error) bool
		notExis bool
	}{
		{"create: identical record", 400, exists(81058, "An identical record already exists."), createTXT, "/zones/" + dnsZone + "/dns_records", http.MethodPost,
			cfapi.IsRecordExists, false},
		{"create: record already exists", 400, exists(81057, "Record already exists."), createTXT, "/zones/" + dnsZone + "/dns_records", http.MethodPost,
			cfapi.IsRecordExists, false},
		{"create without DNS Write", 403, exists(9109, "Unauthorized to access requested resource"), createTXT, "/zones/" + dnsZone + "/dns_records", http.MethodPost,
			cfapi.IsForbidden, true},
		{"create: bad TTL is validation, not exists", 400, exists(12104, "bad ttl"), createTXT, "/zones/" + dnsZone + "/dns_records", http.MethodPost,
			cfapi.IsValidation, true},
		{"list in an unknown zone", 404, exists(12101, "Zone not found"), listTXT, "/zones/" + dnsZone + "/dns_records", http.MethodGet,
			cfapi.IsNotFound, true},
		{"list zones without Zone Read", 403, exists(9109, "Unauthorized"),
			func(ctx context.Context, c *cfapi.Client) error {
				_, err := c.ListZones(ctx, "example.com")
				return err
			}, "/zones", http.MethodGet,
			cfapi.IsForbidden, true},
		{"get an unknown zone", 404, exists(12101, "Zone not found"),
			func(ctx context.Context, c *cfapi.Client) error { _, err := c.GetZone(ctx, dnsZone); return err }, "/zones/" + dnsZone, http.MethodGet,
			cfapi.IsNotFound, true},
		{"delete a record that is gone", 404, exists(12102, "DNS record not found"),
			func(ctx context.Context, c *cfapi.Client) error { return c.DeleteDNSRecord(ctx, dnsZone, dnsRecord) }, "/zones/" + dnsZone + "/dns_records/" + dnsRecord, http.MethodDelete,
			cfapi.IsNotFound, true},
		{"create answered without an id", 200, `{"success":true,"errors":[],"result":{"type":"TXT"}}`, createTXT, "/zones/" + dnsZone + "/dns_records", http.MethodPost,
			func(err error) bool { return errors.Is(err, cfapi.ErrMalformedResponse) }, true},
		{"list with a record without an id", 200, `{"success":true,"errors":[],"result":[{"type":"TXT"}]}`, listTXT, "/zones/" + dnsZone + "/dns_records", http.MethodGet,
			func(err error) bool { return errors.Is(err, cfapi.ErrMalformedResponse) }, true},
		{"list answered with an object", 200, `{"success":true,"errors":[],"result":{"id":"x"}}`, listTXT, "/zones/" + dnsZone + "/dns_records", http.MethodGet,
			func(err error) bool { return errors.Is(err, cfapi.ErrMalformedResponse) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, reply(tt.status, tt.body, "Cf-Ray", "ray-dns"))
			err := tt.call(t.Context(), s.client(t, cfapi.Credentials{APIToken: secretToken}))
			ae, ok := errors.AsType[*cfapi.APIError](err)
			if !ok {
				t.Fatalf("err = %v (%T), want *cfapi.APIError", err, err)
			}
			// The query (names, content) never reaches an error: only the path does.
			if ae.Method != tt.method || ae.Path != tt.path || ae.StatusCode != tt.status || ae.RayID != "ray-dns" {
				t.Errorf("APIError = %s %s %d %q, want %s %s %d", ae.Method, ae.Path, ae.StatusCode, ae.RayID, tt.method, tt.path, tt.status)
			}
			if strings.Contains(err.Error(), "?") || strings.Contains(err.Error(), "per_page") {
				t.Errorf("error %q shows the query", err)
			}
			if !tt.check(err) {
				t.Errorf("classification helper is false for %v", err)
			}
			if cfapi.IsRecordExists(err) == tt.notExis {
				t.Errorf("IsRecordExists = %v for %v", !tt.notExis, err)
			}
			assertNoSecret(t, err)
		})
	}
	if cfapi.IsRecordExists(errors.New("81058")) || cfapi.IsRecordExists(nil) {
		t.Error("IsRecordExists is true for something that is not an APIError")
	}
	if !cfapi.IsRecordExists(fmt.Errorf("publish: %w", &cfapi.APIError{StatusCode: 400, Errors: []cfapi.ErrorDetail{{Code: 1}, {Code: 81058}}})) {
		t.Error("IsRecordExists does not see a wrapped error, or a code past the first")
	}
}

func createTXT(ctx context.Context, c *cfapi.Client) error {
	_, err := c.CreateDNSRecord(ctx, dnsZone, cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.com", Content: `"v"`, TTL: 1})
	return err
}

func listTXT(ctx context.Context, c *cfapi.Client) error {
	_, err := c.ListDNSRecords(ctx, dnsZone, cfapi.DNSRecordFilter{Type: "TXT", Name: "app.example.com", Content: `"secret-looking"`})
	return err
}

func TestDNSInvalidArgumentsMakeNoRequest(t *testing.T) {
	s := newStub(t, reply(200, okRecord))
	c := s.client(t, cfapi.Credentials{APIToken: secretToken})
	ctx := t.Context()
	calls := map[string]error{}
	_, calls["get empty zone"] = c.GetZone(ctx, "")
	_, calls["get zone with a slash"] = c.GetZone(ctx, "a/b")
	_, calls["get zone .."] = c.GetZone(ctx, "..")
	_, calls["get zone with a query"] = c.GetZone(ctx, "a?b=c")
	_, calls["get zone with a space"] = c.GetZone(ctx, "a b")
	_, calls["get zone with an escape"] = c.GetZone(ctx, "a%2Fb")
	_, calls["get zone too long"] = c.GetZone(ctx, strings.Repeat("a", 65))
	_, calls["list records empty zone"] = c.ListDNSRecords(ctx, "", cfapi.DNSRecordFilter{})
	_, calls["create in zone with a slash"] = c.CreateDNSRecord(ctx, "../accounts", cfapi.DNSRecordParams{Type: "TXT", Name: "a"})
	_, calls["create without type"] = c.CreateDNSRecord(ctx, dnsZone, cfapi.DNSRecordParams{Name: "a"})
	_, calls["create without name"] = c.CreateDNSRecord(ctx, dnsZone, cfapi.DNSRecordParams{Type: "TXT"})
	calls["delete empty record"] = c.DeleteDNSRecord(ctx, dnsZone, "")
	calls["delete record with a slash"] = c.DeleteDNSRecord(ctx, dnsZone, "x/../../y")
	calls["delete in empty zone"] = c.DeleteDNSRecord(ctx, "", dnsRecord)
	_, calls["zone name with an operator"] = c.ListZones(ctx, "contains:example")
	_, calls["zone name with a newline"] = c.ListZones(ctx, "example.com\n")
	for name, err := range calls {
		if !errors.Is(err, cfapi.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

// TestDNSTokenNeverLeaks drives every DNS method through error paths with a server
// that echoes the credentials in its body, with each credential mode.
func TestDNSTokenNeverLeaks(t *testing.T) {
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "<html>%s %s %s</html>", r.Header.Get("Authorization"), r.Header.Get("X-Auth-Email"), r.Header.Get("X-Auth-Key"))
		}
	}
	handlers := []http.HandlerFunc{echo(200), echo(403), echo(502),
		reply(400, `{"success":false,"errors":[{"code":81058,"message":"An identical record already exists."}]}`),
		reply(200, `{"success":true,"errors":[],"result":[{"id":"`)}
	for _, creds := range []cfapi.Credentials{{APIToken: secretToken}, {Email: secretEmail, APIKey: secretKey}} {
		for _, h := range handlers {
			s := newStub(t, h)
			c := s.client(t, creds)
			ctx := t.Context()
			for _, call := range []func() error{
				func() error { _, err := c.ListZones(ctx, "example.com"); return err },
				func() error { _, err := c.GetZone(ctx, dnsZone); return err },
				func() error { return listTXT(ctx, c) },
				func() error { return createTXT(ctx, c) },
				func() error { return c.DeleteDNSRecord(ctx, dnsZone, dnsRecord) },
			} {
				if err := call(); err == nil {
					t.Error("a call succeeded")
				} else {
					assertNoSecret(t, err)
				}
			}
		}
	}
	c, _ := cfapi.New(cfapi.Credentials{APIToken: secretToken}, cfapi.WithBaseURL("http://127.0.0.1:1/client/v4"))
	err := listTXT(t.Context(), c)
	assertNoSecret(t, err)
	if strings.Contains(err.Error(), "app.example.com") {
		t.Errorf("transport error shows the query: %v", err)
	}
}

func TestQuoteTXT(t *testing.T) {
	long := strings.Repeat("a", 255) + strings.Repeat("b", 10)
	tests := []struct{ in, quoted string }{
		{"", `""`},
		{"cloudflare_oauth_client_publisher=6f8ad92942ad06065fa17308a519f191", `"cloudflare_oauth_client_publisher=6f8ad92942ad06065fa17308a519f191"`},
		{`say "hi"`, `"say \"hi\""`},
		{`back\slash`, `"back\\slash"`},
		{"tab\tnl\n", `"tab\009nl\010"`},
		{"del\x7f", `"del\127"`},
		{"ünï", `"ünï"`},
		{long, `"` + strings.Repeat("a", 255) + `" "` + strings.Repeat("b", 10) + `"`},
		{strings.Repeat("c", 255), `"` + strings.Repeat("c", 255) + `"`},
	}
	for _, tt := range tests {
		if got := cfapi.QuoteTXT(tt.in); got != tt.quoted {
			t.Errorf("QuoteTXT(%q) = %q, want %q", tt.in, got, tt.quoted)
		}
		if got := cfapi.TXTContent(tt.quoted); got != tt.in {
			t.Errorf("TXTContent(%q) = %q, want %q", tt.quoted, got, tt.in)
		}
	}
}

func TestTXTContent(t *testing.T) {
	tests := []struct{ in, want string }{
		{`v=1`, `v=1`},                     // unquoted, as other tools write it
		{`"v=1"`, `v=1`},                   // quoted, as we write it
		{`"a" "b"`, `ab`},                  // split by Cloudflare past 255 bytes
		{`"a"  	"b"`, `ab`},                // any blanks between strings
		{`"\065\066"`, `AB`},               // decimal escapes
		{`"a\"b"`, `a"b`},                  // escaped quote
		{`""`, ``},                         // empty string
		{`"unterminated`, `"unterminated`}, // not a quoted string: as is
		{`"a" b`, `"a" b`},                 // trailing bare word: as is
		{`"bad\999"`, `"bad\999"`},         // escape out of range: as is
		{`"ends with backslash\`, `"ends with backslash\`},
		{`a "b"`, `a "b"`},
		{` "a"`, ` "a"`},
	}
	for _, tt := range tests {
		if got := cfapi.TXTContent(tt.in); got != tt.want {
			t.Errorf("TXTContent(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzTXTRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", `"`, `\`, strings.Repeat("x", 600), "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := cfapi.TXTContent(cfapi.QuoteTXT(s)); got != s {
			t.Errorf("TXTContent(QuoteTXT(%q)) = %q", s, got)
		}
	})
}

// TestDNSAgainstTheEmulator drives the DNS calls through cfemu: find the zone of a
// client_uri host, publish the verification record, see the client verified.
func TestDNSAgainstTheEmulator(t *testing.T) {
	const zoneID = "5f1d8e7c3b2a19f0e4d6c8b7a6958473"
	e := newEmuEnv(t, func(o *cfemu.Options) {
		o.Zones = []cfemu.ZoneSpec{{Name: "example.org", ID: zoneID, AccountID: testAccount}}
		o.DNS = map[string]cfemu.DNSPermissions{testToken: cfemu.DNSEditor()}
		o.DNSPropagation = 20 * time.Second
	})
	ctx := t.Context()
	created := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.ClientURI = strPtr("https://app.example.org/about") })
	text := created.ClientURIVerification.Text

	// The zone, as cert-manager finds it: the host first, then its parents.
	var zone cfapi.Zone
	for _, candidate := range []string{"app.example.org", "example.org"} {
		zones, err := e.client.ListZones(ctx, candidate)
		if err != nil {
			t.Fatal(err)
		}
		if len(zones) > 0 {
			zone = zones[0]
			break
		}
	}
	if zone != (cfapi.Zone{ID: zoneID, Name: "example.org", Status: "active"}) {
		t.Fatalf("zone = %+v", zone)
	}
	if got, err := e.client.GetZone(ctx, zoneID); err != nil || got != zone {
		t.Errorf("GetZone = %+v, %v", got, err)
	}

	params := cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.org", Content: cfapi.QuoteTXT(text),
		Comment: "managed-by=cloudflare-oauth-operator", TTL: 1}
	rec, err := e.client.CreateDNSRecord(ctx, zoneID, params)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.CreateDNSRecord(ctx, zoneID, params); !cfapi.IsRecordExists(err) || !cfapi.IsValidation(err) {
		t.Errorf("second create: %v, want IsRecordExists", err)
	}
	found, err := e.client.ListDNSRecords(ctx, zoneID, cfapi.DNSRecordFilter{Type: "TXT", Name: "APP.example.org", Content: cfapi.QuoteTXT(text),
		CommentContains: "cloudflare-oauth-operator"})
	if err != nil || len(found) != 1 || found[0].ID != rec.ID || cfapi.TXTContent(found[0].Content) != text {
		t.Fatalf("list = %+v, %v", found, err)
	}
	if diff := cmp.Diff(e.emu.DNSRecords(zoneID), found); diff != "" {
		t.Errorf("listed record differs from the emulator's (-emulator +client):\n%s", diff)
	}

	e.clock.Advance(20 * time.Second)
	got, err := e.client.GetOAuthClient(ctx, testAccount, created.ClientID)
	if err != nil || got.ClientURIVerification.Status != cfapi.VerificationVerified {
		t.Fatalf("verification = %+v, %v", got.ClientURIVerification, err)
	}

	if err := e.client.DeleteDNSRecord(ctx, zoneID, rec.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.client.DeleteDNSRecord(ctx, zoneID, rec.ID); !cfapi.IsNotFound(err) {
		t.Errorf("second delete: %v, want IsNotFound", err)
	}
	if _, err := e.client.ListDNSRecords(ctx, "ffffffffffffffffffffffffffffffff", cfapi.DNSRecordFilter{}); !cfapi.IsNotFound(err) {
		t.Errorf("unknown zone: %v, want IsNotFound", err)
	}
}

// TestDNSPagesAgainstTheEmulator: every page, with the emulator's real per_page.
func TestDNSPagesAgainstTheEmulator(t *testing.T) {
	const zoneID = "5f1d8e7c3b2a19f0e4d6c8b7a6958473"
	e := newEmuEnv(t, func(o *cfemu.Options) {
		o.Zones = []cfemu.ZoneSpec{{Name: "example.org", ID: zoneID}}
		o.DNS = map[string]cfemu.DNSPermissions{testToken: {DNSRead: true}}
	})
	for i := range 250 {
		e.emu.AddDNSRecord(zoneID, cfapi.DNSRecord{Type: "TXT", Name: fmt.Sprintf("r%03d.example.org", i), Content: `"x"`})
	}
	all, err := e.client.ListDNSRecords(t.Context(), zoneID, cfapi.DNSRecordFilter{Type: "TXT"})
	if err != nil || len(all) != 250 || all[249].Name != "r249.example.org" {
		t.Errorf("list of 250: %d records, %v", len(all), err)
	}
	log := e.emu.Requests()
	lists := make([]string, 0, len(log))
	for _, r := range log {
		lists = append(lists, r.Route+" ?"+r.Query)
	}
	want := []string{cfemu.RouteListDNSRecords + " ?page=1&per_page=100&type=TXT",
		cfemu.RouteListDNSRecords + " ?page=2&per_page=100&type=TXT", cfemu.RouteListDNSRecords + " ?page=3&per_page=100&type=TXT"}
	if diff := cmp.Diff(want, lists); diff != "" {
		t.Errorf("list queries (-want +got):\n%s", diff)
	}
}

// TestDNSPermissionsAgainstTheEmulator: what the client sees for tokens without the
// permission, and for a token limited to one zone under each ZoneScopedList answer.
func TestDNSPermissionsAgainstTheEmulator(t *testing.T) {
	const zoneID = "5f1d8e7c3b2a19f0e4d6c8b7a6958473"
	e := newEmuEnv(t, func(o *cfemu.Options) {
		o.Zones = []cfemu.ZoneSpec{{Name: "example.org", ID: zoneID}}
		o.DNS = map[string]cfemu.DNSPermissions{testToken: {DNSRead: true}}
	})
	ctx := t.Context()
	params := cfapi.DNSRecordParams{Type: "TXT", Name: "example.org", Content: `"v"`}
	if _, err := e.client.CreateDNSRecord(ctx, zoneID, params); !cfapi.IsForbidden(err) || cfapi.IsRecordExists(err) {
		t.Errorf("create with DNS Read: %v, want forbidden", err)
	}
	if _, err := e.client.ListZones(ctx, "example.org"); !cfapi.IsForbidden(err) {
		t.Errorf("list zones without Zone Read: %v, want forbidden", err)
	}
	if _, err := e.client.ListDNSRecords(ctx, zoneID, cfapi.DNSRecordFilter{}); err != nil {
		t.Errorf("list records with DNS Read: %v", err)
	}
	e.emu.SetTokenDNS(testToken, cfemu.DNSEditor(zoneID))
	for _, tt := range []struct {
		mode      string
		wantZones int
		forbidden bool
	}{{cfemu.ZoneListFiltered, 1, false}, {cfemu.ZoneListEmpty, 0, false}, {cfemu.ZoneListForbidden, 0, true}} {
		e.emu.SetStrict(cfemu.Strict{ZoneScopedList: tt.mode})
		zones, err := e.client.ListZones(ctx, "example.org")
		if len(zones) != tt.wantZones || cfapi.IsForbidden(err) != tt.forbidden || (err != nil) != tt.forbidden {
			t.Errorf("%s: ListZones = %v, %v", tt.mode, zones, err)
		}
		if _, err := e.client.CreateDNSRecord(ctx, zoneID, params); err != nil && !cfapi.IsRecordExists(err) {
			t.Errorf("%s: create by zone id: %v", tt.mode, err)
		}
	}
}
