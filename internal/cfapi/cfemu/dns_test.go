package cfemu_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Zones of the DNS tests: example.com and other.org in acct, elsewhere.net in otherAcct.
const (
	zoneA   = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	zoneB   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	zoneC   = "cccccccccccccccccccccccccccccccc"
	unknown = "dddddddddddddddddddddddddddddddd"
	records = "/client/v4/zones/" + zoneA + "/dns_records"
)

// Tokens of the DNS tests (token itself is a DNS editor on every zone).
const (
	dnsReader  = "dns-reader"
	dnsOnly    = "dns-only"    // DNS Write, no Zone Read, no OAuth permission
	zoneScoped = "zone-scoped" // DNS editor on zoneB only
	noDNS      = "no-dns"      // OAuth only
)

func newDNSEnv(t *testing.T, mutate ...func(*cfemu.Options)) *env {
	t.Helper()
	return newEnv(t, append([]func(*cfemu.Options){func(o *cfemu.Options) {
		o.Tokens[noDNS] = nil
		o.Email, o.APIKey = "ops@example.org", "global-key"
		o.Zones = []cfemu.ZoneSpec{
			{Name: "Example.COM.", ID: zoneA},
			{Name: "other.org", ID: zoneB, Plan: cfemu.PlanEnterprise},
			{Name: "elsewhere.net", ID: zoneC, AccountID: otherAcct},
		}
		o.DNS = map[string]cfemu.DNSPermissions{
			token:      cfemu.DNSEditor(),
			"narrow":   cfemu.DNSEditor(),
			dnsReader:  {ZoneRead: true, DNSRead: true},
			dnsOnly:    {DNSWrite: true},
			zoneScoped: cfemu.DNSEditor(zoneB),
		}
	}}, mutate...)...)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// ids lists the ids of a list result.
func ids(t *testing.T, r result) []string {
	t.Helper()
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(r.env.Result, &items); err != nil {
		t.Fatalf("result %s: %v", r.env.Result, err)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func (e *env) addTXT(t *testing.T, zoneID, name, content string) string {
	t.Helper()
	r := e.call(t, http.MethodPost, "/client/v4/zones/"+zoneID+"/dns_records",
		fmt.Sprintf(`{"type":"TXT","name":%q,"content":%q,"ttl":1}`, name, content))
	if r.status != 200 {
		t.Fatalf("create TXT %s: %s", name, r.raw)
	}
	var rec cfapi.DNSRecord
	if err := json.Unmarshal(r.env.Result, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.ID
}

func TestZoneList(t *testing.T) {
	e := newDNSEnv(t)
	e.emu.AddZone("example.co.uk")
	tests := []struct {
		query string
		want  []string // zone names
		info  string   // "page/per_page/count/total_count/total_pages"; "" to skip
	}{
		{"", []string{"example.com", "other.org", "elsewhere.net", "example.co.uk"}, "1/20/4/4/1"},
		{"name=example.com", []string{"example.com"}, "1/20/1/1/1"},
		{"name=EXAMPLE.com", []string{"example.com"}, ""},
		{"name=example", nil, ""},
		{"name=contains:example", []string{"example.com", "example.co.uk"}, ""},
		{"name=starts_with:EXAM", []string{"example.com", "example.co.uk"}, ""},
		{"name=starts_with_case_sensitive:EXAM", nil, ""},
		{"name=ends_with:.org", []string{"other.org"}, ""},
		{"name=not_equal:example.com", []string{"other.org", "elsewhere.net", "example.co.uk"}, ""},
		{"name=example.com&name=other.org&match=any", []string{"example.com", "other.org"}, ""},
		{"name=example.com&name=other.org", nil, ""},
		{"account.id=" + otherAcct, []string{"elsewhere.net"}, ""},
		{"account.name=contains:account", []string{"example.com", "other.org", "elsewhere.net", "example.co.uk"}, ""},
		{"status=active&type=full,partial", []string{"example.com", "other.org", "elsewhere.net", "example.co.uk"}, ""},
		{"type=secondary", nil, ""},
		{"status=pending", nil, ""},
		{"per_page=1", []string{"example.com", "other.org", "elsewhere.net", "example.co.uk"}, "1/5/4/4/1"}, // clamped to the minimum 5
		{"per_page=2000&page=2", nil, "2/50/0/4/1"},                                                         // clamped to the maximum 50
		{"page=99999999999999999", nil, ""},
		{"unknown=1", []string{"example.com", "other.org", "elsewhere.net", "example.co.uk"}, ""}, // ignored
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := e.call(t, http.MethodGet, "/client/v4/zones?"+tt.query, "")
			if r.status != 200 {
				t.Fatalf("%s", r.raw)
			}
			var zones []struct{ Name string }
			_ = json.Unmarshal(r.env.Result, &zones)
			got := make([]string, 0, len(zones))
			for _, z := range zones {
				got = append(got, z.Name)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("zones (-want +got):\n%s", diff)
			}
			ri := r.env.ResultInfo
			if info := fmt.Sprintf("%d/%d/%d/%d/%d", ri["page"], ri["per_page"], ri["count"], ri["total_count"], ri["total_pages"]); tt.info != "" && info != tt.info {
				t.Errorf("result_info = %s, want %s", info, tt.info)
			}
		})
	}
	for query, want := range map[string]string{
		"page=0": "400 12109", "per_page=x": "400 12109", "match=some": "400 12109", "order=name": "400 12110", "direction=asc": "400 12110",
	} {
		if got := e.call(t, http.MethodGet, "/client/v4/zones?"+query, "").codes(); got != want {
			t.Errorf("GET /zones?%s: %s, want %s", query, got, want)
		}
	}
}

func TestZoneGetShape(t *testing.T) {
	e := newDNSEnv(t)
	r := e.call(t, http.MethodGet, "/client/v4/zones/"+zoneB, "")
	var z map[string]any
	if err := json.Unmarshal(r.env.Result, &z); r.status != 200 || err != nil {
		t.Fatalf("get zone: %s", r.raw)
	}
	if z["id"] != zoneB || z["name"] != "other.org" || z["status"] != "active" || z["type"] != "full" {
		t.Errorf("zone = %v", z)
	}
	if acc, _ := z["account"].(map[string]any); acc["id"] != acct {
		t.Errorf("account = %v", z["account"])
	}
	if plan, _ := z["plan"].(map[string]any); plan["id"] != cfemu.PlanEnterprise {
		t.Errorf("plan = %v", z["plan"])
	}
	if created, _ := z["created_on"].(string); created != epoch.Format(time.RFC3339Nano) {
		t.Errorf("created_on = %v", z["created_on"])
	}
}

// TestZoneAndDNSPermissions: which token may do what, and which answer it gets.
func TestZoneAndDNSPermissions(t *testing.T) {
	// Every caller gets its own emulator holding one record in each of zones A and B,
	// with the same ids, so that no caller's writes change another's answers.
	const recA, recB = "11111111111111111111111111111111", "22222222222222222222222222222222"
	post := `{"type":"TXT","name":"%s","content":"\"new\"","ttl":1}`
	type req struct{ method, path, body string }
	routes := map[string]req{
		"list zones":  {"GET", "/client/v4/zones", ""},
		"get zone A":  {"GET", "/client/v4/zones/" + zoneA, ""},
		"get zone B":  {"GET", "/client/v4/zones/" + zoneB, ""},
		"list A":      {"GET", records, ""},
		"get A":       {"GET", records + "/" + recA, ""},
		"create A":    {"POST", records, fmt.Sprintf(post, "new.example.com")},
		"patch B":     {"PATCH", "/client/v4/zones/" + zoneB + "/dns_records/" + recB, `{"comment":"c"}`},
		"delete B":    {"DELETE", "/client/v4/zones/" + zoneB + "/dns_records/" + recB, ""},
		"OAuth list":  {"GET", clients, ""},
		"scopes":      {"GET", "/client/v4/oauth/scopes", ""},
		"list C":      {"GET", "/client/v4/zones/" + zoneC + "/dns_records", ""},
		"bad zone id": {"GET", "/client/v4/zones/not-an-id/dns_records", ""},
		"no zone":     {"GET", "/client/v4/zones/" + unknown + "/dns_records", ""},
	}
	tests := []struct {
		who     []string
		results map[string]string
	}{
		{bearer(token), map[string]string{"list zones": "200", "get zone A": "200", "list A": "200", "get A": "200", "create A": "200",
			"patch B": "200", "OAuth list": "200", "list C": "200", "bad zone id": "400 7003", "no zone": "404 12101"}},
		{[]string{"X-Auth-Email", "ops@example.org", "X-Auth-Key", "global-key", "Authorization", ""},
			map[string]string{"list zones": "200", "create A": "200", "delete B": "200", "list C": "200"}},
		{bearer(dnsReader), map[string]string{"list zones": "200", "get zone A": "200", "list A": "200", "get A": "200",
			"create A": "403 9109", "patch B": "403 9109", "delete B": "403 9109", "OAuth list": "403 9109", "scopes": "403 9109"}},
		{bearer(dnsOnly), map[string]string{"list zones": "403 9109", "get zone A": "403 9109", "list A": "200", "create A": "200",
			"no zone": "404 12101", "bad zone id": "400 7003"}},
		{bearer(zoneScoped), map[string]string{"list zones": "200", "get zone A": "403 9109", "get zone B": "200",
			"list A": "403 9109", "create A": "403 9109", "patch B": "200", "no zone": "404 12101"}},
		{bearer(noDNS), map[string]string{"list zones": "403 9109", "list A": "403 9109", "create A": "403 9109", "no zone": "403 9109",
			"OAuth list": "200"}},
		{bearer("narrow"), map[string]string{"list zones": "200", "list A": "403 9109", "list C": "200", "OAuth list": "403 9109"}},
		{bearer("unknown-token"), map[string]string{"list zones": "401 10000", "list A": "401 10000"}},
	}
	for _, tt := range tests {
		e := newDNSEnv(t)
		e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{ID: recA, Type: "TXT", Name: "example.com", Content: `"x"`})
		e.emu.AddDNSRecord(zoneB, cfapi.DNSRecord{ID: recB, Type: "TXT", Name: "other.org", Content: `"x"`})
		for name, want := range tt.results {
			rt := routes[name]
			if got := e.call(t, rt.method, rt.path, rt.body, tt.who...).codes(); got != want {
				t.Errorf("%v %s: %s, want %s", tt.who[:2], name, got, want)
			}
		}
		// A refusal changes nothing.
		if tt.results["delete B"] != "200" && tt.results["patch B"] != "200" && tt.results["create A"] != "200" {
			if got := e.emu.DNSRecords(zoneA); len(got) != 1 || len(e.emu.DNSRecords(zoneB)) != 1 || got[0].Comment != "" {
				t.Errorf("%v: a refused write changed the zones", tt.who[:2])
			}
		}
	}
}

func TestZoneScopedList(t *testing.T) {
	e := newDNSEnv(t)
	for _, tt := range []struct {
		mode string
		want string
		ids  []string
	}{
		{"", "200", []string{zoneB}},
		{cfemu.ZoneListFiltered, "200", []string{zoneB}},
		{cfemu.ZoneListEmpty, "200", nil},
		{cfemu.ZoneListForbidden, "403 9109", nil},
	} {
		e.emu.SetStrict(cfemu.Strict{ZoneScopedList: tt.mode})
		r := e.call(t, http.MethodGet, "/client/v4/zones?name=other.org", "", bearer(zoneScoped)...)
		if r.codes() != tt.want {
			t.Errorf("mode %q: %s, want %s", tt.mode, r.codes(), tt.want)
			continue
		}
		if r.status == 200 && !cmp.Equal(tt.ids, ids(t, r), cmpopts.EquateEmpty()) {
			t.Errorf("mode %q: zones %v, want %v", tt.mode, ids(t, r), tt.ids)
		}
		// The zone itself stays usable by id, and an unscoped token still lists.
		if got := e.call(t, http.MethodGet, "/client/v4/zones/"+zoneB, "", bearer(zoneScoped)...).codes(); got != "200" {
			t.Errorf("mode %q: get zone by id: %s", tt.mode, got)
		}
		if got := e.call(t, http.MethodGet, "/client/v4/zones?name=other.org", "").codes(); got != "200" {
			t.Errorf("mode %q: unscoped list: %s", tt.mode, got)
		}
	}
}

func TestDNSRecordCreate(t *testing.T) {
	e := newDNSEnv(t)
	body := `{"type":"TXT","name":"App.Example.com.","content":"\"cloudflare_oauth_client_publisher=abc\"","ttl":1,` +
		`"comment":"managed-by=op","tags":["managed-by:op"],"settings":{}}`
	r := e.call(t, http.MethodPost, records, body)
	if r.status != 200 {
		t.Fatalf("create: %s", r.raw)
	}
	var created map[string]any
	_ = json.Unmarshal(r.env.Result, &created)
	id, _ := created["id"].(string)
	at := epoch.Format(time.RFC3339Nano)
	want := map[string]any{"id": id, "name": "app.example.com", "type": "TXT",
		"content": `"cloudflare_oauth_client_publisher=abc"`, // stored as sent: the API adds no quotes
		"ttl":     1.0, "proxiable": false, "proxied": false, "settings": map[string]any{}, "meta": map[string]any{},
		"comment": "managed-by=op", "tags": []any{"managed-by:op"}, "created_on": at, "modified_on": at,
		"comment_modified_on": at, "tags_modified_on": at}
	if diff := cmp.Diff(want, created); diff != "" {
		t.Errorf("created record (-want +got):\n%s", diff)
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("id %q is not 32 hex", id)
	}
}

func TestDNSRecordUpdates(t *testing.T) {
	e := newDNSEnv(t)
	r := e.call(t, http.MethodPost, records, `{"type":"TXT","name":"app.example.com","content":"v=1","ttl":1,"comment":"c","tags":["a:b"]}`)
	var rec cfapi.DNSRecord
	if err := json.Unmarshal(r.env.Result, &rec); r.status != 200 || err != nil {
		t.Fatalf("create: %s", r.raw)
	}
	id, at := rec.ID, epoch.Format(time.RFC3339Nano)

	e.clock.Advance(time.Minute)
	r = e.call(t, http.MethodPatch, records+"/"+id, `{"comment":"","ttl":120}`)
	var patched map[string]any
	_ = json.Unmarshal(r.env.Result, &patched)
	later := epoch.Add(time.Minute).Format(time.RFC3339Nano)
	if r.status != 200 || patched["comment"] != nil || patched["ttl"] != 120.0 || patched["modified_on"] != later ||
		patched["created_on"] != at || patched["tags_modified_on"] != at || patched["comment_modified_on"] != nil {
		t.Errorf("patch: %s", r.raw)
	}
	e.clock.Advance(time.Minute)
	if r := e.call(t, http.MethodPatch, records+"/"+id, `{"ttl":120}`); r.status != 200 || !strings.Contains(string(r.raw), later) {
		t.Errorf("a PATCH that changes nothing must keep modified_on: %s", r.raw)
	}
	r = e.call(t, http.MethodPut, records+"/"+id, `{"type":"TXT","name":"app.example.com","content":"v=2","ttl":60}`)
	var put map[string]any
	_ = json.Unmarshal(r.env.Result, &put)
	if r.status != 200 || put["content"] != "v=2" || put["tags"] == nil || len(put["tags"].([]any)) != 0 || put["created_on"] != at {
		t.Errorf("put (tags are reset, created_on kept): %s", r.raw)
	}
	if r := e.call(t, http.MethodPut, records+"/"+id, `{"content":"v=3"}`); r.codes() != "400 12003@/type 12003@/name 12003@/ttl" {
		t.Errorf("put without the required fields: %s", r.codes())
	}
	if r := e.call(t, http.MethodGet, records+"/"+id, ""); r.status != 200 || !strings.Contains(string(r.raw), `"v=2"`) {
		t.Errorf("get: %s", r.raw)
	}
}

func TestDNSRecordDeleteAndRoutes(t *testing.T) {
	e := newDNSEnv(t)
	id := e.addTXT(t, zoneA, "app.example.com", `"v"`)
	if r := e.call(t, http.MethodDelete, records+"/"+id, ""); r.status != 200 || string(r.env.Result) != `{"id":"`+id+`"}` {
		t.Errorf("delete: %s", r.raw)
	}
	for _, m := range []string{http.MethodGet, http.MethodDelete, http.MethodPatch} {
		if got := e.call(t, m, records+"/"+id, `{}`).codes(); got != "404 12102" {
			t.Errorf("%s after delete: %s", m, got)
		}
	}
	if got := e.call(t, http.MethodPost, records+"/batch", `{}`).codes(); got != "404 7003" {
		t.Errorf("batch: %s (not emulated: an unknown route)", got)
	}
	if r := e.call(t, http.MethodPost, "/client/v4/zones/"+zoneA, ""); r.codes() != "405 7001" || r.header.Get("Allow") != "GET" {
		t.Errorf("POST on a zone: %s %q", r.codes(), r.header.Get("Allow"))
	}
}

func TestDNSRecordValidation(t *testing.T) {
	e := newDNSEnv(t)
	long := strings.Repeat("x", 101)
	tests := []struct {
		zone, body, want string
	}{
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"v","ttl":1}`, "200"},
		{zoneA, `{"type":"txt","name":"b.example.com","content":"v","ttl":86400}`, "200"},
		{zoneA, `{"name":"a.example.com","content":"v"}`, "400 12003@/type 12003@/ttl"},
		{zoneA, `{"type":"SRV","name":"a.example.com","content":"v","ttl":1}`, "400 12103@/type"},
		{zoneA, `{"type":"TXT","name":"example.org","content":"v","ttl":1}`, "400 12105@/name"},
		{zoneA, `{"type":"TXT","name":"evilexample.com","content":"v","ttl":1}`, "400 12105@/name"},
		{zoneA, `{"type":"TXT","name":"www","content":"v","ttl":1}`, "400 12105@/name"},
		{zoneA, `{"type":"TXT","name":"a..example.com","content":"v","ttl":1}`, "400 12105@/name"},
		{zoneA, `{"type":"TXT","name":"_acme-challenge.*.example.com","content":"v","ttl":1}`, "400 12105@/name"},
		{zoneA, `{"type":"TXT","name":"*.example.com","content":"v","ttl":1}`, "200"},
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"v","ttl":30}`, "400 12104@/ttl"},
		{zoneB, `{"type":"TXT","name":"a.other.org","content":"v","ttl":30}`, "200"}, // enterprise
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"v","ttl":86401}`, "400 12104@/ttl"},
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"v","ttl":1.5}`, "400 12104@/ttl"},
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"v","ttl":"1"}`, "400 12001@/ttl"},
		{zoneA, `{"type":"TXT","name":"c.example.com","content":"v","ttl":1,"comment":"` + long + `"}`, "400 12107@/comment"},
		{zoneB, `{"type":"TXT","name":"c.other.org","content":"v","ttl":1,"comment":"` + long + `"}`, "200"}, // paid: 500
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"","ttl":1}`, "400 12106@/content"},
		{zoneA, `{"type":"TXT","name":"a.example.com","content":"` + strings.Repeat("y", 2049) + `","ttl":1}`, "400 12106@/content"},
		{zoneA, `{"type":"A","name":"a.example.com","content":"2001:db8::1","ttl":1}`, "400 12106@/content"},
		{zoneA, `{"type":"A","name":"a.example.com","content":"192.0.2.1","ttl":1,"proxied":true}`, "200"},
		{zoneA, `{"type":"AAAA","name":"a.example.com","content":"192.0.2.1","ttl":1}`, "400 12106@/content"},
		{zoneA, `{"type":"AAAA","name":"a.example.com","content":"2001:db8::1","ttl":1}`, "200"},
		{zoneA, `{"type":"MX","name":"example.com","content":"mx.example.net","ttl":1}`, "400 12111@/priority"},
		{zoneA, `{"type":"MX","name":"example.com","content":"mx.example.net","ttl":1,"priority":10}`, "200"},
		{zoneA, `{"type":"MX","name":"example.com","content":"mx .example.net","ttl":1,"priority":70000}`, "400 12111@/priority 12106@/content"},
		{zoneA, `{"type":"CNAME","name":"www.example.com","content":"example.net","ttl":1}`, "200"},
		{zoneA, `{"type":"TXT","name":"d.example.com","content":"v","ttl":1,"proxied":true}`, "400 12112@/proxied"},
		{zoneA, `{"type":"TXT","name":"d.example.com","content":"v","ttl":1,"tags":["ok:1","bad tag:2","novalue"]}`, "400 12108@/tags/1 12108@/tags/2"},
		{zoneA, `{"type":"TXT","name":"d.example.com","content":"v","ttl":1,"zone_id":"x"}`, "400 12002@/zone_id"},
		{zoneA, `{"type":"TXT","name":"d.example.com","content":"v","ttl":1,"id":"x"}`, "400 12002@/id"},
		{zoneA, `[]`, "400 12001"},
	}
	for _, tt := range tests {
		if got := e.call(t, http.MethodPost, "/client/v4/zones/"+tt.zone+"/dns_records", tt.body).codes(); got != tt.want {
			t.Errorf("POST %s: %s, want %s", tt.body, got, tt.want)
		}
	}
	// 8,192 characters of TXT per name: four records of 2,048 fit, a fifth does not.
	for i := range 4 {
		body := fmt.Sprintf(`{"type":"TXT","name":"full.example.com","content":"%d%s","ttl":1}`, i, strings.Repeat("z", 2047))
		if got := e.call(t, http.MethodPost, records, body).codes(); got != "200" {
			t.Fatalf("TXT %d: %s", i, got)
		}
	}
	if got := e.call(t, http.MethodPost, records, `{"type":"TXT","name":"full.example.com","content":"more","ttl":1}`).codes(); got != "400 12106@/content" {
		t.Errorf("past 8,192 per name: %s", got)
	}
}

