package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Operation names used in the results, from the emulator's route keys.
const (
	opList   = "List"
	opGet    = "GET"
	opCreate = "POST"
	opPatch  = "PATCH"
	opDelete = "DELETE"
	opScopes = "scopes"
	opOther  = "other"
)

var opOfRoute = map[string]string{
	cfemu.RouteListClients:  opList,
	cfemu.RouteGetClient:    opGet,
	cfemu.RouteCreateClient: opCreate,
	cfemu.RouteUpdateClient: opPatch,
	cfemu.RouteDeleteClient: opDelete,
	cfemu.RouteListScopes:   opScopes,
}

// opsOf folds the emulator's per-route counters into operation names.
func opsOf(st cfemu.Stats) map[string]int {
	out := map[string]int{}
	for route, n := range st.Requests {
		op, ok := opOfRoute[route]
		if !ok {
			op = opOther
		}
		out[op] += n
	}
	return out
}

// emulator is the in-process Cloudflare emulator behind a local HTTP server, with a
// timeline of the requests it answered (the emulator itself keeps counts, not times).
type emulator struct {
	*cfemu.Server
	http  *httptest.Server
	start time.Time

	mu     sync.Mutex
	events []apiEvent
}

// apiEvent is one Cloudflare request as answered.
type apiEvent struct {
	At     time.Duration
	Op     string
	Token  int
	Status int
}

func startEmulator(tokens map[string][]string, rateLimit int, window, latency time.Duration) *emulator {
	e := &emulator{Server: cfemu.New(cfemu.Options{
		Tokens: tokens, RateLimit: rateLimit, RateWindow: window, Latency: latency,
	}), start: time.Now()}
	e.http = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

func (e *emulator) apiURL() string { return e.http.URL + cfemu.BasePath }

func (e *emulator) close() { e.http.Close() }

// serve records the request's time, operation, token and status around the emulator.
func (e *emulator) serve(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	e.ServeHTTP(rec, r)
	if !strings.HasPrefix(r.URL.Path, cfemu.BasePath+"/") {
		return
	}
	ev := apiEvent{At: time.Since(e.start), Op: opOfRequest(r.Method, r.URL.Path), Token: tokenIndex(r), Status: rec.status}
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

// resetClock makes event times relative to now (the manager's start).
func (e *emulator) resetClock() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.start = time.Now()
	e.events = nil
}

func (e *emulator) timeline() []apiEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]apiEvent(nil), e.events...)
}

// opOfRequest classifies /client/v4/accounts/{a}/oauth_clients[/{id}] and /oauth/scopes;
// anything else (token verification, secret rotation) is opOther.
func opOfRequest(method, p string) string {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(p, cfemu.BasePath), "/"), "/")
	switch {
	case len(segs) == 2 && segs[0] == "oauth" && segs[1] == "scopes":
		return opScopes
	case len(segs) < 3 || len(segs) > 4 || segs[0] != "accounts" || segs[2] != "oauth_clients":
		return opOther
	}
	if op, ok := opOfClientRoute[method+" "+strconv.Itoa(len(segs))]; ok {
		return op
	}
	return opOther
}

// opOfClientRoute maps "METHOD segments" of an oauth_clients path to its operation: 3
// segments is the collection, 4 one client.
var opOfClientRoute = map[string]string{
	http.MethodGet + " 3":    opList,
	http.MethodPost + " 3":   opCreate,
	http.MethodGet + " 4":    opGet,
	http.MethodPatch + " 4":  opPatch,
	http.MethodDelete + " 4": opDelete,
}

// tokenIndex returns k of "Bearer bench-token-k", or -1.
func tokenIndex(r *http.Request) int {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	k, err := strconv.Atoi(strings.TrimPrefix(tok, tokenPrefix))
	if err != nil || !strings.HasPrefix(tok, tokenPrefix) {
		return -1
	}
	return k
}

func tokenOf(k int) string { return fmt.Sprintf("%s%d", tokenPrefix, k) }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
