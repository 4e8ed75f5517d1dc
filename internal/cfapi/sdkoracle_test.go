package cfapi_test

// The official Go SDK drives the emulator: every request it builds must be accepted,
// recorded as sent, and answered with JSON that fits the SDK's types exactly. Helpers
// are in sdkhelpers_test.go.

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v7/iam"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/packages/pagination"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// sdkStep is one SDK call in TestSDKOracleOperations.
type sdkStep struct {
	name string
	// call makes the request and returns the SDK's result.
	call func(t *testing.T) (any, error)
	// envelope returns the SDK's envelope type to decode the raw body into; nil for
	// lists, whose SinglePage models only result.
	envelope  func() any
	wantRoute string
	wantPath  func() string
	wantKeys  []string // top-level keys of the request body
	// wantGaps are the sdkKnownGaps keys expected in the result, with their JSON.
	wantGaps map[string]json.RawMessage
	// check compares the decoded result with the emulator's state.
	check func(t *testing.T, res any)
}

// sdkScenario is one client's life, created, read, changed, rotated and deleted by
// the SDK; later steps use what earlier ones learnt.
type sdkScenario struct {
	*sdkEnv
	id, firstSecret string
}

func (s *sdkScenario) clientsPath() string { return "/accounts/" + sdkAccount + "/oauth_clients" }
func (s *sdkScenario) clientPath() string  { return s.clientsPath() + "/" + s.id }

// stored is the client as the emulator holds it.
func (s *sdkScenario) stored(t *testing.T) cfapi.OAuthClient {
	t.Helper()
	c, ok := s.emu.GetClient(sdkAccount, s.id)
	if !ok {
		t.Fatalf("emulator has no client %s", s.id)
	}
	return c
}

// sameClient compares the SDK's decoding of a client with the emulator's client.
func (s *sdkScenario) sameClient(t *testing.T, got cfapi.OAuthClient) {
	t.Helper()
	// Order-blind: lists may come back in any order (cfemu's Strict.ShuffleOrder).
	inAnyOrder := cmpopts.SortSlices(func(a, b string) bool { return a < b })
	if diff := cmp.Diff(s.stored(t), got, cmpopts.EquateEmpty(), inAnyOrder, ignoreGaps[cfapi.OAuthClient]()); diff != "" {
		t.Errorf("SDK's decoding differs from the emulator's client (-emulator +sdk):\n%s", diff)
	}
}

func TestSDKOracleOperations(t *testing.T) {
	t.Parallel()
	s := &sdkScenario{sdkEnv: newSDKEnv(t)}
	for _, step := range s.steps() {
		if !t.Run(step.name, func(t *testing.T) { s.run(t, step) }) {
			return // later steps depend on this one
		}
	}
}

