// Command bench is the scale benchmark of the OAuthClient controller (make bench).
//
// For every scenario (N objects, spread over some accounts, adopted or created, with
// our list-based observe strategy or the per-object GET baseline) it starts a fresh
// source-built control plane (kube-apiserver and etcd), the in-process Cloudflare
// emulator with Cloudflare's rate limit and a per-request latency, and the real manager
// binary, then measures the time until every object is Ready, the Cloudflare calls by
// operation, 429s, apiserver writes, and the manager's peak RSS and Go heap. Adoption
// scenarios then measure steady state: Cloudflare calls per sync period without drift
// and with 1% of the clients drifted out of band, and the time to correct the drift.
//
// Besides the matrix (matrix.go): variants run with the Go runtime environment the
// deployment ships (+gomemlimit) or with another tool spending part of the same
// Cloudflare user's limit (+shared, shared.go); chosen scenarios have their heap
// profiled in steady state (heap.go); one adoption measures the latency from a spec
// edit to Cloudflare's PATCH, in steady state and during a mass adoption (latency.go).
//
// It prints a table and writes results.md, results.svg and results.json to -out.
// -render re-renders the Markdown and the chart from a results.json without running.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// config is the benchmark's command line.
type config struct {
	ns         []int
	accounts   []int
	paths      []string
	strategies []string
	skip       map[string]bool

	latency        time.Duration
	syncPeriod     time.Duration
	rateLimit      int
	rateWindow     time.Duration
	driftPercent   float64
	budget         string
	workers        int
	oursTimeout    time.Duration
	baselineCap    time.Duration
	scrapeInterval time.Duration

	out        string
	render     string
	manager    string
	managerEnv []string
	keepTmp    bool
	list       bool
	command    string

	// shippedEnv is the Go runtime environment config/manager/manager.yaml deploys;
	// the cells in shippedEnvCells also run with it, as the variantShippedEnv variant.
	shippedEnv      []string
	shippedEnvCells map[string]bool
	// heapProfiles are the scenarios whose heap is profiled in steady state.
	heapProfiles map[string]bool
	editLatency  latencyConfig
	shared       sharedConfig
}

// latencyConfig sets the spec-edit-to-PATCH phases (latency.go).
type latencyConfig struct {
	// n selects the scenario they run in: adopt/n/1/ours; 0 runs none.
	n int
	// edits spec edits per phase, one every interval; an edit whose PATCH has not
	// reached Cloudflare within bound is a miss.
	edits    int
	interval time.Duration
	bound    time.Duration
	// adopt is how many more clients are adopted during the second phase.
	adopt int
}

// sharedConfig sets the shared-quota scenario (shared.go): create/n/1/ours+shared while
// another tool spends share of the same user's Cloudflare limit; n 0 runs none.
type sharedConfig struct {
	n     int
	share float64
}

// defaultSkip leaves out, as -skip patterns (path.Match, whole key):
//   - creating 5,000 clients with a single token, paced at ~3.4 creates/s by design,
//     about 24 minutes; the pacing itself is shown by the N=1,000 single-token create
//     (~5 minutes, the whole of Cloudflare's 5-minute window) and by N=5,000 over five
//     tokens;
//   - the baseline creates over five tokens, which add nothing to the single-token ones;
//   - at N=10,000 everything but the single-token adoption by our strategy: the scale
//     point is about one token's List and the manager's memory, not the matrix again.
const defaultSkip = "create/5000/1/*,create/100/5/baseline,create/1000/5/baseline," +
	"*/10000/*/baseline,*/10000/5/*,create/10000/*/*"

