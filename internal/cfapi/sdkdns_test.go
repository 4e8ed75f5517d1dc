package cfapi_test

// The official Go SDK's dns and zones packages as the oracle for the DNS and zone
// calls: our client must put on the wire what the SDK puts there for the same
// request. Helpers (sdkF, canonicalJSON) are in sdkhelpers_test.go.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/packages/pagination"
	"github.com/cloudflare/cloudflare-go/v7/zones"
	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// sdkReplies answers any DNS or zone request with a canned success of the right shape.
func sdkReplies(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && (strings.HasSuffix(p, "/zones") || strings.HasSuffix(p, "/dns_records")):
		_, _ = w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":[],"result_info":{"page":1,"per_page":50,"count":0,"total_count":0}}`))
	case strings.Contains(p, "/dns_records"):
		_, _ = w.Write([]byte(okRecord))
	default:
		_, _ = w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":{"id":"` + dnsZone + `","name":"example.com","status":"active"}}`))
	}
}

// wire is one request as the server saw it, in a comparable form.
type wire struct {
	Method, Path string
	Query        url.Values
	Body         string
}

func seen(t *testing.T, s *stub) wire {
	t.Helper()
	r := s.last.Load()
	return wire{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Body: canonicalJSON(t, []byte(*s.lastBody.Load()))}
}

func TestSDKDNSRequestsMatchOurs(t *testing.T) {
	t.Parallel()
	const verification = `cloudflare_oauth_client_publisher=6f8ad92942ad06065fa17308a519f191`
	tests := []struct {
		name string
		ours func(t *testing.T, c *cfapi.Client) error
		sdk  func(t *testing.T, z *zones.ZoneService, r *dns.RecordService) error
	}{
		{
			name: "list zones by name",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.ListZones(t.Context(), "example.com")
				return err
			},
			sdk: func(t *testing.T, z *zones.ZoneService, _ *dns.RecordService) error {
				var p zones.ZoneListParams
				sdkF(&p.Name, "example.com")
				sdkF(&p.Page, 1.0)
				sdkF(&p.PerPage, 50.0)
				_, err := z.List(t.Context(), p)
				return err
			},
		},
		{
			name: "get zone",
			ours: func(t *testing.T, c *cfapi.Client) error { _, err := c.GetZone(t.Context(), dnsZone); return err },
			sdk: func(t *testing.T, z *zones.ZoneService, _ *dns.RecordService) error {
				var p zones.ZoneGetParams
				sdkF(&p.ZoneID, dnsZone)
				_, err := z.Get(t.Context(), p)
				return err
			},
		},
		{
			name: "list TXT records by name, content and comment",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.ListDNSRecords(t.Context(), dnsZone, cfapi.DNSRecordFilter{Type: "TXT", Name: "app.example.com",
					Content: cfapi.QuoteTXT(verification), CommentContains: "ns/name"})
				return err
			},
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var p dns.RecordListParams
				var name dns.RecordListParamsName
				var content dns.RecordListParamsContent
				var comment dns.RecordListParamsComment
				sdkF(&p.ZoneID, dnsZone)
				sdkF(&p.Type, dns.RecordListParamsTypeTXT)
				sdkF(&name.Exact, "app.example.com")
				sdkF(&p.Name, name)
				sdkF(&content.Exact, `"`+verification+`"`)
				sdkF(&p.Content, content)
				sdkF(&comment.Contains, "ns/name")
				sdkF(&p.Comment, comment)
				sdkF(&p.Page, 1.0)
				sdkF(&p.PerPage, 100.0)
				_, err := r.List(t.Context(), p)
				return err
			},
		},
		{
			name: "create a TXT record",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.CreateDNSRecord(t.Context(), dnsZone, cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.com",
					Content: cfapi.QuoteTXT(verification), Comment: "managed-by=cloudflare-oauth-operator ns/name", TTL: 1})
				return err
			},
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var body dns.TXTRecordParam
				sdkF(&body.Type, dns.TXTRecordTypeTXT)
				sdkF(&body.Name, "app.example.com")
				sdkF(&body.Content, `"`+verification+`"`)
				sdkF(&body.Comment, "managed-by=cloudflare-oauth-operator ns/name")
				sdkF(&body.TTL, dns.TTL1)
				var p dns.RecordNewParams
				sdkF(&p.ZoneID, dnsZone)
				p.Body = body
				_, err := r.New(t.Context(), p)
				return err
			},
		},
		{
			name: "delete a record",
			ours: func(t *testing.T, c *cfapi.Client) error { return c.DeleteDNSRecord(t.Context(), dnsZone, dnsRecord) },
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var p dns.RecordDeleteParams
				sdkF(&p.ZoneID, dnsZone)
				_, err := r.Delete(t.Context(), dnsRecord, p)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ourStub, sdkStub := newStub(t, sdkReplies), newStub(t, sdkReplies)
			if err := tt.ours(t, ourStub.client(t, cfapi.Credentials{APIToken: secretToken})); err != nil {
				t.Fatalf("ours: %v", err)
			}
			opts := []option.RequestOption{
				option.WithBaseURL(sdkStub.srv.URL + "/client/v4/"), option.WithAPIToken(secretToken),
				option.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), option.WithMaxRetries(0),
			}
			if err := tt.sdk(t, zones.NewZoneService(opts...), dns.NewRecordService(opts...)); err != nil {
				t.Fatalf("sdk: %v", err)
			}
			if diff := cmp.Diff(seen(t, sdkStub), seen(t, ourStub)); diff != "" {
				t.Errorf("our request differs from the SDK's (-sdk +ours):\n%s", diff)
			}
			for _, st := range []*stub{ourStub, sdkStub} {
				if got := st.last.Load().Header.Get("Authorization"); got != "Bearer "+secretToken {
					t.Errorf("Authorization = %q", got)
				}
			}
		})
	}
}

