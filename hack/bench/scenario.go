package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

const (
	pathAdopt        = "adopt"
	pathCreate       = "create"
	strategyOurs     = "ours"
	strategyBaseline = "baseline"

	tokenPrefix       = "bench-token-"
	credentialsSecret = "cloudflare-credentials"
	mib               = 1 << 20
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
}

// scenario is one cell of the matrix, or a variant of one (matrix.go).
type scenario struct {
	Path     string `json:"path"`
	N        int    `json:"n"`
	Accounts int    `json:"accounts"`
	Strategy string `json:"strategy"`
	// Variant is "" for a cell of the matrix, variantShippedEnv or variantShared.
	Variant string `json:"variant,omitempty"`
}

// String is the scenario's key, path/N/accounts/strategy[+variant], as -skip matches it.
func (s scenario) String() string {
	key := fmt.Sprintf("%s/%d/%d/%s", s.Path, s.N, s.Accounts, s.Strategy)
	if s.Variant != "" {
		key += "+" + s.Variant
	}
	return key
}

// base is the matrix cell a variant is a variant of.
func (s scenario) base() scenario {
	s.Variant = ""
	return s
}

// point is one sample of a curve: X in seconds since the manager started.
type point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// result is what one scenario measured.
type result struct {
	scenario
	// ApplySeconds is how long creating the N objects took (before the manager ran).
	ApplySeconds float64 `json:"applySeconds"`
	// TimeToReady is from the manager's start until the last object became Ready, or
	// until the cap when AllReady is false.
	TimeToReady float64 `json:"timeToReadySeconds"`
	AllReady    bool    `json:"allReady"`
	ReadyAtEnd  int     `json:"readyAtEnd"`
	// PeakReady is the most objects Ready at once before the end of convergence.
	PeakReady int            `json:"peakReady"`
	NotReady  map[string]int `json:"notReady,omitempty"`
	// Calls are the Cloudflare requests until Ready (or the cap), by operation,
	// including the ones answered 429.
	Calls          map[string]int `json:"calls"`
	RateLimited    int            `json:"rateLimited"`
	FirstRateLimit float64        `json:"firstRateLimitSeconds,omitempty"`
	Writes         map[string]int `json:"apiserverWrites"`
	// Reconciles is the manager's reconcile count until Ready (or the cap).
	Reconciles float64 `json:"reconciles"`
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// RSSAnonMiB and RSSFileMiB split the largest RSS sampled (every second) into
	// anonymous memory (heap, stacks) and mapped files (the binary's pages).
	RSSAnonMiB float64 `json:"rssAnonMiB"`
	RSSFileMiB float64 `json:"rssFileMiB"`
	// PeakHeapMiB is the largest heap at a collection, PeakLiveHeapMiB the largest
	// heap still live after one (from the runtime's gctrace).
	PeakHeapMiB     float64 `json:"peakHeapMiB"`
	PeakLiveHeapMiB float64 `json:"peakLiveHeapMiB"`
	// ScrapedHeapMiB is the largest go_memstats_heap_alloc_bytes of the scrapes.
	ScrapedHeapMiB float64 `json:"scrapedHeapMiB"`
	Collections    int     `json:"gcCollections"`
	// MaxInWindow is the most requests one token made in any rate-limit window.
	MaxInWindow int `json:"maxRequestsInWindow"`
	// ListBytes is the size of one account's List response body at the end.
	ListBytes int     `json:"listBytes"`
	Steady    *steady `json:"steady,omitempty"`
	// Env is the manager's environment (KEY=VALUE), empty for Go's runtime defaults;
	// absent (nil) in results of older runs, which had one for the whole run.
	Env []string `json:"managerEnv"`
	// BudgetBlocks and BudgetDeferred are the manager's cloudflare_budget_blocks_total
	// and cloudflare_budget_deferred_total, all users, at the end of the scenario
	// (before any latency phase).
	BudgetBlocks   float64 `json:"budgetBlocks"`
	BudgetDeferred float64 `json:"budgetDeferred"`
	// HeapProfile summarises the heap after the no-drift window (-heap-profiles).
	HeapProfile *heapProfile `json:"heapProfile,omitempty"`
	// Latency is the spec-edit-to-PATCH latency (-latency-n).
	Latency *latencyResult `json:"latency,omitempty"`
	// Shared is the other tool's share of the quota (the +shared variant).
	Shared *sharedResult `json:"shared,omitempty"`

	ReadyCurve []point `json:"readyCurve,omitempty"`
	RSSCurve   []point `json:"rssCurve,omitempty"`
	// Token0 is the cumulative number of Cloudflare requests made with the first
	// account's token, and Creates0 the creates among them; RateLimited0 the times of
	// its 429s.
	Token0       []point   `json:"token0Requests,omitempty"`
	Creates0     []point   `json:"token0Creates,omitempty"`
	RateLimited0 []float64 `json:"token0RateLimited,omitempty"`
}

