package cfemu

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
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

func (s *Server) listClients(q *request) response {
	acct := s.accounts[q.accountID]
	out := []cfapi.OAuthClient{}
	if acct != nil {
		for _, id := range s.listOrder(acct) {
			out = append(out, s.apiView(acct.clients[id]))
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
	return s.success(s.apiView(rec), nil)
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
	rec, errResp := s.planCreate(q)
	if rec == nil {
		return errResp
	}
	s.commitCreate(q.accountID, rec, s.now())
	return s.success(cfapi.CreatedOAuthClient{OAuthClient: s.apiView(rec), ClientSecret: rec.secret}, nil)
}

// planCreate validates a Create and builds the record with its id and secret, not yet
// stamped or stored; on failure it returns nil and the error response.
func (s *Server) planCreate(q *request) (*clientRecord, response) {
	var f clientFields
	if e := decodeBody(q.body, &f); e != nil {
		return nil, s.errorResponse(*e)
	}
	if f.Visibility != nil {
		return nil, s.errorResponse(apiError(CodeVisibilityOnCreate,
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
		return nil, s.errorResponse(errs...)
	}
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
		return nil, s.errorResponse(errs...)
	}
	normaliseScopes(&c)
	rec := &clientRecord{c: c}
	if c.TokenEndpointAuthMethod != cfapi.AuthMethodNone {
		rec.secret = newSecret()
	}
	return rec, response{}
}

// commitCreate stamps a planned client as created at and stores it; verification of
// its client_uri starts then.
func (s *Server) commitCreate(accountID string, rec *clientRecord, at time.Time) {
	rec.c.CreatedAt, rec.c.UpdatedAt = ptr(at.UTC()), ptr(at.UTC())
	if rec.c.ClientURI != "" {
		s.startVerificationAt(rec, at)
	}
	s.store(accountID, rec)
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
	next, errs := s.planUpdate(rec, &f, s.now())
	if len(errs) > 0 {
		return s.errorResponse(errs...)
	}
	*rec = next
	return s.success(s.apiView(rec), nil)
}

// planUpdate computes the record as a PATCH with fields f made at time at would leave
// it, or every reason to refuse it. rec itself is not changed.
func (s *Server) planUpdate(rec *clientRecord, f *clientFields, at time.Time) (clientRecord, []cfapi.ErrorDetail) {
	next := *rec
	next.c = cloneClient(rec.c)
	f.apply(&next.c)
	errs := s.validate(&next.c)
	if e := s.updateClientURI(rec, &next, f.ClientURI, at); e != nil {
		errs = append(errs, *e)
	}
	if f.TokenEndpointAuthMethod != nil && (rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone) != (*f.TokenEndpointAuthMethod == cfapi.AuthMethodNone) {
		errs = append(errs, apiError(CodeAuthMethodChange,
			"token_endpoint_auth_method cannot switch between none and a client secret method; create a new client", "/token_endpoint_auth_method"))
	}
	if len(errs) > 0 {
		return clientRecord{}, errs
	}
	normaliseScopes(&next.c)
	if f.Visibility != nil {
		judged := &next.c
		if s.strict.st.PromotionBeforePatch {
			judged = &rec.c // Strict: fields sent alongside visibility do not count.
		}
		if errs := s.promote(judged, &next.c, *f.Visibility, at); len(errs) > 0 {
			return clientRecord{}, errs
		}
	}
	if !reflect.DeepEqual(next.c, rec.c) || next.verifyStarted != rec.verifyStarted {
		next.c.UpdatedAt = ptr(at.UTC())
	}
	return next, nil
}

// updateClientURI applies the verification rules for a PATCH that sends client_uri:
// a new host gets a new token and restarts verification (refused once the old host is
// verified); the same host restarts a failed or pending verification and leaves an
// in-progress or verified one alone.
func (s *Server) updateClientURI(old, next *clientRecord, sent *string, at time.Time) *cfapi.ErrorDetail {
	if sent == nil {
		return nil
	}
	ver := old.c.ClientURIVerification
	verified := ver != nil && ver.Status == cfapi.VerificationVerified
	sameHost := old.c.ClientURI != "" && *sent != "" && uriHost(old.c.ClientURI) == uriHost(*sent)
	switch {
	case sameHost:
		if ver == nil || ver.Status == cfapi.VerificationFailed || ver.Status == cfapi.VerificationPending {
			s.startVerificationAt(next, at)
		}
	case verified:
		e := apiError(CodeClientURILocked,
			fmt.Sprintf("client_uri host %q is verified and can no longer change; only its path may", uriHost(old.c.ClientURI)), "/client_uri")
		return &e
	case *sent == "":
		next.c.ClientURIVerification = nil
		next.verifyStarted = time.Time{}
	default:
		s.startVerificationAt(next, at)
	}
	return nil
}

// promote handles visibility in a PATCH: only "public", and only when judged (the
// client as it will be after this PATCH, or as it was before under
// Strict.PromotionBeforePatch) meets every precondition; one error per missing one.
// Success makes target public as of at.
func (s *Server) promote(judged, target *cfapi.OAuthClient, visibility string, at time.Time) []cfapi.ErrorDetail {
	switch {
	case visibility == cfapi.VisibilityPrivate:
		return []cfapi.ErrorDetail{apiError(CodeVisibilityValue, "visibility cannot be set to private: promotion to public is permanent", "/visibility")}
	case visibility != cfapi.VisibilityPublic:
		return []cfapi.ErrorDetail{apiError(CodeVisibilityValue, fmt.Sprintf("visibility %q is not allowed; the only accepted value is \"public\"", visibility), "/visibility")}
	case target.Visibility == cfapi.VisibilityPublic:
		return nil
	}
	var errs []cfapi.ErrorDetail
	gap := func(pointer, what string) {
		errs = append(errs, apiError(CodePromotionRefused, "cannot make the client public: "+what, pointer))
	}
	c := judged
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
		target.Visibility = cfapi.VisibilityPublic
		target.PromotedAt = ptr(at.UTC())
	}
	return errs
}

func (s *Server) deleteClient(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	s.removeClient(q.accountID, rec.c.ClientID)
	return s.success(map[string]string{"id": rec.c.ClientID}, nil)
}

// removeClient forgets a client; it reports whether there was one.
func (s *Server) removeClient(accountID, clientID string) bool {
	acct := s.accounts[accountID]
	if acct == nil || acct.clients[clientID] == nil {
		return false
	}
	delete(acct.clients, clientID)
	acct.order = slices.DeleteFunc(acct.order, func(id string) bool { return id == clientID })
	return true
}

func (s *Server) rotateSecret(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	if e := rotateRefusal(rec); e != nil {
		return s.errorResponse(*e)
	}
	applyRotate(rec, newSecret(), s.now())
	return s.success(map[string]string{"client_secret": rec.secret}, nil)
}

// rotateRefusal says why rec's secret cannot be rotated now, or nil.
func rotateRefusal(rec *clientRecord) *cfapi.ErrorDetail {
	var e cfapi.ErrorDetail
	switch {
	case rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone:
		e = apiError(CodeNoSecret, "clients with token_endpoint_auth_method none have no secret to rotate", "")
	case rec.c.HasRotatedSecret:
		e = apiError(CodeSecretAlreadyRotated,
			"the client already has a rotated secret; delete it (DELETE .../rotate_secret) before rotating again", "")
	default:
		return nil
	}
	return &e
}

// applyRotate makes secret the current one as of at; the old one stays valid.
func applyRotate(rec *clientRecord, secret string, at time.Time) {
	rec.previous, rec.secret = rec.secret, secret
	rec.c.HasRotatedSecret = true
	rec.c.UpdatedAt = ptr(at.UTC())
}

func (s *Server) deleteRotatedSecret(q *request) response {
	rec, errResp := s.lookup(q)
	if rec == nil {
		return errResp
	}
	if e := deleteRotatedRefusal(rec); e != nil {
		return s.errorResponse(*e)
	}
	applyDeleteRotated(rec, s.now())
	return s.success(map[string]string{"id": rec.c.ClientID}, nil)
}

// deleteRotatedRefusal says why rec has no rotated secret to delete now, or nil.
func deleteRotatedRefusal(rec *clientRecord) *cfapi.ErrorDetail {
	var e cfapi.ErrorDetail
	switch {
	case rec.c.TokenEndpointAuthMethod == cfapi.AuthMethodNone:
		e = apiError(CodeNoSecret, "clients with token_endpoint_auth_method none have no secret", "")
	case !rec.c.HasRotatedSecret:
		e = apiError(CodeNoRotatedSecret, "the client has no rotated secret to delete", "")
	default:
		return nil
	}
	return &e
}

// applyDeleteRotated makes the previous secret stop working as of at.
func applyDeleteRotated(rec *clientRecord, at time.Time) {
	rec.previous = ""
	rec.c.HasRotatedSecret = false
	rec.c.UpdatedAt = ptr(at.UTC())
}

// startVerification gives the record a new TXT token and (re)starts the clock now.
func (s *Server) startVerification(rec *clientRecord) { s.startVerificationAt(rec, s.now()) }

// startVerificationAt gives the record a new TXT token and (re)starts the clock at at.
func (s *Server) startVerificationAt(rec *clientRecord, at time.Time) {
	rec.c.ClientURIVerification = &cfapi.ClientURIVerification{
		Status: cfapi.VerificationInProgress,
		Text:   verificationPrefix + randomHex(16),
	}
	rec.verifyStarted = at
	s.trackClientDNSLocked(rec, at)
}

// refreshVerification is the lazy "DNS poller", run on every read: see
// refreshVerificationAt.
func (s *Server) refreshVerification(rec *clientRecord) { s.refreshVerificationAt(rec, s.now()) }

// refreshVerificationAt settles an unfinished verification as of t: verified once
// VerifyAfter has passed (in_progress only), failed once Strict.FailVerificationAfter
// has (pending or in_progress); whichever deadline is earlier wins, failed on a tie. It
// does not bump updated_at.
func (s *Server) refreshVerificationAt(rec *clientRecord, t time.Time) {
	verifyAt, failAt := s.verificationDeadlines(rec)
	switch {
	case !failAt.IsZero() && !t.Before(failAt) && (verifyAt.IsZero() || !verifyAt.Before(failAt)):
		rec.c.ClientURIVerification.Status = cfapi.VerificationFailed
	case !verifyAt.IsZero() && !t.Before(verifyAt):
		rec.c.ClientURIVerification.Status = cfapi.VerificationVerified
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
