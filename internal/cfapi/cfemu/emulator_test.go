package cfemu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	acct      = "023e105f4ecef8ad9ca31a8372d0c353"
	otherAcct = "99999999999999999999999999999999"
	token     = "emu-test-token"
	clients   = "/client/v4/accounts/" + acct + "/oauth_clients"
)

var epoch = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)

const validBody = `{"client_name":"App","redirect_uris":["https://app.example.org/cb"],"grant_types":["authorization_code"],` +
	`"response_types":["code"],"scopes":["account.read"],"token_endpoint_auth_method":"client_secret_post"}`

type env struct {
	emu   *cfemu.Server
	clock *cfemu.FakeClock
	srv   *httptest.Server
}

func newEnv(t *testing.T, mutate ...func(*cfemu.Options)) *env {
	t.Helper()
	clock := cfemu.NewFakeClock(epoch)
	opts := cfemu.Options{Tokens: map[string][]string{token: nil, "narrow": {otherAcct}}, Now: clock.Now}
	for _, m := range mutate {
		m(&opts)
	}
	e := &env{emu: cfemu.New(opts), clock: clock}
	e.srv = httptest.NewServer(e.emu)
	t.Cleanup(e.srv.Close)
	return e
}

// result is a decoded response.
type result struct {
	status int
	header http.Header
	env    struct {
		Success    bool                `json:"success"`
		Errors     []cfapi.ErrorDetail `json:"errors"`
		Messages   []cfapi.ErrorDetail `json:"messages"`
		Result     json.RawMessage     `json:"result"`
		ResultInfo map[string]int      `json:"result_info"`
	}
	raw []byte
}

// call sends a request with the test token unless headers say otherwise
// ("Authorization", "" removes it).
func (e *env) call(t *testing.T, method, path, body string, headers ...string) result {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var r result
	r.status, r.header = resp.StatusCode, resp.Header
	r.raw, _ = io.ReadAll(resp.Body)
	_ = json.Unmarshal(r.raw, &r.env)
	return r
}

