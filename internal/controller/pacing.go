package controller

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// RequestBudget is how many Cloudflare requests one set of credentials may make per
// window. Cloudflare allows 1,200 per 5 minutes per user and, once that is exceeded,
// blocks every call for 5 minutes, so the operator paces itself below the limit
// instead of discovering it through 429s.
type RequestBudget struct {
	Requests int
	Window   time.Duration
}

// DefaultRequestBudget keeps 10% of Cloudflare's limit for the dashboard and other
// tools sharing the token.
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

// maxPacingWait is the longest a reconcile worker waits for a request token; longer
// waits requeue the object instead of holding a worker.
const maxPacingWait = 5 * time.Second

// pacedAPI spends a token of its credentials' budget before every call. The bucket
// refills at Requests/Window with a burst of 1/20 of the budget, so no window can
// hold more than the budget plus that burst. Cloudflare's Ratelimit header, when it
// says fewer requests remain than the bucket would allow, slows the bucket down.
//
// It also honours Cloudflare's Retry-After itself: a call that waited for a slot while
// another call got a 429 must not go out inside that 429's window.
type pacedAPI struct {
	api  CloudflareAPI
	lim  *rate.Limiter
	base rate.Limit
	now  func() time.Time

	mu           sync.Mutex
	blockedUntil time.Time
}

func newPacedAPI(api CloudflareAPI, b RequestBudget) CloudflareAPI {
	if b.Requests <= 0 {
		return api
	}
	burst := max(1, b.Requests/20)
	base := rate.Limit(float64(b.Requests-burst) / b.Window.Seconds())
	return &pacedAPI{api: api, lim: rate.NewLimiter(base, burst), base: base, now: time.Now}
}

// wait takes a token, or reports how long the object should wait instead.
func (p *pacedAPI) wait(ctx context.Context) error {
	res := p.lim.Reserve()
	d := res.Delay()
	if d > maxPacingWait {
		res.Cancel()
		return &rateLimitedError{wait: d, paced: true}
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		res.Cancel()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// adapt follows Cloudflare's view of the remaining budget.
func (p *pacedAPI) adapt() {
	src, ok := p.api.(interface {
		LastRateLimit() (cfapi.RateLimit, bool)
	})
	if !ok {
		return
	}
	rl, ok := src.LastRateLimit()
	if !ok || rl.Reset <= 0 {
		return
	}
	allowed := rate.Limit(0.9 * float64(rl.Remaining) / rl.Reset.Seconds())
	p.lim.SetLimit(min(p.base, allowed))
}

// blockedFor is how long Cloudflare's last Retry-After still forbids calls.
func (p *pacedAPI) blockedFor() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blockedUntil.Sub(p.now())
}

// noteRateLimit records a 429's Retry-After.
func (p *pacedAPI) noteRateLimit(err error) {
	retryAfter, limited := cfapi.IsRateLimited(err)
	if !limited {
		return
	}
	if retryAfter <= 0 {
		retryAfter = defaultRetryAfter
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if until := p.now().Add(retryAfter); until.After(p.blockedUntil) {
		p.blockedUntil = until
	}
}

func paced[T any](ctx context.Context, p *pacedAPI, call func() (T, error)) (T, error) {
	var zero T
	if d := p.blockedFor(); d > 0 {
		return zero, &rateLimitedError{wait: d}
	}
	if err := p.wait(ctx); err != nil {
		return zero, err
	}
	// A 429 may have arrived while we waited for the slot.
	if d := p.blockedFor(); d > 0 {
		return zero, &rateLimitedError{wait: d}
	}
	defer p.adapt()
	res, err := call()
	p.noteRateLimit(err)
	return res, err
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
