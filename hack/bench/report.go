package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

const (
	fileMD   = "results.md"
	fileSVG  = "results.svg"
	fileJSON = "results.json"
)

// report is a whole run: its settings and every scenario's result.
type report struct {
	Command      string        `json:"command"`
	Started      time.Time     `json:"started"`
	Duration     time.Duration `json:"duration"`
	Machine      machineInfo   `json:"machine"`
	Latency      time.Duration `json:"latency"`
	SyncPeriod   time.Duration `json:"syncPeriod"`
	RateLimit    int           `json:"rateLimit"`
	RateWindow   time.Duration `json:"rateWindow"`
	Budget       string        `json:"budget"`
	Workers      int           `json:"workers"`
	DriftPercent float64       `json:"driftPercent"`
	BaselineCap  time.Duration `json:"baselineCap"`
	Skipped      []string      `json:"skipped"`
	// ManagerEnv is the manager's environment in every scenario but the +gomemlimit
	// ones, which run with ShippedEnv, what config/manager/manager.yaml deploys.
	ManagerEnv []string `json:"managerEnv,omitempty"`
	ShippedEnv []string `json:"shippedEnv,omitempty"`
	// Commit is the repository's HEAD when the manager was built, and Uncommitted the
	// files under cmd/, internal/ and api/ that differed from it.
	Commit      string    `json:"commit,omitempty"`
	Uncommitted []string  `json:"uncommitted,omitempty"`
	Results     []*result `json:"results"`
}

