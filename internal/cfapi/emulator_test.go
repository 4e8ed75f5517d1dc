package cfapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	testAccount  = "023e105f4ecef8ad9ca31a8372d0c353"
	otherAccount = "99999999999999999999999999999999"
	testToken    = "tok-Zq8XbV3nR1"
)

var epoch = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)

// emuEnv is a client wired to an in-process emulator running on a fake clock.
type emuEnv struct {
	client *cfapi.Client
	emu    *cfemu.Server
	clock  *cfemu.FakeClock
	url    string
}

func newEmuEnv(t *testing.T, mutate ...func(*cfemu.Options)) *emuEnv {
	t.Helper()
	clock := cfemu.NewFakeClock(epoch)
	opts := cfemu.Options{Tokens: map[string][]string{testToken: nil}, Now: clock.Now}
	for _, m := range mutate {
		m(&opts)
	}
	emu := cfemu.New(opts)
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	c, err := cfapi.New(cfapi.Credentials{APIToken: testToken}, cfapi.WithBaseURL(srv.URL+cfemu.BasePath), cfapi.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return &emuEnv{client: c, emu: emu, clock: clock, url: srv.URL}
}

// create makes a client from validParams changed by mutate, failing the test on error.
func (e *emuEnv) create(t *testing.T, mutate ...func(*cfapi.CreateOAuthClientParams)) *cfapi.CreatedOAuthClient {
	t.Helper()
	p := validParams()
	for _, m := range mutate {
		m(&p)
	}
	got, err := e.client.CreateOAuthClient(t.Context(), testAccount, p)
	if err != nil {
		t.Fatalf("CreateOAuthClient: %v", err)
	}
	return got
}

func validParams() cfapi.CreateOAuthClientParams {
	return cfapi.CreateOAuthClientParams{
		ClientName:              "Example App",
		RedirectURIs:            []string{"https://app.example.org/cb"},
		GrantTypes:              []string{cfapi.GrantAuthorizationCode},
		ResponseTypes:           []string{cfapi.ResponseTypeCode},
		Scopes:                  []string{"account.read"},
		TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	}
}

func strPtr(s string) *string                   { return &s }
func listPtr(s ...string) *[]string             { return &s }
func nilList() *[]string                        { var s []string; return &s }
func timePtr(t time.Time) *time.Time            { return &t }
func lastBody(e *emuEnv) string                 { r := e.emu.Requests(); return string(r[len(r)-1].Body) }
func lastRoute(e *emuEnv) cfemu.RecordedRequest { r := e.emu.Requests(); return r[len(r)-1] }

func TestCreateOAuthClientRequestBody(t *testing.T) {
	required := `"client_name":"Example App","redirect_uris":["https://app.example.org/cb"],"grant_types":["authorization_code"],"response_types":["code"],"scopes":["account.read"],"token_endpoint_auth_method":"client_secret_basic"`
	tests := []struct {
		name   string
		mutate func(*cfapi.CreateOAuthClientParams)
		want   string
	}{
		{"required only", func(*cfapi.CreateOAuthClientParams) {}, `{` + required + `}`},
		{"nil optional lists are not sent, empty ones are",
			func(p *cfapi.CreateOAuthClientParams) {
				p.PostLogoutRedirectURIs = nilList()
				p.AllowedCORSOrigins = listPtr()
			},
			`{` + required + `,"post_logout_redirect_uris":[],"allowed_cors_origins":[]}`},
		{"every optional field",
			func(p *cfapi.CreateOAuthClientParams) {
				p.ClientURI = strPtr("https://app.example.org")
				p.LogoURI = strPtr("https://app.example.org/logo.png")
				p.PolicyURI = strPtr("https://app.example.org/privacy")
				p.TosURI = strPtr("https://app.example.org/tos")
				p.PostLogoutRedirectURIs = listPtr("https://app.example.org/bye")
				p.AllowedCORSOrigins = listPtr("https://app.example.org")
				p.OptionalScopes = listPtr("account.read")
			},
			`{` + required + `,"client_uri":"https://app.example.org","logo_uri":"https://app.example.org/logo.png","policy_uri":"https://app.example.org/privacy","tos_uri":"https://app.example.org/tos","post_logout_redirect_uris":["https://app.example.org/bye"],"allowed_cors_origins":["https://app.example.org"],"optional_scopes":["account.read"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			e.create(t, tt.mutate)
			req := lastRoute(e)
			if req.Route != cfemu.RouteCreateClient || req.Path != "/accounts/"+testAccount+"/oauth_clients" {
				t.Errorf("request = %s %s, want %s", req.Route, req.Path, cfemu.RouteCreateClient)
			}
			if diff := cmp.Diff(tt.want, string(req.Body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCreateOAuthClientNilRequiredListsAreSentEmpty(t *testing.T) {
	e := newEmuEnv(t)
	_, err := e.client.CreateOAuthClient(t.Context(), testAccount, cfapi.CreateOAuthClientParams{})
	if !cfapi.IsValidation(err) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	want := `{"client_name":"","redirect_uris":[],"grant_types":[],"response_types":[],"scopes":[],"token_endpoint_auth_method":""}`
	if diff := cmp.Diff(want, lastBody(e)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestCreateOAuthClientResult(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*cfapi.CreateOAuthClientParams)
		wantScopes []string
		wantSecret bool
		wantVerify bool
	}{
		{"confidential client", func(*cfapi.CreateOAuthClientParams) {}, []string{"account.read"}, true, false},
		{"PKCE client has no secret", func(p *cfapi.CreateOAuthClientParams) { p.TokenEndpointAuthMethod = cfapi.AuthMethodNone },
			[]string{"account.read"}, false, false},
		{"refresh_token adds offline_access", func(p *cfapi.CreateOAuthClientParams) {
			p.GrantTypes = append(p.GrantTypes, cfapi.GrantRefreshToken)
		}, []string{"account.read", "offline_access"}, true, false},
		{"id_token adds openid, protocol scopes without their trigger are removed", func(p *cfapi.CreateOAuthClientParams) {
			p.ResponseTypes = []string{"code", "id_token"}
			p.Scopes = []string{"offline_access", "profile", "account.read", "profile"}
		}, []string{"profile", "account.read", "openid"}, true, false},
		{"client_uri starts verification", func(p *cfapi.CreateOAuthClientParams) { p.ClientURI = strPtr("https://app.example.org") },
			[]string{"account.read"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			got := e.create(t, tt.mutate)
			if len(got.ClientID) != 32 || strings.Trim(got.ClientID, "0123456789abcdef") != "" {
				t.Errorf("client_id %q is not 32 lowercase hex", got.ClientID)
			}
			if (got.ClientSecret != "") != tt.wantSecret {
				t.Errorf("client_secret present = %v, want %v", got.ClientSecret != "", tt.wantSecret)
			}
			if diff := cmp.Diff(tt.wantScopes, got.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			if got.Visibility != cfapi.VisibilityPrivate || got.HasRotatedSecret || got.PromotedAt != nil {
				t.Errorf("visibility=%q has_rotated=%v promoted_at=%v, want private, false, nil", got.Visibility, got.HasRotatedSecret, got.PromotedAt)
			}
			if diff := cmp.Diff(timePtr(epoch), got.CreatedAt); diff != "" || !got.CreatedAt.Equal(*got.UpdatedAt) {
				t.Errorf("created_at %v updated_at %v, want both %v", got.CreatedAt, got.UpdatedAt, epoch)
			}
			v := got.ClientURIVerification
			if tt.wantVerify != (v != nil) {
				t.Fatalf("client_uri_verification = %+v, want present=%v", v, tt.wantVerify)
			}
			if v != nil && (v.Status != cfapi.VerificationInProgress || !strings.HasPrefix(v.Text, "cloudflare_oauth_client_publisher=") ||
				len(v.Text) != len("cloudflare_oauth_client_publisher=")+32) {
				t.Errorf("verification = %+v, want in_progress with a 32-hex publisher token", v)
			}
			if got.ClientSecret != "" && !e.emu.CheckSecret(testAccount, got.ClientID, got.ClientSecret).Current {
				t.Error("the returned secret is not the client's current secret")
			}
			// Get never returns the secret but otherwise agrees with Create.
			fetched, err := e.client.GetOAuthClient(t.Context(), testAccount, got.ClientID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got.OAuthClient, *fetched); diff != "" {
				t.Errorf("Get differs from Create (-create +get):\n%s", diff)
			}
		})
	}
}

// wantAPIError checks the status and the (code, pointer) pairs of a Cloudflare error.
func wantAPIError(t *testing.T, err error, status int, want ...cfapi.ErrorDetail) {
	t.Helper()
	var ae *cfapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *cfapi.APIError", err)
	}
	if ae.StatusCode != status {
		t.Errorf("status = %d, want %d (%v)", ae.StatusCode, status, err)
	}
	if ae.RayID == "" || ae.Method == "" || ae.Path == "" {
		t.Errorf("error lacks ray/method/path: %+v", ae)
	}
	if len(want) == 0 {
		return
	}
	ignoreMessage := cmpopts.IgnoreFields(cfapi.ErrorDetail{}, "Message")
	if diff := cmp.Diff(want, ae.Errors, ignoreMessage); diff != "" {
		t.Errorf("errors (-want +got):\n%s\n%v", diff, err)
	}
}

func detail(code int, pointer string) cfapi.ErrorDetail {
	d := cfapi.ErrorDetail{Code: code}
	if pointer != "" {
		d.Source = &cfapi.ErrorSource{Pointer: pointer}
	}
	return d
}

func TestCreateOAuthClientValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*cfapi.CreateOAuthClientParams)
		want   []cfapi.ErrorDetail
	}{
		{"colon scope", func(p *cfapi.CreateOAuthClientParams) { p.Scopes = []string{"account.read", "account:read"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeColonScope, "/scopes/1")}},
		{"unknown dot scope", func(p *cfapi.CreateOAuthClientParams) { p.Scopes = []string{"nope.read"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeUnknownScope, "/scopes/0")}},
		{"scope that is neither", func(p *cfapi.CreateOAuthClientParams) { p.Scopes = []string{"Profile"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidScope, "/scopes/0")}},
		{"no scopes", func(p *cfapi.CreateOAuthClientParams) { p.Scopes = nil },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidValue, "/scopes")}},
		{"authorization_code missing", func(p *cfapi.CreateOAuthClientParams) { p.GrantTypes = []string{cfapi.GrantRefreshToken} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeAuthCodeRequired, "/grant_types")}},
		{"unsupported grant", func(p *cfapi.CreateOAuthClientParams) {
			p.GrantTypes = []string{"authorization_code", "client_credentials"}
		},
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidValue, "/grant_types/1")}},
		{"unknown response type", func(p *cfapi.CreateOAuthClientParams) { p.ResponseTypes = []string{"code", "device"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidValue, "/response_types/1")}},
		{"unknown auth method", func(p *cfapi.CreateOAuthClientParams) { p.TokenEndpointAuthMethod = "private_key_jwt" },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidValue, "/token_endpoint_auth_method")}},
		{"optional scope not in scopes", func(p *cfapi.CreateOAuthClientParams) { p.OptionalScopes = listPtr("zone.read") },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidOptional, "/optional_scopes/0")}},
		{"protocol scope can't be optional", func(p *cfapi.CreateOAuthClientParams) {
			p.GrantTypes = []string{"authorization_code", "refresh_token"}
			p.OptionalScopes = listPtr("account.read", "offline_access")
		}, []cfapi.ErrorDetail{detail(cfemu.CodeInvalidOptional, "/optional_scopes/1")}},
		{"plain http redirect", func(p *cfapi.CreateOAuthClientParams) { p.RedirectURIs = []string{"http://app.example.org/cb"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidURI, "/redirect_uris/0")}},
		{"relative redirect", func(p *cfapi.CreateOAuthClientParams) { p.RedirectURIs = []string{"https://ok.example/cb", "/cb"} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidURI, "/redirect_uris/1")}},
		{"no redirect", func(p *cfapi.CreateOAuthClientParams) { p.RedirectURIs = []string{} },
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidValue, "/redirect_uris")}},
		{"bad logo and CORS origin with a path", func(p *cfapi.CreateOAuthClientParams) {
			p.LogoURI = strPtr("logo.png")
			p.AllowedCORSOrigins = listPtr("https://app.example.org/path")
		}, []cfapi.ErrorDetail{detail(cfemu.CodeInvalidURI, "/logo_uri"), detail(cfemu.CodeInvalidURI, "/allowed_cors_origins/0")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			p := validParams()
			tt.mutate(&p)
			_, err := e.client.CreateOAuthClient(t.Context(), testAccount, p)
			wantAPIError(t, err, http.StatusBadRequest, tt.want...)
			if !cfapi.IsValidation(err) || cfapi.IsTransient(err) {
				t.Errorf("IsValidation=%v IsTransient=%v, want true, false", cfapi.IsValidation(err), cfapi.IsTransient(err))
			}
			if n := len(e.emu.Clients(testAccount)); n != 0 {
				t.Errorf("%d clients stored after a refused create", n)
			}
		})
	}
}

func TestCreateOAuthClientAcceptsLoopbackRedirects(t *testing.T) {
	e := newEmuEnv(t)
	got := e.create(t, func(p *cfapi.CreateOAuthClientParams) {
		p.RedirectURIs = []string{"http://localhost:8976/cb", "http://127.0.0.1/cb", "http://[::1]:9/cb"}
		p.Scopes = []string{"openid", "profile", "email"}
	})
	if diff := cmp.Diff([]string{"profile", "email"}, got.Scopes); diff != "" {
		t.Errorf("scopes (-want +got):\n%s", diff)
	}
}

func TestUpdateOAuthClientRequestBody(t *testing.T) {
	tests := []struct {
		name string
		p    cfapi.UpdateOAuthClientParams
		want string
	}{
		{"empty", cfapi.UpdateOAuthClientParams{}, `{}`},
		{"one string", cfapi.UpdateOAuthClientParams{ClientName: strPtr("Renamed")}, `{"client_name":"Renamed"}`},
		{"empty string and nil list are sent", cfapi.UpdateOAuthClientParams{PolicyURI: strPtr(""), OptionalScopes: nilList()},
			`{"policy_uri":"","optional_scopes":[]}`},
		{"lists", cfapi.UpdateOAuthClientParams{
			RedirectURIs: listPtr("https://app.example.org/new"), GrantTypes: listPtr("authorization_code", "refresh_token"),
			ResponseTypes: listPtr("code"), Scopes: listPtr("account.read", "zone.read"), AllowedCORSOrigins: listPtr(),
			PostLogoutRedirectURIs: listPtr("https://app.example.org/bye"), TokenEndpointAuthMethod: strPtr("client_secret_post"),
		}, `{"token_endpoint_auth_method":"client_secret_post","redirect_uris":["https://app.example.org/new"],"post_logout_redirect_uris":["https://app.example.org/bye"],"allowed_cors_origins":[],"grant_types":["authorization_code","refresh_token"],"response_types":["code"],"scopes":["account.read","zone.read"]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			c := e.create(t)
			if tt.p.IsEmpty() != (tt.want == `{}`) {
				t.Errorf("IsEmpty() = %v", tt.p.IsEmpty())
			}
			if _, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, tt.p); err != nil {
				t.Fatal(err)
			}
			req := lastRoute(e)
			if req.Route != cfemu.RouteUpdateClient || req.Path != "/accounts/"+testAccount+"/oauth_clients/"+c.ClientID {
				t.Errorf("request = %s %s", req.Route, req.Path)
			}
			if diff := cmp.Diff(tt.want, string(req.Body)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUpdateOAuthClientMergesAndBumpsUpdatedAt(t *testing.T) {
	e := newEmuEnv(t)
	c := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.PolicyURI = strPtr("https://app.example.org/privacy") })

	e.clock.Advance(time.Minute)
	got, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, cfapi.UpdateOAuthClientParams{
		ClientName: strPtr("Renamed"), GrantTypes: listPtr("authorization_code", "refresh_token"), PolicyURI: strPtr(""),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := c.OAuthClient
	want.ClientName = "Renamed"
	want.GrantTypes = []string{"authorization_code", "refresh_token"}
	want.Scopes = []string{"account.read", "offline_access"}
	want.PolicyURI = ""
	want.UpdatedAt = timePtr(epoch.Add(time.Minute))
	if diff := cmp.Diff(want, *got); diff != "" {
		t.Errorf("updated client (-want +got):\n%s", diff)
	}

	// A PATCH that changes nothing leaves updated_at alone.
	e.clock.Advance(time.Minute)
	again, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, cfapi.UpdateOAuthClientParams{ClientName: strPtr("Renamed")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("no-op PATCH changed the client (-before +after):\n%s", diff)
	}
}

func TestUpdateOAuthClientRefusals(t *testing.T) {
	tests := []struct {
		name   string
		create func(*cfapi.CreateOAuthClientParams)
		p      cfapi.UpdateOAuthClientParams
		want   []cfapi.ErrorDetail
	}{
		{"demotion", nil, cfapi.UpdateOAuthClientParams{Visibility: strPtr(cfapi.VisibilityPrivate)},
			[]cfapi.ErrorDetail{detail(cfemu.CodeVisibilityValue, "/visibility")}},
		{"unknown visibility", nil, cfapi.UpdateOAuthClientParams{Visibility: strPtr("internal")},
			[]cfapi.ErrorDetail{detail(cfemu.CodeVisibilityValue, "/visibility")}},
		{"promotion with every precondition missing", func(p *cfapi.CreateOAuthClientParams) { p.Scopes = []string{"profile"} },
			cfapi.UpdateOAuthClientParams{Visibility: strPtr(cfapi.VisibilityPublic), ClientName: strPtr(" ")},
			[]cfapi.ErrorDetail{
				detail(cfemu.CodePromotionRefused, "/client_name"), detail(cfemu.CodePromotionRefused, "/logo_uri"),
				detail(cfemu.CodePromotionRefused, "/client_uri"), detail(cfemu.CodePromotionRefused, "/scopes"),
			}},
		{"promotion while verification is in progress", func(p *cfapi.CreateOAuthClientParams) {
			p.ClientURI = strPtr("https://app.example.org")
			p.LogoURI = strPtr("https://app.example.org/logo.png")
		}, cfapi.UpdateOAuthClientParams{Visibility: strPtr(cfapi.VisibilityPublic)},
			[]cfapi.ErrorDetail{detail(cfemu.CodePromotionRefused, "/client_uri")}},
		{"merged result is validated", nil, cfapi.UpdateOAuthClientParams{GrantTypes: listPtr("refresh_token"), Scopes: listPtr("a:b")},
			[]cfapi.ErrorDetail{detail(cfemu.CodeAuthCodeRequired, "/grant_types"), detail(cfemu.CodeColonScope, "/scopes/0")}},
		{"optional scope dropped from scopes", func(p *cfapi.CreateOAuthClientParams) {
			p.Scopes = []string{"account.read", "zone.read"}
			p.OptionalScopes = listPtr("zone.read")
		}, cfapi.UpdateOAuthClientParams{Scopes: listPtr("account.read")},
			[]cfapi.ErrorDetail{detail(cfemu.CodeInvalidOptional, "/optional_scopes/0")}},
		{"switch to PKCE", nil, cfapi.UpdateOAuthClientParams{TokenEndpointAuthMethod: strPtr(cfapi.AuthMethodNone)},
			[]cfapi.ErrorDetail{detail(cfemu.CodeAuthMethodChange, "/token_endpoint_auth_method")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			var mutate []func(*cfapi.CreateOAuthClientParams)
			if tt.create != nil {
				mutate = append(mutate, tt.create)
			}
			c := e.create(t, mutate...)
			e.clock.Advance(time.Minute)
			_, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, tt.p)
			wantAPIError(t, err, http.StatusBadRequest, tt.want...)
			stored, _ := e.emu.GetClient(testAccount, c.ClientID)
			if diff := cmp.Diff(c.OAuthClient, stored); diff != "" {
				t.Errorf("a refused PATCH changed the client (-before +after):\n%s", diff)
			}
		})
	}
}

func TestPromotion(t *testing.T) {
	e := newEmuEnv(t)
	c := e.create(t, func(p *cfapi.CreateOAuthClientParams) {
		p.ClientURI = strPtr("https://app.example.org")
		p.LogoURI = strPtr("https://app.example.org/logo.png")
	})
	public := cfapi.UpdateOAuthClientParams{Visibility: strPtr(cfapi.VisibilityPublic)}
	if _, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, public); !cfapi.IsValidation(err) {
		t.Fatalf("promotion before verification: err = %v, want a validation error", err)
	}
	if err := e.emu.SetVerification(testAccount, c.ClientID, cfapi.VerificationVerified); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	got, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, public)
	if err != nil {
		t.Fatal(err)
	}
	if got.Visibility != cfapi.VisibilityPublic || got.PromotedAt == nil || !got.PromotedAt.Equal(epoch.Add(time.Hour)) {
		t.Errorf("visibility=%q promoted_at=%v, want public at %v", got.Visibility, got.PromotedAt, epoch.Add(time.Hour))
	}
	// Promotion is permanent and repeating it is harmless.
	_, err = e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, cfapi.UpdateOAuthClientParams{Visibility: strPtr(cfapi.VisibilityPrivate)})
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeVisibilityValue, "/visibility"))
	e.clock.Advance(time.Hour)
	again, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, public)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, again); diff != "" {
		t.Errorf("repeated promotion changed the client (-before +after):\n%s", diff)
	}
}