// codes returns "status code@pointer ..." for compact comparisons.
func (r result) codes() string {
	parts := make([]string, 0, 1+len(r.env.Errors))
	parts = append(parts, fmt.Sprint(r.status))
	for _, e := range r.env.Errors {
		p := fmt.Sprint(e.Code)
		if e.Source != nil {
			p += "@" + e.Source.Pointer
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func (e *env) create(t *testing.T, body string) cfapi.CreatedOAuthClient {
	t.Helper()
	r := e.call(t, http.MethodPost, clients, body)
	if r.status != 200 {
		t.Fatalf("create: %s", r.raw)
	}
	var c cfapi.CreatedOAuthClient
	if err := json.Unmarshal(r.env.Result, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoutingAndAuth(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		path    string
		headers []string
		want    string
	}{
		{"unknown route", "GET", "/client/v4/user/tokens", nil, "404 7003"},
		{"unknown route without credentials", "GET", "/client/v4/nope", []string{"Authorization", ""}, "404 7003"},
		{"outside the base path", "GET", "/accounts/" + acct + "/oauth_clients", nil, "404 7003"},
		{"trailing slash", "GET", clients + "/", nil, "404 7003"},
		{"extra segment", "GET", clients + "/x/rotate_secret/y", nil, "404 7003"},
		{"wrong method", "PUT", clients + "/x", nil, "405 7001"},
		{"wrong method on rotate", "GET", clients + "/x/rotate_secret", nil, "405 7001"},
		{"no credentials", "GET", clients, []string{"Authorization", ""}, "401 10000"},
		{"unknown token", "GET", clients, []string{"Authorization", "Bearer nope"}, "401 10000"},
		{"not a bearer", "GET", clients, []string{"Authorization", "Basic " + token}, "401 10000"},
		{"legacy pair without a configured pair", "GET", clients, []string{"Authorization", "", "X-Auth-Email", "a@b.c", "X-Auth-Key", "k"}, "401 10000"},
		{"token not allowed on the account", "GET", clients, []string{"Authorization", "Bearer narrow"}, "403 9109"},
		{"token allowed on its account", "GET", "/client/v4/accounts/" + otherAcct + "/oauth_clients", []string{"Authorization", "Bearer narrow"}, "200"},
		{"scopes need only authentication", "GET", "/client/v4/oauth/scopes", []string{"Authorization", "Bearer narrow"}, "200"},
		{"malformed account id", "GET", "/client/v4/accounts/ABC/oauth_clients", nil, "400 7003"},
		{"upper-case account id", "GET", "/client/v4/accounts/" + strings.ToUpper(acct) + "/oauth_clients", nil, "400 7003"},
		{"unknown client", "GET", clients + "/" + acct, nil, "404 12019"},
		{"list ignores paging", "GET", clients + "?page=3&per_page=1", nil, "200"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, tt.method, tt.path, "", tt.headers...)
			if got := r.codes(); got != tt.want {
				t.Errorf("got %q, want %q: %s", got, tt.want, r.raw)
			}
			if r.header.Get("Ratelimit") == "" || r.header.Get("Ratelimit-Policy") == "" || r.header.Get("Cf-Ray") == "" {
				t.Errorf("missing Ratelimit/Ratelimit-Policy/Cf-Ray headers: %v", r.header)
			}
			if r.status != 200 && (r.env.Success || r.env.Errors == nil || r.env.Messages == nil || string(r.env.Result) != "null") {
				t.Errorf("failure envelope malformed: %s", r.raw)
			}
		})
	}
	if r := e.call(t, "PUT", clients+"/x", ""); r.header.Get("Allow") != "GET, PATCH, DELETE" {
		t.Errorf("Allow = %q", r.header.Get("Allow"))
	}
}

func TestRequestBodyValidation(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"not an object", `["x"]`, "400 12001"},
		{"empty", ``, "400 12001"},
		{"trailing data", validBody + `{}`, "400 12001"},
		{"wrong type", strings.Replace(validBody, `"scopes":["account.read"]`, `"scopes":"account.read"`, 1), "400 12001@/scopes"},
		{"unknown field", strings.Replace(validBody, `{`, `{"colour":"red",`, 1), "400 12002@/colour"},
		{"read-only field", strings.Replace(validBody, `{`, `{"client_id":"x",`, 1), "400 12002@/client_id"},
		{"visibility on create", strings.Replace(validBody, `{`, `{"visibility":"private",`, 1), "400 12011@/visibility"},
		{"missing required fields", `{"client_name":"x","scopes":["account.read"]}`,
			"400 12003@/redirect_uris 12003@/grant_types 12003@/response_types 12003@/token_endpoint_auth_method"},
		{"null is not sent", strings.Replace(validBody, `"client_name":"App"`, `"client_name":null`, 1), "400 12003@/client_name"},
		{"redirect with fragment", strings.Replace(validBody, `cb"]`, `cb#x"]`, 1), "400 12005@/redirect_uris/0"},
		{"custom scheme redirect", strings.Replace(validBody, `https://app.example.org/cb`, `com.example.app:/cb`, 1), "400 12005@/redirect_uris/0"},
		{"post-logout redirect", strings.Replace(validBody, `{`, `{"post_logout_redirect_uris":["ftp://x"],`, 1), "400 12005@/post_logout_redirect_uris/0"},
		{"tos not absolute", strings.Replace(validBody, `{`, `{"tos_uri":"/tos",`, 1), "400 12005@/tos_uri"},
		{"empty optional URI is accepted", strings.Replace(validBody, `{`, `{"logo_uri":"",`, 1), "200"},
		{"name too long", strings.Replace(validBody, `"App"`, `"`+strings.Repeat("x", 256)+`"`, 1), "400 12004@/client_name"},
	}
	e := newEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, http.MethodPost, clients, tt.body, "Content-Type", "application/json")
			if got := r.codes(); got != tt.want {
				t.Errorf("got %q, want %q: %s", got, tt.want, r.raw)
			}
		})
	}
}

