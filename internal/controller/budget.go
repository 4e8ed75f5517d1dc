package controller

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// RequestBudget is how many Cloudflare requests one Cloudflare user may make per
// window. Cloudflare allows 1,200 per 5 minutes per user (counted across the
// dashboard, Terraform and every token of that user) and, once that is exceeded, blocks
// every call for 5 minutes, so the operator paces itself below the limit instead of
// discovering it through 429s.
type RequestBudget struct {
	Requests int
	Window   time.Duration
}

// DefaultRequestBudget keeps 10% of Cloudflare's limit for the dashboard and other
// tools sharing the user.
var DefaultRequestBudget = RequestBudget{Requests: 1080, Window: 5 * time.Minute}

// ParseRequestBudget parses "N/DURATION", e.g. "1080/5m"; "0" disables pacing.
func ParseRequestBudget(s string) (RequestBudget, error) {
	if s == "0" {
		return RequestBudget{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	requests, err := strconv.Atoi(n)
	if !ok || err != nil || requests <= 0 {
		return RequestBudget{}, fmt.Errorf("request budget %q: want N/DURATION such as 1080/5m, or 0", s)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return RequestBudget{}, fmt.Errorf("request budget %q: bad window: want N/DURATION such as 1080/5m", s)
	}
	return RequestBudget{Requests: requests, Window: window}, nil
}

const (
	// maxPacingWait is the longest a reconcile worker waits for a request token; longer
	// waits requeue the object instead of holding a worker.
	maxPacingWait = 5 * time.Second
	// cloudflareWindow is Cloudflare's rate-limit window and the length of its block.
	cloudflareWindow = 5 * time.Minute
	// maxRateLimitWait bounds every wait computed from a Ratelimit or Retry-After
	// header: Cloudflare never blocks for longer than its window, so a larger value is
	// a broken header or clock, and looking again after a window is always safe.
	maxRateLimitWait = cloudflareWindow
	// defaultRetryAfter is used when Cloudflare answers 429 without retry-after.
	defaultRetryAfter = time.Minute
)

// minRate is the slowest the bucket ever gets, one request per Cloudflare window: a
// rate of zero would make the next reservation wait forever.
var minRate = rate.Limit(1 / cloudflareWindow.Seconds())

// boundedWait clamps a wait read from a header: missing or non-positive means def, and
// nothing exceeds maxRateLimitWait. It is never negative.
func boundedWait(d, def time.Duration) time.Duration {
	if d <= 0 {
		d = def
	}
	return min(d, maxRateLimitWait)
}

// budget is the one owner of the rate-limit state of one Cloudflare user: the token
// bucket that paces our calls, the block Cloudflare imposed (a 429's Retry-After, or a
// Ratelimit header saying nothing remains), and the slowdown a Ratelimit header asked
// for. Every token of that user shares it (see budgetUser).
//
// No wait it computes is unbounded: header values are clamped to maxRateLimitWait, the
// bucket never drops below minRate (one request per window), and a slowdown ends by itself
// when the window the header described turns, whether or not a call was made since.
type budget struct {
	lim    *rate.Limiter // nil when pacing is disabled
	base   rate.Limit
	burst  int
	window time.Duration
	now    func() time.Time

	// waiting is set while a worker waits for this user's next slot; at most one does.
	waiting atomic.Bool

	mu           sync.Mutex
	blockedUntil time.Time
	slowUntil    time.Time
	// yieldUntil: Cloudflare said no more than the reserve remains for the user, so
	// calls wait for the window to free capacity (not a block: nothing was refused).
	yieldUntil time.Time

	// stats feeds the metrics (metrics_state.go).
	stats budgetStats
}

func newBudget(b RequestBudget, now func() time.Time) *budget {
	bg := &budget{now: now, window: cloudflareWindow}
	if b.Requests > 0 {
		burst := max(1, b.Requests/20)
		bg.base = rate.Limit(float64(b.Requests-burst) / b.Window.Seconds())
		if bg.base <= 0 {
			bg.base = rate.Limit(float64(b.Requests) / b.Window.Seconds())
		}
		bg.lim, bg.burst = rate.NewLimiter(bg.base, burst), burst
		bg.window = min(b.Window, cloudflareWindow)
	}
	return bg
}

// reserveShare is the part of the user's quota the operator leaves to the dashboard and
// other tools sharing the user, however much of the quota they spend: when a Ratelimit
// header says no more than this remains, the operator yields until the window frees
// capacity, so that it is never the call that pushes the user into Cloudflare's
// 5-minute block.
const reserveShare = 0.1

// yieldingFor is how long calls must still wait for others' use of the window to
// pass; 0 when not yielding.
func (b *budget) yieldingFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.yieldUntil.Sub(b.now()), 0)
}

// blockedFor is how long calls must still wait for a block to end; 0 when not blocked.
func (b *budget) blockedFor() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(b.blockedUntil.Sub(b.now()), 0)
}

// block forbids calls for d (bounded) from now.
func (b *budget) block(d time.Duration) {
	d = boundedWait(d, defaultRetryAfter)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.blockedUntil.After(b.now()) {
		b.stats.blocks.Add(1)
	}
	if until := b.now().Add(d); until.After(b.blockedUntil) {
		b.blockedUntil = until
	}
}

