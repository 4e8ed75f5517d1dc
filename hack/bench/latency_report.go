package main

import (
	"fmt"
	"math"
	"time"
)

// latencyRun returns the result that measured the spec-edit latency, or nil.
func (rep *report) latencyRun() *result {
	for _, r := range rep.Results {
		if r.Latency != nil {
			return r
		}
	}
	return nil
}

// duringAdoption are the second phase's figures over the edits sent before the last
// adopted object was Ready.
func (l *latencyResult) duringAdoption() latencyStats {
	return l.Adoption.stats(l.AdoptReadySeconds)
}

// targetLatency: spec edit to Cloudflare PATCH, p99 under 300 ms in steady state and
// under 1 s while other objects are being adopted, no edit missed.
func (rep *report) targetLatency(w writer) {
	r := rep.latencyRun()
	if r == nil {
		return
	}
	l := r.Latency
	st := l.Steady.stats(math.Inf(1))
	w("- **Spec edit to Cloudflare PATCH in steady state (N=%d): p99 under %s** — %s: p99 %s over %d edits of distinct objects,\n",
		r.N, formatMillis(targetLatencySteady), verdict(st.Edits > 0 && st.Misses == 0 && st.P99 < targetLatencySteady),
		formatMillis(st.P99), st.Edits)
	w("  one every %s (p50 %s, max %s, %d without a PATCH within %s); Cloudflare during the phase: %s, %d 429s.\n",
		human(secondsDuration(l.Steady.IntervalSeconds)), formatMillis(st.P50), formatMillis(st.Max), st.Misses,
		formatSeconds(l.Steady.BoundSeconds), formatOps(l.Steady.Calls), l.Steady.RateLimited)
	all, during := l.Adoption.stats(math.Inf(1)), l.duringAdoption()
	ok := during.Edits > 0 && all.Misses == 0 && during.P99 < targetLatencyLoad && l.AdoptAllReady
	w("- **Spec edit to Cloudflare PATCH while %d other objects are being adopted: p99 under %s** — %s: ",
		l.Adopted, formatMillis(targetLatencyLoad), verdict(ok))
	if during.Edits == 0 {
		w("not measured: the adoption was over before the first edit.\n")
	} else {
		w("p99 %s over the %d edits sent before the last adopted object was Ready (p50 %s, max %s).\n",
			formatMillis(during.P99), during.Edits, formatMillis(during.P50), formatMillis(during.Max))
	}
	w("  The %d new objects were applied in %s and %s; over all %d edits of the phase p50 %s, p99 %s, max %s,\n",
		l.Adopted, formatSeconds(l.AdoptApplySeconds), adoptReadyText(l), all.Edits, formatMillis(all.P50), formatMillis(all.P99), formatMillis(all.Max))
	w("  %d without a PATCH within %s; Cloudflare during the phase: %s, %d 429s.\n",
		all.Misses, formatSeconds(l.Adoption.BoundSeconds), formatOps(l.Adoption.Calls), l.Adoption.RateLimited)
}

func adoptReadyText(l *latencyResult) string {
	if l.AdoptAllReady {
		return "all Ready " + formatSeconds(l.AdoptReadySeconds) + " after the first create"
	}
	return "not all Ready " + formatSeconds(l.AdoptReadySeconds) + " after the first create"
}

func secondsDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// writeLatency is the section on the spec-edit latency.
func (rep *report) writeLatency(w writer) {
	r := rep.latencyRun()
	if r == nil {
		return
	}
	l := r.Latency
	w("## Spec edit to Cloudflare PATCH\n\n")
	w("Measured in %s after its steady state (and after its memory was recorded). Each edit changes `spec.clientName`\n", r.scenario)
	w("of a different Ready object with a merge patch, one every %s; the latency runs from the moment that patch returned\n",
		human(secondsDuration(l.Steady.IntervalSeconds)))
	w("to the moment the emulator received the PATCH of that Cloudflare client with the new name, before the emulator's\n")
	w("added latency (a PATCH that arrived before the edit's own request had returned counts as 0: the manager's watch\n")
	w("can see the change before the editor does). An edit without such a PATCH within %s is missed. The second phase\n",
		formatSeconds(l.Steady.BoundSeconds))
	w("first seeds %d more clients", l.Adopted)
	w(" (before the first phase, so the operator has listed them), then creates %d objects adopting\n", l.Adopted)
	w("them, 16 at a time, while it edits other objects.\n\n")
	w("| Phase | Edits | p50 | p99 | Max | Missed | Cloudflare calls during the phase | 429s |\n")
	w("|---|---|---|---|---|---|---|---|\n")
	row := func(name string, st latencyStats, p latencyPhase) {
		w("| %s | %d | %s | %s | %s | %d | %s | %d |\n", name, st.Edits, formatMillis(st.P50), formatMillis(st.P99),
			formatMillis(st.Max), st.Misses, formatOps(p.Calls), p.RateLimited)
	}
	row("steady state", l.Steady.stats(math.Inf(1)), l.Steady)
	row(fmt.Sprintf("while %d objects are adopted: every edit", l.Adopted), l.Adoption.stats(math.Inf(1)), l.Adoption)
	during := l.duringAdoption()
	w("| … of which sent before the last adopted object was Ready | %d | %s | %s | %s | %d | | |\n",
		during.Edits, formatMillis(during.P50), formatMillis(during.P99), formatMillis(during.Max), during.Misses)
	w("\nThe %d adopted objects: applied in %s, %s.\n\n", l.Adopted, formatSeconds(l.AdoptApplySeconds), adoptReadyText(l))
}
