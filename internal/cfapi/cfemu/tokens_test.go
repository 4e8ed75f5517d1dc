package cfemu_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	userVerify  = "/client/v4/user/tokens/verify"
	acctVerify  = "/client/v4/accounts/" + acct + "/tokens/verify"
	otherVerify = "/client/v4/accounts/" + otherAcct + "/tokens/verify"

	acctToken     = "emu-account-token"
	disabledToken = "emu-disabled-token"
	expiredToken  = "emu-expired-token"
	expiringToken = "emu-expiring-token"
	futureToken   = "emu-future-token"
	verifyOnly    = "emu-verify-only-token"
	fixedID       = "ed17574386854bf78a67040be0a770b0"
)

var (
	inAnHour    = epoch.Add(time.Hour)
	anHourAgo   = epoch.Add(-time.Hour)
	tokenHexID  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	validAnswer = []cfapi.ErrorDetail{{Code: 10000, Message: "This API Token is valid and active"}}
)

// tokenEnv is an emulator knowing a token of every kind.
func tokenEnv(t *testing.T, mutate ...func(*cfemu.Options)) *env {
	t.Helper()
	return newEnv(t, append([]func(*cfemu.Options){func(o *cfemu.Options) {
		for _, tok := range []string{acctToken, disabledToken, expiredToken, expiringToken, futureToken} {
			o.Tokens[tok] = nil
		}
		o.TokenInfo = map[string]cfemu.TokenInfo{
			acctToken:     {AccountID: acct, ID: fixedID},
			disabledToken: {Status: cfapi.TokenDisabled},
			expiredToken:  {Status: cfapi.TokenExpired, ExpiresOn: &anHourAgo},
			expiringToken: {ExpiresOn: &inAnHour},
			futureToken:   {NotBefore: &inAnHour},
			verifyOnly:    {},
		}
	}}, mutate...)...)
}

// verification decodes a verify answer's result.
func verification(t *testing.T, r result) cfapi.TokenVerification {
	t.Helper()
	var v cfapi.TokenVerification
	if err := json.Unmarshal(r.env.Result, &v); err != nil {
		t.Fatalf("result %s: %v", r.env.Result, err)
	}
	return v
}

