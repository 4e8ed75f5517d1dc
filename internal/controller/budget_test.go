package controller

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func TestParseRequestBudget(t *testing.T) {
	tests := []struct {
		in      string
		want    RequestBudget
		wantErr bool
	}{
		{"1080/5m", RequestBudget{1080, 5 * time.Minute}, false},
		{"0", RequestBudget{}, false},
		{"10/1s", RequestBudget{10, time.Second}, false},
		{"1080", RequestBudget{}, true},
		{"-1/5m", RequestBudget{}, true},
		{"10/forever", RequestBudget{}, true},
		{"10/0s", RequestBudget{}, true},
	}
	for _, tt := range tests {
		got, err := ParseRequestBudget(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseRequestBudget(%q) = %+v, %v; want %+v, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// countingAPI counts List calls and reports a fixed rate-limit header state.
type countingAPI struct {
	CloudflareAPI
	lists int
	rl    cfapi.RateLimit
	err   error
}

func (c *countingAPI) ListOAuthClients(context.Context, string) ([]cfapi.OAuthClient, error) {
	c.lists++
	return nil, c.err
}

func (c *countingAPI) LastRateLimit() (cfapi.RateLimit, bool) {
	return c.rl, c.rl.Reset > 0 || c.rl.Remaining > 0
}

// testClock is a settable clock.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestPaced(inner CloudflareAPI, b RequestBudget) (*pacedAPI, *testClock) {
	clock := &testClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	return newPaced(inner, newBudget(b, clock.now), clock.now), clock
}

func TestPacingSpendsTheBurstThenRequeues(t *testing.T) {
	inner := &countingAPI{}
	// 200 per hour: a burst of 10, then one token every ~19s.
	api, _ := newTestPaced(inner, RequestBudget{Requests: 200, Window: time.Hour})
	for i := range 10 {
		if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
			t.Fatalf("call %d within the burst: %v", i, err)
		}
	}
	_, err := api.ListOAuthClients(t.Context(), "a")
	var limited *rateLimitedError
	if !errors.As(err, &limited) || !limited.paced || limited.wait < 15*time.Second {
		t.Fatalf("call past the burst: err = %v, want a paced rateLimitedError of ~19s", err)
	}
	if inner.lists != 10 {
		t.Errorf("Cloudflare saw %d calls, want 10", inner.lists)
	}
}

func TestPacingFollowsCloudflaresRemainingBudget(t *testing.T) {
	inner := &countingAPI{rl: cfapi.RateLimit{Remaining: 3, Reset: 300 * time.Second}}
	api, clock := newTestPaced(inner, DefaultRequestBudget)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got := float64(api.budget().lim.Limit()); got > 0.01 || got <= 0 {
		t.Errorf("limit = %.4f/s after Cloudflare said 3 requests remain for 300s, want in (0, 0.009]/s", got)
	}
	// The window turns without any call being made: the rate recovers by itself.
	clock.t = clock.t.Add(301 * time.Second)
	api.budget().recover()
	if api.budget().lim.Limit() != api.budget().base {
		t.Errorf("limit = %v after the header's window turned, want the configured %v", api.budget().lim.Limit(), api.budget().base)
	}
	inner.rl = cfapi.RateLimit{Remaining: 1200, Reset: 300 * time.Second}
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if api.budget().lim.Limit() != api.budget().base {
		t.Errorf("limit = %v after the budget recovered, want the configured %v", api.budget().lim.Limit(), api.budget().base)
	}
}

// Another tool spends the user's quota: when Cloudflare says no more than the reserve
// (10% of the quota) remains, the operator sends nothing until the header's reset,
// without counting a block, and then spends only what is left above the reserve.
func TestPacingYieldsTheReserveToOtherTools(t *testing.T) {
	inner := &countingAPI{rl: cfapi.RateLimit{Remaining: 110, Reset: 2 * time.Second, Quota: 1200, Window: 300 * time.Second}}
	api, clock := newTestPaced(inner, DefaultRequestBudget)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	_, err := api.ListOAuthClients(t.Context(), "a")
	var limited *rateLimitedError
	if !errors.As(err, &limited) || !limited.paced || limited.wait <= 0 || limited.wait > 3*time.Second {
		t.Fatalf("call with 110 of 1200 remaining: err = %v, want a paced wait of at most the 2s reset", err)
	}
	if inner.lists != 1 {
		t.Fatalf("Cloudflare saw %d calls, want 1: only the reserve remained", inner.lists)
	}
	if n := api.budget().stats.blocks.Load(); n != 0 {
		t.Fatalf("%d blocks counted: yielding to other tools is not a block", n)
	}
	clock.t = clock.t.Add(3 * time.Second)
	inner.rl = cfapi.RateLimit{Remaining: 420, Reset: 100 * time.Second, Quota: 1200, Window: 300 * time.Second}
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatalf("after the reset: %v", err)
	}
	want := rate.Limit((420 - 120) / 100.0)
	if got := api.budget().lim.Limit(); math.Abs(float64(got-want)) > 1e-9 {
		t.Errorf("limit = %v with 420 remaining for 100s, want %v: what is left above the reserve", got, want)
	}
	if b := api.budget().lim.Burst(); b != 1 {
		t.Errorf("burst = %d while slowed, want 1: each call must carry the next header before another goes", b)
	}
	// Under a sliding window the reset is when the oldest counted call expires, often a
	// second away: what is left above the reserve is spread over a fifth of the window
	// at least, not spent in that second.
	inner.rl = cfapi.RateLimit{Remaining: 300, Reset: time.Second, Quota: 1200, Window: 300 * time.Second}
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	want = rate.Limit((300 - 120) / 60.0)
	if got := api.budget().lim.Limit(); math.Abs(float64(got-want)) > 1e-9 {
		t.Errorf("limit = %v with 300 remaining and a 1s reset, want %v", got, want)
	}
	inner.rl = cfapi.RateLimit{Remaining: 1100, Reset: time.Second, Quota: 1200, Window: 300 * time.Second}
	clock.t = clock.t.Add(time.Minute)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got, b := api.budget().lim.Limit(), api.budget().lim.Burst(); got != api.budget().base || b != api.budget().burst {
		t.Errorf("limit %v, burst %d once most of the quota is back, want the configured %v and %d", got, b, api.budget().base, api.budget().burst)
	}
}