func TestDNSRecordConflicts(t *testing.T) {
	e := newDNSEnv(t)
	txt := `{"type":"TXT","name":"app.example.com","content":%q,"ttl":1}`
	quoted := e.addTXT(t, zoneA, "app.example.com", `"v=1"`)
	tests := []struct{ name, body, want string }{
		{"identical TXT", fmt.Sprintf(txt, `"v=1"`), "400 81058"},
		{"identical TXT, name in other case", `{"type":"TXT","name":"APP.example.com","content":"\"v=1\"","ttl":3600}`, "400 81058"},
		{"TXT content is case-sensitive", fmt.Sprintf(txt, `"V=1"`), "200"},
		{"the unquoted form is another record", fmt.Sprintf(txt, `v=1`), "200"},
		{"CNAME where a TXT is", `{"type":"CNAME","name":"app.example.com","content":"example.net","ttl":1}`, "400 81057"},
		{"CNAME elsewhere", `{"type":"CNAME","name":"www.example.com","content":"example.net","ttl":1}`, "200"},
		{"identical CNAME, content in other case", `{"type":"CNAME","name":"www.example.com","content":"EXAMPLE.net","ttl":1}`, "400 81058"},
		{"second CNAME", `{"type":"CNAME","name":"www.example.com","content":"example.org","ttl":1}`, "400 81057"},
		{"TXT where a CNAME is", `{"type":"TXT","name":"www.example.com","content":"x","ttl":1}`, "400 81057"},
		{"MX with another priority", `{"type":"MX","name":"example.com","content":"mx.example.net","ttl":1,"priority":10}`, "200"},
		{"MX, same priority", `{"type":"MX","name":"example.com","content":"mx.example.net","ttl":1,"priority":10}`, "400 81058"},
		{"MX, other priority", `{"type":"MX","name":"example.com","content":"mx.example.net","ttl":1,"priority":20}`, "200"},
	}
	for _, tt := range tests {
		r := e.call(t, http.MethodPost, records, tt.body)
		if got := r.codes(); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
		if r.status != 200 && !cfapi.IsRecordExists(&cfapi.APIError{StatusCode: r.status, Errors: r.env.Errors}) {
			t.Errorf("%s: IsRecordExists is false for %s", tt.name, r.raw)
		}
	}
	// A PATCH into an identical record is refused too; onto itself it is fine.
	if got := e.call(t, http.MethodPatch, records+"/"+quoted, `{"content":"\"V=1\""}`).codes(); got != "400 81058" {
		t.Errorf("PATCH into a duplicate: %s", got)
	}
	if got := e.call(t, http.MethodPatch, records+"/"+quoted, `{"content":"\"v=1\"","ttl":60}`).codes(); got != "200" {
		t.Errorf("PATCH onto itself: %s", got)
	}
}

