package cfemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// clientFields are the writable fields of Create and Update. A nil pointer is a field
// that was not sent (JSON null counts as not sent).
type clientFields struct {
	ClientName              *string   `json:"client_name"`
	ClientURI               *string   `json:"client_uri"`
	LogoURI                 *string   `json:"logo_uri"`
	PolicyURI               *string   `json:"policy_uri"`
	TosURI                  *string   `json:"tos_uri"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method"`
	RedirectURIs            *[]string `json:"redirect_uris"`
	PostLogoutRedirectURIs  *[]string `json:"post_logout_redirect_uris"`
	AllowedCORSOrigins      *[]string `json:"allowed_cors_origins"`
	GrantTypes              *[]string `json:"grant_types"`
	ResponseTypes           *[]string `json:"response_types"`
	Scopes                  *[]string `json:"scopes"`
	OptionalScopes          *[]string `json:"optional_scopes"`
	// Visibility is refused on Create and accepts only "public" on Update.
	Visibility *string `json:"visibility"`
}

// decodeBody reads one JSON object with no unknown fields into dst.
func decodeBody(body []byte, dst any) *cfapi.ErrorDetail {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		e := apiError(CodeInvalidBody, "request body must be a JSON object", "")
		return &e
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON object")
	}
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	switch msg := err.Error(); {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		e := apiError(CodeInvalidBody, fmt.Sprintf("%s must be a JSON %s", typeErr.Field, jsonKind(typeErr.Type.String())),
			"/"+strings.ReplaceAll(typeErr.Field, ".", "/"))
		return &e
	case strings.Contains(msg, "unknown field "):
		name := strings.Trim(msg[strings.Index(msg, "unknown field ")+len("unknown field "):], `"`)
		e := apiError(CodeUnknownField, fmt.Sprintf("unknown or read-only field %q", name), "/"+name)
		return &e
	}
	e := apiError(CodeInvalidBody, "request body is not valid JSON", "")
	return &e
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"), strings.HasPrefix(goType, "*[]"):
		return "array of strings"
	case strings.Contains(goType, "string"):
		return "string"
	}
	return goType
}

// apply merges the sent fields into c. Lists are copied.
func (f *clientFields) apply(c *cfapi.OAuthClient) {
	str := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	list := func(dst *[]string, v *[]string) {
		if v != nil {
			*dst = append([]string{}, *v...)
		}
	}
	str(&c.ClientName, f.ClientName)
	str(&c.ClientURI, f.ClientURI)
	str(&c.LogoURI, f.LogoURI)
	str(&c.PolicyURI, f.PolicyURI)
	str(&c.TosURI, f.TosURI)
	str(&c.TokenEndpointAuthMethod, f.TokenEndpointAuthMethod)
	list(&c.RedirectURIs, f.RedirectURIs)
	list(&c.PostLogoutRedirectURIs, f.PostLogoutRedirectURIs)
	list(&c.AllowedCORSOrigins, f.AllowedCORSOrigins)
	list(&c.GrantTypes, f.GrantTypes)
	list(&c.ResponseTypes, f.ResponseTypes)
	list(&c.Scopes, f.Scopes)
	list(&c.OptionalScopes, f.OptionalScopes)
}
