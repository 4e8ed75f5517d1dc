package cfapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const tokenID = "ed17574386854bf78a67040be0a770b0"

func TestVerifyTokenRequests(t *testing.T) {
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	notBefore := time.Date(2026, 1, 1, 5, 20, 0, 0, time.UTC)
	full := `{"success":true,"errors":[],"messages":[{"code":10000,"message":"This API Token is valid and active","type":null}],` +
		`"result":{"id":"` + tokenID + `","status":"active","expires_on":"2027-01-01T00:00:00Z","not_before":"2026-01-01T05:20:00Z"}}`
	bare := `{"success":true,"errors":[],"messages":[],"result":{"id":"` + tokenID + `","status":"expired"}}`
	tests := []struct {
		name   string
		reply  string
		call   func(*cfapi.Client) (cfapi.TokenVerification, error)
		path   string
		op     string
		result cfapi.TokenVerification
	}{
		{"user token", full, func(c *cfapi.Client) (cfapi.TokenVerification, error) { return c.VerifyUserToken(t.Context()) },
			"/user/tokens/verify", "verify_user_token",
			cfapi.TokenVerification{ID: tokenID, Status: cfapi.TokenActive, ExpiresOn: &expires, NotBefore: &notBefore}},
		{"account token", bare, func(c *cfapi.Client) (cfapi.TokenVerification, error) {
			return c.VerifyAccountToken(t.Context(), testAccount)
		}, "/accounts/" + testAccount + "/tokens/verify", "verify_account_token",
			cfapi.TokenVerification{ID: tokenID, Status: cfapi.TokenExpired}},
		{"account id is escaped", bare, func(c *cfapi.Client) (cfapi.TokenVerification, error) {
			return c.VerifyAccountToken(t.Context(), "a/b?c")
		}, "/accounts/a%2Fb%3Fc/tokens/verify", "verify_account_token",
			cfapi.TokenVerification{ID: tokenID, Status: cfapi.TokenExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, reply(200, tt.reply))
			var seen []cfapi.RequestInfo
			c := s.client(t, cfapi.Credentials{APIToken: secretToken}, cfapi.WithObserver(func(ri cfapi.RequestInfo) { seen = append(seen, ri) }))
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			checkCall(t, s, wantCall{method: http.MethodGet, path: tt.path})
			h := s.last.Load().Header
			wantHeaders := map[string]string{"Authorization": "Bearer " + secretToken, "Accept": "application/json",
				"Content-Type": "", "X-Auth-Email": "", "X-Auth-Key": "", "User-Agent": "cloudflare-oauth-operator/" + cfapi.Version}
			gotHeaders := map[string]string{}
			for k := range wantHeaders {
				gotHeaders[k] = h.Get(k)
			}
			if diff := cmp.Diff(wantHeaders, gotHeaders); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.result, got); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if len(seen) != 1 || seen[0].Operation != tt.op || seen[0].Method != http.MethodGet || seen[0].StatusCode != 200 {
				t.Errorf("observer saw %+v, want one %s", seen, tt.op)
			}
		})
	}
}