func TestDNSRecordFilters(t *testing.T) {
	e := newDNSEnv(t)
	mk := func(body string) string {
		t.Helper()
		r := e.call(t, http.MethodPost, records, body)
		var rec cfapi.DNSRecord
		if err := json.Unmarshal(r.env.Result, &rec); r.status != 200 || err != nil {
			t.Fatalf("%s: %s", body, r.raw)
		}
		return rec.ID
	}
	apex := mk(`{"type":"TXT","name":"example.com","content":"\"v=spf1 -all\"","ttl":1}`)
	ours := mk(`{"type":"TXT","name":"app.example.com","content":"\"cloudflare_oauth_client_publisher=ABC\"","ttl":1,"comment":"managed-by=cloudflare-oauth-operator ns/app"}`)
	bare := mk(`{"type":"TXT","name":"app.example.com","content":"cloudflare_oauth_client_publisher=abc","ttl":1,"comment":"by hand"}`)
	a := mk(`{"type":"A","name":"app.example.com","content":"192.0.2.1","ttl":1,"proxied":true}`)
	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{apex, ours, bare, a}},
		{"type=TXT", []string{apex, ours, bare}},
		{"type=txt&name=APP.example.com", []string{ours, bare}},
		{"name.exact=app.example.com&type=TXT&content.exact=" + url.QueryEscape(`"cloudflare_oauth_client_publisher=abc"`), []string{ours}},
		{"content=" + url.QueryEscape(`cloudflare_oauth_client_publisher=ABC`), []string{bare}},
		{"content.contains=publisher", []string{ours, bare}},
		{"content.startswith=%22", []string{apex, ours}},
		{"content.endswith=all%22", []string{apex}},
		{"name.startswith=app.", []string{ours, bare, a}},
		{"name.endswith=.example.com", []string{ours, bare, a}},
		{"name.contains=EXAMPLE", []string{apex, ours, bare, a}},
		{"comment.contains=cloudflare-oauth-operator", []string{ours}},
		{"comment.exact=BY+HAND", []string{bare}},
		{"comment.startswith=managed-by", []string{ours}},
		{"comment.endswith=ns/app", []string{ours}},
		{"comment.present", []string{ours, bare}},
		{"comment.absent=", []string{apex, a}},
		{"proxied=true", []string{a}},
		{"type=A&name.exact=example.com&match=any", []string{apex, a}},
		{"type=A&name.exact=example.com&match=all", nil},
		{"name.exact=nope.example.com", nil},
		{"comment=by+hand", []string{apex, ours, bare, a}}, // not a filter: ignored
		{"per_page=2", []string{apex, ours}},
		{"per_page=2&page=2", []string{bare, a}},
		{"per_page=2&page=3", nil},
	}
	for _, tt := range tests {
		r := e.call(t, http.MethodGet, records+"?"+tt.query, "")
		if r.status != 200 {
			t.Errorf("?%s: %s", tt.query, r.raw)
			continue
		}
		if diff := cmp.Diff(tt.want, ids(t, r), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("?%s (-want +got):\n%s", tt.query, diff)
		}
	}
	r := e.call(t, http.MethodGet, records+"?per_page=3&page=2&type=TXT", "")
	if diff := cmp.Diff(map[string]int{"page": 2, "per_page": 3, "count": 0, "total_count": 3, "total_pages": 1}, r.env.ResultInfo); diff != "" {
		t.Errorf("result_info (-want +got):\n%s", diff)
	}
	for query, want := range map[string]string{
		"search=app": "400 12110", "tag.exact=a:b": "400 12110", "tag_match=any": "400 12110", "order=type": "400 12110",
		"proxied=maybe": "400 12109", "page=-1": "400 12109", "per_page=0": "400 12109", "match=none": "400 12109", "%zz": "400 12109",
	} {
		if got := e.call(t, http.MethodGet, records+"?"+query, "").codes(); got != want {
			t.Errorf("?%s: %s, want %s", query, got, want)
		}
	}
}