func TestClientURIVerificationRules(t *testing.T) {
	const uri = "https://app.example.org/home"
	tests := []struct {
		name       string
		status     string // forced before the PATCH
		patchURI   string
		wantErr    bool
		wantStatus string
		newToken   bool
	}{
		{"unchanged URI restarts a failed verification", cfapi.VerificationFailed, uri, false, cfapi.VerificationInProgress, true},
		{"unchanged URI restarts a pending verification", cfapi.VerificationPending, uri, false, cfapi.VerificationInProgress, true},
		{"unchanged URI leaves an in-progress one alone", cfapi.VerificationInProgress, uri, false, cfapi.VerificationInProgress, false},
		{"verified: path may change", cfapi.VerificationVerified, "https://APP.example.org/other", false, cfapi.VerificationVerified, false},
		{"verified: host is locked", cfapi.VerificationVerified, "https://other.example.org", true, cfapi.VerificationVerified, false},
		{"verified: cannot be cleared", cfapi.VerificationVerified, "", true, cfapi.VerificationVerified, false},
		{"unverified: host change gets a new token", cfapi.VerificationFailed, "https://other.example.org", false, cfapi.VerificationInProgress, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEmuEnv(t)
			c := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.ClientURI = strPtr(uri) })
			if err := e.emu.SetVerification(testAccount, c.ClientID, tt.status); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(time.Minute)
			got, err := e.client.UpdateOAuthClient(t.Context(), testAccount, c.ClientID, cfapi.UpdateOAuthClientParams{ClientURI: strPtr(tt.patchURI)})
			if tt.wantErr {
				wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeClientURILocked, "/client_uri"))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ClientURIVerification.Status != tt.wantStatus {
				t.Errorf("status = %q, want %q", got.ClientURIVerification.Status, tt.wantStatus)
			}
			if changed := got.ClientURIVerification.Text != c.ClientURIVerification.Text; changed != tt.newToken {
				t.Errorf("token changed = %v, want %v", changed, tt.newToken)
			}
		})
	}
}

