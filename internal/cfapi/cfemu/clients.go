package cfemu

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Protocol scopes that Cloudflare manages from grant_types and response_types.
const (
	scopeOfflineAccess = "offline_access"
	scopeOpenID        = "openid"
	verificationPrefix = "cloudflare_oauth_client_publisher="
)

// identityScope is a "simple identity scope": one lowercase word, no dot or colon
// (openid, profile, email, offline_access).
var identityScope = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var (
	grantTypes    = []string{cfapi.GrantAuthorizationCode, cfapi.GrantRefreshToken}
	responseTypes = []string{cfapi.ResponseTypeCode, cfapi.ResponseTypeToken, cfapi.ResponseTypeIDToken}
	authMethods   = []string{cfapi.AuthMethodNone, cfapi.AuthMethodClientSecretBasic, cfapi.AuthMethodClientSecretPost}
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

func (s *Server) listClients(q *request) response {
	acct := s.accounts[q.accountID]
	out := []cfapi.OAuthClient{}
	if acct != nil {
		for _, id := range acct.order {
			out = append(out, s.view(acct.clients[id]))
		}
	}
	// The API is not paginated: page and per_page, if sent, are ignored.
	return s.success(out, &resultInfo{Count: len(out), Page: 1, PerPage: len(out), TotalCount: len(out)})
}

func (s *Server) getClient(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	return s.success(s.view(rec), nil)
}

func (s *Server) lookup(q *request) (*clientRecord, response) {
	if acct := s.accounts[q.accountID]; acct != nil {
		if rec := acct.clients[q.clientID]; rec != nil {
			s.refreshVerification(rec)
			return rec, response{}
		}
	}
	return nil, s.errorResponse(apiError(CodeClientNotFound, "OAuth client not found", ""))
}

func (s *Server) createClient(q *request) response {
	var f clientFields
	if e := decodeBody(q.body, &f); e != nil {
		return s.errorResponse(*e)
	}
	if f.Visibility != nil {
		return s.errorResponse(apiError(CodeVisibilityOnCreate,
			"visibility cannot be set on create: new clients are private; promote with PATCH {\"visibility\":\"public\"}", "/visibility"))
	}
	var errs []cfapi.ErrorDetail
	for _, req := range []struct {
		name string
		sent bool
	}{
		{"client_name", f.ClientName != nil}, {"redirect_uris", f.RedirectURIs != nil},
		{"grant_types", f.GrantTypes != nil}, {"response_types", f.ResponseTypes != nil},
		{"scopes", f.Scopes != nil}, {"token_endpoint_auth_method", f.TokenEndpointAuthMethod != nil},
	} {
		if !req.sent {
			errs = append(errs, apiError(CodeMissingField, req.name+" is required", "/"+req.name))
		}
	}
	if len(errs) > 0 {
		return s.errorResponse(errs...)
	}
	now := s.now().UTC()
	c := cfapi.OAuthClient{
		ClientID:               randomHex(16),
		Visibility:             cfapi.VisibilityPrivate,
		RedirectURIs:           []string{},
		PostLogoutRedirectURIs: []string{},
		AllowedCORSOrigins:     []string{},
		OptionalScopes:         []string{},
	}
	f.apply(&c)
	if errs := s.validate(&c); len(errs) > 0 {
		return s.errorResponse(errs...)
	}
	normaliseScopes(&c)
	c.CreatedAt, c.UpdatedAt = ptr(now), ptr(now)
	rec := &clientRecord{c: c}
	if c.ClientURI != "" {
		s.startVerification(rec)
	}
	if c.TokenEndpointAuthMethod != cfapi.AuthMethodNone {
		rec.secret = newSecret()
	}
	s.store(q.accountID, rec)
	return s.success(cfapi.CreatedOAuthClient{OAuthClient: s.view(rec), ClientSecret: rec.secret}, nil)
}

func (s *Server) updateClient(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	var f clientFields
	if e := decodeBody(q.body, &f); e != nil {
		return s.errorResponse(*e)
	}
	next := *rec
	next.c = cloneClient(rec.c)
	f.apply(&next.c)
	errs := s.validate(&next.c)
	if e := s.updateClientURI(rec, &next, f.ClientURI); e != nil {
		errs = append(errs, *e)
	}
	if f.TokenEndpointAuthMethod != nil && (rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone) != (*f.TokenEndpointAuthMethod == cfapi.AuthMethodNone) {
		errs = append(errs, apiError(CodeAuthMethodChange,
			"token_endpoint_auth_method cannot switch between none and a client secret method; create a new client", "/token_endpoint_auth_method"))
	}
	if len(errs) > 0 {
		return s.errorResponse(errs...)
	}
	normaliseScopes(&next.c)
	if f.Visibility != nil {
		if errs := s.promote(&next.c, *f.Visibility); len(errs) > 0 {
			return s.errorResponse(errs...)
		}
	}
	if !reflect.DeepEqual(next.c, rec.c) || next.verifyStarted != rec.verifyStarted {
		next.c.UpdatedAt = ptr(s.now().UTC())
	}
	*rec = next
	return s.success(s.view(rec), nil)
}

// updateClientURI applies the verification rules for a PATCH that sends client_uri:
// a new host gets a new token and restarts verification (refused once the old host is
// verified); the same host restarts a failed or pending verification and leaves an
// in-progress or verified one alone.
func (s *Server) updateClientURI(old, next *clientRecord, sent *string) *cfapi.ErrorDetail {
	if sent == nil {
		return nil
	}
	ver := old.c.ClientURIVerification
	verified := ver != nil && ver.Status == cfapi.VerificationVerified
	sameHost := old.c.ClientURI != "" && *sent != "" && uriHost(old.c.ClientURI) == uriHost(*sent)
	switch {
	case sameHost:
		if ver == nil || ver.Status == cfapi.VerificationFailed || ver.Status == cfapi.VerificationPending {
			s.startVerification(next)
		}
	case verified:
		e := apiError(CodeClientURILocked,
			fmt.Sprintf("client_uri host %q is verified and can no longer change; only its path may", uriHost(old.c.ClientURI)), "/client_uri")
		return &e
	case *sent == "":
		next.c.ClientURIVerification = nil
		next.verifyStarted = time.Time{}
	default:
		s.startVerification(next)
	}
	return nil
}

// promote handles visibility in a PATCH: only "public", and only when the client (as it
// will be after this PATCH) meets every precondition; one error per missing one.
func (s *Server) promote(c *cfapi.OAuthClient, visibility string) []cfapi.ErrorDetail {
	switch {
	case visibility == cfapi.VisibilityPrivate:
		return []cfapi.ErrorDetail{apiError(CodeVisibilityValue, "visibility cannot be set to private: promotion to public is permanent", "/visibility")}
	case visibility != cfapi.VisibilityPublic:
		return []cfapi.ErrorDetail{apiError(CodeVisibilityValue, fmt.Sprintf("visibility %q is not allowed; the only accepted value is \"public\"", visibility), "/visibility")}
	case c.Visibility == cfapi.VisibilityPublic:
		return nil
	}
	var errs []cfapi.ErrorDetail
	gap := func(pointer, what string) {
		errs = append(errs, apiError(CodePromotionRefused, "cannot make the client public: "+what, pointer))
	}
	if strings.TrimSpace(c.ClientName) == "" {
		gap("/client_name", "client_name is empty")
	}
	if c.LogoURI == "" {
		gap("/logo_uri", "logo_uri is not set")
	}
	switch {
	case c.ClientURI == "":
		gap("/client_uri", "client_uri is not set (its host must be verified)")
	case c.ClientURIVerification == nil || c.ClientURIVerification.Status != cfapi.VerificationVerified:
		gap("/client_uri", "the client_uri host is not verified")
	}
	if !slices.ContainsFunc(c.Scopes, func(sc string) bool { return strings.Contains(sc, ".") }) {
		gap("/scopes", "no non-identity scope (such as account.read) is requested")
	}
	if len(errs) == 0 {
		c.Visibility = cfapi.VisibilityPublic
		c.PromotedAt = ptr(s.now().UTC())
	}
	return errs
}

func (s *Server) deleteClient(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	acct := s.accounts[q.accountID]
	delete(acct.clients, rec.c.ClientID)
	acct.order = slices.DeleteFunc(acct.order, func(id string) bool { return id == rec.c.ClientID })
	return s.success(map[string]string{"id": rec.c.ClientID}, nil)
}

func (s *Server) rotateSecret(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	switch {
	case rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone:
		return s.errorResponse(apiError(CodeNoSecret, "clients with token_endpoint_auth_method none have no secret to rotate", ""))
	case rec.c.HasRotatedSecret:
		return s.errorResponse(apiError(CodeSecretAlreadyRotated,
			"the client already has a rotated secret; delete it (DELETE .../rotate_secret) before rotating again", ""))
	}
	rec.previous, rec.secret = rec.secret, newSecret()
	rec.c.HasRotatedSecret = true
	rec.c.UpdatedAt = ptr(s.now().UTC())
	return s.success(map[string]string{"client_secret": rec.secret}, nil)
}

func (s *Server) deleteRotatedSecret(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	switch {
	case rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone:
		return s.errorResponse(apiError(CodeNoSecret, "clients with token_endpoint_auth_method none have no secret", ""))
	case !rec.c.HasRotatedSecret:
		return s.errorResponse(apiError(CodeNoRotatedSecret, "the client has no rotated secret to delete", ""))
	}
	rec.previous = ""
	rec.c.HasRotatedSecret = false
	rec.c.UpdatedAt = ptr(s.now().UTC())
	return s.success(map[string]string{"id": rec.c.ClientID}, nil)
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

// startVerification gives the record a new TXT token and (re)starts the clock.
func (s *Server) startVerification(rec *clientRecord) {
	rec.c.ClientURIVerification = &cfapi.ClientURIVerification{
		Status: cfapi.VerificationInProgress,
		Text:   verificationPrefix + randomHex(16),
	}
	rec.verifyStarted = s.now()
}

// refreshVerification is the lazy "DNS poller": an in-progress verification becomes
// verified once VerifyAfter has passed on the clock. It does not bump updated_at.
func (s *Server) refreshVerification(rec *clientRecord) {
	v := rec.c.ClientURIVerification
	if v == nil || v.Status != cfapi.VerificationInProgress || s.opts.VerifyAfter <= 0 {
		return
	}
	if !s.now().Before(rec.verifyStarted.Add(s.opts.VerifyAfter)) {
		v.Status = cfapi.VerificationVerified
	}
}

func (s *Server) store(accountID string, rec *clientRecord) {
	acct := s.accounts[accountID]
	if acct == nil {
		acct = &account{clients: map[string]*clientRecord{}}
		s.accounts[accountID] = acct
	}
	acct.clients[rec.c.ClientID] = rec
	acct.order = append(acct.order, rec.c.ClientID)
}

// view is the client as the API shows it: a deep copy, verification refreshed.
func (s *Server) view(rec *clientRecord) cfapi.OAuthClient {
	s.refreshVerification(rec)
	return cloneClient(rec.c)
}

func cloneClient(c cfapi.OAuthClient) cfapi.OAuthClient {
	list := func(in []string) []string { return append([]string{}, in...) }
	c.RedirectURIs = list(c.RedirectURIs)
	c.PostLogoutRedirectURIs = list(c.PostLogoutRedirectURIs)
	c.AllowedCORSOrigins = list(c.AllowedCORSOrigins)
	c.GrantTypes = list(c.GrantTypes)
	c.ResponseTypes = list(c.ResponseTypes)
	c.Scopes = list(c.Scopes)
	c.OptionalScopes = list(c.OptionalScopes)
	if c.ClientURIVerification != nil {
		v := *c.ClientURIVerification
		c.ClientURIVerification = &v
	}
	c.CreatedAt = clonePtr(c.CreatedAt)
	c.UpdatedAt = clonePtr(c.UpdatedAt)
	c.PromotedAt = clonePtr(c.PromotedAt)
	return c
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func ptr[T any](v T) *T { return &v }

// newSecret returns a random client secret. Cloudflare's format is undocumented.
func newSecret() string { return "cfoauth_" + randomHex(24) }