func TestDNSRequestLogFaultsAndCommitLater(t *testing.T) {
	e := newDNSEnv(t)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{
		{Route: cfemu.RouteCreateDNSRecord, Kind: cfemu.FaultInternalError, Count: 1},
		{Route: "/zones/{zone_id}/dns_records", Kind: cfemu.FaultUnavailable, Count: 1}, // every method
		{Route: cfemu.RouteDeleteDNSRecord, Kind: cfemu.FaultReset, CommitAfter: 30 * time.Second, Count: 1},
		{Route: cfemu.RoutePatchDNSRecord, Kind: cfemu.FaultTimeout, Delay: time.Millisecond, CommitAfter: 10 * time.Second, Count: 2},
	}})
	body := `{"type":"TXT","name":"app.example.com","content":"\"v\"","ttl":1}`
	if got := e.call(t, http.MethodPost, records, body).codes(); got != "500 12020" {
		t.Errorf("first create: %s", got)
	}
	if got := e.call(t, http.MethodGet, records+"?type=TXT", "").codes(); got != "503 12021" {
		t.Errorf("list under the template rule: %s", got)
	}
	id := e.addTXT(t, zoneA, "app.example.com", `"v"`)

	// A PATCH that times out lands 10 s later; one that would fail now plans nothing.
	if got := e.call(t, http.MethodPatch, records+"/"+id, `{"comment":"late"}`).codes(); got != "504 12022" {
		t.Errorf("patch: %s", got)
	}
	if got := e.call(t, http.MethodPatch, records+"/"+id, `{"ttl":5}`).codes(); got != "504 12022" {
		t.Errorf("invalid patch: %s", got)
	}
	if got := e.emu.DNSRecords(zoneA)[0].Comment; got != "" {
		t.Errorf("comment before the commit: %q", got)
	}
	if n := e.emu.PendingCommits(); n != 1 {
		t.Errorf("pending = %d, want 1 (the invalid PATCH plans nothing)", n)
	}
	e.clock.Advance(10 * time.Second)
	if got := e.emu.DNSRecords(zoneA)[0]; got.Comment != "late" || !got.ModifiedOn.Equal(epoch.Add(10*time.Second)) {
		t.Errorf("after the commit: %+v", got)
	}
	// A DELETE whose connection is reset lands 30 s later.
	if got := e.send(t, http.MethodDelete, records+"/"+id, ""); got != 0 {
		t.Errorf("delete: status %d, want a reset", got)
	}
	if n := len(e.emu.DNSRecords(zoneA)); n != 1 {
		t.Errorf("records before the delete lands: %d", n)
	}
	e.clock.Advance(30 * time.Second)
	if n := len(e.emu.DNSRecords(zoneA)); n != 0 {
		t.Errorf("records after the delete landed: %d", n)
	}

	log := e.emu.Requests()
	got := make([]string, 0, len(log))
	for _, r := range log {
		got = append(got, fmt.Sprintf("%s %s ?%s %d", r.Route, r.Path, r.Query, r.Status))
	}
	want := []string{
		cfemu.RouteCreateDNSRecord + " /zones/" + zoneA + "/dns_records ? 500",
		cfemu.RouteListDNSRecords + " /zones/" + zoneA + "/dns_records ?type=TXT 503",
		cfemu.RouteCreateDNSRecord + " /zones/" + zoneA + "/dns_records ? 200",
		cfemu.RoutePatchDNSRecord + " /zones/" + zoneA + "/dns_records/" + id + " ? 504",
		cfemu.RoutePatchDNSRecord + " /zones/" + zoneA + "/dns_records/" + id + " ? 504",
		cfemu.RouteDeleteDNSRecord + " /zones/" + zoneA + "/dns_records/" + id + " ? 0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
	if st := e.emu.Stats(); st.Requests[cfemu.RoutePatchDNSRecord] != 2 || st.Faults != 5 {
		t.Errorf("stats = %+v", st)
	}
}

