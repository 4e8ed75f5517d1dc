package cfapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Secrets used by the fake servers; the leak test asserts none ever reaches an error.
const (
	secretToken = "tok-LEAKCHECK-7d1f0e2a9b"
	secretEmail = "leak-check@example.org"
	secretKey   = "key-LEAKCHECK-c0ffee1234"
)

// stub is an httptest server answering every request with one canned response and
// remembering the requests it saw.
type stub struct {
	srv      *httptest.Server
	requests atomic.Int32
	last     atomic.Pointer[http.Request]
	lastBody atomic.Pointer[string]
}

func newStub(t *testing.T, h http.HandlerFunc) *stub {
	t.Helper()
	s := &stub{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		body := string(b)
		s.lastBody.Store(&body)
		s.last.Store(r.Clone(context.Background()))
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) client(t *testing.T, creds cfapi.Credentials, opts ...cfapi.Option) *cfapi.Client {
	t.Helper()
	c, err := cfapi.New(creds, append([]cfapi.Option{cfapi.WithBaseURL(s.srv.URL + "/client/v4/")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reply writes a canned response.
func reply(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const okClient = `{"success":true,"errors":[],"messages":[],"result":{"client_id":"c1","visibility":"private"}}`

func TestRequestHeaders(t *testing.T) {
	tests := []struct {
		name  string
		creds cfapi.Credentials
		opts  []cfapi.Option
		call  func(*cfapi.Client) error
		want  map[string]string // "" = must be absent
	}{
		{"token, no body", cfapi.Credentials{APIToken: secretToken}, nil,
			func(c *cfapi.Client) error { _, err := c.GetOAuthClient(context.Background(), "acc", "c1"); return err },
			map[string]string{"Authorization": "Bearer " + secretToken, "X-Auth-Email": "", "X-Auth-Key": "", "Content-Type": "",
				"Accept": "application/json", "User-Agent": "cloudflare-oauth-operator/" + cfapi.Version}},
		{"legacy key with body and custom user agent", cfapi.Credentials{Email: secretEmail, APIKey: secretKey},
			[]cfapi.Option{cfapi.WithUserAgent("my-agent/1.0")},
			func(c *cfapi.Client) error {
				_, err := c.UpdateOAuthClient(context.Background(), "acc", "c1", cfapi.UpdateOAuthClientParams{})
				return err
			},
			map[string]string{"Authorization": "", "X-Auth-Email": secretEmail, "X-Auth-Key": secretKey,
				"Content-Type": "application/json", "User-Agent": "my-agent/1.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, reply(200, okClient))
			if err := tt.call(s.client(t, tt.creds, tt.opts...)); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k := range tt.want {
				got[k] = s.last.Load().Header.Get(k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if r := s.last.Load(); r.URL.RawQuery != "" || !strings.HasPrefix(r.URL.Path, "/client/v4/accounts/acc/") {
				t.Errorf("request URL = %s, want the base path prefix and no query", r.URL)
			}
		})
	}
}

// wantRequestError describes the APIError expected from a canned response.
type wantRequestError struct {
	status     int
	errors     []cfapi.ErrorDetail
	ray        string
	retryAfter time.Duration
	wraps      error
	transient  bool
	check      func(error) bool
}

func TestErrorResponses(t *testing.T) {
	notFoundBody := `{"success":false,"errors":[{"code":7003,"message":"No route","source":{"pointer":"/x"}}],"messages":[],"result":null}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    wantRequestError
	}{
		{"success false with HTTP 200",
			reply(200, `{"success":false,"errors":[{"code":1000,"message":"boom"}],"messages":[],"result":null}`, "Cf-Ray", "ray-1"),
			wantRequestError{status: 200, errors: []cfapi.ErrorDetail{{Code: 1000, Message: "boom"}}, ray: "ray-1", wraps: cfapi.ErrUnsuccessful, transient: true}},
		{"success missing with HTTP 200", reply(200, `{"result":{"client_id":"x"}}`),
			wantRequestError{status: 200, wraps: cfapi.ErrUnsuccessful, transient: true}},
		{"empty errors on a 400", reply(400, `{"success":false,"errors":[],"messages":[],"result":null}`),
			wantRequestError{status: 400, check: cfapi.IsValidation}},
		{"422 is a validation error", reply(422, `{"success":false,"errors":[{"code":1,"message":"bad"}]}`),
			wantRequestError{status: 422, errors: []cfapi.ErrorDetail{{Code: 1, Message: "bad"}}, check: cfapi.IsValidation}},
		{"HTML 502 from a proxy", reply(502, "<html><body>502 Bad Gateway</body></html>", "Content-Type", "text/html", "Cf-Ray", "abc-LHR"),
			wantRequestError{status: 502, ray: "abc-LHR", wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"HTML 404 is still not found", reply(404, "<html>nope</html>"),
			wantRequestError{status: 404, wraps: cfapi.ErrMalformedResponse, check: cfapi.IsNotFound}},
		{"JSON that is not an envelope", reply(503, `{"message":"overloaded"}`),
			wantRequestError{status: 503, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"truncated body", reply(200, `{"success":true,"errors":[],"result":{"client_id":"c`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"empty body", reply(200, ""), wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"oversized body", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, `{"success":true,"result":{"client_id":"`+strings.Repeat("a", 32<<20)+`"}}`)
		}, wantRequestError{status: 200, wraps: cfapi.ErrResponseTooLarge, transient: true}},
		{"success without result", reply(200, `{"success":true,"errors":[],"result":null}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"result without client_id", reply(200, `{"success":true,"errors":[],"result":{"visibility":"private"}}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"result of the wrong type", reply(200, `{"success":true,"errors":[],"result":[1]}`),
			wantRequestError{status: 200, wraps: cfapi.ErrMalformedResponse, transient: true}},
		{"not found with a source pointer", reply(404, notFoundBody),
			wantRequestError{status: 404, errors: []cfapi.ErrorDetail{{Code: 7003, Message: "No route", Source: &cfapi.ErrorSource{Pointer: "/x"}}}, check: cfapi.IsNotFound}},
		{"401", reply(401, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`),
			wantRequestError{status: 401, errors: []cfapi.ErrorDetail{{Code: 10000, Message: "Authentication error"}}, check: cfapi.IsUnauthorized}},
		{"403", reply(403, `{"success":false,"errors":[{"code":9109,"message":"Unauthorized"}]}`),
			wantRequestError{status: 403, errors: []cfapi.ErrorDetail{{Code: 9109, Message: "Unauthorized"}}, check: cfapi.IsForbidden}},
		{"409", reply(409, `{"success":false,"errors":[{"code":1,"message":"conflict"}]}`),
			wantRequestError{status: 409, errors: []cfapi.ErrorDetail{{Code: 1, Message: "conflict"}}, transient: true, check: cfapi.IsConflict}},
		{"408", reply(408, `{"success":false,"errors":[]}`), wantRequestError{status: 408, transient: true}},
		{"429 with retry-after", reply(429, `{"success":false,"errors":[{"code":1015,"message":"slow down"}]}`, "Retry-After", "7"),
			wantRequestError{status: 429, errors: []cfapi.ErrorDetail{{Code: 1015, Message: "slow down"}}, retryAfter: 7 * time.Second}},
		{"429 with fractional retry-after", reply(429, `{"success":false,"errors":[]}`, "Retry-After", "1.2"),
			wantRequestError{status: 429, retryAfter: 2 * time.Second}},
		{"429 without retry-after falls back to Ratelimit reset", reply(429, `{"success":false,"errors":[]}`, "Ratelimit", `"default";r=0;t=12`),
			wantRequestError{status: 429, retryAfter: 12 * time.Second}},
		{"429 with nothing", reply(429, `{"success":false,"errors":[]}`), wantRequestError{status: 429}},
		{"503 with retry-after", reply(503, `{"success":false,"errors":[]}`, "Retry-After", "30"),
			wantRequestError{status: 503, retryAfter: 30 * time.Second, transient: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStub(t, tt.handler)
			_, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).GetOAuthClient(t.Context(), "acc", "c1")
			checkRequestError(t, err, "/accounts/acc/oauth_clients/c1", tt.want)
		})
	}
}

func checkRequestError(t *testing.T, err error, path string, want wantRequestError) {
	t.Helper()
	var ae *cfapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want *cfapi.APIError", err, err)
	}
	if ae.StatusCode != want.status || ae.Method != http.MethodGet || ae.Path != path || ae.RayID != want.ray || ae.RetryAfter != want.retryAfter {
		t.Errorf("got status=%d method=%s path=%s ray=%q retryAfter=%v; want %d GET %s %q %v",
			ae.StatusCode, ae.Method, ae.Path, ae.RayID, ae.RetryAfter, want.status, path, want.ray, want.retryAfter)
	}
	if diff := cmp.Diff(want.errors, ae.Errors, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if want.wraps != nil && !errors.Is(err, want.wraps) {
		t.Errorf("err = %v, want it to wrap %v", err, want.wraps)
	}
	if got := cfapi.IsTransient(err); got != want.transient {
		t.Errorf("IsTransient = %v, want %v (%v)", got, want.transient, err)
	}
	if want.check != nil && !want.check(err) {
		t.Errorf("classification helper is false for %v", err)
	}
	if d, ok := cfapi.IsRateLimited(err); ok != (want.status == 429) || d != want.retryAfter && ok {
		t.Errorf("IsRateLimited = %v, %v", d, ok)
	}
}

func TestTransportErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c, _ := cfapi.New(cfapi.Credentials{APIToken: secretToken}, cfapi.WithBaseURL("http://"+addr+"/client/v4"))
		_, err = c.ListOAuthClients(t.Context(), "acc")
		checkRequestErrorStatus0(t, err)
		if strings.Contains(err.Error(), "http://") {
			t.Errorf("error %q repeats the URL; it should name only method and path", err)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		s := newStub(t, reply(200, okClient))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).GetOAuthClient(ctx, "acc", "c1")
		checkRequestErrorStatus0(t, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want it to wrap context.Canceled", err)
		}
	})
	t.Run("connection closed mid-body", func(t *testing.T) {
		s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "1000")
			_, _ = io.WriteString(w, `{"success":true`)
		})
		_, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).GetOAuthClient(t.Context(), "acc", "c1")
		var ae *cfapi.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 200 || !cfapi.IsTransient(err) {
			t.Errorf("err = %v, want a transient APIError with status 200", err)
		}
	})
}

func checkRequestErrorStatus0(t *testing.T, err error) {
	t.Helper()
	var ae *cfapi.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || ae.Err == nil || !cfapi.IsTransient(err) {
		t.Fatalf("err = %#v, want a transient APIError with status 0 and a cause", err)
	}
}

func TestInvalidCredentialsAreRejectedBeforeAnyRequest(t *testing.T) {
	tests := []struct {
		name  string
		creds cfapi.Credentials
	}{
		{"empty", cfapi.Credentials{}},
		{"token with newline", cfapi.Credentials{APIToken: secretToken + "\n"}},
		{"token with inner space", cfapi.Credentials{APIToken: "tok " + secretToken}},
		{"token with NUL", cfapi.Credentials{APIToken: secretToken + "\x00"}},
		{"token with DEL", cfapi.Credentials{APIToken: secretToken + "\x7f"}},
		{"token with non-ASCII", cfapi.Credentials{APIToken: secretToken + "é"}},
		{"token and key", cfapi.Credentials{APIToken: secretToken, Email: secretEmail, APIKey: secretKey}},
		{"e-mail without key", cfapi.Credentials{Email: secretEmail}},
		{"key without e-mail", cfapi.Credentials{APIKey: secretKey}},
		{"key with tab", cfapi.Credentials{Email: secretEmail, APIKey: "\t" + secretKey}},
		{"e-mail with CR", cfapi.Credentials{Email: secretEmail + "\r", APIKey: secretKey}},
	}
	s := newStub(t, reply(200, okClient))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			validateErr := tt.creds.Validate()
			c, err := cfapi.New(tt.creds, cfapi.WithBaseURL(s.srv.URL))
			if c != nil || err == nil || validateErr == nil || !errors.Is(err, cfapi.ErrInvalidCredentials) {
				t.Fatalf("New = %v, %v; Validate = %v; want both to fail with ErrInvalidCredentials", c, err, validateErr)
			}
			assertNoSecret(t, err)
		})
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
	for _, ok := range []cfapi.Credentials{{APIToken: secretToken}, {Email: secretEmail, APIKey: secretKey}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%v) = %v", ok, err)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	creds := cfapi.Credentials{APIToken: secretToken}
	for _, base := range []string{"", "api.cloudflare.com/client/v4", "ftp://x/", "https://u:p@x/", "https://x/?a=b", "https://x/#f", "http://%zz"} {
		if _, err := cfapi.New(creds, cfapi.WithBaseURL(base)); !errors.Is(err, cfapi.ErrInvalidArgument) {
			t.Errorf("WithBaseURL(%q): err = %v, want ErrInvalidArgument", base, err)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("error %q shows the URL password", err)
		}
	}
	if _, err := cfapi.New(creds, cfapi.WithUserAgent("a\nb")); !errors.Is(err, cfapi.ErrInvalidArgument) {
		t.Errorf("bad user agent: err = %v", err)
	}
	c, err := cfapi.New(creds, cfapi.WithHTTPClient(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", creds)} {
		if strings.Contains(s, secretToken) {
			t.Errorf("formatted value %q shows the token", s)
		}
	}
}

func TestEmptyIDsAreRejectedWithoutARequest(t *testing.T) {
	s := newStub(t, reply(200, okClient))
	c := s.client(t, cfapi.Credentials{APIToken: secretToken})
	ctx := t.Context()
	calls := map[string]error{}
	_, calls["list"] = c.ListOAuthClients(ctx, "")
	_, calls["get"] = c.GetOAuthClient(ctx, "acc", "")
	_, calls["create"] = c.CreateOAuthClient(ctx, "", cfapi.CreateOAuthClientParams{})
	_, calls["update"] = c.UpdateOAuthClient(ctx, "", "c1", cfapi.UpdateOAuthClientParams{})
	calls["delete"] = c.DeleteOAuthClient(ctx, "acc", "")
	_, calls["rotate"] = c.RotateOAuthClientSecret(ctx, "acc", "")
	calls["delete_rotated"] = c.DeleteRotatedOAuthClientSecret(ctx, "", "c1")
	for name, err := range calls {
		if !errors.Is(err, cfapi.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want ErrInvalidArgument", name, err)
		}
	}
	if n := s.requests.Load(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestAPIErrorStringWithoutDetails(t *testing.T) {
	tests := []struct {
		err  *cfapi.APIError
		want string
	}{
		{&cfapi.APIError{}, "cloudflare API  : request failed"},
		{&cfapi.APIError{StatusCode: 500, Method: "GET", Path: "/p"}, "cloudflare API GET /p: HTTP 500 Internal Server Error"},
		{&cfapi.APIError{StatusCode: 400, Method: "POST", Path: "/p", RayID: "r1", Errors: []cfapi.ErrorDetail{
			{Code: 1, Message: "a", Source: &cfapi.ErrorSource{Pointer: "/scopes/1"}}, {Code: 2, Message: "b"}}},
			"cloudflare API POST /p: HTTP 400 Bad Request: [1] a (at /scopes/1); [2] b (cf-ray r1)"},
		{&cfapi.APIError{StatusCode: 599, Err: io.ErrUnexpectedEOF}, "cloudflare API  : HTTP 599: unexpected EOF"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	plain := errors.New("plain")
	if cfapi.IsNotFound(plain) || cfapi.IsTransient(plain) || cfapi.IsValidation(plain) || cfapi.IsConflict(plain) {
		t.Error("a non-API error was classified")
	}
	if _, ok := cfapi.IsRateLimited(plain); ok {
		t.Error("a non-API error was rate limited")
	}
	wrapped := fmt.Errorf("reconcile: %w", &cfapi.APIError{StatusCode: 404})
	if !cfapi.IsNotFound(wrapped) {
		t.Error("IsNotFound does not see through wrapping")
	}
}

func TestRateLimitHeaders(t *testing.T) {
	tests := []struct {
		name    string
		headers []string
		want    *cfapi.RateLimit
	}{
		{"both", []string{"Ratelimit", `"default";r=50;t=30`, "Ratelimit-Policy", `"default";q=1200;w=300`},
			&cfapi.RateLimit{Remaining: 50, Reset: 30 * time.Second, Quota: 1200, Window: 300 * time.Second}},
		{"several items: first wins", []string{"Ratelimit", `"default";r=5;t=1, "burst";r=99;t=9`},
			&cfapi.RateLimit{Remaining: 5, Reset: time.Second}},
		{"policy only, spaces", []string{"Ratelimit-Policy", `"burst"; q=100; w=60`},
			&cfapi.RateLimit{Quota: 100, Window: time.Minute}},
		{"garbage ignored", []string{"Ratelimit", `"default";r=abc;t=-1;x`}, nil},
		{"absent", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen *cfapi.RateLimit
			s := newStub(t, reply(200, okClient, tt.headers...))
			c := s.client(t, cfapi.Credentials{APIToken: secretToken}, cfapi.WithObserver(func(ri cfapi.RequestInfo) { seen = ri.RateLimit }))
			if _, err := c.GetOAuthClient(t.Context(), "acc", "c1"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, seen); diff != "" {
				t.Errorf("RateLimit (-want +got):\n%s", diff)
			}
			last, ok := c.LastRateLimit()
			if ok != (tt.want != nil) || (ok && last != *tt.want) {
				t.Errorf("LastRateLimit = %+v, %v", last, ok)
			}
		})
	}
}

func TestListDecoding(t *testing.T) {
	tests := []struct {
		body string
		want []cfapi.OAuthClient
		ok   bool
	}{
		{`{"success":true,"errors":[],"result":null}`, []cfapi.OAuthClient{}, true},
		{`{"success":true,"errors":[],"result":[{"client_id":"a","visibility":"public","promoted_at":"2026-06-10T12:00:00Z","extra":1}],"result_info":{"count":1}}`,
			[]cfapi.OAuthClient{{ClientID: "a", Visibility: "public", PromotedAt: timePtr(epoch)}}, true},
		{`{"success":true,"errors":[],"result":[{"visibility":"public"}]}`, nil, false},
	}
	for _, tt := range tests {
		s := newStub(t, reply(200, tt.body))
		got, err := s.client(t, cfapi.Credentials{APIToken: secretToken}).ListOAuthClients(t.Context(), "acc")
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v", tt.body, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.body, diff)
		}
	}
}

// TestTokenNeverLeaks drives every error path with each credential mode and asserts
// that no error text, in any format, holds a secret, even when the server echoes the
// credentials back in its body.
func TestTokenNeverLeaks(t *testing.T) {
	echo := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, "<html>%s %s %s</html>", r.Header.Get("Authorization"), r.Header.Get("X-Auth-Email"), r.Header.Get("X-Auth-Key"))
		}
	}
	handlers := map[string]http.HandlerFunc{
		"echo 200": echo(200), "echo 401": echo(401), "echo 429": echo(429), "echo 502": echo(502),
		"truncated": reply(200, `{"success":true,"result":{"client_id":"`),
		"failure":   reply(400, `{"success":false,"errors":[{"code":1,"message":"bad"}]}`),
		"hang": func(_ http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		},
		"reset": func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) },
	}
	for _, creds := range []cfapi.Credentials{{APIToken: secretToken}, {Email: secretEmail, APIKey: secretKey}} {
		for name, h := range handlers {
			s := newStub(t, h)
			c := s.client(t, creds, cfapi.WithHTTPClient(&http.Client{Timeout: 200 * time.Millisecond}))
			ctx := t.Context()
			calls := []func() error{
				func() error { _, err := c.ListOAuthClients(ctx, "acc"); return err },
				func() error { _, err := c.GetOAuthClient(ctx, "acc", "id"); return err },
				func() error { _, err := c.CreateOAuthClient(ctx, "acc", cfapi.CreateOAuthClientParams{}); return err },
				func() error {
					_, err := c.UpdateOAuthClient(ctx, "acc", "id", cfapi.UpdateOAuthClientParams{})
					return err
				},
				func() error { return c.DeleteOAuthClient(ctx, "acc", "id") },
				func() error { _, err := c.RotateOAuthClientSecret(ctx, "acc", "id"); return err },
				func() error { return c.DeleteRotatedOAuthClientSecret(ctx, "acc", "id") },
				func() error { _, err := c.ListOAuthScopes(ctx); return err },
			}
			if name == "hang" {
				calls = calls[:1] // one client timeout per mode is enough
			}
			for _, call := range calls {
				err := call()
				if err == nil {
					t.Errorf("%s: a call succeeded", name)
					continue
				}
				assertNoSecret(t, err)
			}
		}
	}
	// The transport error path with an unreachable server.
	c, _ := cfapi.New(cfapi.Credentials{APIToken: secretToken}, cfapi.WithBaseURL("http://127.0.0.1:1/client/v4"))
	_, err := c.ListOAuthClients(t.Context(), "acc")
	assertNoSecret(t, err)
}

func assertNoSecret(t *testing.T, err error) {
	t.Helper()
	for _, s := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), fmt.Sprintf("%q", err)} {
		for _, secret := range []string{secretToken, secretEmail, secretKey, "LEAKCHECK"} {
			if strings.Contains(s, secret) {
				t.Errorf("error text contains a secret: %s", s)
			}
		}
	}
	var ae *cfapi.APIError
	if errors.As(err, &ae) && ae.Err != nil {
		assertNoSecretIn(t, fmt.Sprintf("%#v", ae.Err))
	}
}

func assertNoSecretIn(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "LEAKCHECK") || strings.Contains(s, secretEmail) {
		t.Errorf("wrapped error contains a secret: %s", s)
	}
}
