package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Descriptions of the request budget and snapshot metrics, read from the reconciler's
// state at scrape time. user is the budget's key (budgetUser) with any e-mail address
// replaced by a hash: a token is never part of it, and users are few. account is a
// Cloudflare account ID: accounts are few, and their IDs are not secret (they are in
// every spec).
var (
	budgetRemainingDesc = prometheus.NewDesc("cloudflare_budget_remaining",
		"Requests Cloudflare says remain in its current rate-limit window for the user (Ratelimit header); "+
			"absent once that window has ended.",
		[]string{labelUser}, nil)
	budgetQuotaDesc = prometheus.NewDesc("cloudflare_budget_quota",
		"Requests Cloudflare allows the user per window (Ratelimit-Policy header); absent once that window has ended.",
		[]string{labelUser}, nil)
	blockedUntilDesc = prometheus.NewDesc("cloudflare_budget_blocked_until_timestamp_seconds",
		"When the current or last block of the user's calls ends (Unix seconds; 0: never blocked). "+
			"A block follows a 429 or a Ratelimit header with nothing remaining.",
		[]string{labelUser}, nil)
	rateLimitedDesc = prometheus.NewDesc("cloudflare_rate_limited_responses_total",
		"429 answers from Cloudflare, per user: each blocks every call of the user for its Retry-After.",
		[]string{labelUser}, nil)
	blocksDesc = prometheus.NewDesc("cloudflare_budget_blocks_total",
		"Blocks of the user's calls that started (after a 429, or a Ratelimit header with nothing remaining).",
		[]string{labelUser}, nil)
	deferredDesc = prometheus.NewDesc("cloudflare_budget_deferred_total",
		"Calls the operator deferred because the user's request budget (--cloudflare-request-budget) was spent.",
		[]string{labelUser}, nil)
	snapshotListedDesc = prometheus.NewDesc("cloudflare_snapshot_last_list_timestamp_seconds",
		"When the oldest of the account's client snapshots was last listed successfully (Unix seconds).",
		[]string{labelAccount}, nil)
	snapshotMaxAgeDesc = prometheus.NewDesc("cloudflare_snapshot_max_age_seconds",
		"How long a List of an account's clients is reused (--remote-sync-period).",
		nil, nil)
)

// budgetStats is what a budget counts for the metrics. The counters live with the
// budget, so they restart when a budget no client uses is dropped: rate() treats that
// as a counter reset.
type budgetStats struct {
	rateLimited, blocks, deferred atomic.Uint64

	mu         sync.Mutex
	remaining  int
	quota      int
	windowEnds time.Time
}

// record keeps what a Ratelimit header said about the user's current window.
func (s *budgetStats) record(rl *cfapi.RateLimit, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining, s.quota = rl.Remaining, rl.Quota
	s.windowEnds = now.Add(min(max(rl.Reset, time.Second), maxRateLimitWait))
}

// window returns the last header's remaining and quota while its window runs.
func (s *budgetStats) window(now time.Time) (remaining, quota int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.windowEnds.IsZero() || !now.Before(s.windowEnds) {
		return 0, 0, false
	}
	return s.remaining, s.quota, true
}

// blockedUntil is when the budget's current or last block ends; zero when never blocked.
func (b *budget) blockedUntilTime() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blockedUntil
}

// eachBudget calls fn for every budget, by user.
func (a *apiClients) eachBudget(fn func(user string, b *budget)) {
	a.mu.Lock()
	users := make(map[string]*budget, len(a.budgets))
	for u, b := range a.budgets {
		users[u] = b
	}
	a.mu.Unlock()
	for u, b := range users {
		fn(u, b)
	}
}

// listedAt returns, per account, when its oldest snapshot was last listed.
func (s *Snapshots) listedAt() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	for k, st := range s.accounts {
		if st.listedAt.IsZero() {
			continue
		}
		if at, ok := out[k.account]; !ok || st.listedAt.Before(at) {
			out[k.account] = st.listedAt
		}
	}
	return out
}

// userLabel is the budget key as a label value. Keys name a user (an annotation value
// or the e-mail of legacy credentials) or a token's hash; an e-mail address is personal
// data, so it is hashed too.
func userLabel(user string) string {
	kind, name, _ := strings.Cut(user, ":")
	if !strings.Contains(name, "@") {
		return user
	}
	sum := sha256.Sum256([]byte(name))
	return kind + ":sha256-" + hex.EncodeToString(sum[:])[:16]
}

// stateCollector reports the request budgets and account snapshots of one reconciler.
type stateCollector struct {
	apis      *apiClients
	snapshots *Snapshots
	now       func() time.Time
	// leader reports whether this replica is the elected leader; nil means always.
	leader func() bool
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{budgetRemainingDesc, budgetQuotaDesc, blockedUntilDesc, rateLimitedDesc,
		blocksDesc, deferredDesc, snapshotListedDesc, snapshotMaxAgeDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.leader != nil && !c.leader() {
		return
	}
	now := c.now()
	c.apis.eachBudget(func(user string, b *budget) {
		label := userLabel(user)
		if remaining, quota, ok := b.stats.window(now); ok {
			ch <- prometheus.MustNewConstMetric(budgetRemainingDesc, prometheus.GaugeValue, float64(remaining), label)
			if quota > 0 {
				ch <- prometheus.MustNewConstMetric(budgetQuotaDesc, prometheus.GaugeValue, float64(quota), label)
			}
		}
		until := 0.0
		if t := b.blockedUntilTime(); !t.IsZero() {
			until = unixSeconds(t)
		}
		ch <- prometheus.MustNewConstMetric(blockedUntilDesc, prometheus.GaugeValue, until, label)
		ch <- prometheus.MustNewConstMetric(rateLimitedDesc, prometheus.CounterValue, float64(b.stats.rateLimited.Load()), label)
		ch <- prometheus.MustNewConstMetric(blocksDesc, prometheus.CounterValue, float64(b.stats.blocks.Load()), label)
		ch <- prometheus.MustNewConstMetric(deferredDesc, prometheus.CounterValue, float64(b.stats.deferred.Load()), label)
	})
	for account, at := range c.snapshots.listedAt() {
		ch <- prometheus.MustNewConstMetric(snapshotListedDesc, prometheus.GaugeValue, unixSeconds(at), account)
	}
	ch <- prometheus.MustNewConstMetric(snapshotMaxAgeDesc, prometheus.GaugeValue, c.snapshots.MaxAge.Seconds())
}
