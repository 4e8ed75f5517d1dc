package controller

import (
	"context"
	"errors"
	"testing"
	"time"

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
}

func (c *countingAPI) ListOAuthClients(context.Context, string) ([]cfapi.OAuthClient, error) {
	c.lists++
	return nil, nil
}

func (c *countingAPI) LastRateLimit() (cfapi.RateLimit, bool) { return c.rl, c.rl.Reset > 0 }

func TestPacingSpendsTheBurstThenRequeues(t *testing.T) {
	inner := &countingAPI{}
	// 200 per hour: a burst of 10, then one token every ~19s.
	api := newPacedAPI(inner, RequestBudget{Requests: 200, Window: time.Hour})
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
	api := newPacedAPI(inner, DefaultRequestBudget).(*pacedAPI)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if got := float64(api.lim.Limit()); got > 0.01 {
		t.Errorf("limit = %.3f/s after Cloudflare said 3 requests remain for 300s, want <= 0.009/s", got)
	}
	inner.rl = cfapi.RateLimit{Remaining: 1200, Reset: 300 * time.Second}
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if api.lim.Limit() != api.base {
		t.Errorf("limit = %v after the budget recovered, want the configured %v", api.lim.Limit(), api.base)
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
	api := newPacedAPI(inner, DefaultRequestBudget).(*pacedAPI)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	api.now = func() time.Time { return now }
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
	now = now.Add(31 * time.Second)
	if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
		t.Fatalf("after Retry-After: %v", err)
	}
}
