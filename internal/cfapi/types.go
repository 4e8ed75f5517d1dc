package cfapi

import "time"

// Visibility values of an OAuth client. New clients are private; promotion to public is
// a PATCH and cannot be undone.
const (
	VisibilityPrivate = "private"
	VisibilityPublic  = "public"
)

// Statuses of the DNS verification of a client's client_uri host.
const (
	VerificationPending    = "pending"
	VerificationInProgress = "in_progress"
	VerificationVerified   = "verified"
	VerificationFailed     = "failed"
)

// Token endpoint authentication methods. AuthMethodNone is a public (PKCE) client with
// no secret.
const (
	AuthMethodNone              = "none"
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
)

// Grant types. GrantAuthorizationCode is mandatory on every client.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// Response types.
const (
	ResponseTypeCode    = "code"
	ResponseTypeToken   = "token"
	ResponseTypeIDToken = "id_token"
)

// OAuthClient is an OAuth client as Get, List and Update return it. Every field but
// ClientID and Visibility may be absent in a response. Scopes may differ from what was
// sent: Cloudflare adds or removes offline_access and openid itself.
type OAuthClient struct {
	ClientID                string                 `json:"client_id"`
	Visibility              string                 `json:"visibility"`
	ClientName              string                 `json:"client_name,omitempty"`
	ClientURI               string                 `json:"client_uri,omitempty"`
	LogoURI                 string                 `json:"logo_uri,omitempty"`
	PolicyURI               string                 `json:"policy_uri,omitempty"`
	TosURI                  string                 `json:"tos_uri,omitempty"`
	RedirectURIs            []string               `json:"redirect_uris"`
	PostLogoutRedirectURIs  []string               `json:"post_logout_redirect_uris"`
	AllowedCORSOrigins      []string               `json:"allowed_cors_origins"`
	GrantTypes              []string               `json:"grant_types"`
	ResponseTypes           []string               `json:"response_types"`
	Scopes                  []string               `json:"scopes"`
	OptionalScopes          []string               `json:"optional_scopes"`
	TokenEndpointAuthMethod string                 `json:"token_endpoint_auth_method,omitempty"`
	ClientURIVerification   *ClientURIVerification `json:"client_uri_verification,omitempty"`
	HasRotatedSecret        bool                   `json:"has_rotated_secret"`
	CreatedAt               *time.Time             `json:"created_at,omitempty"`
	UpdatedAt               *time.Time             `json:"updated_at,omitempty"`
	PromotedAt              *time.Time             `json:"promoted_at,omitempty"`
}

// ClientURIVerification is the state of the DNS proof for the client_uri host. Text is
// the exact TXT record value to publish, prefix included.
type ClientURIVerification struct {
	Status string `json:"status"`
	Text   string `json:"text"`
}

// CreatedOAuthClient is the Create response: the client plus its secret. This is the
// only time Cloudflare ever returns the original secret; it is empty for clients whose
// token_endpoint_auth_method is none.
type CreatedOAuthClient struct {
	OAuthClient
	ClientSecret string `json:"client_secret,omitempty"`
}

// CreateOAuthClientParams is the Create body. The six required fields are always sent
// (a nil slice as []). A nil optional field is not sent; a pointer to an empty value is
// sent as "" or [].
type CreateOAuthClientParams struct {
	ClientName              string
	RedirectURIs            []string
	GrantTypes              []string
	ResponseTypes           []string
	Scopes                  []string
	TokenEndpointAuthMethod string

	ClientURI *string
	LogoURI   *string
	PolicyURI *string
	TosURI    *string

	PostLogoutRedirectURIs *[]string
	AllowedCORSOrigins     *[]string
	OptionalScopes         *[]string
}

// UpdateOAuthClientParams is a PATCH body: only non-nil fields are sent, a pointer to an
// empty value as "" or []. Visibility accepts only VisibilityPublic (promotion).
type UpdateOAuthClientParams struct {
	ClientName              *string
	ClientURI               *string
	LogoURI                 *string
	PolicyURI               *string
	TosURI                  *string
	TokenEndpointAuthMethod *string
	Visibility              *string

	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	AllowedCORSOrigins     *[]string
	GrantTypes             *[]string
	ResponseTypes          *[]string
	Scopes                 *[]string
	OptionalScopes         *[]string
}

// IsEmpty reports whether the PATCH would carry no field at all.
func (p UpdateOAuthClientParams) IsEmpty() bool {
	return p == UpdateOAuthClientParams{}
}