// sdkDNSEnv is the SDK's zones and DNS record services wired to an in-process
// emulator holding one zone, through a transport that records the exchanges.
type sdkDNSEnv struct {
	emu    *cfemu.Server
	wire   *sdkWire
	zones  *zones.ZoneService
	record *dns.RecordService
	zoneID string
	// recordID is the record the scenario created.
	recordID string
}

func newSDKDNSEnv(t *testing.T) *sdkDNSEnv {
	t.Helper()
	clock := cfemu.NewFakeClock(time.Date(2026, 9, 1, 8, 0, 0, 123456789, time.UTC))
	emu := cfemu.New(cfemu.Options{
		Zones: []cfemu.ZoneSpec{{Name: "example.com", ID: dnsZone}},
		DNS:   map[string]cfemu.DNSPermissions{sdkToken: cfemu.DNSEditor()},
		Now:   clock.Now,
	})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	wire := &sdkWire{next: srv.Client().Transport}
	opts := []option.RequestOption{
		option.WithBaseURL(srv.URL + cfemu.BasePath + "/"), option.WithAPIToken(sdkToken),
		option.WithHTTPClient(&http.Client{Transport: wire, Timeout: 10 * time.Second}), option.WithMaxRetries(0),
	}
	return &sdkDNSEnv{emu: emu, wire: wire, zones: zones.NewZoneService(opts...), record: dns.NewRecordService(opts...), zoneID: dnsZone}
}

// sdkDNSStep is one SDK call against the emulator.
type sdkDNSStep struct {
	name      string
	call      func(t *testing.T) (any, error)
	wantRoute string
	// variant, for records, is the SDK type the response's result is decoded into to
	// hold it to the SDK's types (see txtVariant); nil uses what the SDK decoded.
	variant func() any
	// check compares what the SDK decoded with the emulator's state.
	check func(t *testing.T, res any)
}

// TestSDKOracleDNS: every request the SDK builds is accepted and recorded as sent,
// and every answer decodes into the SDK's types with no unknown or ill-typed field.
func TestSDKOracleDNS(t *testing.T) {
	t.Parallel()
	e := newSDKDNSEnv(t)
	for _, step := range e.steps() {
		if !t.Run(step.name, func(t *testing.T) { e.run(t, step) }) {
			return // later steps depend on this one
		}
	}
}