func TestCreateResponseShape(t *testing.T) {
	e := newEnv(t)
	r := e.call(t, http.MethodPost, clients, validBody)
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.env.Result, &fields); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"client_id", "visibility", "client_secret", "has_rotated_secret", "created_at", "updated_at", "optional_scopes", "allowed_cors_origins"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("create result lacks %q: %s", k, r.env.Result)
		}
	}
	for _, k := range []string{"promoted_at", "client_uri_verification", "logo_uri"} {
		if _, ok := fields[k]; ok {
			t.Errorf("create result has %q: %s", k, r.env.Result)
		}
	}
	if string(fields["created_at"]) != `"2026-06-10T12:00:00Z"` {
		t.Errorf("created_at = %s", fields["created_at"])
	}
	var id string
	_ = json.Unmarshal(fields["client_id"], &id)
	// Only the create response carries the secret.
	for _, path := range []string{clients, clients + "/" + id} {
		if got := e.call(t, http.MethodGet, path, ""); bytes.Contains(got.raw, []byte(`"client_secret":`)) {
			t.Errorf("GET %s shows a secret", path)
		}
	}
	if got := e.call(t, http.MethodPatch, clients+"/"+id, `{"client_name":"B"}`); bytes.Contains(got.raw, []byte(`"client_secret":`)) || got.status != 200 {
		t.Errorf("PATCH: %s", got.raw)
	}
	list := e.call(t, http.MethodGet, clients, "")
	if diff := cmp.Diff(map[string]int{"count": 1, "page": 1, "per_page": 1, "total_count": 1}, list.env.ResultInfo); diff != "" {
		t.Errorf("result_info (-want +got):\n%s", diff)
	}
	del := e.call(t, http.MethodDelete, clients+"/"+id, "")
	if string(del.env.Result) != `{"id":"`+id+`"}` {
		t.Errorf("delete result = %s", del.env.Result)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) {
		o.RateLimit, o.RateWindow = 3, time.Minute
		o.Tokens["narrow-other"] = nil
	})
	type step struct {
		advance    time.Duration
		auth       string
		status     int
		ratelimit  string
		retryAfter string
	}
	steps := []step{
		{0, token, 200, `"default";r=2;t=60`, ""},
		{10 * time.Second, token, 200, `"default";r=1;t=50`, ""},
		{0, token, 200, `"default";r=0;t=50`, ""},
		{0, token, 429, `"default";r=0;t=60`, "60"},
		{0, "narrow-other", 200, `"default";r=2;t=60`, ""},       // another credential is unaffected
		{55 * time.Second, token, 429, `"default";r=0;t=5`, "5"}, // blocked for the full window although older hits expired
		{5 * time.Second, token, 200, `"default";r=2;t=60`, ""},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		r := e.call(t, http.MethodGet, "/client/v4/oauth/scopes", "", "Authorization", "Bearer "+s.auth)
		got := step{s.advance, s.auth, r.status, r.header.Get("Ratelimit"), r.header.Get("Retry-After")}
		if diff := cmp.Diff(s, got, cmp.AllowUnexported(step{})); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
		if r.header.Get("Ratelimit-Policy") != `"default";q=3;w=60` {
			t.Errorf("step %d: policy %q", i, r.header.Get("Ratelimit-Policy"))
		}
	}
	if got := e.emu.Stats().RateLimited; got != 2 {
		t.Errorf("RateLimited = %d, want 2", got)
	}
}