func TestDNSControlZones(t *testing.T) {
	e := newDNSEnv(t)
	ctl := e.controlFunc(t)
	list := func(path string) (int, []map[string]any) {
		t.Helper()
		r := e.call(t, http.MethodGet, "/_emulator"+path, "", "Authorization", "")
		var out []map[string]any
		_ = json.Unmarshal(r.raw, &out)
		return r.status, out
	}

	status, z := ctl("POST", "/zones", `{"name":"new.example","account_id":"`+otherAcct+`","plan":"pro"}`)
	newID, _ := z["id"].(string)
	if status != 200 || len(newID) != 32 || z["name"] != "new.example" || z["comment_limit"] != 500.0 || z["account_id"] != otherAcct {
		t.Fatalf("POST /zones: %d %v", status, z)
	}
	for _, bad := range []string{`{"name":"new.example"}`, `{"name":"nodot"}`, `{"name":"x.example","plan":"gold"}`, `{"name":"x.example","id":"` + zoneA + `"}`, `{"nam":"x"}`} {
		if status, out := ctl("POST", "/zones", bad); status != 400 {
			t.Errorf("POST /zones %s: %d %v", bad, status, out)
		}
	}
	if status, zones := list("/zones"); status != 200 || len(zones) != 4 || zones[3]["id"] != newID {
		t.Errorf("GET /zones: %d %v", status, zones)
	}
	wantZones := []cfapi.Zone{{ID: zoneA, Name: "example.com", Status: "active"}, {ID: zoneB, Name: "other.org", Status: "active"},
		{ID: zoneC, Name: "elsewhere.net", Status: "active"}, {ID: newID, Name: "new.example", Status: "active"}}
	if diff := cmp.Diff(wantZones, e.emu.Zones()); diff != "" {
		t.Errorf("Zones() (-want +got):\n%s", diff)
	}
}