// window is one steady-state measurement.
type window struct {
	Seconds     float64        `json:"seconds"`
	Calls       map[string]int `json:"calls"`
	RateLimited int            `json:"rateLimited"`
	Writes      map[string]int `json:"apiserverWrites"`
	Reconciles  float64        `json:"reconciles"`
	// MinReady is the fewest objects Ready at any time in the window.
	MinReady int `json:"minReady"`
}

// Steady-state windows, in sync periods.
const (
	noDriftPeriods  = 3
	minDriftPeriods = 2
	maxDriftPeriods = 4
)

// steady is the steady state after every object is Ready.
type steady struct {
	PeriodSeconds float64 `json:"periodSeconds"`
	// From and To bound both windows, in seconds since the manager's start.
	From float64 `json:"fromSeconds"`
	To   float64 `json:"toSeconds"`
	// ListGapMin and ListGapMean are the shortest and the mean time between two Lists
	// of the same account in steady state: at least one sync period means at most one
	// List per account per period.
	ListGapMin  float64 `json:"listGapMinSeconds,omitempty"`
	ListGapMean float64 `json:"listGapMeanSeconds,omitempty"`
	NoDrift     window  `json:"noDrift"`
	Drift       window  `json:"drift"`
	Drifted     int     `json:"drifted"`
	Corrected   int     `json:"corrected"`
	// Correction times, from the out-of-band change to the PATCH that undid it.
	CorrectionP50 float64 `json:"correctionP50Seconds"`
	CorrectionMax float64 `json:"correctionMaxSeconds"`
	// ScrapeAllocMiB is what one scrape of the manager's /metrics allocates.
	ScrapeAllocMiB float64 `json:"scrapeAllocMiB"`
}

func (r *result) summary() string {
	s := fmt.Sprintf("ready %d/%d in %.1fs, calls %v, 429s %d, writes %d, peak RSS %.0f MiB, heap %.0f MiB",
		r.ReadyAtEnd, r.N, r.TimeToReady, r.Calls, r.RateLimited, total(r.Writes), r.PeakRSSMiB, r.PeakHeapMiB)
	if st := r.Steady; st != nil {
		s += fmt.Sprintf("; steady: %v in %.0fs, drift: %v in %.0fs, corrected %d/%d (p50 %.1fs, max %.1fs)",
			st.NoDrift.Calls, st.NoDrift.Seconds, st.Drift.Calls, st.Drift.Seconds, st.Corrected, st.Drifted, st.CorrectionP50, st.CorrectionMax)
	}
	if r.Strategy == strategyOurs {
		s += fmt.Sprintf("; budget blocks %.0f, deferred %.0f", r.BudgetBlocks, r.BudgetDeferred)
	}
	if sh := r.Shared; sh != nil {
		s += fmt.Sprintf("; the other tool: %d requests since the manager started, %d answered 429", sh.OtherRequests, sh.OtherRateLimited)
	}
	return s
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func accountID(k int) string { return fmt.Sprintf("%032x", 0xbe7c0000+k) }

func namespaceOf(k int) string { return fmt.Sprintf("bench-account-%d", k) }

// binding is one object and the remote client it manages (adoption only).
type binding struct {
	account  string
	clientID string
	name     string
	// index and namespace name the object: objectName(index) in namespace.
	index     int
	namespace string
}

// key is the object's namespace/name.
func (b binding) key() string { return b.namespace + "/" + objectName(b.index) }

func objectName(i int) string { return fmt.Sprintf("client-%05d", i) }

// scenarioRun holds the moving parts of one scenario.
type scenarioRun struct {
	cfg   *config
	sc    scenario
	dir   string // the scenario's temporary directory
	cl    *cluster
	emu   *emulator
	mgr   *managerProcess
	ready *readiness
	res   *result
	bound []binding
	// drifted are the client IDs changed out of band in the steady-state measurement.
	drifted map[string]bool
	// other is the other tool of the shared-quota scenario, nil elsewhere.
	other *otherTool
}

func runScenario(ctx context.Context, cfg *config, bin, dir string, sc scenario) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cl, err := startCluster(dir)
	if err != nil {
		return nil, err
	}
	defer cl.stop()

	tokens := map[string][]string{}
	for k := range sc.Accounts {
		tokens[tokenOf(k)] = []string{accountID(k)}
	}
	emu := startEmulator(tokens, cfg.rateLimit, cfg.rateWindow, cfg.latency)
	defer emu.close()

	env := append(make([]string, 0, len(cfg.envOf(sc))), cfg.envOf(sc)...)
	r := &scenarioRun{cfg: cfg, sc: sc, dir: dir, cl: cl, emu: emu, res: &result{scenario: sc, Env: env}}
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	if r.ready, err = watchReadiness(ctx, cl); err != nil {
		return nil, err
	}
	defer r.ready.stop()
	if sc.Variant == variantShared {
		if r.other, err = startOtherTool(ctx, emu, cfg); err != nil {
			return nil, err
		}
		defer r.other.stop()
	}
	if err := r.converge(ctx, bin); err != nil {
		return nil, err
	}
	defer r.mgr.stop()
	if sc.Path == pathAdopt && r.res.AllReady {
		if err := r.measureSteady(ctx); err != nil {
			return nil, err
		}
	}
	// Memory, curves and the budget's counters are the scenario's own: recorded before
	// the latency phases add objects.
	r.finish(ctx)
	if cfg.measuresLatency(sc) && r.res.AllReady && r.res.Steady != nil {
		if err := r.measureLatency(ctx); err != nil {
			return nil, err
		}
	}
	return r.res, ctx.Err()
}

