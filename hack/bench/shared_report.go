package main

import (
	"fmt"
	"math"
)

const (
	colorOther   = "#e08a1e"
	colorTotal   = "#888888"
	sharedMinute = 60.0
)

// sharedRun returns the shared-quota scenario's result, or nil.
func (rep *report) sharedRun() *result {
	for _, r := range rep.Results {
		if r.Shared != nil {
			return r
		}
	}
	return nil
}

// targetShared: with another tool spending part of the user's limit, the operator
// still gets every object Ready, is never blocked, and draws at most a few 429s.
func (rep *report) targetShared(w writer) {
	r := rep.sharedRun()
	if r == nil {
		return
	}
	sh := r.Shared
	limited := sh.OperatorRateLimited + sh.OtherRateLimited
	ok := r.AllReady && r.BudgetBlocks == 0 && limited <= targetShared429s
	w("- **Another tool spends %.0f%% of the same user's limit: the operator is never blocked, at most %d 429s, every object Ready** (%s) — %s:\n",
		100*sh.Share, targetShared429s, r.scenario, verdict(ok))
	w("  %s; the operator made %s until then (%d answered 429), its budget counted %.0f blocks and deferred %.0f calls\n",
		readyText(r), formatOps(r.Calls), r.RateLimited, r.BudgetBlocks, r.BudgetDeferred)
	w("  (`cloudflare_budget_blocks_total`, `cloudflare_budget_deferred_total`). The other tool made %d requests at %.1f/s while\n",
		sh.OtherRequests, sh.RatePerSecond)
	op, other := rateUntil(sh.Operator, r.TimeToReady, sh.BucketSeconds), rateUntil(sh.Other, r.TimeToReady, sh.BucketSeconds)
	w("  the manager ran, %d answered 429. Until Ready the operator averaged %.2f requests/s and the tool %.2f/s, together %.2f/s\n",
		sh.OtherRateLimited, op, other, op+other)
	w("  (Cloudflare's limit is %.2f/s averaged over %s); the user's busiest %s held %d of the %d requests it allows.\n",
		float64(rep.RateLimit)/rep.RateWindow.Seconds(), human(rep.RateWindow), human(rep.RateWindow), r.MaxInWindow, rep.RateLimit)
}

// rateUntil is the mean requests per second of the buckets that start before t.
func rateUntil(buckets []point, t, width float64) float64 {
	n, span := 0.0, 0.0
	for _, b := range buckets {
		start := b.X - width/2
		if start >= t {
			break
		}
		n += b.Y
		span = math.Min(t, start+width)
	}
	if span <= 0 {
		return 0
	}
	return n / span
}

// writeShared is the section on the shared-quota scenario: requests per minute.
func (rep *report) writeShared(w writer) {
	r := rep.sharedRun()
	if r == nil {
		return
	}
	sh := r.Shared
	w("## Sharing the quota with another tool\n\n")
	w("In %s another tool reads one client with the operator's own token (so the same Cloudflare user and the same\n", r.scenario)
	w("limit) every %s, %.0f%% of the %d requests per %s, from before the manager starts until the end; its requests are\n",
		human(secondsDuration(1/sh.RatePerSecond)), 100*sh.Share, rep.RateLimit, human(rep.RateWindow))
	w("tagged and counted apart. Requests per minute from the manager's start (the chart shows them per %s):\n\n", human(secondsDuration(sh.BucketSeconds)))
	w("| Minute | Operator | Other tool | Together | Cloudflare's limit, evenly |\n")
	w("|---|---|---|---|---|\n")
	perBucket := max(1, int(math.Round(sharedMinute/sh.BucketSeconds)))
	for i := 0; i < len(sh.Operator); i += perBucket {
		op, other := 0.0, 0.0
		for j := i; j < min(i+perBucket, len(sh.Operator)); j++ {
			op, other = op+sh.Operator[j].Y, other+sh.Other[j].Y
		}
		w("| %d | %.0f | %.0f | %.0f | %.0f |\n", i/perBucket+1, op, other, op+other,
			float64(rep.RateLimit)*sharedMinute/rep.RateWindow.Seconds())
	}
	w("\n")
}

// sharedPanel plots the requests per bucket of the operator and of the other tool over
// time, against Cloudflare's limit spread evenly.
func (rep *report) sharedPanel(r *result, x, y, w, h float64) panel {
	sh := r.Shared
	limit := float64(rep.RateLimit) * sh.BucketSeconds / rep.RateWindow.Seconds()
	maxT, maxY := 60.0, limit*1.5
	total := make([]point, len(sh.Operator))
	for i, p := range sh.Operator {
		total[i] = point{X: p.X, Y: p.Y + sh.Other[i].Y}
		maxT, maxY = math.Max(maxT, p.X+sh.BucketSeconds/2), math.Max(maxY, total[i].Y*1.15)
	}
	p := panel{x: x, y: y, w: w, h: h, legendWidth: 290,
		title: fmt.Sprintf("Shared quota (%s): requests per %s of the operator and of another tool using the same token",
			r.scenario, human(secondsDuration(sh.BucketSeconds))),
		xl: "seconds from the manager's start", yl: fmt.Sprintf("requests per %s", human(secondsDuration(sh.BucketSeconds))),
		xa: axis{min: 0, max: maxT}, ya: axis{min: 0, max: maxY},
		note: fmt.Sprintf("%s; the last bar may be partial", readyText(r))}
	w2 := sh.BucketSeconds / 2
	p.series = append(p.series,
		series{name: "the operator", color: colorOurs, marker: markerNone, points: steps(sh.Operator, w2)},
		series{name: fmt.Sprintf("the other tool (%.0f%% of the limit)", 100*sh.Share), color: colorOther, marker: markerNone,
			points: steps(sh.Other, w2)},
		series{name: "together", color: colorTotal, marker: markerNone, dash: "4 3", points: steps(total, w2)})
	p.refs = append(p.refs, refLine{label: fmt.Sprintf("Cloudflare's limit spread evenly: %.0f per %s (%d per %s)", limit,
		human(secondsDuration(sh.BucketSeconds)), rep.RateLimit, human(rep.RateWindow)),
		x0: 0, y0: limit, x1: maxT, y1: limit, color: colorLimit, at: 0.98})
	return p
}

// steps turns values at bucket middles into a step line over each bucket.
func steps(buckets []point, halfWidth float64) []point {
	out := make([]point, 0, 2*len(buckets))
	for _, b := range buckets {
		out = append(out, point{X: b.X - halfWidth, Y: b.Y}, point{X: b.X + halfWidth, Y: b.Y})
	}
	return out
}