func TestTokenVerify(t *testing.T) {
	e := tokenEnv(t)
	active := func(tok string) *cfapi.TokenVerification {
		return &cfapi.TokenVerification{ID: e.emu.TokenID(tok), Status: cfapi.TokenActive}
	}
	tests := []struct {
		name     string
		strict   cfemu.Strict
		path     string
		headers  []string
		want     string // result.codes()
		result   *cfapi.TokenVerification
		messages []cfapi.ErrorDetail
	}{
		{name: "user token, user endpoint", path: userVerify, want: "200", result: active(token), messages: validAnswer},
		{name: "account token, its account", path: acctVerify, headers: bearer(acctToken), want: "200",
			result: &cfapi.TokenVerification{ID: fixedID, Status: cfapi.TokenActive}, messages: validAnswer},
		{name: "a token with info only verifies", path: userVerify, headers: bearer(verifyOnly), want: "200", result: active(verifyOnly), messages: validAnswer},
		{name: "disabled", path: userVerify, headers: bearer(disabledToken), want: "200",
			result: &cfapi.TokenVerification{ID: e.emu.TokenID(disabledToken), Status: cfapi.TokenDisabled}},
		{name: "expired", path: userVerify, headers: bearer(expiredToken), want: "200",
			result: &cfapi.TokenVerification{ID: e.emu.TokenID(expiredToken), Status: cfapi.TokenExpired, ExpiresOn: &anHourAgo}},
		{name: "expiring later", path: userVerify, headers: bearer(expiringToken), want: "200", messages: validAnswer,
			result: &cfapi.TokenVerification{ID: e.emu.TokenID(expiringToken), Status: cfapi.TokenActive, ExpiresOn: &inAnHour}},
		{name: "not valid yet: active, no message", path: userVerify, headers: bearer(futureToken), want: "200",
			result: &cfapi.TokenVerification{ID: e.emu.TokenID(futureToken), Status: cfapi.TokenActive, NotBefore: &inAnHour}},
		{name: "account token, user endpoint", path: userVerify, headers: bearer(acctToken), want: "401 1000"},
		{name: "user token, account endpoint", path: acctVerify, want: "401 1000"},
		{name: "account token, another account", path: otherVerify, headers: bearer(acctToken), want: "401 1000"},
		{name: "unknown token, user endpoint", path: userVerify, headers: bearer("nobody"), want: "401 1000"},
		{name: "unknown token, account endpoint", path: acctVerify, headers: bearer("nobody"), want: "401 1000"},
		{name: "no Authorization header", path: userVerify, headers: []string{"Authorization", ""}, want: "400 1001"},
		{name: "the e-mail and key pair", path: userVerify, headers: []string{"Authorization", "", "X-Auth-Email", "e@x", "X-Auth-Key", "k"}, want: "400 1001"},
		{name: "not a bearer header", path: userVerify, headers: []string{"Authorization", "Basic " + token}, want: "400 6003"},
		{name: "an empty bearer", path: acctVerify, headers: []string{"Authorization", "Bearer"}, want: "400 6003"},
		{name: "malformed account id", path: "/client/v4/accounts/acme/tokens/verify", want: "400 7003"},
		{name: "mismatch forbidden", strict: cfemu.Strict{TokenOwnerMismatch: cfemu.TokenMismatchForbidden},
			path: userVerify, headers: bearer(acctToken), want: "403 9109"},
		{name: "mismatch not found", strict: cfemu.Strict{TokenOwnerMismatch: cfemu.TokenMismatchNotFound},
			path: acctVerify, want: "404 7003"},
		{name: "mismatch invalid", strict: cfemu.Strict{TokenOwnerMismatch: cfemu.TokenMismatchInvalid},
			path: otherVerify, headers: bearer(acctToken), want: "401 1000"},
		{name: "refused: disabled", strict: cfemu.Strict{InactiveTokenRefused: true}, path: userVerify, headers: bearer(disabledToken), want: "401 1000"},
		{name: "refused: expired", strict: cfemu.Strict{InactiveTokenRefused: true}, path: userVerify, headers: bearer(expiredToken), want: "401 1000"},
		{name: "refused: not valid yet", strict: cfemu.Strict{InactiveTokenRefused: true}, path: userVerify, headers: bearer(futureToken), want: "401 1000"},
		{name: "refused: active still verifies", strict: cfemu.Harsh(1), path: acctVerify, headers: bearer(acctToken), want: "200",
			result: &cfapi.TokenVerification{ID: fixedID, Status: cfapi.TokenActive}, messages: validAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.emu.SetStrict(tt.strict)
			r := e.call(t, http.MethodGet, tt.path, "", tt.headers...)
			if got := r.codes(); got != tt.want {
				t.Fatalf("GET %s = %s, want %s: %s", tt.path, got, tt.want, r.raw)
			}
			if r.header.Get("Cf-Ray") == "" || r.header.Get("Ratelimit") == "" {
				t.Errorf("headers %v lack Cf-Ray or Ratelimit", r.header)
			}
			if tt.result == nil {
				if r.env.Success || string(r.env.Result) != "null" || len(r.env.Messages) != 0 {
					t.Errorf("failure envelope = %s", r.raw)
				}
				return
			}
			if !r.env.Success || r.env.Errors == nil || len(r.env.Errors) != 0 {
				t.Errorf("success envelope = %s", r.raw)
			}
			if diff := cmp.Diff(*tt.result, verification(t, r)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(append([]cfapi.ErrorDetail{}, tt.messages...), r.env.Messages); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			if strings.Contains(string(r.raw), token) || strings.Contains(string(r.raw), "emu-") {
				t.Errorf("the answer repeats a token: %s", r.raw)
			}
		})
	}
}