func TestFaultKinds(t *testing.T) {
	tests := []struct {
		rule        cfemu.FaultRule
		status      int
		contentType string
		bodyHas     string
		retryAfter  string
	}{
		{cfemu.FaultRule{Kind: cfemu.FaultInternalError}, 500, "application/json", `"code":12020`, ""},
		{cfemu.FaultRule{Kind: cfemu.FaultBadGateway}, 502, "text/html", "502 Bad Gateway", ""},
		{cfemu.FaultRule{Kind: cfemu.FaultUnavailable, RetryAfter: 9}, 503, "application/json", `"code":12021`, "9"},
		{cfemu.FaultRule{Kind: cfemu.FaultRateLimited, RetryAfter: 4}, 429, "application/json", `"code":1015`, "4"},
		{cfemu.FaultRule{Kind: cfemu.FaultRateLimited}, 429, "application/json", `"code":1015`, ""},
		{cfemu.FaultRule{Kind: cfemu.FaultUnauthorized}, 401, "application/json", `"code":10000`, ""},
		{cfemu.FaultRule{Kind: cfemu.FaultMalformed}, 200, "application/json", `"result":{"client_id":"`, ""},
		{cfemu.FaultRule{Kind: cfemu.FaultSuccessFalse}, 200, "application/json", `{"success":false,"errors":[],"messages":[],"result":null}`, ""},
		{cfemu.FaultRule{Kind: cfemu.FaultTimeout, Delay: time.Millisecond}, 504, "application/json", `"code":12022`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.rule.Kind, func(t *testing.T) {
			e := newEnv(t)
			tt.rule.Count = 1
			e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{tt.rule}})
			r := e.call(t, http.MethodGet, clients, "")
			if r.status != tt.status || r.header.Get("Content-Type") != tt.contentType || !bytes.Contains(r.raw, []byte(tt.bodyHas)) ||
				r.header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("got %d %q retry-after %q body %s", r.status, r.header.Get("Content-Type"), r.header.Get("Retry-After"), r.raw)
			}
			if r.header.Get("Cf-Ray") == "" || r.header.Get("Ratelimit") == "" {
				t.Error("fault response lacks the usual headers")
			}
			if again := e.call(t, http.MethodGet, clients, ""); again.status != 200 {
				t.Errorf("second request: %d, want 200 once the count is used", again.status)
			}
			st := e.emu.Stats()
			if st.Faults != 1 || st.Requests[cfemu.RouteListClients] != 2 {
				t.Errorf("stats = %+v", st)
			}
		})
	}
}

func TestFaultReset(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: cfemu.FaultReset, Count: 1}}})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+clients, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("got a response %d, want a transport error", resp.StatusCode)
	}
	if got := e.emu.Requests(); len(got) != 1 || got[0].Status != 0 {
		t.Errorf("log = %+v, want one request with status 0", got)
	}
}

func TestFaultMatchingAndOrdering(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, validBody)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{
		{Route: cfemu.RouteGetClient, Kind: cfemu.FaultInternalError, Count: 2},
		{Route: "/accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret", Kind: cfemu.FaultUnavailable},
		{Kind: cfemu.FaultBadGateway, Count: 1},
	}})
	got := make([]int, 0, 7)
	for _, req := range []struct{ method, path string }{
		{"GET", clients + "/" + c.ClientID}, {"GET", clients + "/" + c.ClientID}, {"GET", clients + "/" + c.ClientID},
		{"POST", clients + "/" + c.ClientID + "/rotate_secret"}, {"DELETE", clients + "/" + c.ClientID + "/rotate_secret"},
		{"GET", clients}, {"GET", "/client/v4/unmatched"},
	} {
		got = append(got, e.call(t, req.method, req.path, "").status)
	}
	// GET faults twice, then the catch-all 502 fires once (on the third GET); rotate
	// routes always 503; the list works again; unmatched paths never fault.
	if diff := cmp.Diff([]int{500, 500, 502, 503, 503, 200, 404}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
	if !e.emu.CheckSecret(acct, c.ClientID, c.ClientSecret).Current {
		t.Error("a fault before apply rotated the secret")
	}
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	run := func() []int {
		e := newEnv(t)
		e.emu.SetFaults(cfemu.Faults{Seed: 42, Rules: []cfemu.FaultRule{{Kind: cfemu.FaultInternalError, Probability: 0.5}}})
		out := make([]int, 0, 20)
		for range 20 {
			out = append(out, e.call(t, http.MethodGet, "/client/v4/oauth/scopes", "").status)
		}
		return out
	}
	first, second := run(), run()
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("same seed, different outcomes (-first +second):\n%s", diff)
	}
	faults := 0
	for _, s := range first {
		if s == 500 {
			faults++
		}
	}
	if faults == 0 || faults == 20 {
		t.Errorf("%d of 20 requests faulted with probability 0.5", faults)
	}
}