func (s *sdkScenario) steps() []sdkStep {
	clients := s.iam.OAuthClients
	// The emulator sends optional_scopes, which the SDK keeps in JSON.ExtraFields.
	optionalScopes := map[string]json.RawMessage{"$.optional_scopes": json.RawMessage(`["workers-scripts.write"]`)}
	return []sdkStep{
		{
			name:      "OAuthScopes.List",
			call:      func(t *testing.T) (any, error) { return s.iam.OAuthScopes.List(t.Context()) },
			wantRoute: cfemu.RouteListScopes, wantPath: func() string { return "/oauth/scopes" },
			check: func(t *testing.T, res any) {
				page := res.(*pagination.SinglePage[iam.OAuthScopeListResponse])
				got := make([]cfapi.OAuthScope, 0, len(page.Result))
				for _, sc := range page.Result {
					got = append(got, sdkAs[cfapi.OAuthScope](t, sc))
				}
				if diff := cmp.Diff(sdkCatalogue, got); diff != "" {
					t.Errorf("scopes (-catalogue +sdk):\n%s", diff)
				}
			},
		},
		{
			name: "New",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientNewParams
				sdkF(&p.AccountID, sdkAccount)
				sdkF(&p.ClientName, "SDK oracle")
				sdkF(&p.ClientURI, "https://app.example.org")
				sdkF(&p.LogoURI, "https://app.example.org/logo.png")
				sdkF(&p.PolicyURI, "https://app.example.org/privacy")
				sdkF(&p.TosURI, "https://app.example.org/tos")
				sdkF(&p.RedirectURIs, []string{"https://app.example.org/oauth/callback"})
				sdkF(&p.PostLogoutRedirectURIs, []string{"https://app.example.org/bye"})
				sdkF(&p.AllowedCORSOrigins, []string{"https://app.example.org"})
				sdkF(&p.GrantTypes, []iam.OAuthClientNewParamsGrantType{
					iam.OAuthClientNewParamsGrantTypeAuthorizationCode, iam.OAuthClientNewParamsGrantTypeRefreshToken})
				sdkF(&p.ResponseTypes, []iam.OAuthClientNewParamsResponseType{iam.OAuthClientNewParamsResponseTypeCode})
				sdkF(&p.Scopes, []string{"account.read", "workers-scripts.write"})
				sdkF(&p.TokenEndpointAuthMethod, iam.OAuthClientNewParamsTokenEndpointAuthMethodClientSecretBasic)
				// The SDK has no OptionalScopes (sdkKnownGaps): send it the way the SDK
				// documents for fields it does not know.
				return clients.New(t.Context(), p, option.WithJSONSet("optional_scopes", []string{"workers-scripts.write"}))
			},
			envelope:  func() any { return new(iam.OAuthClientNewResponseEnvelope) },
			wantRoute: cfemu.RouteCreateClient, wantPath: s.clientsPath,
			wantKeys: []string{"allowed_cors_origins", "client_name", "client_uri", "grant_types", "logo_uri",
				"optional_scopes", "policy_uri", "post_logout_redirect_uris", "redirect_uris", "response_types",
				"scopes", "token_endpoint_auth_method", "tos_uri"},
			wantGaps: optionalScopes,
			check: func(t *testing.T, res any) {
				r := res.(*iam.OAuthClientNewResponse)
				s.id, s.firstSecret = r.ClientID, r.ClientSecret
				got := sdkAs[cfapi.CreatedOAuthClient](t, r)
				s.sameClient(t, got.OAuthClient)
				if state := s.emu.CheckSecret(sdkAccount, s.id, got.ClientSecret); got.ClientSecret == "" || !state.Current {
					t.Errorf("client_secret %q is not the client's current secret", got.ClientSecret)
				}
			},
		},
		{
			name: "Get",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientGetParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.Get(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientGetResponseEnvelope) },
			wantRoute: cfemu.RouteGetClient, wantPath: s.clientPath, wantGaps: optionalScopes,
			check: func(t *testing.T, res any) { s.sameClient(t, sdkAs[cfapi.OAuthClient](t, res)) },
		},
		{
			name: "List",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientListParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.List(t.Context(), p)
			},
			wantRoute: cfemu.RouteListClients, wantPath: s.clientsPath,
			wantGaps: map[string]json.RawMessage{"$[0].optional_scopes": json.RawMessage(`["workers-scripts.write"]`)},
			check: func(t *testing.T, res any) {
				page := res.(*pagination.SinglePage[iam.OAuthClientListResponse])
				if len(page.Result) != 1 {
					t.Fatalf("List returned %d clients, want 1", len(page.Result))
				}
				s.sameClient(t, sdkAs[cfapi.OAuthClient](t, page.Result[0]))
			},
		},
		{
			name: "Update every field but visibility",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientUpdateParams
				sdkF(&p.AccountID, sdkAccount)
				sdkF(&p.ClientName, "SDK oracle (renamed)")
				sdkF(&p.ClientURI, "https://app.example.org/home")
				sdkF(&p.LogoURI, "https://app.example.org/logo-2.png")
				sdkF(&p.PolicyURI, "https://app.example.org/privacy-2")
				sdkF(&p.TosURI, "https://app.example.org/tos-2")
				sdkF(&p.RedirectURIs, []string{"https://app.example.org/oauth/callback", "http://localhost:8080/cb"})
				sdkF(&p.PostLogoutRedirectURIs, []string{})
				sdkF(&p.AllowedCORSOrigins, []string{"https://app.example.org", "https://admin.example.org"})
				sdkF(&p.GrantTypes, []iam.OAuthClientUpdateParamsGrantType{iam.OAuthClientUpdateParamsGrantTypeAuthorizationCode})
				sdkF(&p.ResponseTypes, []iam.OAuthClientUpdateParamsResponseType{iam.OAuthClientUpdateParamsResponseTypeCode})
				sdkF(&p.Scopes, []string{"account.read", "workers-scripts.write", "zone.read"})
				sdkF(&p.TokenEndpointAuthMethod, iam.OAuthClientUpdateParamsTokenEndpointAuthMethodClientSecretPost)
				return clients.Update(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientUpdateResponseEnvelope) },
			wantRoute: cfemu.RouteUpdateClient, wantPath: s.clientPath, wantGaps: optionalScopes,
			wantKeys: []string{"allowed_cors_origins", "client_name", "client_uri", "grant_types", "logo_uri",
				"policy_uri", "post_logout_redirect_uris", "redirect_uris", "response_types", "scopes",
				"token_endpoint_auth_method", "tos_uri"},
			check: func(t *testing.T, res any) { s.sameClient(t, sdkAs[cfapi.OAuthClient](t, res)) },
		},
		{
			name: "Update visibility (promotion)",
			call: func(t *testing.T) (any, error) {
				if err := s.emu.SetVerification(sdkAccount, s.id, cfapi.VerificationVerified); err != nil {
					t.Fatal(err)
				}
				var p iam.OAuthClientUpdateParams
				sdkF(&p.AccountID, sdkAccount)
				sdkF(&p.Visibility, iam.OAuthClientUpdateParamsVisibilityPublic)
				return clients.Update(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientUpdateResponseEnvelope) },
			wantRoute: cfemu.RouteUpdateClient, wantPath: s.clientPath, wantGaps: optionalScopes,
			wantKeys: []string{"visibility"},
			check: func(t *testing.T, res any) {
				got := sdkAs[cfapi.OAuthClient](t, res)
				if got.Visibility != cfapi.VisibilityPublic || got.PromotedAt == nil {
					t.Errorf("visibility %q, promoted_at %v; want public and set", got.Visibility, got.PromotedAt)
				}
				s.sameClient(t, got)
			},
		},
		{
			name: "RotateSecret",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientRotateSecretParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.RotateSecret(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientRotateSecretResponseEnvelope) },
			wantRoute: cfemu.RouteRotateSecret, wantPath: func() string { return s.clientPath() + "/rotate_secret" },
			check: func(t *testing.T, res any) {
				got := map[string]cfemu.SecretState{
					"new": s.emu.CheckSecret(sdkAccount, s.id, res.(*iam.OAuthClientRotateSecretResponse).ClientSecret),
					"old": s.emu.CheckSecret(sdkAccount, s.id, s.firstSecret),
				}
				want := map[string]cfemu.SecretState{"new": {Current: true}, "old": {Previous: true}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("secrets after rotation (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "DeleteRotatedSecret",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientDeleteRotatedSecretParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.DeleteRotatedSecret(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientDeleteRotatedSecretResponseEnvelope) },
			wantRoute: cfemu.RouteDeleteRotatedSecret, wantPath: func() string { return s.clientPath() + "/rotate_secret" },
			check: func(t *testing.T, res any) {
				if got := res.(*iam.OAuthClientDeleteRotatedSecretResponse).ID; got != s.id {
					t.Errorf("id = %q, want %q", got, s.id)
				}
				if state := s.emu.CheckSecret(sdkAccount, s.id, s.firstSecret); state != (cfemu.SecretState{}) {
					t.Errorf("old secret still works: %+v", state)
				}
			},
		},
		{
			name: "Delete",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientDeleteParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.Delete(t.Context(), s.id, p)
			},
			envelope:  func() any { return new(iam.OAuthClientDeleteResponseEnvelope) },
			wantRoute: cfemu.RouteDeleteClient, wantPath: s.clientPath,
			check: func(t *testing.T, res any) {
				if got := res.(*iam.OAuthClientDeleteResponse).ID; got != s.id {
					t.Errorf("id = %q, want %q", got, s.id)
				}
				if _, ok := s.emu.GetClient(sdkAccount, s.id); ok {
					t.Error("the client still exists")
				}
			},
		},
		{
			name: "List (empty)",
			call: func(t *testing.T) (any, error) {
				var p iam.OAuthClientListParams
				sdkF(&p.AccountID, sdkAccount)
				return clients.List(t.Context(), p)
			},
			wantRoute: cfemu.RouteListClients, wantPath: s.clientsPath,
			check: func(t *testing.T, res any) {
				if n := len(res.(*pagination.SinglePage[iam.OAuthClientListResponse]).Result); n != 0 {
					t.Errorf("List returned %d clients, want 0", n)
				}
			},
		},
	}
}