func TestDNSControlRecords(t *testing.T) {
	e := newDNSEnv(t)
	ctl := e.controlFunc(t)
	list := func(path string) (int, []map[string]any) {
		t.Helper()
		r := e.call(t, http.MethodGet, "/_emulator"+path, "", "Authorization", "")
		var out []map[string]any
		_ = json.Unmarshal(r.raw, &out)
		return r.status, out
	}
	// Someone else's records: unchecked, even an identical pair.
	spf := e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{Type: "txt", Name: "Example.com", Content: `"v=spf1 -all"`})
	status, rec := ctl("POST", "/zones/"+zoneA+"/dns_records", `{"type":"TXT","name":"example.com","content":"\"v=spf1 -all\"","ttl":1}`)
	dup, _ := rec["id"].(string)
	if status != 200 || dup == "" || dup == spf {
		t.Fatalf("control add: %d %v", status, rec)
	}
	if status, _ := ctl("PUT", "/zones/"+zoneA+"/dns_records/"+dup, `{"type":"TXT","name":"example.com","content":"\"v=spf1 ~all\"","comment":"x"}`); status != 200 {
		t.Errorf("control put: %d", status)
	}
	created := epoch
	want := []cfapi.DNSRecord{
		{ID: spf, Type: "TXT", Name: "example.com", Content: `"v=spf1 -all"`, TTL: 1, Tags: []string{}, CreatedOn: &created, ModifiedOn: &created},
		{ID: dup, Type: "TXT", Name: "example.com", Content: `"v=spf1 ~all"`, Comment: "x", TTL: 1, Tags: []string{}, CreatedOn: &created, ModifiedOn: &created},
	}
	if diff := cmp.Diff(want, e.emu.DNSRecords(zoneA)); diff != "" {
		t.Errorf("DNSRecords (-want +got):\n%s", diff)
	}
	if status, recs := list("/zones/" + zoneA + "/dns_records"); status != 200 || len(recs) != 2 {
		t.Errorf("control list: %d %v", status, recs)
	}
	// What the API lists is what the helper holds.
	var api []cfapi.DNSRecord
	_ = json.Unmarshal(e.call(t, http.MethodGet, records, "").env.Result, &api)
	if diff := cmp.Diff(want, api); diff != "" {
		t.Errorf("API list differs from DNSRecords (-helper +api):\n%s", diff)
	}
	if status, out := ctl("DELETE", "/zones/"+zoneA+"/dns_records/"+dup, ""); status != 200 || out["id"] != dup {
		t.Errorf("control delete: %d %v", status, out)
	}
	for _, c := range []struct{ method, path, body string }{
		{"DELETE", "/zones/" + zoneA + "/dns_records/" + dup, ""},
		{"GET", "/zones/" + unknown + "/dns_records", ""},
		{"POST", "/zones/" + unknown + "/dns_records", `{"type":"TXT","name":"a.b","content":"x"}`},
		{"PUT", "/zones/" + zoneA + "/dns_records/" + unknown, `{"type":"TXT","name":"example.com","content":"x"}`},
	} {
		if status, _ := ctl(c.method, c.path, c.body); status != 404 {
			t.Errorf("%s %s: %d, want 404", c.method, c.path, status)
		}
	}
	if status, _ := ctl("POST", "/zones/"+zoneA+"/dns_records", `{"type":"TXT","name":"example.org","content":"x"}`); status != 400 {
		t.Errorf("a record outside the zone: %d, want 400", status)
	}
	if status, _ := ctl("PATCH", "/zones/"+zoneA+"/dns_records/"+spf, `{}`); status != 405 {
		t.Errorf("PATCH on the control record: %d, want 405", status)
	}
}