// sameRecord compares the SDK's decoding of the scenario's record with the emulator's.
func (e *sdkDNSEnv) sameRecord(t *testing.T, got *dns.RecordResponse) {
	t.Helper()
	i := slices.IndexFunc(e.emu.DNSRecords(e.zoneID), func(r cfapi.DNSRecord) bool { return r.ID == e.recordID })
	if i < 0 {
		t.Fatalf("emulator has no record %s", e.recordID)
	}
	have := cfapi.DNSRecord{ID: got.ID, Type: string(got.Type), Name: got.Name, Content: got.Content, Comment: got.Comment,
		TTL: int(got.TTL), Tags: sdkTags(t, got.Tags), CreatedOn: &got.CreatedOn, ModifiedOn: &got.ModifiedOn}
	if diff := cmp.Diff(e.emu.DNSRecords(e.zoneID)[i], have); diff != "" {
		t.Errorf("SDK's decoding differs from the emulator's record (-emulator +sdk):\n%s", diff)
	}
}

func (e *sdkDNSEnv) steps() []sdkDNSStep { return append(e.zoneSteps(), e.recordSteps()...) }

func (e *sdkDNSEnv) zoneSteps() []sdkDNSStep {
	return []sdkDNSStep{
		{name: "Zones.List", wantRoute: cfemu.RouteListZones,
			call: func(t *testing.T) (any, error) {
				var p zones.ZoneListParams
				sdkF(&p.Name, "example.com")
				return e.zones.List(t.Context(), p)
			},
			check: func(t *testing.T, res any) {
				page := res.(*pagination.V4PagePaginationArray[zones.Zone])
				if len(page.Result) != 1 || page.Result[0].ID != e.zoneID || page.Result[0].Name != "example.com" ||
					page.Result[0].Status != zones.ZoneStatusActive || page.ResultInfo.Page != 1 || page.ResultInfo.PerPage != 20 {
					t.Errorf("zones = %+v, result_info %+v", page.Result, page.ResultInfo)
				}
			}},
		{name: "Zones.Get", wantRoute: cfemu.RouteGetZone,
			call: func(t *testing.T) (any, error) {
				var p zones.ZoneGetParams
				sdkF(&p.ZoneID, e.zoneID)
				return e.zones.Get(t.Context(), p)
			},
			check: func(t *testing.T, res any) {
				z := res.(*zones.Zone)
				if z.ID != e.zoneID || z.Account.ID != cfemu.DefaultAccountID || z.Type != zones.TypeFull {
					t.Errorf("zone = %+v", z)
				}
			}},
	}
}