func TestVerifyTokenErrors(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    wantRequestError
		invalid bool
	}{
		{"unknown token", reply(401, `{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}],"messages":[],"result":null}`, "Cf-Ray", "r1"),
			wantRequestError{status: 401, errors: []cfapi.ErrorDetail{{Code: 1000, Message: "Invalid API Token"}}, ray: "r1", check: cfapi.IsUnauthorized}, true},
		{"invalid token answered 400", reply(400, `{"success":false,"errors":[{"code":1000,"message":"Invalid API token"}]}`),
			wantRequestError{status: 400, errors: []cfapi.ErrorDetail{{Code: 1000, Message: "Invalid API token"}}, check: cfapi.IsValidation}, true},
		{"unreadable Authorization header", reply(400, `{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}],"messages":[],"result":null}`),
			wantRequestError{status: 400, errors: []cfapi.ErrorDetail{{Code: 6003, Message: "Invalid request headers"}}, check: cfapi.IsValidation}, true},
		{"authentication error is not an invalid token", reply(401, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`),
			wantRequestError{status: 401, errors: []cfapi.ErrorDetail{{Code: 10000, Message: "Authentication error"}}, check: cfapi.IsUnauthorized}, false},
		{"forbidden is not an invalid token", reply(403, `{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}]}`),
			wantRequestError{status: 403, errors: []cfapi.ErrorDetail{{Code: 9109, Message: "Invalid access token"}}, check: cfapi.IsForbidden}, false},
		{"6003 on a 500 is not an invalid token", reply(500, `{"success":false,"errors":[{"code":6003,"message":"x"}]}`),
			wantRequestError{status: 500, errors: []cfapi.ErrorDetail{{Code: 6003, Message: "x"}}, transient: true}, false},
		{"1000 on a 200 with success false", reply(200, `{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}]}`),
			wantRequestError{status: 200, errors: []cfapi.ErrorDetail{{Code: 1000, Message: "Invalid API Token"}}, wraps: cfapi.ErrUnsuccessful, transient: true}, false},
		{"result without id", reply(200, `{"success":true,"errors":[],"result":{"status":"active"}}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}, false},
		{"result without status", reply(200, `{"success":true,"errors":[],"result":{"id":"`+tokenID+`"}}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}, false},
		{"null result", reply(200, `{"success":true,"errors":[],"result":null}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}, false},
		{"not found", reply(404, `{"success":false,"errors":[{"code":7003,"message":"No route for the URI"}]}`),
			wantRequestError{status: 404, errors: []cfapi.ErrorDetail{{Code: 7003, Message: "No route for the URI"}}, check: cfapi.IsNotFound}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/user/tokens/verify", "/accounts/" + testAccount + "/tokens/verify"} {
				s := newStub(t, tt.handler)
				c := s.client(t, cfapi.Credentials{APIToken: secretToken})
				var err error
				if path == "/user/tokens/verify" {
					_, err = c.VerifyUserToken(t.Context())
				} else {
					_, err = c.VerifyAccountToken(t.Context(), testAccount)
				}
				checkRequestError(t, err, path, tt.want)
				if got := cfapi.IsInvalidToken(err); got != tt.invalid {
					t.Errorf("%s: IsInvalidToken = %v, want %v", path, got, tt.invalid)
				}
				assertNoSecret(t, err)
			}
		})
	}
}

func TestIsInvalidTokenNeedsAnAPIError(t *testing.T) {
	for _, err := range []error{nil, errors.New("Invalid API Token 1000"), cfapi.ErrNotAToken, fmt.Errorf("wrapped: %w", cfapi.ErrInvalidArgument)} {
		if cfapi.IsInvalidToken(err) {
			t.Errorf("IsInvalidToken(%v) = true", err)
		}
	}
	wrapped := fmt.Errorf("verify: %w", &cfapi.APIError{StatusCode: 401, Errors: []cfapi.ErrorDetail{{Code: 1000}}})
	if !cfapi.IsInvalidToken(wrapped) {
		t.Errorf("IsInvalidToken(%v) = false through a wrap", wrapped)
	}
}

func TestVerifyTokenWithoutAToken(t *testing.T) {
	s := newStub(t, reply(200, `{"success":true,"errors":[],"result":{"id":"x","status":"active"}}`))
	legacy := s.client(t, cfapi.Credentials{Email: secretEmail, APIKey: secretKey})
	token := s.client(t, cfapi.Credentials{APIToken: secretToken})
	tests := []struct {
		name string
		call func() (cfapi.TokenVerification, error)
		want error
	}{
		{"user endpoint with e-mail and key", func() (cfapi.TokenVerification, error) { return legacy.VerifyUserToken(t.Context()) }, cfapi.ErrNotAToken},
		{"account endpoint with e-mail and key", func() (cfapi.TokenVerification, error) {
			return legacy.VerifyAccountToken(t.Context(), testAccount)
		}, cfapi.ErrNotAToken},
		{"empty account id", func() (cfapi.TokenVerification, error) { return token.VerifyAccountToken(t.Context(), "") }, cfapi.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			var ae *cfapi.APIError
			if !errors.Is(err, tt.want) || errors.As(err, &ae) || got != (cfapi.TokenVerification{}) {
				t.Errorf("= %+v, %v; want %v and no APIError", got, err, tt.want)
			}
			assertNoSecret(t, err)
		})
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("%d request(s) made, want none", n)
	}
}