func (rep *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	files := map[string][]byte{
		fileJSON: append(js, '\n'),
		fileMD:   []byte(rep.markdown()),
		fileSVG:  []byte(rep.chart()),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// row is one result rendered as table cells.
type row struct {
	path, n, accounts, strategy, ready, calls, limited, writes, period, drift, fixed, rss, heap string
}

var header = row{"Path", "N", "Accounts", "Strategy", "Time to Ready", "Cloudflare calls until Ready", "429s",
	"apiserver writes", "Calls per sync period (no drift)", "Calls per sync period (1% drift)", "Drift corrected (p50 / max)",
	"Peak RSS", "Peak Go heap (live after GC)"}

func (r row) cells() []string {
	return []string{r.path, r.n, r.accounts, r.strategy, r.ready, r.calls, r.limited, r.writes, r.period, r.drift, r.fixed, r.rss, r.heap}
}

func (rep *report) rows() []row {
	out := make([]row, 0, len(rep.Results))
	for _, r := range rep.Results {
		out = append(out, rep.rowOf(r))
	}
	return out
}

func strategyName(s string) string {
	if s == strategyBaseline {
		return "baseline (GET per object)"
	}
	return "ours (List per account)"
}

// strategyCell is the strategy and, for a variant, what sets it apart.
func (rep *report) strategyCell(r *result) string {
	switch r.Variant {
	case variantShippedEnv:
		return fmt.Sprintf("%s, %s", strategyName(r.Strategy), envText(rep.envOf(r)))
	case variantShared:
		return fmt.Sprintf("%s, another tool spends %s of the quota", strategyName(r.Strategy), sharePercent(r))
	}
	return strategyName(r.Strategy)
}

func sharePercent(r *result) string {
	if r.Shared == nil {
		return "part"
	}
	return fmt.Sprintf("%.0f%%", 100*r.Shared.Share)
}

// envOf is the manager's environment in a result: its own, or the run's for results
// of runs that had one environment for every scenario.
func (rep *report) envOf(r *result) []string {
	if r.Env != nil {
		return r.Env
	}
	return rep.ManagerEnv
}

// envText renders an environment: `GOMEMLIMIT=100MiB`, or Go's defaults.
func envText(env []string) string {
	if len(env) == 0 {
		return "Go's runtime defaults"
	}
	return "`" + strings.Join(env, " ") + "`"
}

func (rep *report) rowOf(r *result) row {
	rw := row{
		path: r.Path, n: fmt.Sprint(r.N), accounts: fmt.Sprint(r.Accounts), strategy: rep.strategyCell(r),
		calls: formatOps(r.Calls), limited: fmt.Sprint(r.RateLimited), writes: fmt.Sprint(total(r.Writes)),
		period: "—", drift: "—", fixed: "—",
		rss: fmt.Sprintf("%.0f MiB", r.PeakRSSMiB), heap: fmt.Sprintf("%.0f MiB (%.0f live)", r.PeakHeapMiB, r.PeakLiveHeapMiB),
	}
	rw.ready = formatSeconds(r.TimeToReady)
	if !r.AllReady {
		rw.ready = fmt.Sprintf("not Ready: %d/%d at the %s cap (%d at best)", r.ReadyAtEnd, r.N, formatSeconds(r.TimeToReady), r.PeakReady)
	}
	if st := r.Steady; st != nil {
		rw.period = formatWindow(st.NoDrift, st.PeriodSeconds, false)
		rw.drift = formatWindow(st.Drift, st.PeriodSeconds, true)
		rw.fixed = fmt.Sprintf("%s / %s", formatSeconds(st.CorrectionP50), formatSeconds(st.CorrectionMax))
		if st.Corrected < st.Drifted {
			rw.fixed = fmt.Sprintf("%d of %d within %s", st.Corrected, st.Drifted, formatSeconds(st.Drift.Seconds))
		}
	}
	return rw
}

// formatWindow renders calls per sync period; with drift, PATCHes are shown as the
// total for the drifted clients (each is corrected once).
func formatWindow(w window, period float64, drift bool) string {
	periods := w.Seconds / period
	var parts []string
	for _, op := range sortedOps(w.Calls) {
		n := w.Calls[op]
		if drift && op == opPatch {
			parts = append(parts, fmt.Sprintf("%d PATCH", n))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s", trimFloat(float64(n)/periods), op))
	}
	if len(parts) == 0 {
		parts = append(parts, "0")
	}
	s := strings.Join(parts, " + ")
	if w.RateLimited > 0 {
		s += fmt.Sprintf(" (%d answered 429)", w.RateLimited)
	}
	return s
}

var opOrder = map[string]int{opList: 0, opGet: 1, opCreate: 2, opPatch: 3, opDelete: 4, opScopes: 5, opOther: 6}

func sortedOps(m map[string]int) []string {
	ops := keys(m)
	sort.Slice(ops, func(i, j int) bool { return opOrder[ops[i]] < opOrder[ops[j]] })
	return ops
}

// formatOps renders "1 List + 1000 POST".
func formatOps(m map[string]int) string {
	parts := make([]string, 0, len(m))
	for _, op := range sortedOps(m) {
		parts = append(parts, fmt.Sprintf("%d %s", m[op], op))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " + ")
}

func trimFloat(v float64) string {
	if math.Abs(v-math.Round(v)) < 0.05 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatSeconds(s float64) string {
	switch {
	case s >= 120:
		return fmt.Sprintf("%.1f min", s/60)
	case s >= 10:
		return fmt.Sprintf("%.0f s", s)
	default:
		return fmt.Sprintf("%.1f s", s)
	}
}

// table is the plain-text table printed to stdout.
func (rep *report) table() string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, r := range append([]row{header}, rep.rows()...) {
		_, _ = fmt.Fprintln(tw, strings.Join(r.cells(), "\t"))
	}
	_ = tw.Flush()
	return b.String()
}

func (rep *report) markdownTable() string {
	var b strings.Builder
	all := append([]row{header}, rep.rows()...)
	for i, r := range all {
		b.WriteString("| " + strings.Join(r.cells(), " | ") + " |\n")
		if i == 0 {
			b.WriteString(strings.Repeat("|---", len(r.cells())) + "|\n")
		}
	}
	return b.String()
}

// adoption returns the adoption scenario's result, or nil if it was not run.
func (rep *report) adoption(n, accounts int, strategy string) *result {
	return rep.find(scenario{Path: pathAdopt, N: n, Accounts: accounts, Strategy: strategy})
}

// find returns the scenario's result, or nil if it was not run.
func (rep *report) find(sc scenario) *result {
	for _, r := range rep.Results {
		if r.scenario == sc {
			return r
		}
	}
	return nil
}