// reserve takes a token, waiting at most maxPacingWait, or reports how long the object
// should wait instead. A refused reservation was never sent.
func (b *budget) reserve(ctx context.Context) error {
	if d := b.blockedFor(); d > 0 {
		return &rateLimitedError{wait: d}
	}
	if d := b.yieldingFor(); d > 0 {
		b.stats.deferred.Add(1)
		return &rateLimitedError{wait: d, paced: true}
	}
	if b.lim == nil {
		return nil
	}
	b.recover()
	res := b.lim.Reserve()
	d := res.Delay()
	if !res.OK() || d > maxPacingWait {
		res.Cancel()
		b.stats.deferred.Add(1)
		// InfDuration or a delay past the window would mean a broken rate: look again
		// when the window turns at the latest.
		return &rateLimitedError{wait: min(max(d, maxPacingWait), b.window), paced: true}
	}
	if d > 0 && !b.waiting.CompareAndSwap(false, true) {
		// Another worker already waits for this user's next slot: this object waits
		// in the queue instead, so that the workers are free for other users' objects.
		// Holding them all here served one token at a time while the others idled.
		res.Cancel()
		b.stats.deferred.Add(1)
		return &rateLimitedError{wait: d, paced: true}
	}
	if d > 0 {
		defer b.waiting.Store(false)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			res.Cancel()
			return &notSentError{cause: ctx.Err()}
		case <-t.C:
		}
	}
	// A 429 may have arrived while we waited for the slot, or a header saying that
	// others spent the window.
	if d := b.blockedFor(); d > 0 {
		return &rateLimitedError{wait: d}
	}
	if d := b.yieldingFor(); d > 0 {
		b.stats.deferred.Add(1)
		return &rateLimitedError{wait: d, paced: true}
	}
	return nil
}

// recover restores the configured rate once a header-driven slowdown has run out: the
// window the header described has turned.
func (b *budget) recover() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.slowUntil.IsZero() && !b.now().Before(b.slowUntil) {
		b.slowUntil = time.Time{}
		b.lim.SetLimit(b.base)
		b.lim.SetBurst(b.burst)
	}
}

// observe follows what Cloudflare said about the user's budget after a call: a 429
// blocks for its (bounded) Retry-After; a Ratelimit header with nothing remaining
// blocks until its (bounded) reset; one with no more than the reserve remaining (others
// spent the rest) yields until that reset; a header with less left above the reserve
// than the bucket would spend slows the bucket to what is left above it.
func (b *budget) observe(rl *cfapi.RateLimit, err error) {
	if retryAfter, limited := cfapi.IsRateLimited(err); limited {
		b.stats.rateLimited.Add(1)
		b.block(retryAfter)
	}
	if rl != nil {
		b.stats.record(rl, b.now())
	}
	if rl == nil || rl.Reset <= 0 && rl.Remaining > 0 {
		return
	}
	reset := boundedWait(rl.Reset, time.Second)
	if rl.Remaining <= 0 {
		b.block(reset)
		return
	}
	if b.lim == nil {
		return
	}
	reserve := int(reserveShare * float64(rl.Quota))
	// Spend what is left above the reserve over the time to the reset, but over no less
	// than a fifth of the window: under a sliding window the reset is when the oldest
	// counted call expires, often a second away, and only that call's share comes back
	// then. While slowed the bucket holds no burst, so the next call carries the next
	// header before a second one goes.
	window := rl.Window
	if window <= 0 {
		window = cloudflareWindow
	}
	horizon := max(reset, min(window, cloudflareWindow)/5)
	b.mu.Lock()
	defer b.mu.Unlock()
	if rl.Remaining <= reserve {
		if until := b.now().Add(reset); until.After(b.yieldUntil) {
			b.yieldUntil = until
		}
		b.lim.SetBurst(1)
		b.slowUntil = b.now().Add(horizon)
		return
	}
	// The reserve is the margin: a fresh window (1,200 left, 300 s to go) allows more
	// than the configured rate, which keeps its burst.
	allowed := rate.Limit(float64(rl.Remaining-reserve) / horizon.Seconds())
	switch {
	case allowed >= b.base:
		b.lim.SetLimit(b.base)
		b.lim.SetBurst(b.burst)
		b.slowUntil = time.Time{}
		return
	case math.IsNaN(float64(allowed)) || allowed < minRate:
		allowed = minRate
	}
	b.lim.SetLimit(allowed)
	b.lim.SetBurst(1)
	b.slowUntil = b.now().Add(horizon)
}

// budgetUser names the Cloudflare user whose budget a set of credentials spends:
// an explicit user (the credentials Secret's cloudflare-user annotation, or the
// operator's --default-credentials-user), else the e-mail of legacy credentials (they
// are the user), else the token itself (a user of its own).
func budgetUser(res resolved, credsKey string) string {
	switch {
	case res.user != "":
		return "user:" + res.user
	case res.creds.Email != "":
		return "user:" + strings.ToLower(res.creds.Email)
	}
	return "token:" + credsKey
}