// prepare creates the namespaces with their credentials, seeds the remote clients to
// adopt, and applies the N objects, all before the manager starts.
func (r *scenarioRun) prepare(ctx context.Context) error {
	if err := createOperatorNamespace(ctx, r.cl); err != nil {
		return err
	}
	for k := range r.sc.Accounts {
		if err := r.cl.createNamespace(ctx, namespaceOf(k), tokenOf(k)); err != nil {
			return err
		}
	}
	objs := make([]*v1alpha1.OAuthClient, r.sc.N)
	for i := range objs {
		k := i % r.sc.Accounts
		objs[i] = objectFor(i, accountID(k), namespaceOf(k))
		if r.sc.Path != pathAdopt {
			continue
		}
		seeded, err := r.emu.SeedClient(accountID(k), remoteFor(i), "")
		if err != nil {
			return err
		}
		objs[i].Spec.ClientID = ptrTo(seeded.ClientID)
		r.bound = append(r.bound, binding{account: accountID(k), clientID: seeded.ClientID, name: seeded.ClientName, index: i, namespace: namespaceOf(k)})
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, o := range objs {
		g.Go(func() error { return r.cl.client.Create(gctx, o) })
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("applying OAuthClients: %w", err)
	}
	r.res.ApplySeconds = time.Since(start).Seconds()
	logf("  applied %d OAuthClients in %.1fs", r.sc.N, r.res.ApplySeconds)
	return nil
}

// objectFor is the i-th OAuthClient: a confidential web client with the fields
// Cloudflare requires on create, all managed.
func objectFor(i int, account, namespace string) *v1alpha1.OAuthClient {
	rc := remoteFor(i)
	grants := make([]v1alpha1.GrantType, len(rc.GrantTypes))
	for j, g := range rc.GrantTypes {
		grants[j] = v1alpha1.GrantType(g)
	}
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: objectName(i)},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               account,
			CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: credentialsSecret},
			ClientName:              ptrTo(rc.ClientName),
			RedirectURIs:            ptrTo(slices.Clone(rc.RedirectURIs)),
			GrantTypes:              &grants,
			ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode},
			Scopes:                  &[]string{"account.read", "user-details.read"},
			TokenEndpointAuthMethod: ptrTo(v1alpha1.AuthMethodClientSecretBasic),
		},
	}
}

