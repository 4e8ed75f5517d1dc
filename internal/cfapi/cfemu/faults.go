package cfemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Fault kinds.
const (
	FaultInternalError = "500"           // 500 with an error envelope
	FaultBadGateway    = "502"           // 502 with an HTML body, as from the edge
	FaultUnavailable   = "503"           // 503 with an error envelope (+ retry-after if RetryAfter > 0)
	FaultRateLimited   = "429"           // 429 with an error envelope (+ retry-after if RetryAfter > 0)
	FaultUnauthorized  = "401"           // 401 Authentication error, as for a revoked token
	FaultTimeout       = "timeout"       // hang for Delay (0: until the request ends), then 504
	FaultReset         = "reset"         // close the connection without a response
	FaultMalformed     = "malformed"     // 200 with a truncated JSON body
	FaultSuccessFalse  = "success_false" // 200 with success:false and an empty errors[]
)

var faultKinds = []string{FaultInternalError, FaultBadGateway, FaultUnavailable, FaultRateLimited,
	FaultUnauthorized, FaultTimeout, FaultReset, FaultMalformed, FaultSuccessFalse}

// Faults is a set of rules applied to public API requests. The first rule that matches
// and fires decides the response.
type Faults struct {
	// Seed seeds the random source used by Probability, so runs are reproducible.
	Seed  int64       `json:"seed,omitempty"`
	Rules []FaultRule `json:"rules"`
}

// FaultRule injects one kind of failure.
type FaultRule struct {
	// Route is a route key such as RouteListClients, a bare template such as
	// "/accounts/{account_id}/oauth_clients" (every method), or "" for every public
	// route. Unmatched paths never fault.
	Route string `json:"route,omitempty"`
	// Kind is one of the Fault* constants.
	Kind string `json:"kind"`
	// Probability that a matching request faults; 0 means always.
	Probability float64 `json:"probability,omitempty"`
	// Count limits the rule to that many faults; 0 means unlimited.
	Count int `json:"count,omitempty"`
	// RetryAfter is the retry-after header in seconds for 429 and 503; 0 sends none.
	RetryAfter int `json:"retry_after,omitempty"`
	// Delay is how long a timeout hangs before answering 504; 0 hangs until the
	// client gives up. In JSON a Go duration string such as "2s".
	Delay time.Duration `json:"-"`
	// AfterApply runs the request for real first (state changes, e.g. a client is
	// created) and then answers with the fault: "the mutation happened but the
	// response was lost". Without AfterApply or CommitAfter the fault answers before
	// anything changes, including before authentication.
	AfterApply bool `json:"after_apply,omitempty"`
	// CommitAfter, when > 0, makes the request's mutation (Create, rotate_secret; also
	// PATCH/DELETE/delete-rotated if simple) land this long AFTER the request, while the
	// request itself is answered with the fault (e.g. a "timeout" 504, a "reset", a
	// 500): "the client gave up, and the write committed later". The mutation is
	// computed when the request arrives (validation, the new client id and secret) and
	// applied when due; if it is no longer valid when due (e.g. rotate while a rotated
	// secret exists, client deleted), it is dropped. Pending mutations are applied
	// lazily: at the start of every public API request and every Go helper / control
	// call whose clock time is >= their due time (so the fake clock drives them
	// deterministically). JSON "commit_after" as a Go duration string. CommitAfter
	// implies the request was authenticated and rate-limited like a real one. It cannot
	// be combined with AfterApply (Validate rejects that). At most 366 days.
	CommitAfter time.Duration `json:"-"`
}

type faultRuleJSON struct {
	Route       string  `json:"route,omitempty"`
	Kind        string  `json:"kind"`
	Probability float64 `json:"probability,omitempty"`
	Count       int     `json:"count,omitempty"`
	RetryAfter  int     `json:"retry_after,omitempty"`
	Delay       string  `json:"delay,omitempty"`
	AfterApply  bool    `json:"after_apply,omitempty"`
	CommitAfter string  `json:"commit_after,omitempty"`
}

// MarshalJSON writes Delay and CommitAfter as duration strings.
func (r FaultRule) MarshalJSON() ([]byte, error) {
	w := faultRuleJSON{Route: r.Route, Kind: r.Kind, Probability: r.Probability, Count: r.Count,
		RetryAfter: r.RetryAfter, AfterApply: r.AfterApply}
	w.Delay, w.CommitAfter = durationText(r.Delay), durationText(r.CommitAfter)
	return json.Marshal(w)
}

// UnmarshalJSON reads Delay and CommitAfter as duration strings such as "1500ms". An
// unknown field is an error: a misspelt option must not turn into a different fault.
func (r *FaultRule) UnmarshalJSON(b []byte) error {
	var w faultRuleJSON
	if err := decodeKnownFields(b, &w); err != nil {
		return err
	}
	out := FaultRule{Route: w.Route, Kind: w.Kind, Probability: w.Probability, Count: w.Count,
		RetryAfter: w.RetryAfter, AfterApply: w.AfterApply}
	var err error
	if out.Delay, err = parseDurationText("delay", w.Delay); err != nil {
		return err
	}
	if out.CommitAfter, err = parseDurationText("commit_after", w.CommitAfter); err != nil {
		return err
	}
	*r = out
	return nil
}