func TestTokenVerifyFollowsTheClock(t *testing.T) {
	e := tokenEnv(t)
	steps := []struct {
		advance   time.Duration
		tok       string
		status    string
		listCodes string // GET clients with the token
	}{
		{0, expiringToken, cfapi.TokenActive, "200"},
		{0, futureToken, cfapi.TokenActive, "401 10000"},
		{time.Hour - time.Nanosecond, expiringToken, cfapi.TokenActive, "200"},
		{0, futureToken, cfapi.TokenActive, "401 10000"},
		{time.Nanosecond, expiringToken, cfapi.TokenExpired, "401 10000"}, // "on or after" expires_on
		{0, futureToken, cfapi.TokenActive, "200"},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		r := e.call(t, http.MethodGet, userVerify, "", bearer(s.tok)...)
		if got := verification(t, r).Status; r.status != 200 || got != s.status {
			t.Errorf("step %d: verify %s = %d %q, want 200 %q", i, s.tok, r.status, got, s.status)
		}
		if got := e.call(t, http.MethodGet, clients, "", bearer(s.tok)...).codes(); got != s.listCodes {
			t.Errorf("step %d: list clients with %s = %s, want %s", i, s.tok, got, s.listCodes)
		}
	}
}

func TestInactiveTokensAreRefusedElsewhere(t *testing.T) {
	const zoneID = "5f1d8e7c3b2a19f0e4d6c8b7a6958473"
	zone := "/client/v4/zones/" + zoneID
	e := tokenEnv(t, func(o *cfemu.Options) {
		o.Zones = []cfemu.ZoneSpec{{Name: "example.com", ID: zoneID, AccountID: acct}}
		o.DNS = map[string]cfemu.DNSPermissions{disabledToken: cfemu.DNSEditor(), token: cfemu.DNSEditor(), acctToken: cfemu.DNSEditor()}
	})
	tests := []struct {
		name         string
		tok          string
		method, path string
		want, harsh  string
	}{
		{"disabled: list clients", disabledToken, http.MethodGet, clients, "401 10000", "403 9109"},
		{"disabled: create", disabledToken, http.MethodPost, clients, "401 10000", "403 9109"},
		{"disabled: scopes", disabledToken, http.MethodGet, "/client/v4/oauth/scopes", "401 10000", "403 9109"},
		{"disabled: zone", disabledToken, http.MethodGet, zone, "401 10000", "403 9109"},
		{"expired: DNS records", expiredToken, http.MethodGet, zone + "/dns_records", "401 10000", "403 9109"},
		{"not valid yet: list clients", futureToken, http.MethodGet, clients, "401 10000", "403 9109"},
		{"active: list clients", token, http.MethodGet, clients, "200", "200"},
		{"account token: its account", acctToken, http.MethodGet, clients, "200", "200"},
		{"account token: another account", acctToken, http.MethodGet, "/client/v4/accounts/" + otherAcct + "/oauth_clients", "403 9109", "403 9109"},
		{"account token: a zone of its account", acctToken, http.MethodGet, zone, "200", "200"},
		{"info only: OAuth", verifyOnly, http.MethodGet, clients, "403 9109", "403 9109"},
		{"info only: zones", verifyOnly, http.MethodGet, zone, "403 9109", "403 9109"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, st := range []cfemu.Strict{{}, cfemu.Harsh(1)} {
				e.emu.SetStrict(st)
				want := tt.want
				if st.InactiveTokenRefused {
					want = tt.harsh
				}
				if got := e.call(t, tt.method, tt.path, validBody, bearer(tt.tok)...).codes(); got != want {
					t.Errorf("%s %s (strict %v) = %s, want %s", tt.method, tt.path, st.InactiveTokenRefused, got, want)
				}
			}
		})
	}
	if got := e.emu.Stats().Clients[acct]; got != 0 {
		t.Errorf("a refused create made %d clients", got)
	}
}