// remoteFor is the i-th client as Cloudflare holds it, equal to objectFor's spec (so
// adopting it needs no PATCH). Cloudflare adds offline_access for refresh_token.
func remoteFor(i int) cfapi.OAuthClient {
	return cfapi.OAuthClient{
		ClientName:              fmt.Sprintf("bench client %05d", i),
		RedirectURIs:            []string{fmt.Sprintf("https://app-%05d.example.com/oauth/callback", i)},
		PostLogoutRedirectURIs:  []string{},
		AllowedCORSOrigins:      []string{},
		GrantTypes:              []string{cfapi.GrantAuthorizationCode, cfapi.GrantRefreshToken},
		ResponseTypes:           []string{cfapi.ResponseTypeCode},
		Scopes:                  []string{"account.read", "user-details.read", "offline_access"},
		OptionalScopes:          []string{},
		TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	}
}

// managerArgs are the manager's flags for the strategy. The baseline is the same
// controller with its observe step swapped for one GET per object and no client-side
// budget: the way most controllers poll.
func (r *scenarioRun) managerArgs() []string {
	args := []string{
		"--remote-sync-period=" + r.cfg.syncPeriod.String(),
		"--verification-poll-interval=1h",
		"--max-concurrent-reconciles=" + strconv.Itoa(r.cfg.workers),
	}
	if r.sc.Strategy == strategyBaseline {
		return append(args, "--bench-per-object-get", "--cloudflare-request-budget=0")
	}
	return append(args, "--cloudflare-request-budget="+r.cfg.budget)
}

// converge starts the manager and waits until every object is Ready or the cap.
func (r *scenarioRun) converge(ctx context.Context, bin string) error {
	before, err := r.cl.writes(ctx)
	if err != nil {
		return err
	}
	r.emu.ResetStats()
	r.emu.resetClock()
	r.ready.restart()
	if r.mgr, err = startManager(ctx, bin, r.dir, r.cl, r.emu.apiURL(), r.managerArgs(), r.res.Env, r.cfg.scrapeInterval); err != nil {
		return err
	}
	if err := r.mgr.waitMetrics(ctx); err != nil {
		r.mgr.stop()
		return err
	}
	limit := r.cfg.oursTimeout
	if r.sc.Strategy == strategyBaseline {
		limit = r.cfg.baselineCap
	}
	progress := r.reportProgress(ctx)
	took, ok := r.ready.waitAll(ctx, r.sc.N, limit)
	progress()
	res := r.res
	res.TimeToReady, res.AllReady = took.Seconds(), ok
	res.Calls, res.RateLimited = r.operatorCalls()
	after, err := r.cl.writes(ctx)
	if err != nil {
		return err
	}
	res.Writes = after.minus(before)
	res.Reconciles = r.reconciles(ctx)
	var curve []point
	res.ReadyAtEnd, _, curve = r.ready.snapshot()
	for _, p := range curve {
		res.PeakReady = max(res.PeakReady, int(p.Y))
	}
	if !ok {
		res.NotReady = r.ready.notReadyReasons()
	}
	return nil
}

// operatorCalls are the manager's Cloudflare requests since the stats were reset, by
// operation, and those answered 429. The emulator counts the other tool's requests of
// the shared-quota scenario too; there the operator's are the timeline's untagged ones.
func (r *scenarioRun) operatorCalls() (map[string]int, int) {
	if r.other != nil {
		return opsOfEvents(r.emu.timeline(), func(ev apiEvent) bool { return !ev.Other })
	}
	st := r.emu.Stats()
	return opsOf(st), st.RateLimited
}