func (e *sdkDNSEnv) recordSteps() []sdkDNSStep {
	const verification = `"cloudflare_oauth_client_publisher=6f8ad92942ad06065fa17308a519f191"`
	sameRecord := e.sameRecord
	return []sdkDNSStep{
		{name: "Records.New", variant: func() any { return new(dns.RecordResponseTXTRecord) }, wantRoute: cfemu.RouteCreateDNSRecord,
			call: func(t *testing.T) (any, error) {
				var body dns.TXTRecordParam
				sdkF(&body.Type, dns.TXTRecordTypeTXT)
				sdkF(&body.Name, "app.example.com")
				sdkF(&body.Content, verification)
				sdkF(&body.Comment, "managed-by=cloudflare-oauth-operator")
				sdkF(&body.Tags, []dns.RecordTagsParam{"managed-by:cf-oauth-operator"})
				sdkF(&body.TTL, dns.TTL1)
				var p dns.RecordNewParams
				sdkF(&p.ZoneID, e.zoneID)
				p.Body = body
				return e.record.New(t.Context(), p)
			},
			check: func(t *testing.T, res any) {
				r := res.(*dns.RecordResponse)
				e.recordID = r.ID
				sameRecord(t, r)
				if r.Content != verification {
					t.Errorf("content = %q: the API stores TXT content as sent", r.Content)
				}
			}},
		{name: "Records.List", variant: func() any { return new([]dns.RecordResponseTXTRecord) }, wantRoute: cfemu.RouteListDNSRecords,
			call: func(t *testing.T) (any, error) {
				var p dns.RecordListParams
				var name dns.RecordListParamsName
				sdkF(&p.ZoneID, e.zoneID)
				sdkF(&p.Type, dns.RecordListParamsTypeTXT)
				sdkF(&name.Exact, "APP.example.com")
				sdkF(&p.Name, name)
				return e.record.List(t.Context(), p)
			},
			check: func(t *testing.T, res any) {
				page := res.(*pagination.V4PagePaginationArray[dns.RecordResponse])
				if len(page.Result) != 1 || page.ResultInfo.Page != 1 || page.ResultInfo.PerPage != 100 {
					t.Fatalf("list = %+v, result_info %+v", page.Result, page.ResultInfo)
				}
				sameRecord(t, &page.Result[0])
			}},
		{name: "Records.Edit", variant: func() any { return new(dns.RecordResponseTXTRecord) }, wantRoute: cfemu.RoutePatchDNSRecord,
			call: func(t *testing.T) (any, error) {
				var body dns.TXTRecordParam
				sdkF(&body.Type, dns.TXTRecordTypeTXT)
				sdkF(&body.Name, "app.example.com")
				sdkF(&body.TTL, dns.TTL(300))
				sdkF(&body.Comment, "edited")
				var p dns.RecordEditParams
				sdkF(&p.ZoneID, e.zoneID)
				p.Body = body
				return e.record.Edit(t.Context(), e.recordID, p)
			},
			check: func(t *testing.T, res any) {
				r := res.(*dns.RecordResponse)
				sameRecord(t, r)
				if r.TTL != 300 || r.Comment != "edited" || r.Content != verification {
					t.Errorf("after PATCH: %+v", r)
				}
			}},
		{name: "Records.Update", variant: func() any { return new(dns.RecordResponseTXTRecord) }, wantRoute: cfemu.RoutePutDNSRecord,
			call: func(t *testing.T) (any, error) {
				var body dns.TXTRecordParam
				sdkF(&body.Type, dns.TXTRecordTypeTXT)
				sdkF(&body.Name, "app.example.com")
				sdkF(&body.Content, verification)
				sdkF(&body.TTL, dns.TTL1)
				var p dns.RecordUpdateParams
				sdkF(&p.ZoneID, e.zoneID)
				p.Body = body
				return e.record.Update(t.Context(), e.recordID, p)
			},
			check: func(t *testing.T, res any) {
				r := res.(*dns.RecordResponse)
				sameRecord(t, r)
				if r.Comment != "" || r.TTL != 1 {
					t.Errorf("after PUT (comment and tags reset): %+v", r)
				}
			}},
		{name: "Records.Get", variant: func() any { return new(dns.RecordResponseTXTRecord) }, wantRoute: cfemu.RouteGetDNSRecord,
			call: func(t *testing.T) (any, error) {
				var p dns.RecordGetParams
				sdkF(&p.ZoneID, e.zoneID)
				return e.record.Get(t.Context(), e.recordID, p)
			},
			check: func(t *testing.T, res any) { sameRecord(t, res.(*dns.RecordResponse)) }},
		{name: "Records.Delete", wantRoute: cfemu.RouteDeleteDNSRecord,
			call: func(t *testing.T) (any, error) {
				var p dns.RecordDeleteParams
				sdkF(&p.ZoneID, e.zoneID)
				return e.record.Delete(t.Context(), e.recordID, p)
			},
			check: func(t *testing.T, res any) {
				if r := res.(*dns.RecordDeleteResponse); r.ID != e.recordID || len(e.emu.DNSRecords(e.zoneID)) != 0 {
					t.Errorf("delete = %+v; records left %v", r, e.emu.DNSRecords(e.zoneID))
				}
			}},
	}
}