// The pacer froze: a Ratelimit header with r=0 set the bucket's rate to 0, the next
// reservation waited forever, and nothing raised the rate again (adapt only ran after a
// call that was sent). Now r=0 blocks until the header's reset, bounded, and then the
// budget works again with no call in between.
func TestPacingNeverFreezesOnAnEmptyBudget(t *testing.T) {
	inner := &countingAPI{rl: cfapi.RateLimit{Remaining: 0, Reset: 40 * time.Second}}
	api, clock := newTestPaced(inner, DefaultRequestBudget)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got := api.budget().lim.Limit(); got <= 0 {
		t.Fatalf("the bucket's rate is %v: a zero rate waits forever", got)
	}
	_, err := api.ListOAuthClients(t.Context(), "a")
	var limited *rateLimitedError
	if !errors.As(err, &limited) || limited.wait <= 0 || limited.wait > 40*time.Second {
		t.Fatalf("call with nothing remaining: err = %v, want a wait of at most the 40s reset", err)
	}
	if inner.lists != 1 {
		t.Fatalf("Cloudflare saw %d calls, want 1: nothing remained", inner.lists)
	}
	clock.t = clock.t.Add(41 * time.Second)
	inner.rl = cfapi.RateLimit{Remaining: 1200, Reset: 300 * time.Second}
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatalf("after the window turned: %v", err)
	}
}

// Every wait computed from a header is bounded: a huge reset or Retry-After, a zero
// one, and a header that says nothing never produce a negative, infinite or
// overflowing duration.
func TestPacingWaitsAreBounded(t *testing.T) {
	tests := []struct {
		name string
		rl   cfapi.RateLimit
		err  error
	}{
		{"huge reset", cfapi.RateLimit{Remaining: 0, Reset: time.Duration(math.MaxInt64)}, nil},
		{"zero reset", cfapi.RateLimit{Remaining: 0}, nil},
		{"huge retry-after", cfapi.RateLimit{}, &cfapi.APIError{StatusCode: 429, RetryAfter: time.Duration(math.MaxInt64)}},
		{"no retry-after", cfapi.RateLimit{}, &cfapi.APIError{StatusCode: 429}},
		{"tiny remaining, huge reset", cfapi.RateLimit{Remaining: 1, Reset: time.Duration(math.MaxInt64)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &countingAPI{rl: tt.rl, err: tt.err}
			api, _ := newTestPaced(inner, DefaultRequestBudget)
			_, _ = api.ListOAuthClients(t.Context(), "a")
			d := api.budget().blockedFor()
			if d < 0 || d > maxRateLimitWait {
				t.Errorf("blocked for %s, want within [0, %s]", d, maxRateLimitWait)
			}
			if got := api.budget().lim.Limit(); got <= 0 || got == rate.Inf {
				t.Errorf("rate = %v, want a positive finite rate", got)
			}
			if j := jitterUp(d); j < 0 || j > maxRateLimitWait+time.Minute {
				t.Errorf("jitterUp(%s) = %s", d, j)
			}
		})
	}
	for _, d := range []time.Duration{-time.Hour, 0, rate.InfDuration, time.Duration(math.MaxInt64)} {
		if j := jitterUp(d); j < 0 || j > maxRateLimitWait+time.Minute {
			t.Errorf("jitterUp(%d) = %s, want within [0, %s]", d, j, maxRateLimitWait+time.Minute)
		}
	}
}

// limitedOnce answers its first List with a 429.
type limitedOnce struct {
	CloudflareAPI
	calls int
}