func TestVerificationCompletesAfterVerifyAfter(t *testing.T) {
	e := newEmuEnv(t, func(o *cfemu.Options) { o.VerifyAfter = 10 * time.Second })
	c := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.ClientURI = strPtr("https://app.example.org") })
	e.clock.Advance(9 * time.Second)
	got, err := e.client.GetOAuthClient(t.Context(), testAccount, c.ClientID)
	if err != nil || got.ClientURIVerification.Status != cfapi.VerificationInProgress {
		t.Fatalf("after 9s: %+v, %v; want in_progress", got.ClientURIVerification, err)
	}
	e.clock.Advance(time.Second)
	list, err := e.client.ListOAuthClients(t.Context(), testAccount)
	if err != nil || len(list) != 1 || list[0].ClientURIVerification.Status != cfapi.VerificationVerified {
		t.Fatalf("after 10s: %+v, %v; want one verified client", list, err)
	}
	if !list[0].UpdatedAt.Equal(epoch) {
		t.Errorf("verification bumped updated_at to %v", list[0].UpdatedAt)
	}
}

func TestListGetDelete(t *testing.T) {
	e := newEmuEnv(t)
	empty, err := e.client.ListOAuthClients(t.Context(), testAccount)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Fatalf("empty list = %#v, %v; want a non-nil empty slice", empty, err)
	}
	a := e.create(t)
	b := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.ClientName = "Second" })
	if _, err := e.emu.SeedClient(otherAccount, cfapi.OAuthClient{ClientName: "elsewhere"}, ""); err != nil {
		t.Fatal(err)
	}
	list, err := e.client.ListOAuthClients(t.Context(), testAccount)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]cfapi.OAuthClient{a.OAuthClient, b.OAuthClient}, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}

	if err := e.client.DeleteOAuthClient(t.Context(), testAccount, a.ClientID); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.GetOAuthClient(t.Context(), testAccount, a.ClientID)
	if !cfapi.IsNotFound(err) {
		t.Errorf("Get after delete: %v, want not found", err)
	}
	wantAPIError(t, err, http.StatusNotFound, detail(cfemu.CodeClientNotFound, ""))
	if err := e.client.DeleteOAuthClient(t.Context(), testAccount, a.ClientID); !cfapi.IsNotFound(err) {
		t.Errorf("second delete: %v, want not found", err)
	}
	// Clients are isolated per account.
	if _, err := e.client.GetOAuthClient(t.Context(), otherAccount, b.ClientID); !cfapi.IsNotFound(err) {
		t.Errorf("Get in another account: %v, want not found", err)
	}
	if diff := cmp.Diff(map[string]int{testAccount: 1, otherAccount: 1}, e.emu.Stats().Clients); diff != "" {
		t.Errorf("clients per account (-want +got):\n%s", diff)
	}
}