func TestVerifyRoutesAreCountedLimitedAndFaulted(t *testing.T) {
	e := tokenEnv(t, func(o *cfemu.Options) { o.RateLimit, o.RateWindow = 2, time.Minute })
	if got := e.call(t, http.MethodGet, userVerify, "").header.Get("Ratelimit"); got != `"default";r=1;t=60` {
		t.Errorf("first verify: Ratelimit %q", got)
	}
	if got := e.call(t, http.MethodGet, clients, "").codes(); got != "200" {
		t.Errorf("list after a verify: %s", got)
	}
	r := e.call(t, http.MethodGet, userVerify, "")
	if r.codes() != "429 1015" || r.header.Get("Retry-After") != "60" {
		t.Errorf("third request = %s, Retry-After %q: verify counts against the user's limit", r.codes(), r.header.Get("Retry-After"))
	}
	if got := e.call(t, http.MethodGet, userVerify, "", bearer("nobody")...).codes(); got != "401 1000" {
		t.Errorf("unknown token while the user is blocked = %s: authentication comes first", got)
	}
	if got := e.call(t, http.MethodPost, userVerify, "{}").codes(); got != "405 7001" {
		t.Errorf("POST verify = %s", got)
	}
	e.clock.Advance(time.Minute)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: cfemu.RouteVerifyAccountToken, Kind: cfemu.FaultInternalError, Count: 1}}})
	if got := e.call(t, http.MethodGet, acctVerify, "", bearer(acctToken)...).codes(); got != "500 12020" {
		t.Errorf("faulted account verify = %s", got)
	}
	if got := e.call(t, http.MethodGet, acctVerify, "", bearer(acctToken)...).codes(); got != "200" {
		t.Errorf("account verify after the fault = %s", got)
	}
	st := e.emu.Stats()
	want := map[string]int{cfemu.RouteVerifyUserToken: 3, "POST /user/tokens/verify": 1, cfemu.RouteVerifyAccountToken: 2, cfemu.RouteListClients: 1}
	if diff := cmp.Diff(want, st.Requests); diff != "" || st.RateLimited != 1 || st.Faults != 1 {
		t.Errorf("stats (-want +got):\n%s; rate limited %d, faults %d", diff, st.RateLimited, st.Faults)
	}
	recorded := e.emu.Requests()
	got := make([]string, 0, len(recorded))
	for _, rec := range recorded {
		got = append(got, fmt.Sprintf("%s %s %d", rec.Route, rec.Path, rec.Status))
	}
	wantLog := []string{
		cfemu.RouteVerifyUserToken + " /user/tokens/verify 200",
		cfemu.RouteListClients + " /accounts/" + acct + "/oauth_clients 200",
		cfemu.RouteVerifyUserToken + " /user/tokens/verify 429",
		cfemu.RouteVerifyUserToken + " /user/tokens/verify 401",
		"POST /user/tokens/verify /user/tokens/verify 405",
		cfemu.RouteVerifyAccountToken + " /accounts/" + acct + "/tokens/verify 500",
		cfemu.RouteVerifyAccountToken + " /accounts/" + acct + "/tokens/verify 200",
	}
	if diff := cmp.Diff(wantLog, got); diff != "" {
		t.Errorf("request log (-want +got):\n%s", diff)
	}
}

func TestTokenInfoControl(t *testing.T) {
	e := newEnv(t)
	ctl := e.controlFunc(t)
	const fresh = "emu-fresh-token"
	if got := e.call(t, http.MethodGet, acctVerify, "", bearer(fresh)...).codes(); got != "401 1000" {
		t.Errorf("unknown token: %s", got)
	}

	// PUT makes the token known and account-owned; the answer never repeats it.
	status, out := ctl("PUT", "/token-info", `{"token":"`+fresh+`","info":{"account_id":"`+acct+`","expires_on":"2026-06-10T14:00:00+02:00"}}`)
	want := map[string]any{"info": map[string]any{"id": e.emu.TokenID(fresh), "account_id": acct, "expires_on": "2026-06-10T12:00:00Z"}}
	if diff := cmp.Diff(want, out); status != 200 || diff != "" {
		t.Errorf("PUT /token-info: %d (-want +got):\n%s", status, diff)
	}
	if strings.Contains(fmt.Sprint(out), fresh) {
		t.Errorf("PUT /token-info echoes the token: %v", out)
	}
	r := e.call(t, http.MethodGet, acctVerify, "", bearer(fresh)...)
	if v := verification(t, r); r.status != 200 || v.Status != cfapi.TokenExpired || !v.ExpiresOn.Equal(epoch) {
		t.Errorf("after PUT: %s", r.raw)
	}
	for _, bad := range []string{
		`{"token":"x","info":{"status":"revoked"}}`,
		`{"token":"x","info":{"id":"not-hex"}}`,
		`{"token":"x","info":{"account_id":"acme"}}`,
		`{"token":"x","info":{"not_before":"2026-06-10T12:00:00Z","expires_on":"2026-06-10T12:00:00Z"}}`,
		`{"token":"` + fixedID + `","info":{"id":"` + fixedID + `"}}`,
		`{"token":"narrow","info":{"account_id":"` + acct + `"}}`, // Options.Tokens limits it to otherAcct
		`{"token":"x","info":{"owner":"me"}}`,
		`{"info":{}}`,
		``,
	} {
		if status, out := ctl("PUT", "/token-info", bad); status != 400 || strings.Contains(fmt.Sprint(out), fixedID) {
			t.Errorf("PUT /token-info %s: %d %v, want 400 without the token", bad, status, out)
		}
	}
	if status, _ := ctl("GET", "/token-info", ""); status != 405 {
		t.Errorf("GET /token-info: %d, want 405", status)
	}
	if status, out := ctl("DELETE", "/token-info", `{"token":"`+fresh+`"}`); status != 200 || out["cleared"] != true {
		t.Errorf("DELETE /token-info: %d %v", status, out)
	}
	if got := e.call(t, http.MethodGet, userVerify, "", bearer(fresh)...).codes(); got != "401 1000" {
		t.Errorf("after DELETE: %s", got)
	}
}

