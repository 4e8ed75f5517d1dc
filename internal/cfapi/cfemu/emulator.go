// Package cfemu is an in-memory emulator of the Cloudflare v4 API for IAM OAuth
// clients (/accounts/{account_id}/oauth_clients...), the OAuth scope catalogue
// (/oauth/scopes), and zones and their DNS records (/zones...), which the
// verification of a client_uri host in an emulated zone reads. It is an http.Handler,
// so tests run it in-process behind httptest.NewServer, and cmd/cf-emulator serves it
// as a binary.
//
// It follows the documented API and, where Cloudflare documents nothing, the choices
// listed in docs/emulator.md (error codes in codes.go). Besides the API it offers
// fault injection (including writes that commit after their request failed), per-user
// rate limiting, read-only tokens, strict modes that play the harsher reading of
// undocumented behaviour, a request log, a fake clock and control endpoints under
// /_emulator/ mirrored by Go methods on Server.
package cfemu

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// BasePath is where the API is served; a client's base URL is the server URL + BasePath.
const BasePath = "/client/v4"

const (
	controlPrefix   = "/_emulator"
	maxRequestBytes = 1 << 20
	maxLoggedCalls  = 10000
)

// Route keys: "METHOD template". They name requests in Stats, RecordedRequest and
// FaultRule.
const (
	RouteListClients         = "GET /accounts/{account_id}/oauth_clients"
	RouteCreateClient        = "POST /accounts/{account_id}/oauth_clients"
	RouteGetClient           = "GET /accounts/{account_id}/oauth_clients/{oauth_client_id}"
	RouteUpdateClient        = "PATCH /accounts/{account_id}/oauth_clients/{oauth_client_id}"
	RouteDeleteClient        = "DELETE /accounts/{account_id}/oauth_clients/{oauth_client_id}"
	RouteRotateSecret        = "POST /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"
	RouteDeleteRotatedSecret = "DELETE /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"
	RouteListScopes          = "GET /oauth/scopes"
	// Zones and DNS records (zones.go, dns.go).
	RouteListZones       = "GET /zones"
	RouteGetZone         = "GET /zones/{zone_id}"
	RouteListDNSRecords  = "GET /zones/{zone_id}/dns_records"
	RouteCreateDNSRecord = "POST /zones/{zone_id}/dns_records"
	RouteGetDNSRecord    = "GET /zones/{zone_id}/dns_records/{dns_record_id}"
	RoutePatchDNSRecord  = "PATCH /zones/{zone_id}/dns_records/{dns_record_id}"
	RoutePutDNSRecord    = "PUT /zones/{zone_id}/dns_records/{dns_record_id}"
	RouteDeleteDNSRecord = "DELETE /zones/{zone_id}/dns_records/{dns_record_id}"
	// Token verification (tokens.go).
	RouteVerifyUserToken    = "GET /user/tokens/verify"
	RouteVerifyAccountToken = "GET /accounts/{account_id}/tokens/verify"
	// RouteUnmatched counts requests that matched no route (answered 404/405).
	RouteUnmatched = "(unmatched)"
)

const (
	tmplClients      = "/accounts/{account_id}/oauth_clients"
	tmplClient       = "/accounts/{account_id}/oauth_clients/{oauth_client_id}"
	tmplRotateSecret = "/accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"
	tmplScopes       = "/oauth/scopes"
)

// methodsOf lists the methods each path template answers; anything else is a 405.
var methodsOf = map[string][]string{
	tmplClients:      {http.MethodGet, http.MethodPost},
	tmplClient:       {http.MethodGet, http.MethodPatch, http.MethodDelete},
	tmplRotateSecret: {http.MethodPost, http.MethodDelete},
	tmplScopes:       {http.MethodGet},
	tmplZones:        {http.MethodGet},
	tmplZone:         {http.MethodGet},
	tmplDNSRecords:   {http.MethodGet, http.MethodPost},
	tmplDNSRecord:    {http.MethodGet, http.MethodPatch, http.MethodPut, http.MethodDelete},
	tmplUserVerify:   {http.MethodGet},
	tmplAcctVerify:   {http.MethodGet},
}

var accountIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Options configure a Server. The zero value is a server that accepts no credential.
type Options struct {
	// Tokens maps each accepted API token to the accounts it may use; an empty list
	// means every account.
	Tokens map[string][]string
	// Users maps an API token to the Cloudflare user that owns it. Cloudflare's rate limit
	// (1,200 requests / 5 minutes) is per user, so tokens of one user share one window,
	// one block and one Ratelimit header count. A token not listed is a user of its own;
	// the legacy email/key pair is the user named by its email.
	Users map[string]string
	// ReadOnlyTokens hold only "OAuth Client Read": List, Get and GET /oauth/scopes work;
	// every write (POST, PATCH, DELETE, rotate, delete-rotated) answers 403. A token
	// listed here but not in Tokens is accepted for every account.
	ReadOnlyTokens []string
	// Email and APIKey, when both set, are an accepted legacy credential pair for
	// every account.
	Email, APIKey string
	// VerifyAfter flips a client_uri verification from in_progress to verified once
	// this long has passed since it started; 0 never verifies on its own.
	VerifyAfter time.Duration
	// RateLimit requests per RateWindow per credential (sliding window); exceeding it
	// answers 429 and blocks the credential for a whole RateWindow. 0 is unlimited.
	RateLimit  int
	RateWindow time.Duration
	// Latency is added before every public API request is handled (not control
	// requests); a cancelled request stops waiting.
	Latency time.Duration
	// Scopes is the scope catalogue; nil means a built-in realistic default.
	Scopes []cfapi.OAuthScope
	// DisableControl turns /_emulator/* into unknown routes.
	DisableControl bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Strict selects harsher answers where Cloudflare's behaviour is undocumented.
	// The zero value is the default, lenient emulator. New panics if it is invalid
	// (see Strict.Validate).
	Strict Strict

	// Zones are created by New, and again (same ids, no records) by Reset. New panics
	// on an invalid or duplicate one.
	Zones []ZoneSpec
	// DNS gives tokens zone and DNS permissions. A token listed here but nowhere else
	// is accepted for zone and DNS routes only (OAuth routes answer 403). A token not
	// listed has no zone or DNS permission; the legacy e-mail + key pair has all.
	DNS map[string]DNSPermissions
	// DNSPropagation is how long a matching TXT record must have been present before
	// the verification of a client_uri host inside an emulated zone turns verified.
	// 0 means DefaultDNSPropagation; negative means at once.
	DNSPropagation time.Duration
	// DNSVerificationTimeout is how long the verification of a client_uri host inside
	// an emulated zone waits for its TXT record before it fails. 0 means
	// DefaultDNSVerificationTimeout (48 h, as Cloudflare); negative means never.
	DNSVerificationTimeout time.Duration

	// TokenInfo is what the verify endpoints report about a token: its id, status,
	// expiry and owner (tokens.go). A token without an entry is active, user-owned,
	// never expires and has an id derived from it. A disabled, expired or not yet valid
	// token is refused by every other route. A token listed here but nowhere else is
	// accepted by the verify endpoints only (other routes answer 403). New panics on an
	// invalid entry.
	TokenInfo map[string]TokenInfo
}

// Stats counts public API requests (never Go helper or control calls).
type Stats struct {
	// Requests per route key, e.g. RouteUpdateClient.
	Requests map[string]int `json:"requests"`
	// RateLimited counts requests answered 429 by the rate limiter (not by faults).
	RateLimited int `json:"rate_limited"`
	// Faults counts injected faults.
	Faults int `json:"faults"`
	// Clients is the number of clients per account.
	Clients map[string]int `json:"clients"`
	// DNSRecords is the number of DNS records per zone id (zones without any are left
	// out).
	DNSRecords map[string]int `json:"dns_records"`
	// PendingCommits is how many FaultRule.CommitAfter writes have not landed yet
	// (state, not a counter: ResetStats leaves it alone).
	PendingCommits int `json:"pending_commits"`
}