func parseFlags() (*config, error) {
	c := &config{}
	var ns, accounts, paths, strategies, skip, managerEnv, shippedCells, heapProfiles string
	flag.StringVar(&ns, "n", "100,1000,5000,10000", "numbers of OAuthClient objects, comma separated")
	flag.StringVar(&accounts, "accounts", "1,5", "numbers of accounts the objects are spread over, each with its own API token")
	flag.StringVar(&paths, "paths", "adopt,create", "adopt (clients pre-seeded in Cloudflare, spec.clientID set) and/or create")
	flag.StringVar(&strategies, "strategies", "ours,baseline", "ours (one List per account per sync period, paced) and/or baseline (one GET per object per sync period, unpaced)")
	flag.StringVar(&skip, "skip", defaultSkip, "scenarios to leave out: patterns matched against the whole key path/N/accounts/strategy[+variant] "+
		"(path.Match: * matches within one segment), comma separated; empty runs the full matrix")
	flag.DurationVar(&c.latency, "latency", 50*time.Millisecond, "latency the emulator adds to every Cloudflare request")
	flag.DurationVar(&c.syncPeriod, "sync-period", 20*time.Second, "the manager's --remote-sync-period; steady state is measured over multiples of it")
	flag.IntVar(&c.rateLimit, "rate-limit", 1200, "Cloudflare requests allowed per token per -rate-window before a block of one window")
	flag.DurationVar(&c.rateWindow, "rate-window", 5*time.Minute, "Cloudflare's rate-limit window")
	flag.Float64Var(&c.driftPercent, "drift", 1, "percentage of clients changed out of band in the drift measurement")
	flag.StringVar(&c.budget, "budget", "1080/5m", "the manager's --cloudflare-request-budget for our strategy (the baseline runs unpaced)")
	flag.IntVar(&c.workers, "workers", 4, "the manager's --max-concurrent-reconciles")
	flag.DurationVar(&c.oursTimeout, "timeout", 40*time.Minute, "give up waiting for Ready after this long (our strategy)")
	flag.DurationVar(&c.baselineCap, "baseline-cap", 2*time.Minute, "stop waiting for the baseline to get Ready after this long (it can be blocked for 5-minute windows)")
	flag.DurationVar(&c.scrapeInterval, "scrape-interval", 15*time.Second, "how often the manager's /metrics is scraped for the Go heap (Prometheus' usual interval)")
	flag.StringVar(&c.out, "out", filepath.Join(testenv.RepoRoot(), "bench"), "directory for results.md, results.svg and results.json")
	flag.StringVar(&c.render, "render", "", "re-render results.md and results.svg from this results.json and exit")
	flag.StringVar(&managerEnv, "manager-env", "",
		"KEY=VALUE environment variables for the manager in every scenario but the +"+variantShippedEnv+" ones, comma separated; "+
			"empty: Go's runtime defaults")
	flag.StringVar(&shippedCells, "shipped-env", "adopt/5000/1/ours",
		"scenarios (path/N/accounts/strategy) also run as KEY+"+variantShippedEnv+", with the Go runtime environment "+
			"config/manager/manager.yaml deploys (GOMEMLIMIT); they run when the cell is in the matrix; empty runs none")
	flag.StringVar(&heapProfiles, "heap-profiles", "adopt/1000/1/ours,adopt/5000/1/ours",
		"scenarios whose manager heap is profiled (/debug/pprof/heap) after the no-drift steady-state window and summarised")
	flag.IntVar(&c.editLatency.n, "latency-n", 1000, "run the spec-edit-to-PATCH latency phases in adopt/N/1/ours, after its steady state; 0 runs none")
	flag.IntVar(&c.editLatency.edits, "latency-edits", 100, "spec edits per latency phase, each on its own Ready object")
	flag.DurationVar(&c.editLatency.interval, "latency-interval", 500*time.Millisecond, "time between two spec edits in a latency phase")
	flag.DurationVar(&c.editLatency.bound, "latency-bound", 30*time.Second, "an edit whose PATCH has not reached Cloudflare within this long is a miss")
	flag.IntVar(&c.editLatency.adopt, "latency-adopt", 1000, "clients adopted by new objects while the second latency phase edits")
	flag.IntVar(&c.shared.n, "shared-n", 1000, "run create/N/1/ours+"+variantShared+": N creates while another tool spends part of the same user's limit; 0 runs none")
	flag.Float64Var(&c.shared.share, "shared-share", 0.5, "the share of Cloudflare's limit the other tool spends, evenly, in the +"+variantShared+" scenario")
	flag.StringVar(&c.manager, "manager", "", "use this manager binary instead of building cmd/manager (for profiling builds)")
	flag.BoolVar(&c.keepTmp, "keep-tmp", false, "keep the temporary directory with the manager's logs and heap profiles")
	flag.BoolVar(&c.list, "list", false, "print the scenarios that would run, with what each adds, and exit")
	flag.Parse()

	var err error
	if c.ns, err = ints(ns); err != nil {
		return nil, fmt.Errorf("-n: %w", err)
	}
	if c.accounts, err = ints(accounts); err != nil {
		return nil, fmt.Errorf("-accounts: %w", err)
	}
	c.paths, c.strategies, c.managerEnv = fields(paths), fields(strategies), fields(managerEnv)
	c.shippedEnv = deployedRuntimeEnv()
	c.shippedEnvCells, c.heapProfiles = set(fields(shippedCells)), set(fields(heapProfiles))
	c.skip = set(fields(skip))
	if err := c.validate(); err != nil {
		return nil, err
	}
	c.command = strings.TrimSpace("go run ./hack/bench " + strings.Join(os.Args[1:], " "))
	return c, nil
}

