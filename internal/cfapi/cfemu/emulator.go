// Package cfemu is an in-memory emulator of the Cloudflare v4 API for IAM OAuth
// clients (/accounts/{account_id}/oauth_clients...) and the OAuth scope catalogue
// (/oauth/scopes). It is an http.Handler, so tests run it in-process behind
// httptest.NewServer, and cmd/cf-emulator serves it as a binary.
//
// It follows the documented API and, where Cloudflare documents nothing, the choices
// listed in docs/emulator.md (error codes in codes.go). Besides the API it offers
// fault injection, rate limiting, a request log, a fake clock and control endpoints
// under /_emulator/ mirrored by Go methods on Server.
package cfemu

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
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
}

var accountIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Options configure a Server. The zero value is a server that accepts no credential.
type Options struct {
	// Tokens maps each accepted API token to the accounts it may use; an empty list
	// means every account.
	Tokens map[string][]string
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
}

// RecordedRequest is one public API request as received and answered.
type RecordedRequest struct {
	Method string `json:"method"`
	// Route is the route key ("METHOD template") or RouteUnmatched.
	Route string `json:"route"`
	// Path is the escaped path below BasePath, without the query.
	Path string `json:"path"`
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

	mu       sync.Mutex
	accounts map[string]*account
	limits   map[string]*window
	faults   faultState
	stats    Stats
	log      []RecordedRequest
	rays     uint64
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
}

// New returns an emulator with no clients.
func New(opts Options) *Server {
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
	s.resetLocked()
	return s
}

func (s *Server) resetLocked() {
	s.accounts = map[string]*account{}
	s.limits = map[string]*window{}
	s.faults = newFaultState(Faults{})
	s.stats = Stats{Requests: map[string]int{}}
	s.log = nil
}

// ServeHTTP serves the API under BasePath and, unless disabled, the control endpoints
// under /_emulator/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.EscapedPath()
	if !s.opts.DisableControl && (p == controlPrefix || strings.HasPrefix(p, controlPrefix+"/")) {
		s.serveControl(w, r, strings.TrimPrefix(p, controlPrefix))
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
	q := &request{method: r.Method, header: r.Header, body: body}
	full := r.URL.EscapedPath()
	if rel, ok := strings.CutPrefix(full, BasePath); ok && strings.HasPrefix(rel, "/") {
		q.path = rel
		q.tmpl, q.accountID, q.clientID = matchPath(rel)
	} else {
		q.path = full
	}

	if !sleep(r.Context(), s.opts.Latency) {
		s.mu.Lock()
		s.recordLocked(q, 0)
		s.mu.Unlock()
		return
	}

	s.mu.Lock()
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
// limiter, account checks and the handler, in that order.
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
	if fault != nil {
		s.stats.Faults++
		if !fault.AfterApply {
			return s.withRateHeaders(s.faultResponse(fault), nil)
		}
	}
	resp := s.authorisedLocked(q)
	if fault != nil {
		cred, _ := s.authenticate(q.header)
		resp = s.withRateHeaders(s.faultResponse(fault), cred)
	}
	return resp
}