func TestDNSPermissionsAtRunTime(t *testing.T) {
	e := newDNSEnv(t)
	ctl := e.controlFunc(t)
	// A new token, then taken away.
	const fresh = "fresh-token"
	if got := e.call(t, http.MethodGet, records, "", bearer(fresh)...).codes(); got != "401 10000" {
		t.Errorf("unknown token: %s", got)
	}
	if status, out := ctl("PUT", "/dns-permissions", `{"token":"`+fresh+`","permissions":{"dns_read":true,"zone_ids":["`+zoneA+`"]}}`); status != 200 ||
		strings.Contains(fmt.Sprint(out), fresh) {
		t.Errorf("PUT /dns-permissions: %d %v (must not echo the token)", status, out)
	}
	if got := e.call(t, http.MethodGet, records, "", bearer(fresh)...).codes(); got != "200" {
		t.Errorf("after PUT /dns-permissions: %s", got)
	}
	if got := e.call(t, http.MethodPost, records, `{}`, bearer(fresh)...).codes(); got != "403 9109" {
		t.Errorf("write with DNS Read only: %s", got)
	}
	if status, _ := ctl("PUT", "/dns-permissions", `{"token":"x","permissions":{"zone_ids":["nope"]}}`); status != 400 {
		t.Errorf("bad zone id: %d", status)
	}
	if status, _ := ctl("DELETE", "/dns-permissions", `{"token":"`+fresh+`"}`); status != 200 {
		t.Errorf("DELETE /dns-permissions: %d", status)
	}
	if got := e.call(t, http.MethodGet, records, "", bearer(fresh)...).codes(); got != "401 10000" {
		t.Errorf("after DELETE /dns-permissions: %s", got)
	}
	e.emu.SetTokenDNS(noDNS, cfemu.DNSEditor(zoneA))
	if got := e.call(t, http.MethodGet, records, "", bearer(noDNS)...).codes(); got != "200" {
		t.Errorf("after SetTokenDNS: %s", got)
	}

	// Stats count records per zone; Reset keeps Options.Zones (no records), drops the
	// rest, and returns the permissions to Options.DNS.
	e.emu.AddZone("dropped.example")
	e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{Type: "TXT", Name: "example.com", Content: "x"})
	if st := e.emu.Stats(); !cmp.Equal(st.DNSRecords, map[string]int{zoneA: 1}) {
		t.Errorf("Stats.DNSRecords = %v", st.DNSRecords)
	}
	e.emu.Reset()
	if got := e.emu.Zones(); len(got) != 3 || got[0].ID != zoneA || len(e.emu.DNSRecords(zoneA)) != 0 {
		t.Errorf("after Reset: %v, %d records", got, len(e.emu.DNSRecords(zoneA)))
	}
	if got := e.call(t, http.MethodGet, records, "", bearer(noDNS)...).codes(); got != "403 9109" {
		t.Errorf("after Reset, SetTokenDNS is undone: %s", got)
	}
}