// validate checks the flags that parseFlags cannot check while parsing.
func (c *config) validate() error {
	for _, p := range c.paths {
		if p != pathAdopt && p != pathCreate {
			return fmt.Errorf("-paths: unknown path %q", p)
		}
	}
	for _, s := range c.strategies {
		if s != strategyOurs && s != strategyBaseline {
			return fmt.Errorf("-strategies: unknown strategy %q", s)
		}
	}
	for pattern := range c.skip {
		if _, err := path.Match(pattern, ""); err != nil {
			return fmt.Errorf("-skip: bad pattern %q: %w", pattern, err)
		}
	}
	if c.syncPeriod <= 0 || c.latency < 0 || c.rateLimit < 0 || c.workers < 1 {
		return fmt.Errorf("-sync-period must be positive, -latency and -rate-limit not negative, -workers at least 1")
	}
	return c.validatePhases()
}

// validatePhases checks the latency phases' and the shared-quota scenario's flags.
func (c *config) validatePhases() error {
	if c.editLatency.n < 0 || c.editLatency.edits < 1 || c.editLatency.interval <= 0 || c.editLatency.bound <= 0 || c.editLatency.adopt < 0 {
		return fmt.Errorf("-latency-n and -latency-adopt must not be negative, -latency-edits, -latency-interval and -latency-bound positive")
	}
	if c.shared.n < 0 || c.shared.share <= 0 || c.shared.share >= 1 {
		return fmt.Errorf("-shared-n must not be negative, -shared-share between 0 and 1")
	}
	return nil
}

func set(items []string) map[string]bool {
	out := make(map[string]bool, len(items))
	for _, s := range items {
		out[s] = true
	}
	return out
}

func fields(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if cfg.list {
		cfg.printScenarios()
		return
	}
	if cfg.render != "" {
		if err := rerender(cfg); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	// The benchmark's own watch and envtest log nothing worth reading.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runAll(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runAll(ctx context.Context, cfg *config) error {
	if _, err := testenv.AssetsDir(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "oauth-bench-")
	if err != nil {
		return err
	}
	if cfg.keepTmp {
		logf("temporary files (manager logs) in %s", tmp)
	} else {
		defer func() { _ = os.RemoveAll(tmp) }()
	}
	bin := cfg.manager
	if bin == "" {
		if bin, err = buildManager(ctx, tmp); err != nil {
			return err
		}
	}

	rep := &report{
		Command: cfg.command, Started: time.Now().UTC(), Latency: cfg.latency, SyncPeriod: cfg.syncPeriod,
		RateLimit: cfg.rateLimit, RateWindow: cfg.rateWindow, Budget: cfg.budget, Workers: cfg.workers,
		DriftPercent: cfg.driftPercent, BaselineCap: cfg.baselineCap, Skipped: fields(strings.Join(keys(cfg.skip), ",")),
		ManagerEnv: cfg.managerEnv, ShippedEnv: cfg.shippedEnv,
		Machine: machine(),
	}
	rep.Commit, rep.Uncommitted = provenance(ctx)
	all := cfg.scenarios()
	for i, sc := range all {
		if ctx.Err() != nil {
			break
		}
		logf("[%d/%d] %s", i+1, len(all), sc)
		res, err := runScenario(ctx, cfg, bin, filepath.Join(tmp, strings.ReplaceAll(sc.String(), "/", "-")), sc)
		if err != nil {
			return fmt.Errorf("%s: %w", sc, err)
		}
		rep.Results = append(rep.Results, res)
		logf("[%d/%d] %s: %s", i+1, len(all), sc, res.summary())
	}
	rep.Duration = time.Since(rep.Started)
	if err := rep.write(cfg.out); err != nil {
		return err
	}
	fmt.Print(rep.table())
	logf("wrote %s, %s and %s in %s", fileMD, fileSVG, fileJSON, cfg.out)
	return ctx.Err()
}

// rerender rebuilds results.md and results.svg from a results.json.
func rerender(cfg *config) error {
	b, err := os.ReadFile(cfg.render)
	if err != nil {
		return err
	}
	rep := &report{}
	if err := json.Unmarshal(b, rep); err != nil {
		return fmt.Errorf("%s: %w", cfg.render, err)
	}
	if err := rep.write(cfg.out); err != nil {
		return err
	}
	fmt.Print(rep.table())
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