func TestFaultAfterApply(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, validBody)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{
		{Route: cfemu.RouteRotateSecret, Kind: cfemu.FaultBadGateway, AfterApply: true, Count: 1},
		{Route: cfemu.RouteCreateClient, Kind: cfemu.FaultInternalError, AfterApply: true, Count: 1},
	}})
	if r := e.call(t, http.MethodPost, clients+"/"+c.ClientID+"/rotate_secret", ""); r.status != 502 {
		t.Fatalf("rotate: %d", r.status)
	}
	if st := e.emu.CheckSecret(acct, c.ClientID, c.ClientSecret); !st.Previous || st.Current {
		t.Errorf("after a lost rotate response the old secret is %+v, want previous", st)
	}
	if r := e.call(t, http.MethodPost, clients, validBody); r.status != 500 {
		t.Fatalf("create: %d", r.status)
	}
	if n := len(e.emu.Clients(acct)); n != 2 {
		t.Errorf("%d clients, want 2: the create happened although its response was lost", n)
	}
}

func TestFaultTimeoutHangsUntilTheClientGivesUp(t *testing.T) {
	e := newEnv(t)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: cfemu.FaultTimeout}}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+clients, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.srv.Client().Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatalf("got a response %d, want the client to time out", resp.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if got := e.emu.Requests(); len(got) != 1 || got[0].Status != http.StatusGatewayTimeout {
		t.Errorf("log = %+v, want one request recorded as 504", got)
	}
}

func TestLatencyRespectsCancellation(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.Latency = time.Hour })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+clients, nil)
	resp, err := e.srv.Client().Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("a request with an hour of latency returned")
	}
	// The control endpoints have no latency.
	if r := e.call(t, http.MethodGet, "/_emulator/stats", ""); r.status != 200 {
		t.Errorf("stats: %d", r.status)
	}
}

func TestSetFaultsRejectsBadRules(t *testing.T) {
	for _, f := range []cfemu.Faults{
		{Rules: []cfemu.FaultRule{{Kind: "418"}}},
		{Rules: []cfemu.FaultRule{{Kind: "500", Probability: 2}}},
		{Rules: []cfemu.FaultRule{{Kind: "500", Count: -1}}},
	} {
		if f.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetFaults(%+v) did not panic", f)
				}
			}()
			newEnv(t).emu.SetFaults(f)
		}()
	}
}

// controlFunc returns a caller for /_emulator endpoints (sent without credentials).
func (e *env) controlFunc(t *testing.T) func(method, path, body string) (int, map[string]any) {
	return func(method, path, body string) (int, map[string]any) {
		t.Helper()
		r := e.call(t, method, "/_emulator"+path, body, "Authorization", "")
		var out map[string]any
		_ = json.Unmarshal(r.raw, &out)
		return r.status, out
	}
}

func TestControlClients(t *testing.T) {
	e := newEnv(t)
	ctl := e.controlFunc(t)

	status, seeded := ctl("POST", "/clients", `{"account_id":"`+acct+`","client":{"client_name":"Seeded","client_uri":"https://app.example.org",`+
		`"token_endpoint_auth_method":"client_secret_basic","scopes":["account.read"]},"client_secret":"s3cret"}`)
	if status != 200 || seeded["client_name"] != "Seeded" || seeded["visibility"] != "private" {
		t.Fatalf("seed: %d %v", status, seeded)
	}
	id, _ := seeded["client_id"].(string)

	if status, out := ctl("POST", "/secret-check", `{"account_id":"`+acct+`","client_id":"`+id+`","client_secret":"s3cret"}`); status != 200 || out["current"] != true || out["previous"] != false {
		t.Errorf("secret-check: %d %v", status, out)
	}
	status, verified := ctl("POST", "/verification", `{"account_id":"`+acct+`","client_id":"`+id+`","status":"verified"}`)
	if v, _ := verified["client_uri_verification"].(map[string]any); status != 200 || v["status"] != "verified" {
		t.Errorf("verification: %d %v", status, verified)
	}
	if status, _ := ctl("POST", "/verification", `{"account_id":"`+acct+`","client_id":"`+id+`","status":"bogus"}`); status != 400 {
		t.Errorf("bogus verification status: %d", status)
	}

	e.clock.Advance(time.Minute)
	status, patched := ctl("PATCH", "/clients/"+acct+"/"+id, `{"client_name":"Drifted","scopes":["zone.read"]}`)
	if status != 200 || patched["client_name"] != "Drifted" || patched["updated_at"] != "2026-06-10T12:01:00Z" {
		t.Errorf("out-of-band patch: %d %v", status, patched)
	}
	if status, _ := ctl("PATCH", "/clients/"+acct+"/"+id, `{"nonsense":1}`); status != 400 {
		t.Errorf("patch with an unknown field: %d", status)
	}
	if status, got := ctl("GET", "/clients/"+acct+"/"+id, ""); status != 200 || got["client_name"] != "Drifted" {
		t.Errorf("get: %d %v", status, got)
	}
	if status, _ := ctl("DELETE", "/clients/"+acct+"/"+id, ""); status != 200 {
		t.Errorf("delete: %d", status)
	}
	if status, _ := ctl("DELETE", "/clients/"+acct+"/"+id, ""); status != 404 {
		t.Errorf("second delete: %d", status)
	}

}