func TestSecretRotation(t *testing.T) {
	e := newEmuEnv(t)
	c := e.create(t)
	first := c.ClientSecret

	second, err := e.client.RotateOAuthClientSecret(t.Context(), testAccount, c.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if second == "" || second == first {
		t.Fatalf("rotated secret %q, want a new non-empty one", second)
	}
	if got := lastRoute(e); got.Route != cfemu.RouteRotateSecret || got.Body != nil {
		t.Errorf("rotate request = %+v, want %s without a body", got, cfemu.RouteRotateSecret)
	}
	check := func(secret string, want cfemu.SecretState) {
		t.Helper()
		if diff := cmp.Diff(want, e.emu.CheckSecret(testAccount, c.ClientID, secret)); diff != "" {
			t.Errorf("CheckSecret (-want +got):\n%s", diff)
		}
	}
	check(first, cfemu.SecretState{Previous: true})
	check(second, cfemu.SecretState{Current: true})
	got, _ := e.client.GetOAuthClient(t.Context(), testAccount, c.ClientID)
	if !got.HasRotatedSecret {
		t.Error("has_rotated_secret is false after a rotation")
	}

	_, err = e.client.RotateOAuthClientSecret(t.Context(), testAccount, c.ClientID)
	wantAPIError(t, err, http.StatusConflict, detail(cfemu.CodeSecretAlreadyRotated, ""))
	if !cfapi.IsConflict(err) {
		t.Errorf("IsConflict(%v) = false", err)
	}

	if err := e.client.DeleteRotatedOAuthClientSecret(t.Context(), testAccount, c.ClientID); err != nil {
		t.Fatal(err)
	}
	check(first, cfemu.SecretState{})
	check(second, cfemu.SecretState{Current: true})
	err = e.client.DeleteRotatedOAuthClientSecret(t.Context(), testAccount, c.ClientID)
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeNoRotatedSecret, ""))

	pkce := e.create(t, func(p *cfapi.CreateOAuthClientParams) { p.TokenEndpointAuthMethod = cfapi.AuthMethodNone })
	_, err = e.client.RotateOAuthClientSecret(t.Context(), testAccount, pkce.ClientID)
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeNoSecret, ""))
	err = e.client.DeleteRotatedOAuthClientSecret(t.Context(), testAccount, pkce.ClientID)
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeNoSecret, ""))
}