// pacedAPI spends a token of its user's budget before every call and reports
// Cloudflare's answer back to the budget.
type pacedAPI struct {
	api CloudflareAPI
	now func() time.Time
	// current is the budget of the credentials' user; swapped when a Secret's
	// cloudflare-user annotation changes, while calls are in flight.
	current atomic.Pointer[budget]
}

// budget is the budget the next call spends.
func (p *pacedAPI) budget() *budget { return p.current.Load() }

func newPaced(api CloudflareAPI, b *budget, now func() time.Time) *pacedAPI {
	p := &pacedAPI{api: api, now: now}
	p.current.Store(b)
	return p
}

// rateLimitSource is implemented by cfapi.Client.
type rateLimitSource interface {
	LastRateLimit() (cfapi.RateLimit, bool)
}

// prepaidKey marks a context whose next paced call was paid for by prepay.
type prepaidKey struct{}

// prepay takes the budget token of the next call made with the returned context now.
// A caller that must write something before a call, and undo it if the call is refused
// (the create intent), pays first: a refusal then comes before the write, not after it.
// Without pacing (api is not paced) it does nothing.
func prepay(ctx context.Context, api CloudflareAPI) (context.Context, error) {
	p, ok := api.(*pacedAPI)
	if !ok {
		return ctx, nil
	}
	if err := p.budget().reserve(ctx); err != nil {
		return ctx, err
	}
	paid := &atomic.Bool{}
	paid.Store(true)
	return context.WithValue(ctx, prepaidKey{}, paid), nil
}

func paced[T any](ctx context.Context, p *pacedAPI, call func() (T, error)) (T, error) {
	var zero T
	b := p.budget()
	if paid, ok := ctx.Value(prepaidKey{}).(*atomic.Bool); !ok || !paid.CompareAndSwap(true, false) {
		if err := b.reserve(ctx); err != nil {
			return zero, err
		}
	}
	res, err := call()
	var rl *cfapi.RateLimit
	if src, ok := p.api.(rateLimitSource); ok {
		if v, ok := src.LastRateLimit(); ok {
			rl = &v
		}
	}
	b.observe(rl, err)
	return res, err
}

// ListOAuthClientsSentAt lists and reports when the request was sent: after the
// pacer's wait, so a snapshot is never dated before the moment Cloudflare could see it.
func (p *pacedAPI) ListOAuthClientsSentAt(ctx context.Context, accountID string) ([]cfapi.OAuthClient, time.Time, error) {
	var sent time.Time
	clients, err := paced(ctx, p, func() ([]cfapi.OAuthClient, error) {
		sent = p.now()
		return p.api.ListOAuthClients(ctx, accountID)
	})
	return clients, sent, err
}

func (p *pacedAPI) ListOAuthClients(ctx context.Context, accountID string) ([]cfapi.OAuthClient, error) {
	return paced(ctx, p, func() ([]cfapi.OAuthClient, error) { return p.api.ListOAuthClients(ctx, accountID) })
}

func (p *pacedAPI) GetOAuthClient(ctx context.Context, accountID, clientID string) (*cfapi.OAuthClient, error) {
	return paced(ctx, p, func() (*cfapi.OAuthClient, error) { return p.api.GetOAuthClient(ctx, accountID, clientID) })
}

func (p *pacedAPI) CreateOAuthClient(ctx context.Context, accountID string, params cfapi.CreateOAuthClientParams) (*cfapi.CreatedOAuthClient, error) {
	return paced(ctx, p, func() (*cfapi.CreatedOAuthClient, error) { return p.api.CreateOAuthClient(ctx, accountID, params) })
}

func (p *pacedAPI) UpdateOAuthClient(ctx context.Context, accountID, clientID string, params cfapi.UpdateOAuthClientParams) (*cfapi.OAuthClient, error) {
	return paced(ctx, p, func() (*cfapi.OAuthClient, error) { return p.api.UpdateOAuthClient(ctx, accountID, clientID, params) })
}

func (p *pacedAPI) DeleteOAuthClient(ctx context.Context, accountID, clientID string) error {
	_, err := paced(ctx, p, func() (struct{}, error) { return struct{}{}, p.api.DeleteOAuthClient(ctx, accountID, clientID) })
	return err
}

func (p *pacedAPI) RotateOAuthClientSecret(ctx context.Context, accountID, clientID string) (string, error) {
	return paced(ctx, p, func() (string, error) { return p.api.RotateOAuthClientSecret(ctx, accountID, clientID) })
}

func (p *pacedAPI) DeleteRotatedOAuthClientSecret(ctx context.Context, accountID, clientID string) error {
	_, err := paced(ctx, p, func() (struct{}, error) {
		return struct{}{}, p.api.DeleteRotatedOAuthClientSecret(ctx, accountID, clientID)
	})
	return err
}

func (p *pacedAPI) ListOAuthScopes(ctx context.Context) ([]cfapi.OAuthScope, error) {
	return paced(ctx, p, func() ([]cfapi.OAuthScope, error) { return p.api.ListOAuthScopes(ctx) })
}
