package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path"
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
	// patches are the PATCHes of a client as they arrived, before the emulator's
	// latency: the spec-edit latency ends there (latency.go).
	patches []patchArrival
}

// apiEvent is one Cloudflare request as answered.
type apiEvent struct {
	At     time.Duration
	Op     string
	Token  int
	Status int
	// Other marks the requests of the other tool of the shared-quota scenario.
	Other bool
}

// patchArrival is one PATCH /accounts/{a}/oauth_clients/{id} as it arrived.
type patchArrival struct {
	at         time.Time
	clientID   string
	clientName string // "" when the body did not set client_name
	status     int    // as answered
}

// headerOtherTool marks the requests of the other tool sharing the operator's
// Cloudflare user (shared.go), so that they are counted apart from the operator's.
const headerOtherTool = "X-Bench-Other-Tool"

func startEmulator(tokens map[string][]string, rateLimit int, window, latency time.Duration) *emulator {
	e := &emulator{Server: cfemu.New(cfemu.Options{
		Tokens: tokens, RateLimit: rateLimit, RateWindow: window, Latency: latency,
	}), start: time.Now()}
	e.http = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

func (e *emulator) apiURL() string { return e.http.URL + cfemu.BasePath }

func (e *emulator) close() { e.http.Close() }

// serve records the request's time, operation, token and status around the emulator,
// and a PATCH of a client with the moment it arrived.
func (e *emulator) serve(w http.ResponseWriter, r *http.Request) {
	var patch *patchArrival
	if r.Method == http.MethodPatch && opOfRequest(r.Method, r.URL.Path) == opPatch {
		patch = readPatch(r)
	}
	rec := &statusRecorder{ResponseWriter: w}
	e.ServeHTTP(rec, r)
	if !strings.HasPrefix(r.URL.Path, cfemu.BasePath+"/") {
		return
	}
	ev := apiEvent{At: time.Since(e.start), Op: opOfRequest(r.Method, r.URL.Path), Token: tokenIndex(r), Status: rec.status,
		Other: r.Header.Get(headerOtherTool) != ""}
	e.mu.Lock()
	e.events = append(e.events, ev)
	if patch != nil {
		patch.status = rec.status
		e.patches = append(e.patches, *patch)
	}
	e.mu.Unlock()
}

// readPatch notes a PATCH's arrival, client ID and the client_name it sets, and gives
// the emulator the body back unread.
func readPatch(r *http.Request) *patchArrival {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPatchBody))
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	var fields struct {
		ClientName string `json:"client_name"`
	}
	if err == nil {
		_ = json.Unmarshal(body, &fields)
	}
	return &patchArrival{at: at, clientID: path.Base(r.URL.Path), clientName: fields.ClientName}
}

// maxPatchBody is more than any PATCH the operator sends; the emulator refuses larger.
const maxPatchBody = 1<<20 + 1

// patchesSince returns the PATCHes answered so far that arrived at or after t.
func (e *emulator) patchesSince(t time.Time) []patchArrival {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []patchArrival
	for _, p := range e.patches {
		if !p.at.Before(t) {
			out = append(out, p)
		}
	}
	return out
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

// since is t as an event time (since the manager's start).
func (e *emulator) since(t time.Time) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return t.Sub(e.start)
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

// opsOfEvents counts the events keep selects, by operation, and those answered 429.
func opsOfEvents(events []apiEvent, keep func(apiEvent) bool) (map[string]int, int) {
	ops, limited := map[string]int{}, 0
	for _, ev := range events {
		if !keep(ev) {
			continue
		}
		ops[ev.Op]++
		if ev.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	return ops, limited
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