// TestTokenInfoHelpers: the Go helpers, and Reset returning to Options.TokenInfo.
func TestTokenInfoHelpers(t *testing.T) {
	e := newEnv(t)
	derived := e.emu.TokenID(token)
	if !tokenHexID.MatchString(derived) || derived != e.emu.TokenID(token) || derived == e.emu.TokenID("other") {
		t.Errorf("TokenID = %q: want 32 hex, stable, different per token", derived)
	}
	e.emu.SetTokenInfo(token, cfemu.TokenInfo{Status: cfapi.TokenDisabled, ID: fixedID})
	if v := verification(t, e.call(t, http.MethodGet, userVerify, "")); v.Status != cfapi.TokenDisabled || v.ID != fixedID {
		t.Errorf("after SetTokenInfo: %+v", v)
	}
	e.emu.ClearTokenInfo(token)
	if v := verification(t, e.call(t, http.MethodGet, userVerify, "")); v.Status != cfapi.TokenActive || v.ID != derived {
		t.Errorf("after ClearTokenInfo: %+v", v)
	}
	e.emu.SetTokenInfo(token, cfemu.TokenInfo{Status: cfapi.TokenExpired})
	e.emu.Reset()
	if got := e.call(t, http.MethodGet, clients, "").codes(); got != "200" {
		t.Errorf("after Reset the token is active again: %s", got)
	}
}

func TestTokenInfoRefusesNonsense(t *testing.T) {
	panics := func(name string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			if r == nil {
				t.Errorf("%s did not panic", name)
			} else if strings.Contains(fmt.Sprint(r), "sekrit") {
				t.Errorf("%s: panic names the token: %v", name, r)
			}
		}()
		f()
	}
	panics("New with a bad status", func() {
		cfemu.New(cfemu.Options{TokenInfo: map[string]cfemu.TokenInfo{"sekrit": {Status: "paused"}}})
	})
	panics("New with an account outside Options.Tokens", func() {
		cfemu.New(cfemu.Options{Tokens: map[string][]string{"sekrit": {otherAcct}}, TokenInfo: map[string]cfemu.TokenInfo{"sekrit": {AccountID: acct}}})
	})
	e := newEnv(t)
	panics("SetTokenInfo with a bad account", func() { e.emu.SetTokenInfo("sekrit", cfemu.TokenInfo{AccountID: "x"}) })
	panics("SetTokenInfo of the empty token", func() { e.emu.SetTokenInfo("", cfemu.TokenInfo{}) })
	panics("SetTokenInfo with not_before after expires_on", func() {
		e.emu.SetTokenInfo("sekrit", cfemu.TokenInfo{NotBefore: &inAnHour, ExpiresOn: &anHourAgo})
	})
	if err := (cfemu.TokenInfo{Status: cfapi.TokenExpired, AccountID: acct, ID: fixedID, NotBefore: &anHourAgo, ExpiresOn: &inAnHour}).Validate(); err != nil {
		t.Errorf("Validate of a good info: %v", err)
	}
	if err := (cfemu.Strict{TokenOwnerMismatch: "gone"}).Validate(); err == nil {
		t.Error("Strict.Validate accepted an unknown TokenOwnerMismatch")
	}
}