// run makes one step's call and checks the exchange on both sides, the decoding of
// the result and of the whole envelope, and then the step's own expectations.
func (s *sdkScenario) run(t *testing.T, step sdkStep) {
	n, m := s.wire.len(), len(s.emu.Requests())
	res, err := step.call(t)
	if err != nil {
		t.Fatalf("SDK: %v", err)
	}
	ex, rec := s.exchange(t, n, m)
	// Route keys are "METHOD template", so this checks the method too.
	if got, want := rec.Route+" "+rec.Path, step.wantRoute+" "+step.wantPath(); got != want {
		t.Errorf("emulator saw %q, want %q", got, want)
	}
	if ex.status < 200 || ex.status > 299 {
		t.Errorf("status %d, want 2xx", ex.status)
	}
	if mt, _, _ := mime.ParseMediaType(ex.contentType); mt != "application/json" {
		t.Errorf("Content-Type %q: the SDK decodes only application/json", ex.contentType)
	}
	if diff := cmp.Diff(step.wantKeys, bodyKeys(t, rec.Body), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("request body keys (-want +got):\n%s", diff)
	}

	// The result: every key known to the SDK, every value of the right type.
	problems, gaps := sdkDecodeProblems(pageResult(res))
	if diff := cmp.Diff([]string(nil), problems, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("result does not fit the SDK's types (-want +got):\n%s", diff)
	}
	asJSON := cmp.Transformer("canonicalJSON", func(r json.RawMessage) string { return canonicalJSON(t, r) })
	if diff := cmp.Diff(step.wantGaps, gaps, cmpopts.EquateEmpty(), asJSON); diff != "" {
		t.Errorf("sdkKnownGaps fields in the result (-want +got):\n%s", diff)
	}

	// The whole envelope (success, errors, messages, result) the same way.
	if step.envelope != nil {
		env := step.envelope()
		if err := json.Unmarshal(ex.respBody, env); err != nil {
			t.Fatalf("envelope: %v", err)
		}
		problems, _ := sdkDecodeProblems(env)
		if diff := cmp.Diff([]string(nil), problems, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("envelope does not fit the SDK's %T (-want +got):\n%s", env, diff)
		}
	}
	step.check(t, res)
}