func TestControlStatsAndFaults(t *testing.T) {
	e := newEnv(t)
	ctl := e.controlFunc(t)
	id := e.create(t, validBody).ClientID
	e.emu.ResetStats()
	e.call(t, http.MethodGet, clients+"/"+id, "")
	if status, st := ctl("GET", "/stats", ""); status != 200 || fmt.Sprint(st["requests"]) != "map["+cfemu.RouteGetClient+":1]" ||
		fmt.Sprint(st["clients"]) != "map["+acct+":1]" {
		t.Errorf("stats: %d %v", status, st)
	}
	r := e.call(t, http.MethodGet, "/_emulator/requests", "")
	if !bytes.Contains(r.raw, []byte(`"route":"`+cfemu.RouteGetClient+`"`)) {
		t.Errorf("requests: %s", r.raw)
	}

	if status, _ := ctl("PUT", "/faults", `{"seed":1,"rules":[{"route":"`+cfemu.RouteGetClient+`","kind":"timeout","delay":"1ms","count":1}]}`); status != 200 {
		t.Errorf("put faults: %d", status)
	}
	if got := e.call(t, http.MethodGet, clients+"/"+id, ""); got.status != 504 {
		t.Errorf("faulted get: %d", got.status)
	}
	if status, _ := ctl("PUT", "/faults", `{"rules":[{"kind":"teapot"}]}`); status != 400 {
		t.Errorf("bad fault kind: %d", status)
	}
	if status, _ := ctl("PUT", "/faults", `{"rules":[{"kind":"500"}]}`); status != 200 {
		t.Errorf("put faults: %d", status)
	}
	if status, _ := ctl("DELETE", "/faults", ""); status != 200 {
		t.Errorf("delete faults: %d", status)
	}
	if got := e.call(t, http.MethodGet, clients+"/"+id, ""); got.status != 200 {
		t.Errorf("get after clearing faults: %d", got.status)
	}

	if status, _ := ctl("GET", "/nope", ""); status != 404 {
		t.Errorf("unknown control endpoint: %d", status)
	}
	if status, _ := ctl("POST", "/reset", ""); status != 200 || len(e.emu.Requests()) != 0 {
		t.Errorf("reset: %d", status)
	}
}

func TestDisableControl(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.DisableControl = true })
	if r := e.call(t, http.MethodGet, "/_emulator/stats", ""); r.codes() != "404 7003" {
		t.Errorf("got %s", r.raw)
	}
}