// run makes one step's call and holds the exchange to the SDK and the emulator.
func (e *sdkDNSEnv) run(t *testing.T, step sdkDNSStep) {
	n, m := e.wire.len(), len(e.emu.Requests())
	res, err := step.call(t)
	if err != nil {
		t.Fatalf("SDK call: %v", err)
	}
	sent, recorded := e.wire.since(n), e.emu.Requests()[m:]
	if len(sent) != 1 || len(recorded) != 1 {
		t.Fatalf("SDK made %d request(s), emulator recorded %d", len(sent), len(recorded))
	}
	ex, rec := sent[0], recorded[0]
	got := fmt.Sprintf("%s %s ?%s -> %d %s", rec.Route, rec.Path, rec.Query, rec.Status, canonicalJSON(t, rec.Body))
	want := fmt.Sprintf("%s %s ?%s -> %d %s", step.wantRoute, ex.path, ex.query, ex.status, canonicalJSON(t, ex.reqBody))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("emulator's record differs from what the SDK sent (-sdk +emulator):\n%s", diff)
	}
	// A V4PagePaginationArray's result_info models only page and per_page; the
	// count, total_count and total_pages Cloudflare also sends are not the SDK's
	// concern, so only the items are held to its types.
	decoded := res
	if v := reflect.ValueOf(res).Elem(); v.Kind() == reflect.Struct && v.FieldByName("ResultInfo").IsValid() {
		decoded = v.FieldByName("Result").Interface()
	}
	var problems []string
	if step.variant != nil {
		problems = txtVariantProblems(t, ex.respBody, step.variant())
	} else if p, gaps := sdkDecodeProblems(decoded); len(p) > 0 || len(gaps) > 0 {
		problems = append(p, fmt.Sprint("unexpected known gaps ", gaps))
	}
	if len(problems) > 0 {
		t.Errorf("the SDK's types do not fit the emulator's answer:\n%s", strings.Join(problems, "\n"))
	}
	step.check(t, res)
}

// sdkTags reads the SDK's untyped tags ([]dns.RecordTags, which is []string, or []any).
func sdkTags(t *testing.T, v any) []string {
	t.Helper()
	out := []string{}
	switch tags := v.(type) {
	case nil:
	case []dns.RecordTags:
		out = append(out, tags...)
	case []any:
		for _, tag := range tags {
			out = append(out, fmt.Sprint(tag))
		}
	default:
		t.Fatalf("tags of type %T", v)
	}
	return out
}

// txtVariantProblems decodes the envelope's result into into, an SDK record variant
// such as dns.RecordResponseTXTRecord (or a slice of them), and reports what does not
// fit its types. dns.RecordResponse cannot be used for this: its union has no
// discriminator and decodes every record as an A record. A variant embeds the
// record's fields (TXTRecord), which apijson lists in the outer struct's ExtraFields
// too; keys that a field of the variant, embedded ones included, does know are not
// problems.
func txtVariantProblems(t *testing.T, body []byte, into any) []string {
	t.Helper()
	var env struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("response is not an envelope: %v", err)
	}
	if err := json.Unmarshal(env.Result, into); err != nil {
		return []string{"result does not decode: " + err.Error()}
	}
	var variants []reflect.Value
	if v := reflect.ValueOf(into).Elem(); v.Kind() == reflect.Slice {
		for i := range v.Len() {
			variants = append(variants, v.Index(i).Addr())
		}
	} else {
		variants = append(variants, v.Addr())
	}
	var problems []string
	for _, v := range variants {
		known := map[string]bool{}
		for _, f := range reflect.VisibleFields(v.Elem().Type()) {
			known[jsonName(f)] = true
		}
		found, _ := sdkDecodeProblems(v.Interface())
		for _, f := range reflect.VisibleFields(v.Elem().Type()) {
			if f.Anonymous {
				inner, _ := sdkDecodeProblems(v.Elem().FieldByIndex(f.Index).Addr().Interface())
				found = append(found, inner...)
			}
		}
		for _, p := range found {
			key, _, _ := strings.Cut(strings.TrimPrefix(p, "$."), ":")
			if !strings.Contains(p, ": not in the SDK's ") || !known[key] {
				problems = append(problems, p)
			}
		}
	}
	return problems
}