func TestDNSOptionsAndHelpersRefuseNonsense(t *testing.T) {
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	panics("New with a bad zone", func() { cfemu.New(cfemu.Options{Zones: []cfemu.ZoneSpec{{Name: "-bad-.com"}}}) })
	panics("New with a duplicate zone", func() {
		cfemu.New(cfemu.Options{Zones: []cfemu.ZoneSpec{{Name: "a.com"}, {Name: "A.com"}}})
	})
	panics("New with a bad DNS zone id", func() {
		cfemu.New(cfemu.Options{DNS: map[string]cfemu.DNSPermissions{"t": {ZoneIDs: []string{"x"}}}})
	})
	panics("New with a huge timeout", func() { cfemu.New(cfemu.Options{DNSVerificationTimeout: 9000 * time.Hour}) })
	e := newDNSEnv(t)
	panics("AddZone twice", func() { e.emu.AddZone("example.com") })
	panics("AddDNSRecord in an unknown zone", func() { e.emu.AddDNSRecord(unknown, cfapi.DNSRecord{Type: "TXT", Name: "a.b"}) })
	panics("AddDNSRecord outside the zone", func() { e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{Type: "TXT", Name: "example.org"}) })
	panics("SetTokenDNS with a bad zone", func() { e.emu.SetTokenDNS("t", cfemu.DNSPermissions{ZoneIDs: []string{"zone"}}) })
	id := e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{Type: "TXT", Name: "example.com", Content: "x"})
	panics("AddDNSRecord with an id in use", func() { e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{ID: id, Type: "TXT", Name: "example.com"}) })
	if err := e.emu.PutDNSRecord(zoneA, cfapi.DNSRecord{ID: unknown, Name: "example.com"}); err == nil {
		t.Error("PutDNSRecord of an unknown record")
	}
	if err := e.emu.DeleteDNSRecord(unknown, id); err == nil {
		t.Error("DeleteDNSRecord in an unknown zone")
	}
	if got := e.emu.DNSRecords(unknown); got == nil || len(got) != 0 {
		t.Errorf("DNSRecords of an unknown zone = %#v, want empty", got)
	}
	if !slices.Equal([]string{e.emu.Zones()[0].Name}, []string{"example.com"}) {
		t.Errorf("zone names are stored lowercase without the dot: %v", e.emu.Zones())
	}
}