// RecordedRequest is one public API request as received and answered.
type RecordedRequest struct {
	Method string `json:"method"`
	// Route is the route key ("METHOD template") or RouteUnmatched.
	Route string `json:"route"`
	// Path is the escaped path below BasePath, without the query.
	Path string `json:"path"`
	// Query is the raw query string as sent, e.g. "name=example.com&per_page=50".
	Query string `json:"query,omitempty"`
	// Body is the request body as sent.
	Body []byte `json:"body,omitempty"`
	// Status is the status answered; 0 when the request was cancelled during the
	// latency or the connection was reset by a fault.
	Status int `json:"status"`
}

// Server is the emulator. All methods are safe for concurrent use.
type Server struct {
	opts      Options
	now       func() time.Time
	scopes    []cfapi.OAuthScope
	catalogue map[string]bool
	readOnly  map[string]bool

	mu       sync.Mutex
	accounts map[string]*account
	limits   map[string]*window // per user (credential.user)
	faults   faultState
	strict   strictState
	pending  pendingCommits
	stats    Stats
	log      []RecordedRequest
	rays     uint64
	dns      dnsState
	tokens   tokenState
}

type account struct {
	clients map[string]*clientRecord
	order   []string
}

// clientRecord is a stored client with what Cloudflare keeps but never shows.
type clientRecord struct {
	c             cfapi.OAuthClient
	secret        string
	previous      string
	verifyStarted time.Time
	// dnsSeen is when the TXT record that verifies dnsKey (host and text) last
	// appeared and has been present since; zero while there is none (dnsverify.go).
	dnsSeen time.Time
	dnsKey  string
}

// New returns an emulator with no clients. It panics when opts.Strict is invalid: a
// broken setting is a bug in the test.
func New(opts Options) *Server {
	if err := opts.Strict.Validate(); err != nil {
		panic("cfemu.New: " + err.Error())
	}
	s := &Server{opts: opts, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.scopes = opts.Scopes
	if s.scopes == nil {
		s.scopes = defaultScopes()
	}
	s.catalogue = make(map[string]bool, len(s.scopes))
	for _, sc := range s.scopes {
		s.catalogue[sc.ID] = true
	}
	s.readOnly = make(map[string]bool, len(opts.ReadOnlyTokens))
	for _, t := range opts.ReadOnlyTokens {
		s.readOnly[t] = true
	}
	if err := s.initDNS(); err != nil {
		panic("cfemu.New: " + err.Error())
	}
	if err := s.initTokens(); err != nil {
		panic("cfemu.New: " + err.Error())
	}
	s.resetLocked()
	return s
}

func (s *Server) resetLocked() {
	s.accounts = map[string]*account{}
	s.limits = map[string]*window{}
	s.faults = newFaultState(Faults{})
	s.strict = newStrictState(s.opts.Strict)
	s.pending = pendingCommits{}
	s.stats = Stats{Requests: map[string]int{}}
	s.log = nil
	s.resetDNSLocked()
	s.resetTokensLocked()
}

// ServeHTTP serves the API under BasePath and, unless disabled, the control endpoints
// under /_emulator/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if !s.opts.DisableControl && (p == controlPrefix || strings.HasPrefix(p, controlPrefix+"/")) {
		s.serveControl(w, r, strings.TrimPrefix(p, controlPrefix))
		return
	}
	if serveDiscovery(w, r) {
		return
	}
	s.serveAPI(w, r)
}

// request is a parsed public API request.
type request struct {
	method    string
	path      string // below BasePath
	tmpl      string // "" when unmatched
	accountID string
	clientID  string
	zoneID    string
	recordID  string
	query     string // raw, as sent
	body      []byte
	header    http.Header
}

