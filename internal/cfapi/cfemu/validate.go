package cfemu

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// problems collects validation errors, each pointing at its field.
type problems []cfapi.ErrorDetail

func (p *problems) add(code int, pointer, format string, args ...any) {
	*p = append(*p, apiError(code, fmt.Sprintf(format, args...), pointer))
}

// validate checks a client as it would be stored (Create body, or the result of
// merging a PATCH) and returns every problem.
func (s *Server) validate(c *cfapi.OAuthClient) []cfapi.ErrorDetail {
	var p problems
	if len(c.ClientName) > 255 {
		p.add(CodeInvalidValue, "/client_name", "client_name is longer than 255 characters")
	}
	validateURIs(&p, c)
	validateEnums(&p, c)
	s.validateScopes(&p, c)
	return p
}

// validateURIs applies the emulator's URI rules (docs/emulator.md): web URIs are
// absolute http(s); redirect URIs are https, or http on a loopback host, without a
// fragment; CORS origins have no path.
func validateURIs(p *problems, c *cfapi.OAuthClient) {
	for _, u := range []struct{ field, value string }{
		{"client_uri", c.ClientURI}, {"logo_uri", c.LogoURI}, {"policy_uri", c.PolicyURI}, {"tos_uri", c.TosURI},
	} {
		if u.value != "" && !isWebURL(u.value) {
			p.add(CodeInvalidURI, "/"+u.field, "%s must be an absolute http or https URL", u.field)
		}
	}
	if len(c.RedirectURIs) == 0 {
		p.add(CodeInvalidValue, "/redirect_uris", "redirect_uris must contain at least one URI")
	}
	redirects := func(field string, list []string) {
		for i, u := range list {
			if !isRedirectURI(u) {
				p.add(CodeInvalidURI, "/"+field+"/"+strconv.Itoa(i),
					"%s[%d] must be an https URL, or http on localhost/127.0.0.1/[::1], without a fragment", field, i)
			}
		}
	}
	redirects("redirect_uris", c.RedirectURIs)
	redirects("post_logout_redirect_uris", c.PostLogoutRedirectURIs)
	for i, o := range c.AllowedCORSOrigins {
		if !isOrigin(o) {
			p.add(CodeInvalidURI, "/allowed_cors_origins/"+strconv.Itoa(i),
				"allowed_cors_origins[%d] must be an origin such as https://app.example.com (scheme, host and optional port only)", i)
		}
	}
}

func validateEnums(p *problems, c *cfapi.OAuthClient) {
	enum := func(field string, values, allowed []string) {
		for i, v := range values {
			if !slices.Contains(allowed, v) {
				p.add(CodeInvalidValue, "/"+field+"/"+strconv.Itoa(i), "%s[%d] %q is not one of %s", field, i, v, strings.Join(allowed, ", "))
			}
		}
	}
	enum("grant_types", c.GrantTypes, grantTypes)
	if !slices.Contains(c.GrantTypes, cfapi.GrantAuthorizationCode) {
		p.add(CodeAuthCodeRequired, "/grant_types", "grant_types must contain authorization_code")
	}
	if len(c.ResponseTypes) == 0 {
		p.add(CodeInvalidValue, "/response_types", "response_types must contain at least one value")
	}
	enum("response_types", c.ResponseTypes, responseTypes)
	if !slices.Contains(authMethods, c.TokenEndpointAuthMethod) {
		p.add(CodeInvalidValue, "/token_endpoint_auth_method", "token_endpoint_auth_method %q is not one of %s",
			c.TokenEndpointAuthMethod, strings.Join(authMethods, ", "))
	}
}

// validateScopes rejects colon scopes, checks dot scopes against the catalogue, allows
// simple identity words, and keeps optional_scopes within the normalised scopes and
// free of protocol scopes.
func (s *Server) validateScopes(p *problems, c *cfapi.OAuthClient) {
	if len(c.Scopes) == 0 {
		p.add(CodeInvalidValue, "/scopes", "scopes must contain at least one scope")
	}
	for i, sc := range c.Scopes {
		pointer := "/scopes/" + strconv.Itoa(i)
		switch {
		case strings.Contains(sc, ":"):
			p.add(CodeColonScope, pointer, "scope %q is colon-delimited; use the dot-delimited OAuth scope ids from GET /oauth/scopes", sc)
		case strings.Contains(sc, "."):
			if !s.catalogue[sc] {
				p.add(CodeUnknownScope, pointer, "scope %q is not an available OAuth scope", sc)
			}
		case !identityScope.MatchString(sc):
			p.add(CodeInvalidScope, pointer, "scope %q is neither an OAuth scope id nor a simple identity scope", sc)
		}
	}
	normalised := *c
	normalised.Scopes = slices.Clone(c.Scopes)
	normaliseScopes(&normalised)
	for i, sc := range c.OptionalScopes {
		pointer := "/optional_scopes/" + strconv.Itoa(i)
		switch {
		case sc == scopeOpenID || sc == "offline" || sc == scopeOfflineAccess:
			p.add(CodeInvalidOptional, pointer, "scope %q can never be optional", sc)
		case !slices.Contains(normalised.Scopes, sc):
			p.add(CodeInvalidOptional, pointer, "optional scope %q must also be listed in scopes", sc)
		}
	}
}

// normaliseScopes applies Cloudflare's protocol-scope rule: offline_access is present
// exactly when grant_types has refresh_token, openid exactly when response_types has
// id_token. Other scopes keep their order, without duplicates; added ones go last.
func normaliseScopes(c *cfapi.OAuthClient) {
	out := make([]string, 0, len(c.Scopes)+2)
	for _, sc := range c.Scopes {
		if sc != scopeOpenID && sc != scopeOfflineAccess && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if slices.Contains(c.ResponseTypes, cfapi.ResponseTypeIDToken) {
		out = append(out, scopeOpenID)
	}
	if slices.Contains(c.GrantTypes, cfapi.GrantRefreshToken) {
		out = append(out, scopeOfflineAccess)
	}
	c.Scopes = out
}

func isWebURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil
}

func isRedirectURI(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return false
	}
	switch u.Scheme {
	case "https":
		return true
	case "http":
		h := u.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

func isOrigin(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && !strings.HasSuffix(raw, "?")
}

func uriHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}