func TestListOAuthScopes(t *testing.T) {
	e := newEmuEnv(t)
	scopes, err := e.client.ListOAuthScopes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, s := range scopes {
		ids[s.ID] = true
	}
	for _, want := range []string{"account.read", "user-details.read", "workers-scripts.write", "zone.read", "dns-records.edit", "teams.read", "workers-platform.read"} {
		if !ids[want] {
			t.Errorf("catalogue lacks %s", want)
		}
	}
	if len(scopes) < 30 {
		t.Errorf("catalogue has %d scopes, want at least 30", len(scopes))
	}

	custom := []cfapi.OAuthScope{{ID: "only.read", Name: "Only"}}
	e = newEmuEnv(t, func(o *cfemu.Options) { o.Scopes = custom })
	scopes, err = e.client.ListOAuthScopes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(custom, scopes); diff != "" {
		t.Errorf("custom catalogue (-want +got):\n%s", diff)
	}
	_, err = e.client.CreateOAuthClient(t.Context(), testAccount, validParams())
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeUnknownScope, "/scopes/0"))
}

func TestAuthentication(t *testing.T) {
	e := newEmuEnv(t, func(o *cfemu.Options) {
		o.Tokens["narrow"] = []string{otherAccount}
		o.Email, o.APIKey = "ops@example.org", "0123456789abcdef0123456789abcdef01234"
	})
	newClient := func(creds cfapi.Credentials) *cfapi.Client {
		c, err := cfapi.New(creds, cfapi.WithBaseURL(e.url+cfemu.BasePath))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		creds cfapi.Credentials
		check func(error) bool
	}{
		{"unknown token", cfapi.Credentials{APIToken: "wrong"}, cfapi.IsUnauthorized},
		{"token without this account", cfapi.Credentials{APIToken: "narrow"}, cfapi.IsForbidden},
		{"legacy key", cfapi.Credentials{Email: "ops@example.org", APIKey: "0123456789abcdef0123456789abcdef01234"}, func(err error) bool { return err == nil }},
		{"legacy key, wrong e-mail", cfapi.Credentials{Email: "x@example.org", APIKey: "0123456789abcdef0123456789abcdef01234"}, cfapi.IsUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newClient(tt.creds).ListOAuthClients(t.Context(), testAccount)
			if !tt.check(err) {
				t.Errorf("unexpected result: %v", err)
			}
		})
	}
	if _, err := newClient(cfapi.Credentials{APIToken: "narrow"}).ListOAuthClients(t.Context(), otherAccount); err != nil {
		t.Errorf("narrow token on its own account: %v", err)
	}
}

