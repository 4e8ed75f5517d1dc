package secretrender

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Profile names.
const (
	ProfileOAuth2Proxy  = "oauth2-proxy"
	ProfileGrafana      = "grafana"
	ProfileEnvoyGateway = "envoy-gateway"
	ProfileEnv          = "env"
)

// The templates the profiles share.
const (
	tmplClientID     = "{{ .ClientID }}"
	tmplClientSecret = "{{ .ClientSecret }}"
	tmplScopes       = `{{ .Scopes | join " " }}`
)

// CookieSecretName is the stableRandom name of the oauth2-proxy profile's cookie secret.
const CookieSecretName = "oauth2-proxy-cookie"

// profile is a template for one consumer: its keys for a confidential client, and the
// keys it leaves out for a public (PKCE) client, which has no secret.
type profile struct {
	data       map[string]string
	secretKeys []string
}

// profiles are the keys each consumer reads, as its own documentation names them:
//
//   - oauth2-proxy: client-id, client-secret and cookie-secret, the keys of the
//     oauth2-proxy Helm chart's config.existingSecret (the cookie secret is 32 random
//     bytes, base64url: oauth2-proxy wants 16, 24 or 32 bytes), plus the provider URLs
//     under the names of the oauth2-proxy flags they set.
//   - grafana: Grafana's generic OAuth settings as GF_AUTH_GENERIC_OAUTH_* environment
//     variables, for envFrom.
//   - envoy-gateway: client-id and client-secret, the keys an Envoy Gateway
//     SecurityPolicy's oidc.clientIDRef and oidc.clientSecret read. Envoy's OAuth2
//     filter needs a client secret, so a public client is an error, not a key left out.
//   - env: a dotenv-style key set (OAUTH_*) for envFrom.
var profiles = map[string]profile{
	ProfileOAuth2Proxy: {
		data: map[string]string{
			"client-id":       tmplClientID,
			"client-secret":   tmplClientSecret,
			"cookie-secret":   `{{ stableRandom "` + CookieSecretName + `" }}`,
			"oidc-issuer-url": "{{ .Issuer }}",
			"login-url":       "{{ .AuthorizationEndpoint }}",
			"redeem-url":      "{{ .TokenEndpoint }}",
			"profile-url":     "{{ .UserinfoEndpoint }}",
			"oidc-jwks-url":   "{{ .JWKSURI }}",
			"scope":           tmplScopes,
		},
		secretKeys: []string{"client-secret"},
	},
	ProfileGrafana: {
		data: map[string]string{
			"GF_AUTH_GENERIC_OAUTH_ENABLED":       "true",
			"GF_AUTH_GENERIC_OAUTH_NAME":          "Cloudflare",
			"GF_AUTH_GENERIC_OAUTH_CLIENT_ID":     tmplClientID,
			"GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": tmplClientSecret,
			"GF_AUTH_GENERIC_OAUTH_SCOPES":        tmplScopes,
			"GF_AUTH_GENERIC_OAUTH_AUTH_URL":      "{{ .AuthorizationEndpoint }}",
			"GF_AUTH_GENERIC_OAUTH_TOKEN_URL":     "{{ .TokenEndpoint }}",
			"GF_AUTH_GENERIC_OAUTH_API_URL":       "{{ .UserinfoEndpoint }}",
			"GF_AUTH_GENERIC_OAUTH_USE_PKCE":      "true",
		},
		secretKeys: []string{"GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"},
	},
	ProfileEnvoyGateway: {
		data: map[string]string{
			"client-id":     tmplClientID,
			"client-secret": tmplClientSecret,
		},
	},
	ProfileEnv: {
		data: map[string]string{
			"OAUTH_CLIENT_ID":              tmplClientID,
			"OAUTH_CLIENT_SECRET":          tmplClientSecret,
			"OAUTH_ISSUER":                 "{{ .Issuer }}",
			"OAUTH_AUTHORIZATION_ENDPOINT": "{{ .AuthorizationEndpoint }}",
			"OAUTH_TOKEN_ENDPOINT":         "{{ .TokenEndpoint }}",
			"OAUTH_REVOCATION_ENDPOINT":    "{{ .RevocationEndpoint }}",
			"OAUTH_USERINFO_ENDPOINT":      "{{ .UserinfoEndpoint }}",
			"OAUTH_END_SESSION_ENDPOINT":   "{{ .EndSessionEndpoint }}",
			"OAUTH_JWKS_URI":               "{{ .JWKSURI }}",
			"OAUTH_DISCOVERY_URL":          "{{ .DiscoveryURL }}",
			"OAUTH_SCOPES":                 tmplScopes,
			"OAUTH_REDIRECT_URIS":          `{{ .RedirectURIs | join " " }}`,
			"CLOUDFLARE_ACCOUNT_ID":        "{{ .AccountID }}",
		},
		secretKeys: []string{"OAUTH_CLIENT_SECRET"},
	},
}

// Profiles lists the profile names, sorted.
func Profiles() []string { return slices.Sorted(maps.Keys(profiles)) }

// ProfileKeys lists the keys a profile renders, sorted; public leaves out what a public
// (PKCE) client cannot have. Nil for an unknown profile.
func ProfileKeys(name string, public bool) []string {
	src, err := Sources(Template{Profile: name}, public)
	if err != nil {
		return nil
	}
	return slices.Sorted(maps.Keys(src))
}

// Sources merges a template's profile and data into the template text of each key;
// data wins over the profile key by key.
func Sources(t Template, public bool) (map[string]string, error) {
	out := map[string]string{}
	if t.Profile != "" {
		p, ok := profiles[t.Profile]
		if !ok {
			return nil, &Error{Reason: fmt.Sprintf("unknown profile %q; the profiles are %s", t.Profile, strings.Join(Profiles(), ", "))}
		}
		maps.Copy(out, p.data)
		if public {
			for _, k := range p.secretKeys {
				delete(out, k)
			}
		}
	}
	maps.Copy(out, t.Data)
	if len(out) == 0 {
		return nil, &Error{Reason: "the template renders no key: give it a profile, data, or both"}
	}
	return out, nil
}
