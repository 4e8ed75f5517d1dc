package controller

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func ptr[T any](v T) *T { return &v }

func remoteClient() cfapi.OAuthClient {
	return cfapi.OAuthClient{
		ClientID:                "c1",
		Visibility:              cfapi.VisibilityPrivate,
		ClientName:              "App",
		ClientURI:               "https://app.example.com",
		RedirectURIs:            []string{"https://app.example.com/cb", "https://app.example.com/cb2"},
		PostLogoutRedirectURIs:  []string{"https://app.example.com/bye", "https://app.example.com/bye2"},
		GrantTypes:              []string{"refresh_token", "authorization_code"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"offline_access", "user-details.read", "account.read"},
		AllowedCORSOrigins:      []string{"https://b.example.com", "https://a.example.com"},
		TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	}
}

func TestComputeDrift(t *testing.T) {
	tests := []struct {
		name       string
		spec       v1alpha1.OAuthClientSpec
		wantFields []string
		wantParams cfapi.UpdateOAuthClientParams
	}{
		{
			name: "absent fields are unmanaged",
			spec: v1alpha1.OAuthClientSpec{},
		},
		{
			name: "sets compare order-insensitively and protocol scopes are ignored",
			spec: v1alpha1.OAuthClientSpec{
				GrantTypes:         &[]v1alpha1.GrantType{"authorization_code", "refresh_token"},
				Scopes:             &[]string{"account.read", "user-details.read", "openid"},
				AllowedCORSOrigins: &[]string{"https://a.example.com", "https://b.example.com"},
				ResponseTypes:      &[]v1alpha1.ResponseType{"code"},
			},
		},
		{
			name: "only drifted fields are sent",
			spec: v1alpha1.OAuthClientSpec{
				ClientName:   ptr("App"),
				ClientURI:    ptr("https://app.example.com"),
				LogoURI:      ptr("https://app.example.com/logo.png"),
				Scopes:       &[]string{"account.read"},
				RedirectURIs: &[]string{"https://app.example.com/cb", "https://app.example.com/cb2"},
			},
			wantFields: []string{"logoURI", "scopes"},
			wantParams: cfapi.UpdateOAuthClientParams{LogoURI: ptr("https://app.example.com/logo.png"), Scopes: &[]string{"account.read"}},
		},
		{
			name:       "an explicitly empty list is managed and sent as []",
			spec:       v1alpha1.OAuthClientSpec{AllowedCORSOrigins: &[]string{}},
			wantFields: []string{"allowedCORSOrigins"},
			wantParams: cfapi.UpdateOAuthClientParams{AllowedCORSOrigins: &[]string{}},
		},
		{
			// listType=set: Cloudflare may answer in any order, and a reordered answer
			// must not PATCH on every pass.
			name: "redirect URI order is not significant",
			spec: v1alpha1.OAuthClientSpec{RedirectURIs: &[]string{"https://app.example.com/cb2", "https://app.example.com/cb"}},
		},
		{
			name: "post-logout redirect URI order is not significant",
			spec: v1alpha1.OAuthClientSpec{PostLogoutRedirectURIs: reversed(remoteClient().PostLogoutRedirectURIs)},
		},
		{
			name:       "auth method",
			spec:       v1alpha1.OAuthClientSpec{TokenEndpointAuthMethod: ptr(v1alpha1.AuthMethodClientSecretPost)},
			wantFields: []string{"tokenEndpointAuthMethod"},
			wantParams: cfapi.UpdateOAuthClientParams{TokenEndpointAuthMethod: ptr("client_secret_post")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			remote := remoteClient()
			d := computeDrift(&tt.spec, &remote)
			if diff := cmp.Diff(tt.wantFields, d.fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s", diff)
			}
			// The exact JSON body is asserted through the emulator in the envtest suite.
			if diff := cmp.Diff(tt.wantParams, d.params); diff != "" {
				t.Errorf("PATCH params (-want +got):\n%s", diff)
			}
			if d.empty() != (len(tt.wantFields) == 0) || d.params.IsEmpty() != d.empty() {
				t.Errorf("empty() = %v, params.IsEmpty() = %v", d.empty(), d.params.IsEmpty())
			}
		})
	}
}

func TestPromotionGaps(t *testing.T) {
	verified := remoteClient()
	verified.LogoURI = "https://app.example.com/logo.png"
	verified.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationVerified}

	unverified := verified
	unverified.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationInProgress}

	identityOnly := verified
	identityOnly.Scopes = []string{"openid", "profile"}
	identityOnly.LogoURI = ""

	tests := []struct {
		name         string
		spec         v1alpha1.OAuthClientSpec
		remote       cfapi.OAuthClient
		wantGaps     int
		wantAwaiting bool
	}{
		{"all preconditions hold", v1alpha1.OAuthClientSpec{}, verified, 0, false},
		{"unverified host", v1alpha1.OAuthClientSpec{}, unverified, 1, true},
		{"a host change in flight is not verified", v1alpha1.OAuthClientSpec{ClientURI: ptr("https://other.example.com")}, verified, 1, true},
		{"missing logo and only identity scopes", v1alpha1.OAuthClientSpec{}, identityOnly, 2, false},
		{"spec supplies the logo", v1alpha1.OAuthClientSpec{LogoURI: ptr("https://x.example.com/l.png")}, identityOnly, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gaps, awaiting := promotionGaps(&tt.spec, &tt.remote)
			if len(gaps) != tt.wantGaps || awaiting != tt.wantAwaiting {
				t.Errorf("promotionGaps() = %q, awaiting %v; want %d gaps, awaiting %v", gaps, awaiting, tt.wantGaps, tt.wantAwaiting)
			}
		})
	}
}

func reversed(in []string) *[]string {
	out := make([]string, len(in))
	for i, v := range in {
		out[len(in)-1-i] = v
	}
	return &out
}