func TestFaultsSurfaceAsTypedErrors(t *testing.T) {
	tests := []struct {
		kind      string
		status    int
		wantErr   error
		transient bool
	}{
		{cfemu.FaultInternalError, 500, nil, true},
		{cfemu.FaultBadGateway, 502, cfapi.ErrMalformedResponse, true},
		{cfemu.FaultUnavailable, 503, nil, true},
		{cfemu.FaultUnauthorized, 401, nil, false},
		{cfemu.FaultReset, 0, nil, true},
		{cfemu.FaultMalformed, 200, cfapi.ErrMalformedResponse, true},
		{cfemu.FaultSuccessFalse, 200, cfapi.ErrUnsuccessful, true},
		{cfemu.FaultRateLimited, 429, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			e := newEmuEnv(t)
			e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: cfemu.RouteListClients, Kind: tt.kind, Count: 1, RetryAfter: 3}}})
			_, err := e.client.ListOAuthClients(t.Context(), testAccount)
			var ae *cfapi.APIError
			if !errors.As(err, &ae) || ae.StatusCode != tt.status {
				t.Fatalf("err = %v, want an APIError with status %d", err, tt.status)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want it to wrap %v", err, tt.wantErr)
			}
			if cfapi.IsTransient(err) != tt.transient {
				t.Errorf("IsTransient = %v, want %v", !tt.transient, tt.transient)
			}
			if tt.kind == cfemu.FaultRateLimited {
				if d, ok := cfapi.IsRateLimited(err); !ok || d != 3*time.Second {
					t.Errorf("IsRateLimited = %v, %v; want 3s, true", d, ok)
				}
			}
			// Count: 1 means the next call works.
			if _, err := e.client.ListOAuthClients(t.Context(), testAccount); err != nil {
				t.Errorf("call after the fault: %v", err)
			}
		})
	}
}