// reportProgress logs the Ready count every 30 seconds until stopped.
func (r *scenarioRun) reportProgress(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n, _, _ := r.ready.snapshot()
				calls, limited := r.operatorCalls()
				logf("  %s: %d/%d Ready after %s, calls %v, 429s %d", r.sc, n, r.sc.N,
					time.Since(r.mgr.started).Round(time.Second), calls, limited)
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// measureSteady measures two sync periods without drift, then changes 1% of the
// clients out of band and measures until each is corrected (or three periods).
func (r *scenarioRun) measureSteady(ctx context.Context) error {
	p := r.cfg.syncPeriod
	st := &steady{PeriodSeconds: p.Seconds(), From: time.Since(r.mgr.started).Seconds()}
	var err error
	if st.NoDrift, err = r.measureWindow(ctx, func() { sleepCtx(ctx, noDriftPeriods*p) }); err != nil {
		return err
	}
	st.ScrapeAllocMiB = r.scrapeAlloc(ctx)
	if r.cfg.heapProfiles[r.sc.String()] {
		hp, err := r.mgr.profileHeap(ctx, r.dir, strings.ReplaceAll(r.sc.String(), "/", "-"))
		if err != nil {
			logf("  %s: %v", r.sc, err)
		}
		r.res.HeapProfile = hp
	}

	count := max(1, int(math.Round(float64(r.sc.N)*r.cfg.driftPercent/100)))
	step := len(r.bound) / count
	drifted := make([]binding, 0, count)
	r.drifted = map[string]bool{}
	for i := range count {
		drifted = append(drifted, r.bound[i*step])
		r.drifted[r.bound[i*step].clientID] = true
	}
	var corrections []float64
	st.Drift, err = r.measureWindow(ctx, func() {
		start := time.Now()
		corrections = r.driftAndWait(ctx, drifted, maxDriftPeriods*p)
		// At least two periods, so that the calls per period are not an edge effect.
		sleepCtx(ctx, time.Until(start.Add(minDriftPeriods*p)))
	})
	if err != nil {
		return err
	}
	st.To = time.Since(r.mgr.started).Seconds()
	st.Drifted, st.Corrected = len(drifted), len(corrections)
	if len(corrections) > 0 {
		sort.Float64s(corrections)
		st.CorrectionP50 = corrections[len(corrections)/2]
		st.CorrectionMax = corrections[len(corrections)-1]
	}
	r.res.Steady = st
	return nil
}

// measureWindow counts Cloudflare calls, 429s, apiserver writes and reconciles for as
// long as during runs.
func (r *scenarioRun) measureWindow(ctx context.Context, during func()) (window, error) {
	before, err := r.cl.writes(ctx)
	if err != nil {
		return window{}, err
	}
	recBefore := r.reconciles(ctx)
	r.emu.ResetStats()
	r.ready.markWindow()
	start := time.Now()
	during()
	w := window{Seconds: time.Since(start).Seconds()}
	st := r.emu.Stats()
	w.Calls, w.RateLimited = opsOf(st), st.RateLimited
	after, err := r.cl.writes(ctx)
	if err != nil {
		return window{}, err
	}
	w.Writes = after.minus(before)
	w.Reconciles = r.reconciles(ctx) - recBefore
	_, w.MinReady, _ = r.ready.snapshot()
	return w, ctx.Err()
}

// driftAndWait changes each client's name out of band and waits until the operator has
// put every one back, or the timeout. It returns the correction times in seconds.
func (r *scenarioRun) driftAndWait(ctx context.Context, drifted []binding, timeout time.Duration) []float64 {
	changedAt := make([]time.Time, len(drifted))
	for i, b := range drifted {
		changedAt[i] = time.Now()
		if err := r.emu.MutateClient(b.account, b.clientID, func(c *cfapi.OAuthClient) { c.ClientName += " (edited in the dashboard)" }); err != nil {
			logf("  drifting client %s: %v", b.clientID, err)
		}
	}
	done := make([]bool, len(drifted))
	var out []float64
	waitFor(ctx, 50*time.Millisecond, timeout, func() bool {
		for i, b := range drifted {
			if done[i] {
				continue
			}
			if c, ok := r.emu.GetClient(b.account, b.clientID); ok && c.ClientName == b.name {
				done[i] = true
				out = append(out, time.Since(changedAt[i]).Seconds())
			}
		}
		return len(out) == len(drifted)
	})
	return out
}

// reconciles returns the manager's reconcile count so far.
func (r *scenarioRun) reconciles(ctx context.Context) float64 {
	ss, err := scrape(ctx, r.mgr.http, r.mgr.metricsURL)
	if err != nil {
		return 0
	}
	return ss.sum("controller_runtime_reconcile_total", map[string]string{"controller": "oauthclient"})
}

// scrapeAlloc measures what one scrape of /metrics allocates in the manager: two
// scrapes back to back, the difference of go_memstats_alloc_bytes_total.
func (r *scenarioRun) scrapeAlloc(ctx context.Context) float64 {
	a, err := scrape(ctx, r.mgr.http, r.mgr.metricsURL)
	if err != nil {
		return 0
	}
	b, err := scrape(ctx, r.mgr.http, r.mgr.metricsURL)
	if err != nil {
		return 0
	}
	return (b.sum("go_memstats_alloc_bytes_total", nil) - a.sum("go_memstats_alloc_bytes_total", nil)) / mib
}

// finish records memory, the budget's counters, the List size and the curves.
func (r *scenarioRun) finish(ctx context.Context) {
	res := r.res
	r.mgr.scrapeHeap(ctx)
	if ss, err := scrape(ctx, r.mgr.http, r.mgr.metricsURL); err == nil {
		res.BudgetBlocks = ss.sum("cloudflare_budget_blocks_total", nil)
		res.BudgetDeferred = ss.sum("cloudflare_budget_deferred_total", nil)
	}
	if mem, err := r.mgr.memory(); err == nil {
		res.PeakRSSMiB = mem.hwm / mib
	}
	anon, file := r.mgr.rssSplit()
	res.RSSAnonMiB, res.RSSFileMiB = anon/mib, file/mib
	res.ScrapedHeapMiB = r.mgr.heapPeak() / mib
	gc := r.mgr.gcTrace()
	res.PeakHeapMiB, res.PeakLiveHeapMiB, res.Collections = gc.peakHeap/mib, gc.peakLive/mib, gc.collections
	if b, err := json.Marshal(map[string]any{"success": true, "result": r.emu.Clients(accountID(0))}); err == nil {
		res.ListBytes = len(b)
	}
	_, _, curve := r.ready.snapshot()
	res.ReadyCurve = downsample(curve)
	res.RSSCurve = downsample(r.mgr.rssTimeline())
	var reqs, creates []point
	nReq, nCreate := 0, 0
	events := r.emu.timeline()
	for _, ev := range events {
		t := ev.At.Seconds()
		if ev.Other {
			continue
		}
		if ev.Status == http.StatusTooManyRequests && res.FirstRateLimit == 0 {
			res.FirstRateLimit = t
		}
		if ev.Token != 0 {
			continue
		}
		nReq++
		reqs = append(reqs, point{X: t, Y: float64(nReq)})
		if ev.Op == opCreate && ev.Status < 300 {
			nCreate++
			creates = append(creates, point{X: t, Y: float64(nCreate)})
		}
		if ev.Status == http.StatusTooManyRequests {
			res.RateLimited0 = append(res.RateLimited0, t)
		}
	}
	res.Token0, res.Creates0 = downsample(reqs), downsample(creates)
	res.MaxInWindow = maxInWindow(events, r.cfg.rateWindow)
	if st := res.Steady; st != nil {
		st.ListGapMin, st.ListGapMean = listGaps(events, st.From, st.To)
	}
	if r.other != nil {
		res.Shared = r.other.result(events)
	}
	if len(res.RateLimited0) > 50 {
		res.RateLimited0 = res.RateLimited0[:50]
	}
}

// maxInWindow returns the most requests a single token made within any window.
func maxInWindow(events []apiEvent, window time.Duration) int {
	byToken := map[int][]time.Duration{}
	for _, ev := range events {
		byToken[ev.Token] = append(byToken[ev.Token], ev.At)
	}
	best := 0
	for _, times := range byToken {
		slices.Sort(times)
		lo := 0
		for hi, t := range times {
			for times[lo] <= t-window {
				lo++
			}
			best = max(best, hi-lo+1)
		}
	}
	return best
}

// listGaps returns the shortest and mean time between consecutive Lists made with the
// same token between from and to (seconds since the manager's start).
func listGaps(events []apiEvent, from, to float64) (minGap, mean float64) {
	last := map[int]float64{}
	var gaps []float64
	for _, ev := range events {
		t := ev.At.Seconds()
		if ev.Op != opList || ev.Other || t < from || t > to {
			continue
		}
		if prev, ok := last[ev.Token]; ok {
			gaps = append(gaps, t-prev)
		}
		last[ev.Token] = t
	}
	if len(gaps) == 0 {
		return 0, 0
	}
	minGap, sum := gaps[0], 0.0
	for _, g := range gaps {
		minGap, sum = math.Min(minGap, g), sum+g
	}
	return minGap, sum / float64(len(gaps))
}

// maxCurvePoints bounds each curve kept in results.json.
const maxCurvePoints = 400

// downsample keeps at most maxCurvePoints points of a curve, the first and last included.
func downsample(in []point) []point {
	n := maxCurvePoints
	if len(in) <= n {
		return in
	}
	out := make([]point, 0, n+1)
	step := float64(len(in)-1) / float64(n-1)
	for i := range n {
		out = append(out, in[int(math.Round(float64(i)*step))])
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func ptrTo[T any](v T) *T { return &v }

// keys returns a map's keys, sorted.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
