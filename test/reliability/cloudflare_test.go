package reliability_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Operations, as classified from method and path.
const (
	opList          = "list"
	opCreate        = "create"
	opGet           = "get"
	opUpdate        = "update"
	opDelete        = "delete"
	opRotate        = "rotate"
	opDeleteRotated = "delete-rotated"
	opScopes        = "scopes"
	opOther         = "other"
)

// call is one Cloudflare request as the emulator answered it.
type call struct {
	At       time.Time
	Op       string
	Account  string
	ClientID string
	// ClientName is the client_name sent to a create.
	ClientName string
	Token      string
	// Status is 0 when the connection was reset or the caller gave up.
	Status int
	// Remaining is r of the Ratelimit header answered (what the user has left in the
	// window); -1 when there was none.
	Remaining int
	// RetryAfter is the Retry-After answered (a 429's), 0 when there was none.
	RetryAfter time.Duration
}

// mutating reports whether the call changes Cloudflare when it succeeds.
func (c call) mutating() bool {
	switch c.Op {
	case opCreate, opUpdate, opDelete, opRotate, opDeleteRotated:
		return true
	}
	return false
}

// cloudflare is the emulator behind a local HTTP server. It timestamps every request
// (the emulator keeps counts, not times) and can run a trap on a chosen request: kill
// the manager before or after the response reaches it, for instance.
type cloudflare struct {
	*cfemu.Server
	srv *httptest.Server

	mu    sync.Mutex
	calls []call
	trap  *trap
}

// trap runs fire on the remaining-th call that matches; it fires once.
type trap struct {
	match     func(call) bool
	remaining int
	// beforeDelivery fires before the response is written; with drop the response is
	// never written (the connection is closed), as when the caller died in between.
	beforeDelivery, drop bool
	fire                 func(call)
	fired                chan call
}

func newTrap(k int, match func(call) bool, fire func(call)) *trap {
	return &trap{match: match, remaining: k, fire: fire, fired: make(chan call, 1)}
}

// Tokens the emulator accepts, for every account.
const (
	tokenA = "rel-token-a"
	tokenB = "rel-token-b"
)

// strictSeed seeds the strict emulator's shuffled orders: a run is reproducible.
const strictSeed = 20261130

// newCloudflare is the emulator every scenario runs against: tokens A and B for every
// account, no rate limit, and every strict mode on (cfemu.Harsh): where Cloudflare's
// behaviour is undocumented it plays the harsher answer (a rotate conflict as 400, lists
// and list fields in a shuffled order, a promotion judged on the client before the
// PATCH), so that no scenario passes only because the emulator is kind.
func newCloudflare(t *testing.T) *cloudflare {
	return newCloudflareWith(t, cfemu.Options{})
}

// newCloudflareWith is newCloudflare with other options (users, a rate limit); Tokens
// default to A and B, and Strict is always cfemu.Harsh(strictSeed).
func newCloudflareWith(t *testing.T, opts cfemu.Options) *cloudflare {
	if opts.Tokens == nil {
		opts.Tokens = map[string][]string{tokenA: nil, tokenB: nil}
	}
	opts.Strict = cfemu.Harsh(strictSeed)
	cf := &cloudflare{Server: cfemu.New(opts)}
	cf.srv = httptest.NewServer(http.HandlerFunc(cf.serve))
	t.Cleanup(cf.srv.Close)
	return cf
}

// apiURL is what --cloudflare-api-url takes.
func (cf *cloudflare) apiURL() string { return cf.srv.URL + cfemu.BasePath }