// OAuthScope is one entry of the scope catalogue (GET /oauth/scopes). ID is the value
// used in a client's scopes, e.g. "account.read".
type OAuthScope struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Category string   `json:"category,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
}

// createBody and updateBody are the wire forms of the params. Pointers give the
// three states: nil is omitted, a pointer to an empty value is sent.
type createBody struct {
	ClientName              string    `json:"client_name"`
	RedirectURIs            []string  `json:"redirect_uris"`
	GrantTypes              []string  `json:"grant_types"`
	ResponseTypes           []string  `json:"response_types"`
	Scopes                  []string  `json:"scopes"`
	TokenEndpointAuthMethod string    `json:"token_endpoint_auth_method"`
	ClientURI               *string   `json:"client_uri,omitempty"`
	LogoURI                 *string   `json:"logo_uri,omitempty"`
	PolicyURI               *string   `json:"policy_uri,omitempty"`
	TosURI                  *string   `json:"tos_uri,omitempty"`
	PostLogoutRedirectURIs  *[]string `json:"post_logout_redirect_uris,omitempty"`
	AllowedCORSOrigins      *[]string `json:"allowed_cors_origins,omitempty"`
	OptionalScopes          *[]string `json:"optional_scopes,omitempty"`
}

type updateBody struct {
	ClientName              *string   `json:"client_name,omitempty"`
	ClientURI               *string   `json:"client_uri,omitempty"`
	LogoURI                 *string   `json:"logo_uri,omitempty"`
	PolicyURI               *string   `json:"policy_uri,omitempty"`
	TosURI                  *string   `json:"tos_uri,omitempty"`
	TokenEndpointAuthMethod *string   `json:"token_endpoint_auth_method,omitempty"`
	Visibility              *string   `json:"visibility,omitempty"`
	RedirectURIs            *[]string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs  *[]string `json:"post_logout_redirect_uris,omitempty"`
	AllowedCORSOrigins      *[]string `json:"allowed_cors_origins,omitempty"`
	GrantTypes              *[]string `json:"grant_types,omitempty"`
	ResponseTypes           *[]string `json:"response_types,omitempty"`
	Scopes                  *[]string `json:"scopes,omitempty"`
	OptionalScopes          *[]string `json:"optional_scopes,omitempty"`
}

func (p CreateOAuthClientParams) body() createBody {
	return createBody{
		ClientName:              p.ClientName,
		RedirectURIs:            nonNil(p.RedirectURIs),
		GrantTypes:              nonNil(p.GrantTypes),
		ResponseTypes:           nonNil(p.ResponseTypes),
		Scopes:                  nonNil(p.Scopes),
		TokenEndpointAuthMethod: p.TokenEndpointAuthMethod,
		ClientURI:               p.ClientURI,
		LogoURI:                 p.LogoURI,
		PolicyURI:               p.PolicyURI,
		TosURI:                  p.TosURI,
		PostLogoutRedirectURIs:  sentList(p.PostLogoutRedirectURIs),
		AllowedCORSOrigins:      sentList(p.AllowedCORSOrigins),
		OptionalScopes:          sentList(p.OptionalScopes),
	}
}

func (p UpdateOAuthClientParams) body() updateBody {
	return updateBody{
		ClientName:              p.ClientName,
		ClientURI:               p.ClientURI,
		LogoURI:                 p.LogoURI,
		PolicyURI:               p.PolicyURI,
		TosURI:                  p.TosURI,
		TokenEndpointAuthMethod: p.TokenEndpointAuthMethod,
		Visibility:              p.Visibility,
		RedirectURIs:            sentList(p.RedirectURIs),
		PostLogoutRedirectURIs:  sentList(p.PostLogoutRedirectURIs),
		AllowedCORSOrigins:      sentList(p.AllowedCORSOrigins),
		GrantTypes:              sentList(p.GrantTypes),
		ResponseTypes:           sentList(p.ResponseTypes),
		Scopes:                  sentList(p.Scopes),
		OptionalScopes:          sentList(p.OptionalScopes),
	}
}

// nonNil makes a nil slice encode as [] instead of null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// sentList keeps nil (not sent) but turns a pointer to a nil slice into [].
func sentList(p *[]string) *[]string {
	if p == nil || *p != nil {
		return p
	}
	empty := []string{}
	return &empty
}