func TestGoHelpers(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.VerifyAfter = time.Minute })
	if _, err := e.emu.SeedClient("bad", cfapi.OAuthClient{}, ""); err == nil {
		t.Error("SeedClient accepted a bad account id")
	}
	c, err := e.emu.SeedClient(acct, cfapi.OAuthClient{ClientID: "fixed", ClientURI: "https://x.example", TokenEndpointAuthMethod: "none"}, "")
	if err != nil || c.ClientID != "fixed" || c.ClientURIVerification.Status != cfapi.VerificationInProgress || c.RedirectURIs == nil {
		t.Fatalf("SeedClient = %+v, %v", c, err)
	}
	if _, err := e.emu.SeedClient(acct, cfapi.OAuthClient{ClientID: "fixed"}, ""); err == nil {
		t.Error("SeedClient accepted a duplicate id")
	}
	if st := e.emu.CheckSecret(acct, "fixed", ""); st != (cfemu.SecretState{}) {
		t.Errorf("PKCE client secret state %+v", st)
	}

	e.clock.Advance(time.Hour)
	if err := e.emu.MutateClient(acct, "fixed", func(c *cfapi.OAuthClient) {
		c.ClientName = "Changed"
		c.ClientID = "hijack"
	}); err != nil {
		t.Fatal(err)
	}
	got, ok := e.emu.GetClient(acct, "fixed")
	if !ok || got.ClientName != "Changed" || !got.UpdatedAt.Equal(epoch.Add(time.Hour)) ||
		got.ClientURIVerification.Status != cfapi.VerificationVerified {
		t.Errorf("after MutateClient: %+v", got)
	}
}

func TestSetVerificationRestartsTheClock(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.VerifyAfter = time.Minute })
	if _, err := e.emu.SeedClient(acct, cfapi.OAuthClient{ClientID: "fixed", ClientURI: "https://x.example"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.SetVerification(acct, "fixed", cfapi.VerificationFailed); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if got, _ := e.emu.GetClient(acct, "fixed"); got.ClientURIVerification.Status != cfapi.VerificationFailed {
		t.Errorf("failed verification became %q", got.ClientURIVerification.Status)
	}
	if err := e.emu.SetVerification(acct, "fixed", cfapi.VerificationInProgress); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Second)
	if got, _ := e.emu.GetClient(acct, "fixed"); got.ClientURIVerification.Status != cfapi.VerificationInProgress {
		t.Errorf("status %q before VerifyAfter", got.ClientURIVerification.Status)
	}
	e.clock.Advance(time.Second)
	if got, _ := e.emu.GetClient(acct, "fixed"); got.ClientURIVerification.Status != cfapi.VerificationVerified {
		t.Errorf("status %q after VerifyAfter", got.ClientURIVerification.Status)
	}
}

func TestHelpersOnUnknownClientsAndResets(t *testing.T) {
	e := newEnv(t)
	if _, err := e.emu.SeedClient(acct, cfapi.OAuthClient{ClientID: "fixed"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.emu.SetVerification(acct, "fixed", "verified"); err == nil {
		t.Error("SetVerification accepted a client without client_uri")
	}
	for name, err := range map[string]error{
		"mutate":       e.emu.MutateClient(acct, "missing", func(*cfapi.OAuthClient) {}),
		"delete":       e.emu.DeleteClient(otherAcct, "fixed"),
		"verification": e.emu.SetVerification(acct, "missing", "verified"),
	} {
		if !errors.Is(err, cfemu.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}

	e.call(t, http.MethodGet, clients, "")
	e.emu.ResetStats()
	if st := e.emu.Stats(); len(st.Requests) != 0 || len(e.emu.Requests()) != 0 || st.Clients[acct] != 1 {
		t.Errorf("after ResetStats: %+v", st)
	}
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: cfemu.FaultInternalError}}})
	e.emu.Reset()
	if n := len(e.emu.Clients(acct)); n != 0 {
		t.Errorf("%d clients after Reset", n)
	}
	if r := e.call(t, http.MethodGet, clients, ""); r.status != 200 {
		t.Errorf("faults survived Reset: %d", r.status)
	}
	if err := e.emu.DeleteClient(acct, "fixed"); !errors.Is(err, cfemu.ErrNotFound) {
		t.Errorf("delete after Reset: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 10 {
				r := e.call(t, http.MethodPost, clients, validBody)
				if r.status != 200 {
					t.Errorf("create: %s", r.raw)
				}
				_ = e.emu.Stats()
				_ = e.emu.Clients(acct)
			}
		})
	}
	wg.Wait()
	if n := len(e.emu.Clients(acct)); n != 40 {
		t.Errorf("%d clients, want 40", n)
	}
	if n := e.emu.Stats().Requests[cfemu.RouteCreateClient]; n != 40 {
		t.Errorf("%d create requests counted, want 40", n)
	}
}