func (q *request) route() string {
	if q.tmpl == "" {
		return RouteUnmatched
	}
	return q.method + " " + q.tmpl
}

// response is what a handler decided; deliver writes it. hang and abort come only
// from faults.
type response struct {
	status int
	header http.Header
	body   []byte
	hang   *time.Duration
	abort  bool
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBytes+1))
	q := &request{method: r.Method, header: r.Header, body: body, query: r.URL.RawQuery}
	full := r.URL.EscapedPath()
	if rel, ok := strings.CutPrefix(full, BasePath); ok && strings.HasPrefix(rel, "/") {
		q.path = rel
		q.tmpl, q.accountID, q.clientID = matchPath(rel)
		if q.tmpl == "" {
			q.tmpl, q.zoneID, q.recordID = matchZonePath(rel)
		}
		if q.tmpl == "" {
			q.tmpl, q.accountID = matchTokenPath(rel)
		}
	} else {
		q.path = full
	}

	if !sleep(r.Context(), s.opts.Latency) {
		s.mu.Lock()
		s.commitDueLocked()
		s.recordLocked(q, 0)
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
	s.commitDueLocked()
	var resp response
	switch {
	case err != nil || len(body) > maxRequestBytes:
		resp = s.errorResponse(apiError(CodeInvalidBody, "request body is unreadable or larger than 1 MiB", ""))
	default:
		resp = s.processLocked(q)
	}
	if resp.header == nil {
		resp.header = http.Header{}
	}
	s.rays++
	resp.header.Set("Cf-Ray", fmt.Sprintf("%016x-EMU", s.rays))
	status := resp.status
	if resp.abort {
		status = 0
	}
	s.recordLocked(q, status)
	s.mu.Unlock()

	s.deliver(w, r, resp)
}

// processLocked runs the request through routing, faults, authentication, the rate
// limiter, account and permission checks and the handler, in that order.
func (s *Server) processLocked(q *request) response {
	if q.tmpl == "" {
		return s.withRateHeaders(s.errorResponse(apiError(CodeNoRoute, "No route for the URI", "")), nil)
	}
	if !allowed(q.tmpl, q.method) {
		resp := s.errorResponse(apiError(CodeMethodNotAllowed, "Method "+q.method+" not allowed for "+q.tmpl, ""))
		resp.header.Set("Allow", strings.Join(methodsOf[q.tmpl], ", "))
		return s.withRateHeaders(resp, nil)
	}
	fault := s.faults.pick(q.route())
	if fault == nil {
		return s.gateLocked(q, s.handleLocked)
	}
	s.stats.Faults++
	if !fault.AfterApply && fault.CommitAfter <= 0 {
		return s.withRateHeaders(s.faultResponse(fault), nil)
	}
	// The request is authenticated, counted and run (AfterApply) or planned to land
	// later (CommitAfter); either way its answer is lost and the fault is sent.
	handle := s.handleLocked
	if fault.CommitAfter > 0 {
		handle = func(q *request) response { return s.commitLaterLocked(q, fault.CommitAfter) }
	}
	s.gateLocked(q, handle)
	cred, _ := s.authenticate(q.header)
	return s.withRateHeaders(s.faultResponse(fault), cred)
}