// Validate reports unknown kinds, out-of-range numbers and AfterApply combined with
// CommitAfter.
func (f Faults) Validate() error {
	for i, r := range f.Rules {
		known := false
		for _, k := range faultKinds {
			known = known || r.Kind == k
		}
		switch {
		case !known:
			return fmt.Errorf("rule %d: unknown fault kind %q (want one of %s)", i, r.Kind, strings.Join(faultKinds, ", "))
		case r.Probability < 0 || r.Probability > 1:
			return fmt.Errorf("rule %d: probability %v is outside [0, 1]", i, r.Probability)
		case r.Count < 0, r.RetryAfter < 0, r.Delay < 0, r.CommitAfter < 0:
			return fmt.Errorf("rule %d: count, retry_after, delay and commit_after must not be negative", i)
		case r.CommitAfter > maxDuration:
			return fmt.Errorf("rule %d: commit_after %s is longer than %s", i, r.CommitAfter, maxDuration)
		case r.CommitAfter > 0 && r.AfterApply:
			return fmt.Errorf("rule %d: after_apply and commit_after cannot be combined (the write lands either now or later)", i)
		}
	}
	return nil
}

// faultState is the active rules with their remaining counts (-1: unlimited).
type faultState struct {
	rules     []FaultRule
	remaining []int
	rng       *rand.Rand
}

func newFaultState(f Faults) faultState {
	st := faultState{rules: append([]FaultRule(nil), f.Rules...), rng: rand.New(rand.NewPCG(uint64(f.Seed), 0x5eed))}
	st.remaining = make([]int, len(f.Rules))
	for i, r := range f.Rules {
		st.remaining[i] = -1
		if r.Count > 0 {
			st.remaining[i] = r.Count
		}
	}
	return st
}

// pick returns the rule that fires for route, consuming one of its count.
func (st *faultState) pick(route string) *FaultRule {
	for i := range st.rules {
		r := &st.rules[i]
		if st.remaining[i] == 0 || !routeMatches(r.Route, route) {
			continue
		}
		if r.Probability > 0 && r.Probability < 1 && st.rng.Float64() >= r.Probability {
			continue
		}
		if st.remaining[i] > 0 {
			st.remaining[i]--
		}
		rule := *r
		return &rule
	}
	return nil
}

func routeMatches(pattern, route string) bool {
	switch {
	case pattern == "":
		return true
	case strings.Contains(pattern, " "):
		return pattern == route
	}
	_, tmpl, _ := strings.Cut(route, " ")
	return pattern == tmpl
}

const badGatewayHTML = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
`

// faultResponse builds what a rule answers.
func (s *Server) faultResponse(r *FaultRule) response {
	retry := func(resp response) response {
		if r.RetryAfter > 0 {
			resp.header.Set("Retry-After", strconv.Itoa(r.RetryAfter))
		}
		return resp
	}
	switch r.Kind {
	case FaultInternalError:
		return s.errorResponse(apiError(CodeInternal, "Internal server error (injected fault)", ""))
	case FaultBadGateway:
		return response{status: http.StatusBadGateway, header: http.Header{"Content-Type": {"text/html"}}, body: []byte(badGatewayHTML)}
	case FaultUnavailable:
		return retry(s.errorResponse(apiError(CodeUnavailable, "Service unavailable (injected fault)", "")))
	case FaultRateLimited:
		return retry(s.errorResponse(apiError(CodeRateLimited, "Rate limited (injected fault)", "")))
	case FaultUnauthorized:
		return s.errorResponse(apiError(CodeAuthentication, "Authentication error", ""))
	case FaultTimeout:
		resp := s.errorResponse(apiError(CodeTimeout, "Gateway timeout (injected fault)", ""))
		resp.hang = &r.Delay
		return resp
	case FaultReset:
		return response{abort: true}
	case FaultMalformed:
		return response{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}},
			body: []byte(`{"success":true,"errors":[],"messages":[],"result":{"client_id":"`)}
	case FaultSuccessFalse:
		return jsonResponse(http.StatusOK, envelope{Errors: []cfapi.ErrorDetail{}, Messages: []cfapi.ErrorDetail{}})
	}
	return s.errorResponse(apiError(CodeInternal, "unknown fault kind", ""))
}

// decodeKnownFields decodes JSON, refusing unknown fields: a misspelt option must be an
// error, not a different (or a lenient) run.
func decodeKnownFields(b []byte, dst any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// durationText writes a duration option as a Go duration string, "" for zero.
func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// parseDurationText reads a duration option written as a Go duration string; "" is 0.
func parseDurationText(name, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return d, nil
}