func (cf *cloudflare) serve(w http.ResponseWriter, r *http.Request) {
	emu := cf.Server
	if !strings.HasPrefix(r.URL.Path, cfemu.BasePath+"/") {
		emu.ServeHTTP(w, r)
		return
	}
	c := classify(r)
	if c.Op == opCreate {
		c.ClientName = clientNameOf(r)
	}
	rec := httptest.NewRecorder()
	if !serveRecorded(emu, rec, r) {
		c.Status, c.Remaining = 0, -1
		cf.record(c)
		panic(http.ErrAbortHandler) // a reset fault: close the connection
	}
	c.Status = rec.Code
	c.Remaining = remainingOf(rec.Header())
	if secs, err := strconv.Atoi(rec.Header().Get("Retry-After")); err == nil {
		c.RetryAfter = time.Duration(secs) * time.Second
	}
	if r.Context().Err() != nil {
		c.Status = 0 // the caller gave up (a timeout fault); nothing reached it
	}
	if c.Op == opCreate && c.Status == http.StatusOK {
		c.ClientID = createdID(rec.Body.Bytes())
	}
	cf.record(c)

	tr := cf.spring(c)
	if tr != nil && tr.beforeDelivery {
		tr.fire(c)
		tr.fired <- c
		if tr.drop {
			panic(http.ErrAbortHandler)
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
	if tr != nil && !tr.beforeDelivery {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		tr.fire(c)
		tr.fired <- c
	}
}

// serveRecorded runs the emulator into rec; false means it aborted the connection.
func serveRecorded(emu http.Handler, rec *httptest.ResponseRecorder, r *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if err, isErr := v.(error); !isErr || !errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			ok = false
		}
	}()
	emu.ServeHTTP(rec, r)
	return true
}

// opOf maps "<path segments> <method>" below /accounts/{a}/oauth_clients to an
// operation.
var opOf = map[string]string{
	"3 GET": opList, "3 POST": opCreate,
	"4 GET": opGet, "4 PATCH": opUpdate, "4 DELETE": opDelete,
	"5 POST": opRotate, "5 DELETE": opDeleteRotated,
}

// classify reads the operation, account and client from the request.
func classify(r *http.Request) call {
	c := call{At: time.Now(), Op: opOther, Token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, cfemu.BasePath), "/"), "/")
	if len(segs) == 2 && segs[0] == "oauth" && segs[1] == "scopes" {
		c.Op = opScopes
		return c
	}
	if len(segs) < 3 || segs[0] != "accounts" || segs[2] != "oauth_clients" {
		return c
	}
	c.Account = segs[1]
	if len(segs) >= 4 {
		c.ClientID = segs[3]
	}
	if op, ok := opOf[fmt.Sprintf("%d %s", len(segs), r.Method)]; ok {
		c.Op = op
	}
	return c
}

// remainingOf reads r from a `Ratelimit: "default";r=50;t=30` header; -1 without one.
func remainingOf(h http.Header) int {
	for _, p := range strings.Split(h.Get("Ratelimit"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "r="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return -1
}

// clientNameOf reads client_name from a create body, leaving the body readable.
func clientNameOf(r *http.Request) string {
	if r.Body == nil {
		return ""
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var in struct {
		ClientName string `json:"client_name"`
	}
	_ = json.Unmarshal(body, &in)
	return in.ClientName
}

// createdID reads the client_id of a successful create response.
func createdID(body []byte) string {
	var env struct {
		Result cfapi.OAuthClient `json:"result"`
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	return env.Result.ClientID
}

func (cf *cloudflare) record(c call) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cf.calls = append(cf.calls, c)
}

// spring takes the armed trap if this call sets it off.
func (cf *cloudflare) spring(c call) *trap {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	tr := cf.trap
	if tr == nil || !tr.match(c) {
		return nil
	}
	tr.remaining--
	if tr.remaining > 0 {
		return nil
	}
	cf.trap = nil
	return tr
}

// arm sets a trap, replacing any other.
func (cf *cloudflare) arm(tr *trap) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	cf.trap = tr
}

// disarm removes the trap if it has not fired.
func (cf *cloudflare) disarm(tr *trap) {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.trap == tr {
		cf.trap = nil
	}
}

// callsOf returns the calls for an account (every account when ""), made in [from, to).
func (cf *cloudflare) callsOf(account string, from, to time.Time) []call {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	var out []call
	for _, c := range cf.calls {
		if (account == "" || c.Account == account || c.Op == opScopes) && !c.At.Before(from) && c.At.Before(to) {
			out = append(out, c)
		}
	}
	return out
}

// clientsByName groups an account's remote clients by client_name.
func (cf *cloudflare) clientsByName(account string) map[string][]cfapi.OAuthClient {
	out := map[string][]cfapi.OAuthClient{}
	for _, c := range cf.Clients(account) {
		out[c.ClientName] = append(out[c.ClientName], c)
	}
	return out
}
