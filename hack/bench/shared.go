package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"
)

// The shared-quota scenario: Cloudflare's limit is per user, and the operator is rarely
// the user's only client. Another tool (a dashboard session, Terraform, a script) sends
// requests with the same token, evenly, at a share of the limit, from before the
// manager starts until the scenario ends. Its requests carry headerOtherTool, so the
// emulator's timeline counts them apart from the operator's.

// otherTool is that other tool: one GET of its own client every interval.
type otherTool struct {
	url      string
	token    string
	interval time.Duration
	share    float64
	http     *http.Client
	cancel   context.CancelFunc
	done     chan struct{}

	mu      sync.Mutex
	sent    int
	limited int
	failed  int
}

// sharedResult is what the shared-quota scenario adds to its result. Counts run from
// the manager's start to the end of the scenario.
type sharedResult struct {
	// Share is the share of Cloudflare's limit the other tool spends, at RatePerSecond.
	Share         float64 `json:"share"`
	RatePerSecond float64 `json:"ratePerSecond"`
	Seconds       float64 `json:"seconds"`
	// OperatorRequests and OtherRequests are each side's requests, and
	// OperatorRateLimited and OtherRateLimited those answered 429.
	OperatorRequests    int `json:"operatorRequests"`
	OperatorRateLimited int `json:"operatorRateLimited"`
	OtherRequests       int `json:"otherRequests"`
	OtherRateLimited    int `json:"otherRateLimited"`
	// OtherTotal and OtherFailed count the other tool's requests over its whole run
	// (from before the manager started), and those that got no answer.
	OtherTotal  int `json:"otherTotal"`
	OtherFailed int `json:"otherFailed"`
	// BucketSeconds is the width of the buckets of Operator and Other: requests per
	// bucket, at the bucket's middle.
	BucketSeconds float64 `json:"bucketSeconds"`
	Operator      []point `json:"operatorPerBucket"`
	Other         []point `json:"otherPerBucket"`
}

// sharedBucket is the width of a bar of the request-rate chart.
const sharedBucket = 10 * time.Second

// startOtherTool seeds the other tool's own client in the first account and starts
// reading it at cfg.shared.share of Cloudflare's limit, with the first account's token.
func startOtherTool(ctx context.Context, emu *emulator, cfg *config) (*otherTool, error) {
	if cfg.rateLimit <= 0 || cfg.rateWindow <= 0 {
		return nil, errors.New("the shared-quota scenario needs -rate-limit and -rate-window")
	}
	own := remoteFor(0)
	own.ClientName = "another tool's client"
	own.RedirectURIs = []string{"https://other-tool.example.com/oauth/callback"}
	seeded, err := emu.SeedClient(accountID(0), own, "")
	if err != nil {
		return nil, err
	}
	perSecond := cfg.shared.share * float64(cfg.rateLimit) / cfg.rateWindow.Seconds()
	ctx, cancel := context.WithCancel(ctx)
	t := &otherTool{
		url:      fmt.Sprintf("%s/accounts/%s/oauth_clients/%s", emu.apiURL(), accountID(0), seeded.ClientID),
		token:    tokenOf(0),
		interval: time.Duration(float64(time.Second) / perSecond),
		share:    cfg.shared.share,
		http:     &http.Client{Timeout: 30 * time.Second},
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	go t.run(ctx)
	logf("  another tool reads its own client with the same token every %s (%.0f%% of %d per %s)",
		t.interval.Round(time.Millisecond), 100*t.share, cfg.rateLimit, human(cfg.rateWindow))
	return t, nil
}

func (t *otherTool) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		t.get(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// get makes one request and counts its outcome.
func (t *otherTool) get(ctx context.Context) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set(headerOtherTool, "1")
	resp, err := t.http.Do(req)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			t.failed++
			t.sent++
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	t.sent++
	if resp.StatusCode == http.StatusTooManyRequests {
		t.limited++
	}
}

// stop ends the tool and waits for its last request.
func (t *otherTool) stop() {
	t.cancel()
	<-t.done
}

// result splits the timeline (since the manager's start) between the operator and
// the tool.
func (t *otherTool) result(events []apiEvent) *sharedResult {
	t.mu.Lock()
	res := &sharedResult{Share: t.share, RatePerSecond: 1 / t.interval.Seconds(), OtherTotal: t.sent, OtherFailed: t.failed,
		BucketSeconds: sharedBucket.Seconds()}
	t.mu.Unlock()
	var operator, other []int
	for _, ev := range events {
		b := int(ev.At / sharedBucket)
		for len(operator) <= b {
			operator, other = append(operator, 0), append(other, 0)
		}
		limited := ev.Status == http.StatusTooManyRequests
		if ev.Other {
			other[b]++
			res.OtherRequests++
			res.OtherRateLimited += boolInt(limited)
		} else {
			operator[b]++
			res.OperatorRequests++
			res.OperatorRateLimited += boolInt(limited)
		}
		res.Seconds = math.Max(res.Seconds, ev.At.Seconds())
	}
	for b := range operator {
		x := (float64(b) + 0.5) * sharedBucket.Seconds()
		res.Operator = append(res.Operator, point{X: x, Y: float64(operator[b])})
		res.Other = append(res.Other, point{X: x, Y: float64(other[b])})
	}
	return res
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