// TestVerifyTokenErrorsNeverLeakTheToken drives the verify calls through servers that
// echo the credentials back in a body that is not an envelope (as TestTokenNeverLeaks
// does), answer half a result or reset the connection.
func TestVerifyTokenErrorsNeverLeakTheToken(t *testing.T) {
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "<html>%s</html>", r.Header.Get("Authorization"))
		}
	}
	for _, h := range []http.HandlerFunc{echo(401), echo(200), reply(200, `{"success":true,"result":{"id":"`), func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }} {
		c := newStub(t, h).client(t, cfapi.Credentials{APIToken: secretToken})
		_, err1 := c.VerifyUserToken(t.Context())
		_, err2 := c.VerifyAccountToken(t.Context(), testAccount)
		for _, err := range []error{err1, err2} {
			if err == nil {
				t.Fatal("a call succeeded")
			}
			assertNoSecret(t, err)
		}
	}
}

// TestVerifyTokenAgainstTheEmulator runs both calls for tokens of every kind, under
// the lenient emulator and under every strict mode, and checks the typed outcome.
func TestVerifyTokenAgainstTheEmulator(t *testing.T) {
	expires := epoch.Add(time.Hour)
	ago := epoch.Add(-time.Hour)
	type outcome struct {
		status string // "" when the call fails
		check  func(error) bool
	}
	ok := func(status string) outcome { return outcome{status: status} }
	fails := func(check func(error) bool) outcome { return outcome{check: check} }
	tests := []struct {
		name         string
		info         cfemu.TokenInfo
		user, acct   outcome // lenient
		huser, hacct outcome // cfemu.Harsh
	}{
		{"user-owned, active", cfemu.TokenInfo{ExpiresOn: &expires},
			ok(cfapi.TokenActive), fails(cfapi.IsInvalidToken), ok(cfapi.TokenActive), fails(cfapi.IsForbidden)},
		{"account-owned, active", cfemu.TokenInfo{AccountID: testAccount},
			fails(cfapi.IsInvalidToken), ok(cfapi.TokenActive), fails(cfapi.IsForbidden), ok(cfapi.TokenActive)},
		{"user-owned, disabled", cfemu.TokenInfo{Status: cfapi.TokenDisabled},
			ok(cfapi.TokenDisabled), fails(cfapi.IsInvalidToken), fails(cfapi.IsInvalidToken), fails(cfapi.IsForbidden)},
		{"account-owned, past expires_on", cfemu.TokenInfo{AccountID: testAccount, ExpiresOn: &ago},
			fails(cfapi.IsInvalidToken), ok(cfapi.TokenExpired), fails(cfapi.IsForbidden), fails(cfapi.IsInvalidToken)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t, func(o *cfemu.Options) { o.TokenInfo = map[string]cfemu.TokenInfo{testToken: tt.info} })
			for _, st := range []cfemu.Strict{{}, cfemu.Harsh(1)} {
				e.emu.SetStrict(st)
				wantUser, wantAcct := tt.user, tt.acct
				if st.InactiveTokenRefused {
					wantUser, wantAcct = tt.huser, tt.hacct
				}
				u, errU := e.client.VerifyUserToken(t.Context())
				a, errA := e.client.VerifyAccountToken(t.Context(), testAccount)
				for _, c := range []struct {
					name string
					got  cfapi.TokenVerification
					err  error
					want outcome
				}{{"user", u, errU, wantUser}, {"account", a, errA, wantAcct}} {
					switch {
					case c.want.check != nil && (c.err == nil || !c.want.check(c.err)):
						t.Errorf("%s endpoint (harsh %v): %+v, %v; want a typed failure", c.name, st.InactiveTokenRefused, c.got, c.err)
					case c.want.check == nil && (c.err != nil || c.got.Status != c.want.status || c.got.ID != e.emu.TokenID(testToken)):
						t.Errorf("%s endpoint (harsh %v): %+v, %v; want status %s", c.name, st.InactiveTokenRefused, c.got, c.err, c.want.status)
					}
				}
			}
		})
	}
}