// TestSDKOracleErrors checks that the SDK turns the emulator's failures into its
// *cloudflare.Error (iam.Error) with the status the emulator answered and decodes
// every errors[] entry exactly.
func TestSDKOracleErrors(t *testing.T) {
	t.Parallel()
	newParams := func(scopes ...string) iam.OAuthClientNewParams {
		var p iam.OAuthClientNewParams
		sdkF(&p.AccountID, sdkAccount)
		sdkF(&p.ClientName, "SDK oracle")
		sdkF(&p.RedirectURIs, []string{"https://app.example.org/cb"})
		sdkF(&p.GrantTypes, []iam.OAuthClientNewParamsGrantType{iam.OAuthClientNewParamsGrantTypeAuthorizationCode})
		sdkF(&p.ResponseTypes, []iam.OAuthClientNewParamsResponseType{iam.OAuthClientNewParamsResponseTypeCode})
		sdkF(&p.Scopes, scopes)
		sdkF(&p.TokenEndpointAuthMethod, iam.OAuthClientNewParamsTokenEndpointAuthMethodClientSecretBasic)
		return p
	}
	type wantErr struct {
		Code    int64
		Pointer string
	}
	tests := []struct {
		name string
		// setup prepares state and returns a client id for call.
		setup      func(t *testing.T, e *sdkEnv) string
		call       func(t *testing.T, e *sdkEnv, id string) error
		wantStatus int
		want       []wantErr
	}{
		{
			name: "New with a colon scope and an unknown dotted scope",
			call: func(t *testing.T, e *sdkEnv, _ string) error {
				_, err := e.iam.OAuthClients.New(t.Context(), newParams("account:read", "nope.read"))
				return err
			},
			wantStatus: http.StatusBadRequest,
			want:       []wantErr{{cfemu.CodeColonScope, "/scopes/0"}, {cfemu.CodeUnknownScope, "/scopes/1"}},
		},
		{
			name: "Get with a token the emulator does not know",
			call: func(t *testing.T, e *sdkEnv, _ string) error {
				var p iam.OAuthClientGetParams
				sdkF(&p.AccountID, sdkAccount)
				_, err := e.iam.OAuthClients.Get(t.Context(), "00000000000000000000000000000000", p,
					option.WithAPIToken("sdk-oracle-unknown-tok-7Tb2"))
				if err != nil && strings.Contains(err.Error(), "sdk-oracle-unknown-tok-7Tb2") {
					t.Error("the SDK's error contains the API token")
				}
				return err
			},
			wantStatus: http.StatusUnauthorized,
			want:       []wantErr{{Code: cfemu.CodeAuthentication}},
		},
		{
			name: "Get of an unknown client",
			call: func(t *testing.T, e *sdkEnv, _ string) error {
				var p iam.OAuthClientGetParams
				sdkF(&p.AccountID, sdkAccount)
				_, err := e.iam.OAuthClients.Get(t.Context(), "00000000000000000000000000000000", p)
				return err
			},
			wantStatus: http.StatusNotFound,
			want:       []wantErr{{Code: cfemu.CodeClientNotFound}},
		},
		{
			name: "RotateSecret while a rotated secret exists",
			setup: func(t *testing.T, e *sdkEnv) string {
				c, err := e.iam.OAuthClients.New(t.Context(), newParams("account.read"))
				if err != nil {
					t.Fatal(err)
				}
				var p iam.OAuthClientRotateSecretParams
				sdkF(&p.AccountID, sdkAccount)
				if _, err := e.iam.OAuthClients.RotateSecret(t.Context(), c.ClientID, p); err != nil {
					t.Fatal(err)
				}
				return c.ClientID
			},
			call: func(t *testing.T, e *sdkEnv, id string) error {
				var p iam.OAuthClientRotateSecretParams
				sdkF(&p.AccountID, sdkAccount)
				_, err := e.iam.OAuthClients.RotateSecret(t.Context(), id, p)
				return err
			},
			wantStatus: http.StatusConflict,
			want:       []wantErr{{Code: cfemu.CodeSecretAlreadyRotated}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newSDKEnv(t)
			var id string
			if tt.setup != nil {
				id = tt.setup(t, e)
			}
			n, m := e.wire.len(), len(e.emu.Requests())
			err := tt.call(t, e, id)
			_, rec := e.exchange(t, n, m)
			var apiErr *iam.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not a *cloudflare.Error", err, err)
			}
			if apiErr.StatusCode != tt.wantStatus || apiErr.StatusCode != rec.Status {
				t.Errorf("SDK StatusCode %d, emulator answered %d, want %d", apiErr.StatusCode, rec.Status, tt.wantStatus)
			}
			got := make([]wantErr, 0, len(apiErr.Errors))
			for _, d := range apiErr.Errors {
				got = append(got, wantErr{d.Code, d.Source.Pointer})
				if s := cfemu.StatusForCode(int(d.Code)); s != rec.Status {
					t.Errorf("code %d belongs to status %d, answered %d", d.Code, s, rec.Status)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors[] (-want +got):\n%s", diff)
			}
			problems, _ := sdkDecodeProblems(apiErr.Errors)
			if diff := cmp.Diff([]string(nil), problems, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors[] does not fit the SDK's ErrorData (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), sdkToken) {
				t.Error("the SDK's error contains the API token")
			}
		})
	}
}