func TestFaultTimeoutHonoursClientDeadline(t *testing.T) {
	e := newEmuEnv(t)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: cfemu.FaultTimeout}}})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := e.client.GetOAuthClient(ctx, testAccount, "abc")
	var ae *cfapi.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 0 || !errors.Is(err, context.DeadlineExceeded) || !cfapi.IsTransient(err) {
		t.Fatalf("err = %v, want a transient transport APIError wrapping context.DeadlineExceeded", err)
	}
}

func TestFaultAfterApplyLosesTheResponseNotTheMutation(t *testing.T) {
	e := newEmuEnv(t)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: cfemu.RouteCreateClient, Kind: cfemu.FaultReset, Count: 1, AfterApply: true}}})
	_, err := e.client.CreateOAuthClient(t.Context(), testAccount, validParams())
	if !cfapi.IsTransient(err) {
		t.Fatalf("err = %v, want a transient error", err)
	}
	clients, err := e.client.ListOAuthClients(t.Context(), testAccount)
	if err != nil || len(clients) != 1 || clients[0].ClientName != "Example App" {
		t.Fatalf("list = %+v, %v; want the client created despite the lost response", clients, err)
	}
}

func TestObserverAndLastRateLimit(t *testing.T) {
	var seen []cfapi.RequestInfo
	clock := cfemu.NewFakeClock(epoch)
	emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{testToken: nil}, Now: clock.Now, RateLimit: 100, RateWindow: time.Minute})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	c, err := cfapi.New(cfapi.Credentials{APIToken: testToken}, cfapi.WithBaseURL(srv.URL+cfemu.BasePath),
		cfapi.WithObserver(func(ri cfapi.RequestInfo) { seen = append(seen, ri) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.LastRateLimit(); ok {
		t.Error("LastRateLimit reported a value before any request")
	}
	ctx := t.Context()
	created, _ := c.CreateOAuthClient(ctx, testAccount, validParams())
	id := created.ClientID
	_, _ = c.ListOAuthClients(ctx, testAccount)
	_, _ = c.GetOAuthClient(ctx, testAccount, id)
	_, _ = c.UpdateOAuthClient(ctx, testAccount, id, cfapi.UpdateOAuthClientParams{ClientName: strPtr("x")})
	_, _ = c.RotateOAuthClientSecret(ctx, testAccount, id)
	_ = c.DeleteRotatedOAuthClientSecret(ctx, testAccount, id)
	_, _ = c.ListOAuthScopes(ctx)
	_ = c.DeleteOAuthClient(ctx, testAccount, id)
	_, notFound := c.GetOAuthClient(ctx, testAccount, id)

	type call struct {
		Operation, Method string
		StatusCode        int
		Err               bool
	}
	got := make([]call, 0, len(seen))
	for _, ri := range seen {
		got = append(got, call{ri.Operation, ri.Method, ri.StatusCode, ri.Err != nil})
		if ri.RateLimit == nil || ri.RateLimit.Quota != 100 || ri.RateLimit.Window != time.Minute {
			t.Errorf("%s: RateLimit = %+v, want quota 100 per minute", ri.Operation, ri.RateLimit)
		}
	}
	want := []call{
		{"create", "POST", 200, false}, {"list", "GET", 200, false}, {"get", "GET", 200, false},
		{"update", "PATCH", 200, false}, {"rotate_secret", "POST", 200, false},
		{"delete_rotated_secret", "DELETE", 200, false}, {"list_scopes", "GET", 200, false},
		{"delete", "DELETE", 200, false}, {"get", "GET", 404, true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("observed calls (-want +got):\n%s", diff)
	}
	if !errors.Is(seen[len(seen)-1].Err, notFound) {
		t.Error("RequestInfo.Err is not the error the method returned")
	}
	rl, ok := c.LastRateLimit()
	if diff := cmp.Diff(cfapi.RateLimit{Remaining: 91, Reset: time.Minute, Quota: 100, Window: time.Minute}, rl); !ok || diff != "" {
		t.Errorf("LastRateLimit (-want +got):\n%s", diff)
	}
}

func TestEmulatorRateLimitSurfacesRetryAfter(t *testing.T) {
	e := newEmuEnv(t, func(o *cfemu.Options) { o.RateLimit, o.RateWindow = 2, time.Minute })
	for range 2 {
		if _, err := e.client.ListOAuthClients(t.Context(), testAccount); err != nil {
			t.Fatal(err)
		}
	}
	_, err := e.client.ListOAuthClients(t.Context(), testAccount)
	if d, ok := cfapi.IsRateLimited(err); !ok || d != time.Minute {
		t.Fatalf("IsRateLimited = %v, %v (%v); want 1m, true", d, ok, err)
	}
	if rl, _ := e.client.LastRateLimit(); rl.Remaining != 0 {
		t.Errorf("remaining = %d, want 0", rl.Remaining)
	}
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	e := newEmuEnv(t)
	_, err := e.client.GetOAuthClient(t.Context(), testAccount, "a/b?c")
	wantAPIError(t, err, http.StatusNotFound, detail(cfemu.CodeClientNotFound, ""))
	if got := lastRoute(e).Path; got != "/accounts/"+testAccount+"/oauth_clients/a%2Fb%3Fc" {
		t.Errorf("path = %q", got)
	}
	_, err = e.client.ListOAuthClients(t.Context(), "not-an-account")
	wantAPIError(t, err, http.StatusBadRequest, detail(cfemu.CodeNoRoute, ""))
}