// authorisedLocked authenticates, rate-limits, checks the account and runs the
// handler.
func (s *Server) authorisedLocked(q *request) response {
	cred, ok := s.authenticate(q.header)
	if !ok {
		return s.withRateHeaders(s.errorResponse(apiError(CodeAuthentication, "Authentication error", "")), nil)
	}
	if retry, limited := s.limitLocked(cred); limited {
		s.stats.RateLimited++
		resp := s.errorResponse(apiError(CodeRateLimited, "Rate limited: too many requests, please wait and throttle your request speed", ""))
		resp.header.Set("Retry-After", strconv.FormatInt(ceilSeconds(retry), 10))
		return s.withRateHeaders(resp, cred)
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
	return s.withRateHeaders(s.handleLocked(q), cred)
}

func (s *Server) handleLocked(q *request) response {
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

// credential is an authenticated caller: key identifies it for rate limiting.
type credential struct {
	key      string
	accounts []string
}

func (c *credential) allows(accountID string) bool {
	if len(c.accounts) == 0 {
		return true
	}
	for _, a := range c.accounts {
		if a == accountID {
			return true
		}
	}
	return false
}

// authenticate accepts "Authorization: Bearer <token>" or, when no Authorization
// header is sent, X-Auth-Email + X-Auth-Key.
func (s *Server) authenticate(h http.Header) (*credential, bool) {
	if auth := h.Get("Authorization"); auth != "" {
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, false
		}
		accounts, known := s.opts.Tokens[token]
		if !known || token == "" {
			return nil, false
		}
		return &credential{key: "token:" + token, accounts: accounts}, true
	}
	email, key := h.Get("X-Auth-Email"), h.Get("X-Auth-Key")
	if s.opts.Email != "" && s.opts.APIKey != "" && email == s.opts.Email && key == s.opts.APIKey {
		return &credential{key: "key:" + email}, true
	}
	return nil, false
}

// window is one credential's sliding rate-limit window.
type window struct {
	hits         []time.Time
	blockedUntil time.Time
}

// limitLocked counts a request against cred and reports whether it is refused and for
// how long the credential stays blocked.
func (s *Server) limitLocked(cred *credential) (time.Duration, bool) {
	if s.opts.RateLimit <= 0 {
		return 0, false
	}
	now := s.now()
	w := s.windowLocked(cred, now)
	if now.Before(w.blockedUntil) {
		return w.blockedUntil.Sub(now), true
	}
	if len(w.hits) >= s.opts.RateLimit {
		// Cloudflare blocks the caller for the next full window once it is exceeded.
		w.blockedUntil = now.Add(s.opts.RateWindow)
		return s.opts.RateWindow, true
	}
	w.hits = append(w.hits, now)
	return 0, false
}

func (s *Server) windowLocked(cred *credential, now time.Time) *window {
	w := s.limits[cred.key]
	if w == nil {
		w = &window{}
		s.limits[cred.key] = w
	}
	cut := 0
	for cut < len(w.hits) && !w.hits[cut].After(now.Add(-s.opts.RateWindow)) {
		cut++
	}
	w.hits = w.hits[cut:]
	return w
}

// Nominal policy advertised when the emulator does not enforce a limit: Cloudflare's
// global 1,200 requests per 5 minutes.
const (
	nominalQuota  = 1200
	nominalWindow = 5 * time.Minute
)

// withRateHeaders adds Ratelimit and Ratelimit-Policy for cred (nil: an anonymous
// caller, who sees the full quota).
func (s *Server) withRateHeaders(resp response, cred *credential) response {
	if resp.header == nil {
		resp.header = http.Header{}
	}
	quota, win := s.opts.RateLimit, s.opts.RateWindow
	if quota <= 0 {
		quota, win = nominalQuota, nominalWindow
	}
	remaining, reset := quota, time.Duration(0)
	if cred != nil && s.opts.RateLimit > 0 {
		now := s.now()
		w := s.windowLocked(cred, now)
		remaining = max(quota-len(w.hits), 0)
		if len(w.hits) > 0 {
			reset = w.hits[0].Add(win).Sub(now)
		}
		if now.Before(w.blockedUntil) {
			remaining, reset = 0, w.blockedUntil.Sub(now)
		}
	}
	resp.header.Set("Ratelimit", fmt.Sprintf(`"default";r=%d;t=%d`, remaining, ceilSeconds(reset)))
	resp.header.Set("Ratelimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, quota, ceilSeconds(win)))
	return resp
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(math.Ceil(d.Seconds()))
}

func (s *Server) recordLocked(q *request, status int) {
	route := q.route()
	s.stats.Requests[route]++
	var body []byte
	if len(q.body) > 0 {
		body = append([]byte(nil), q.body...)
	}
	s.log = append(s.log, RecordedRequest{Method: q.method, Route: route, Path: q.path, Body: body, Status: status})
	if len(s.log) > maxLoggedCalls {
		s.log = s.log[len(s.log)-maxLoggedCalls:]
	}
}

// deliver writes resp, hanging first or aborting the connection for faults.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, resp response) {
	if resp.hang != nil {
		if d := *resp.hang; d > 0 {
			if !sleep(r.Context(), d) {
				return
			}
		} else {
			<-r.Context().Done()
			return
		}
	}
	if resp.abort {
		// net/http closes the connection without a response and without logging.
		panic(http.ErrAbortHandler)
	}
	for k, v := range resp.header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// envelope is Cloudflare's v4 response wrapper.
type envelope struct {
	Success    bool                `json:"success"`
	Errors     []cfapi.ErrorDetail `json:"errors"`
	Messages   []cfapi.ErrorDetail `json:"messages"`
	Result     any                 `json:"result"`
	ResultInfo *resultInfo         `json:"result_info,omitempty"`
}

type resultInfo struct {
	Count      int `json:"count"`
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	TotalCount int `json:"total_count"`
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"success":false,"errors":[{"code":12020,"message":"emulator could not encode its response"}],"messages":[],"result":null}`)
		status = http.StatusInternalServerError
	}
	return response{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

func (s *Server) success(result any, info *resultInfo) response {
	return jsonResponse(http.StatusOK, envelope{Success: true, Errors: []cfapi.ErrorDetail{}, Messages: []cfapi.ErrorDetail{}, Result: result, ResultInfo: info})
}

// errorResponse answers with the status of the first error's code (see codes.go).
func (s *Server) errorResponse(errs ...cfapi.ErrorDetail) response {
	status := http.StatusBadRequest
	if len(errs) > 0 {
		if st := statusOf[errs[0].Code]; st != 0 {
			status = st
		}
	}
	return jsonResponse(status, envelope{Errors: errs, Messages: []cfapi.ErrorDetail{}})
}

func apiError(code int, message, pointer string) cfapi.ErrorDetail {
	d := cfapi.ErrorDetail{Code: code, Message: message}
	if pointer != "" {
		d.Source = &cfapi.ErrorSource{Pointer: pointer}
	}
	return d
}

// randomHex returns n random bytes as 2n lowercase hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}