// gateLocked authenticates, rate-limits, checks the account and the token's
// permission, and then runs handle.
func (s *Server) gateLocked(q *request, handle func(*request) response) response {
	if isTokenTemplate(q.tmpl) {
		return s.gateVerifyLocked(q, handle)
	}
	cred, ok := s.authenticate(q.header)
	if !ok {
		return s.withRateHeaders(s.errorResponse(apiError(CodeAuthentication, "Authentication error", "")), nil)
	}
	if refused := s.refuseInactiveLocked(cred); refused != nil {
		return s.withRateHeaders(*refused, nil)
	}
	if resp, limited := s.rateLimitedLocked(cred); limited {
		return resp
	}
	if isZoneTemplate(q.tmpl) {
		return s.withRateHeaders(s.gateZoneLocked(q, cred, handle), cred)
	}
	if !cred.oauth {
		return s.withRateHeaders(s.errorResponse(apiError(CodeForbidden,
			"Unauthorized to access requested resource: the token holds no OAuth Client permission", "")), cred)
	}
	if q.tmpl != tmplScopes {
		if !accountIDPattern.MatchString(q.accountID) {
			resp := s.errorResponse(apiError(CodeNoRoute,
				"Could not route to "+BasePath+q.path+", perhaps your object identifier is invalid?", ""))
			resp.status = http.StatusBadRequest
			return s.withRateHeaders(resp, cred)
		}
		if !cred.allows(q.accountID) {
			return s.withRateHeaders(s.errorResponse(apiError(CodeForbidden, "Unauthorized to access requested resource", "")), cred)
		}
	}
	if !cred.mayWrite(q.method) {
		return s.withRateHeaders(s.errorResponse(apiError(CodeForbidden,
			"Unauthorized to access requested resource: the token holds OAuth Client Read only", "")), cred)
	}
	return s.withRateHeaders(handle(q), cred)
}

func (s *Server) handleLocked(q *request) response {
	if isZoneTemplate(q.tmpl) {
		return s.handleZoneLocked(q)
	}
	if isTokenTemplate(q.tmpl) {
		return s.verifyTokenLocked(q)
	}
	switch q.route() {
	case RouteListClients:
		return s.listClients(q)
	case RouteCreateClient:
		return s.createClient(q)
	case RouteGetClient:
		return s.getClient(q)
	case RouteUpdateClient:
		return s.updateClient(q)
	case RouteDeleteClient:
		return s.deleteClient(q)
	case RouteRotateSecret:
		return s.rotateSecret(q)
	case RouteDeleteRotatedSecret:
		return s.deleteRotatedSecret(q)
	case RouteListScopes:
		return s.success(s.scopes, &resultInfo{Count: len(s.scopes), Page: 1, PerPage: len(s.scopes), TotalCount: len(s.scopes)})
	}
	return s.errorResponse(apiError(CodeNoRoute, "No route for the URI", ""))
}

// matchPath maps an escaped path below BasePath to its template and ids.
func matchPath(p string) (tmpl, accountID, clientID string) {
	raw := strings.Split(strings.TrimPrefix(p, "/"), "/")
	segs := make([]string, len(raw))
	for i, r := range raw {
		v, err := url.PathUnescape(r)
		if err != nil || v == "" {
			return "", "", ""
		}
		segs[i] = v
	}
	switch {
	case len(segs) == 2 && segs[0] == "oauth" && segs[1] == "scopes":
		return tmplScopes, "", ""
	case len(segs) < 3 || segs[0] != "accounts" || segs[2] != "oauth_clients":
		return "", "", ""
	case len(segs) == 3:
		return tmplClients, segs[1], ""
	case len(segs) == 4:
		return tmplClient, segs[1], segs[3]
	case len(segs) == 5 && segs[4] == "rotate_secret":
		return tmplRotateSecret, segs[1], segs[3]
	}
	return "", "", ""
}

func allowed(tmpl, method string) bool {
	for _, m := range methodsOf[tmpl] {
		if m == method {
			return true
		}
	}
	return false
}

func (s *Server) recordLocked(q *request, status int) {
	route := q.route()
	s.stats.Requests[route]++
	var body []byte
	if len(q.body) > 0 {
		body = append([]byte(nil), q.body...)
	}
	s.log = append(s.log, RecordedRequest{Method: q.method, Route: route, Path: q.path, Query: q.query, Body: body, Status: status})
	if len(s.log) > maxLoggedCalls {
		s.log = s.log[len(s.log)-maxLoggedCalls:]
	}
}
