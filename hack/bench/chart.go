package main

import (
	"fmt"
	"math"
	"sort"
	"time"
)

const (
	colorOurs    = "#1f6fb4"
	colorOurs5   = "#5aa5e0"
	colorBase    = "#c8372d"
	colorBase5   = "#ef8a62"
	colorBudget  = "#2a9d55"
	colorLimit   = "#7a2e8e"
	chartWidth   = 1180.0
	panelHeight  = 440.0
	pacingHeight = 430.0
)

// chart renders results.svg: calls per sync period and time to Ready against N, ours
// vs the baseline, the create pacing of one token over time and, when it ran, the
// shared-quota scenario's requests over time.
func (rep *report) chart() string {
	s := &svg{}
	height := 50 + panelHeight + 20 + pacingHeight + 10
	shared := rep.sharedRun()
	if shared != nil {
		height += pacingHeight + 20
	}
	s.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="Helvetica, Arial, sans-serif">`+"\n",
		chartWidth, height, chartWidth, height)
	s.f(`<rect width="100%%" height="100%%" fill="#fafafa"/>` + "\n")
	s.text(chartWidth/2, 28, "middle", "17", "#111", fmt.Sprintf(
		"cloudflare-oauth-operator scale benchmark: %s API latency, Cloudflare limit %d per %s per token, sync period %s",
		human(rep.Latency), rep.RateLimit, human(rep.RateWindow), human(rep.SyncPeriod)))
	half := (chartWidth - 30) / 2
	s.panel(rep.callsPanel(10, 45, half, panelHeight))
	s.panel(rep.readyPanel(20+half, 45, half, panelHeight))
	s.panel(rep.pacingPanel(10, 45+panelHeight+20, chartWidth-20, pacingHeight))
	if shared != nil {
		s.panel(rep.sharedPanel(shared, 10, 45+panelHeight+20+pacingHeight+20, chartWidth-20, pacingHeight))
	}
	s.f("</svg>\n")
	return s.b.String()
}

func (rep *report) nRange() (lo, hi float64) {
	lo, hi = math.Inf(1), 0
	for _, r := range rep.Results {
		lo, hi = math.Min(lo, float64(r.N)), math.Max(hi, float64(r.N))
	}
	if hi == 0 {
		return 10, 10000
	}
	return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi*1.01)))
}

// styleOf gives each (strategy, accounts) its color and marker.
func styleOf(strategy string, accounts int) (color, marker string) {
	switch {
	case strategy == strategyOurs && accounts == 1:
		return colorOurs, "circle"
	case strategy == strategyOurs:
		return colorOurs5, "square"
	case accounts == 1:
		return colorBase, "circle"
	default:
		return colorBase5, "square"
	}
}

// curveKey groups results into one line of a panel.
type curveKey struct {
	path, strategy string
	accounts       int
}

func (rep *report) groups(path string) []curveKey {
	seen := map[curveKey]bool{}
	var out []curveKey
	for _, r := range rep.Results {
		k := curveKey{r.Path, r.Strategy, r.Accounts}
		if r.Variant == "" && (path == "" || r.Path == path) && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.path != b.path {
			return a.path < b.path
		}
		if a.strategy != b.strategy {
			return a.strategy > b.strategy // ours first
		}
		return a.accounts < b.accounts
	})
	return out
}

func (rep *report) resultsOf(k curveKey) []*result {
	var out []*result
	for _, r := range rep.Results {
		if r.Variant == "" && r.Path == k.path && r.Strategy == k.strategy && r.Accounts == k.accounts {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out
}

func accountsLabel(n int) string {
	if n == 1 {
		return "1 account"
	}
	return fmt.Sprintf("%d accounts", n)
}

// callsPanel plots steady-state Cloudflare calls per sync period against N. A baseline
// window cut short by a 429 block is drawn hollow at what it needed: one GET per
// object per period.
func (rep *report) callsPanel(x, y, w, h float64) panel {
	lo, hi := rep.nRange()
	p := panel{x: x, y: y, w: w, h: h, title: "Steady state: Cloudflare calls per sync period (no drift)",
		xl: "OAuthClients (N)", yl: "calls per sync period (log)",
		xa: axis{min: lo, max: hi, log: true}, ya: axis{min: 0.5, max: 20000, log: true},
		note: "hollow: the GETs the baseline needed; Cloudflare blocked it (429)"}
	for _, k := range rep.groups(pathAdopt) {
		color, marker := styleOf(k.strategy, k.accounts)
		se := series{name: fmt.Sprintf("%s, %s", strategyName(k.strategy), accountsLabel(k.accounts)), color: color, marker: marker, open: map[int]string{}}
		for _, r := range rep.resultsOf(k) {
			v, open := rep.steadyCalls(r)
			if v <= 0 {
				continue
			}
			if open != "" {
				se.open[len(se.points)] = ""
			}
			se.points = append(se.points, point{X: float64(r.N), Y: v})
		}
		p.series = append(p.series, se)
	}
	if rep.RateWindow > 0 {
		perMinute := float64(rep.RateLimit) * float64(60e9) / float64(rep.RateWindow)
		p.refs = append(p.refs, refLine{label: fmt.Sprintf("Cloudflare's limit per token at a 1-minute period: %.0f calls", perMinute),
			x0: lo, y0: perMinute, x1: hi, y1: perMinute, color: colorLimit})
	}
	return p
}

// steadyCalls returns the calls per sync period of a result, and a label when the
// value is not a clean measurement. A baseline that Cloudflare blocked (429) before or
// during its steady-state window is shown at what it needed: N times the GETs per
// object per period that the unblocked baseline runs measured.
func (rep *report) steadyCalls(r *result) (float64, string) {
	st := r.Steady
	clean := st != nil && st.NoDrift.RateLimited == 0
	switch {
	case clean:
		return float64(total(st.NoDrift.Calls)) * st.PeriodSeconds / st.NoDrift.Seconds, ""
	case r.Strategy == strategyBaseline:
		return float64(r.N) * rep.baselinePerObject(), "needed; 429-blocked"
	}
	return 0, ""
}

// baselinePerObject is the mean number of GETs per object per sync period over the
// baseline's clean steady-state windows; 1 when there is none. It is a little under 1:
// each object's requeue is jittered up to 10% past the period.
func (rep *report) baselinePerObject() float64 {
	sum, n := 0.0, 0
	for _, r := range rep.Results {
		if st := r.Steady; r.Strategy == strategyBaseline && st != nil && st.NoDrift.RateLimited == 0 {
			sum += float64(st.NoDrift.Calls[opGet]) * st.PeriodSeconds / st.NoDrift.Seconds / float64(r.N)
			n++
		}
	}
	if n == 0 {
		return 1
	}
	return sum / float64(n)
}

// readyPanel plots the time to Ready against N; capped runs are hollow at the cap.
func (rep *report) readyPanel(x, y, w, h float64) panel {
	lo, hi := rep.nRange()
	maxT := 10.0
	for _, r := range rep.Results {
		maxT = math.Max(maxT, r.TimeToReady)
	}
	p := panel{x: x, y: y, w: w, h: h, title: "Time until every OAuthClient is Ready",
		xl: "OAuthClients (N)", yl: "seconds from the manager's start (log)",
		xa: axis{min: lo, max: hi, log: true}, ya: axis{min: 1, max: math.Pow(10, math.Ceil(math.Log10(maxT*1.5))+1), log: true},
		note: fmt.Sprintf("hollow: not every object Ready at the %s cap (429-blocked)", human(rep.BaselineCap))}
	for _, k := range rep.groups("") {
		color, marker := styleOf(k.strategy, k.accounts)
		se := series{name: fmt.Sprintf("%s: %s, %s", k.path, strategyName(k.strategy), accountsLabel(k.accounts)),
			color: color, marker: marker, open: map[int]string{}}
		if k.path == pathCreate {
			se.dash = "5 3"
		}
		for _, r := range rep.resultsOf(k) {
			if !r.AllReady {
				se.open[len(se.points)] = ""
			}
			se.points = append(se.points, point{X: float64(r.N), Y: math.Max(r.TimeToReady, 1)})
		}
		p.series = append(p.series, se)
	}
	return p
}

// pacingPanel plots, for each create scenario, the requests made with the first
// account's token over time, against our budget and Cloudflare's limit.
func (rep *report) pacingPanel(x, y, w, h float64) panel {
	maxT, maxY := 330.0, 1300.0
	var creates []*result
	for _, r := range rep.Results {
		if r.Variant == "" && r.Path == pathCreate && len(r.Token0) > 0 {
			creates = append(creates, r)
			last := r.Token0[len(r.Token0)-1]
			maxT, maxY = math.Max(maxT, last.X*1.05), math.Max(maxY, last.Y*1.1)
		}
	}
	sort.Slice(creates, func(i, j int) bool { return creates[i].N*10+creates[i].Accounts > creates[j].N*10+creates[j].Accounts })
	p := panel{x: x, y: y, w: w, h: h, legendWidth: 290,
		title: "Create path: Cloudflare requests made with one token over time (creates are paced; 429s marked ×)",
		xl:    "seconds from the manager's start", yl: "cumulative requests with the first account's token",
		xa: axis{min: 0, max: maxT}, ya: axis{min: 0, max: maxY}}
	for _, r := range creates {
		color, _ := styleOf(r.Strategy, r.Accounts)
		if r.Strategy == strategyOurs && r.N < 1000 {
			color = "#9ecae1"
		}
		se := series{name: fmt.Sprintf("%s, N=%d over %s", strategyName(r.Strategy), r.N, accountsLabel(r.Accounts)),
			color: color, marker: markerNone, points: r.Token0}
		p.series = append(p.series, se)
		if len(r.RateLimited0) > 0 {
			marks := series{name: "", color: color, marker: "cross", open: map[int]string{}, labelBelow: true}
			for _, t := range r.RateLimited0 {
				marks.points = append(marks.points, point{X: t, Y: valueAt(r.Token0, t)})
			}
			marks.open[0] = fmt.Sprintf("429: token blocked for %s", human(rep.RateWindow))
			p.series = append(p.series, marksOnly(marks))
		}
	}
	if b, err := parseBudget(rep.Budget); err == nil && b.requests > 0 {
		burst := math.Max(1, float64(b.requests/20))
		rate := (float64(b.requests) - burst) / b.window
		p.refs = append(p.refs, refLine{label: fmt.Sprintf("our budget %s: burst %.0f, then %.2f requests/s", rep.Budget, burst, rate),
			x0: 0, y0: burst, x1: maxT, y1: burst + rate*maxT, color: colorBudget, at: 0.3})
	}
	limit := float64(rep.RateLimit)
	p.refs = append(p.refs, refLine{label: fmt.Sprintf("Cloudflare: %d requests in any %s, then a %s block", rep.RateLimit, human(rep.RateWindow), human(rep.RateWindow)),
		x0: 0, y0: limit, x1: maxT, y1: limit, color: colorLimit, at: 0.98})
	return p
}

// marksOnly draws a series as markers without a line and without a legend entry.
func marksOnly(se series) series {
	se.dash = "0 100000"
	return se
}

// valueAt returns the curve's value at time t (the last point at or before t).
func valueAt(curve []point, t float64) float64 {
	v := 0.0
	for _, pt := range curve {
		if pt.X > t {
			break
		}
		v = pt.Y
	}
	return v
}

type budget struct {
	requests int
	window   float64
}

func parseBudget(s string) (budget, error) {
	var b budget
	var win string
	if _, err := fmt.Sscanf(s, "%d/%s", &b.requests, &win); err != nil {
		return b, err
	}
	d, err := time.ParseDuration(win)
	b.window = d.Seconds()
	return b, err
}

// human renders a duration the short way people write it: 50ms, 20s, 5 min.
func human(d time.Duration) string {
	switch {
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%ds", d/time.Second)
	default:
		return d.String()
	}
}