func (l *limitedOnce) ListOAuthClients(context.Context, string) ([]cfapi.OAuthClient, error) {
	l.calls++
	if l.calls == 1 {
		return nil, &cfapi.APIError{StatusCode: 429, RetryAfter: 30 * time.Second}
	}
	return nil, nil
}

func TestPacingHonoursRetryAfter(t *testing.T) {
	inner := &limitedOnce{}
	api, clock := newTestPaced(inner, DefaultRequestBudget)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err == nil {
		t.Fatal("want the 429")
	}
	_, err := api.ListOAuthClients(t.Context(), "a")
	var limited *rateLimitedError
	if !errors.As(err, &limited) || limited.paced || limited.wait != 30*time.Second {
		t.Fatalf("call inside Retry-After: err = %v, want a rateLimitedError of 30s", err)
	}
	if inner.calls != 1 {
		t.Fatalf("Cloudflare saw %d calls, want only the one that got the 429", inner.calls)
	}
	clock.t = clock.t.Add(31 * time.Second)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}

// Tokens of one Cloudflare user share one budget; other users have their own.
func TestBudgetIsPerCloudflareUser(t *testing.T) {
	apis := newAPIClients(func(cfapi.Credentials) (CloudflareAPI, error) {
		return &limitedOnce{}, nil
	}, DefaultRequestBudget, time.Now)
	get := func(res resolved) *pacedAPI {
		api, _, err := apis.get(res)
		if err != nil {
			t.Fatal(err)
		}
		return api.(*pacedAPI)
	}
	a := get(resolved{creds: cfapi.Credentials{APIToken: "token-a"}, user: "platform@example.com"})
	b := get(resolved{creds: cfapi.Credentials{APIToken: "token-b"}, user: "platform@example.com"})
	c := get(resolved{creds: cfapi.Credentials{APIToken: "token-c"}})
	d := get(resolved{creds: cfapi.Credentials{Email: "Platform@example.com", APIKey: "k"}})
	if a.budget() != b.budget() || a.budget() != d.budget() {
		t.Error("credentials of one user (annotation, legacy e-mail) must share one budget")
	}
	if a.budget() == c.budget() {
		t.Error("a token without a user must have a budget of its own")
	}
	// A 429 seen through token a blocks token b.
	if _, err := a.ListOAuthClients(t.Context(), "x"); err == nil {
		t.Fatal("want the 429")
	}
	if b.budget().blockedFor() <= 0 || c.budget().blockedFor() != 0 {
		t.Errorf("blocked: b %s (want > 0), c %s (want 0)", b.budget().blockedFor(), c.budget().blockedFor())
	}
	// Forgetting tokens drops their clients, and a budget once no token uses it.
	apis.forget(credentialsKey(cfapi.Credentials{APIToken: "token-c"}))
	apis.forget(credentialsKey(cfapi.Credentials{APIToken: "token-a"}))
	if len(apis.byKey) != 2 || len(apis.budgets) != 1 {
		t.Errorf("after forgetting tokens a and c: %d clients, %d budgets; want 2 and 1", len(apis.byKey), len(apis.budgets))
	}
}

// A fresh window leaves the configured rate and its burst alone: 1,190 of 1,200 left
// with 299 s to go is more than the budget's own 1080/5m would spend.
func TestPacingKeepsItsBurstInAFreshWindow(t *testing.T) {
	inner := &countingAPI{rl: cfapi.RateLimit{Remaining: 1190, Reset: 299 * time.Second, Quota: 1200, Window: 300 * time.Second}}
	api, _ := newTestPaced(inner, DefaultRequestBudget)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got, b := api.budget().lim.Limit(), api.budget().lim.Burst(); got != api.budget().base || b != api.budget().burst {
		t.Errorf("limit %v, burst %d in a fresh window, want the configured %v and %d", got, b, api.budget().base, api.budget().burst)
	}
}

// One worker at a time waits for a user's next slot; another object of that user is
// sent back to the queue at once, so that the other workers serve other users' objects
// instead of all waiting on one token.
func TestPacingHoldsOneWorkerPerUser(t *testing.T) {
	// 60 per minute: a burst of 3, then a token a second.
	b := newBudget(RequestBudget{Requests: 60, Window: time.Minute}, time.Now)
	for range 3 {
		if err := b.reserve(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	first := make(chan error, 1)
	go func() { first <- b.reserve(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for !b.waiting.Load() {
		if time.Now().After(deadline) {
			t.Fatal("the first worker never waited for the next slot")
		}
		runtime.Gosched()
	}
	err := b.reserve(t.Context())
	var limited *rateLimitedError
	if !errors.As(err, &limited) || !limited.paced || limited.wait <= 0 || limited.wait > 3*time.Second {
		t.Fatalf("second worker: err = %v, want it sent back to the queue until its slot, about 2s", err)
	}
	cancel()
	var notSent *notSentError
	if err := <-first; !errors.As(err, &notSent) {
		t.Fatalf("first worker: err = %v, want notSent after its context ended", err)
	}
	if b.waiting.Load() {
		t.Error("the waiting mark outlived the wait")
	}
}
