package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// The spec-edit latency: from the moment the benchmark's PATCH of an OAuthClient's
// spec.clientName returned (what kubectl shows as applied) until the emulator received
// the PATCH of that Cloudflare client carrying the new name, before the emulator's
// added latency. Two phases run in one adoption scenario, after its steady state and
// after its memory was recorded: edits in steady state, and the same edits while more
// objects are being adopted.

// latencyResult is both phases.
type latencyResult struct {
	Steady   latencyPhase `json:"steady"`
	Adoption latencyPhase `json:"duringAdoption"`
	// Adopted objects were created during the second phase, each naming a client seeded
	// in Cloudflare (and listed by the operator) before it began; AdoptApplySeconds is
	// how long creating them took and AdoptReadySeconds from the first create until the
	// last of them was Ready (or the bound, when AdoptAllReady is false).
	Adopted           int     `json:"adopted"`
	AdoptApplySeconds float64 `json:"adoptApplySeconds"`
	AdoptReadySeconds float64 `json:"adoptReadySeconds"`
	AdoptAllReady     bool    `json:"adoptAllReady"`
}

// latencyPhase is one sequence of edits, each of a different object.
type latencyPhase struct {
	IntervalSeconds float64 `json:"intervalSeconds"`
	BoundSeconds    float64 `json:"boundSeconds"`
	// EditedAt is when each edit was sent, in seconds since the phase began.
	EditedAt []float64 `json:"editedAtSeconds"`
	// Latencies are the edits' latencies in seconds, in order; -1 marks a miss (no
	// PATCH within the bound, or the edit failed).
	Latencies []float64 `json:"latenciesSeconds"`
	// Calls are the Cloudflare requests during the phase, by operation.
	Calls       map[string]int `json:"calls"`
	RateLimited int            `json:"rateLimited"`
}

// latencyStats are a phase's figures over some of its edits.
type latencyStats struct {
	Edits, Misses int
	P50, P99, Max float64 // seconds, over the edits that were not missed
}

// stats summarises the edits sent before until seconds into the phase (all: +Inf).
func (p latencyPhase) stats(until float64) latencyStats {
	var st latencyStats
	var ok []float64
	for i, l := range p.Latencies {
		if i < len(p.EditedAt) && p.EditedAt[i] >= until {
			continue
		}
		st.Edits++
		if l < 0 {
			st.Misses++
			continue
		}
		ok = append(ok, l)
	}
	sort.Float64s(ok)
	st.P50, st.P99 = percentile(ok, 0.50), percentile(ok, 0.99)
	if len(ok) > 0 {
		st.Max = ok[len(ok)-1]
	}
	return st
}

// percentile is the nearest-rank percentile of sorted values; 0 for none.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// edit is one spec edit as sent.
type edit struct {
	target   binding
	name     string
	sent     time.Time // before the PATCH of the OAuthClient
	returned time.Time // after it returned
	failed   bool
}

// adoptLoadTimeout bounds the wait for the objects adopted in the second phase.
const adoptLoadTimeout = 10 * time.Minute

// measureLatency runs both latency phases. It seeds the clients the second phase adopts
// first, so that the operator has listed them by the time it starts.
func (r *scenarioRun) measureLatency(ctx context.Context) error {
	lc := r.cfg.editLatency
	steadyTargets, loadTargets := r.editTargets(lc.edits)
	account, ns := accountID(0), namespaceOf(0)
	seededAt := time.Now()
	adopted := make([]binding, 0, lc.adopt)
	for i := r.sc.N; i < r.sc.N+lc.adopt; i++ {
		seeded, err := r.emu.SeedClient(account, remoteFor(i), "")
		if err != nil {
			return err
		}
		adopted = append(adopted, binding{account: account, clientID: seeded.ClientID, name: seeded.ClientName, index: i, namespace: ns})
	}
	res := &latencyResult{Adopted: len(adopted)}
	logf("  latency: %d spec edits, one every %s, in steady state", len(steadyTargets), lc.interval)
	res.Steady = r.editPhase(ctx, steadyTargets, "s")
	logf("  latency in steady state: %s", res.Steady.stats(math.Inf(1)))
	if !r.waitForList(ctx, seededAt, 3*r.cfg.syncPeriod) {
		logf("  latency: no List of %s since the %d clients were seeded; adopting them anyway", account, len(adopted))
	}

	logf("  latency: %d spec edits while %d new objects adopt seeded clients", len(loadTargets), len(adopted))
	start := time.Now()
	var g errgroup.Group
	g.Go(func() error {
		err := r.applyObjects(ctx, adopted)
		res.AdoptApplySeconds = time.Since(start).Seconds()
		return err
	})
	res.Adoption = r.editPhase(ctx, loadTargets, "a")
	if err := g.Wait(); err != nil {
		return fmt.Errorf("creating the objects adopted during the latency phase: %w", err)
	}
	keys := make([]string, len(adopted))
	for i, b := range adopted {
		keys[i] = b.key()
	}
	var last time.Time
	res.AdoptAllReady = waitFor(ctx, 100*time.Millisecond, adoptLoadTimeout, func() bool {
		var ok bool
		last, ok = r.ready.readyAll(keys)
		return ok
	})
	res.AdoptReadySeconds = time.Since(start).Seconds()
	if res.AdoptAllReady {
		res.AdoptReadySeconds = last.Sub(start).Seconds()
	}
	logf("  latency while adopting %d objects (Ready in %.1fs, all %v): %s; during the adoption: %s", len(adopted),
		res.AdoptReadySeconds, res.AdoptAllReady, res.Adoption.stats(math.Inf(1)), res.Adoption.stats(res.AdoptReadySeconds))
	r.res.Latency = res
	return ctx.Err()
}

func (s latencyStats) String() string {
	return fmt.Sprintf("%d edits, p50 %s, p99 %s, max %s, %d missed", s.Edits, formatMillis(s.P50), formatMillis(s.P99), formatMillis(s.Max), s.Misses)
}

// editTargets picks the objects each phase edits: Ready, not among the drifted ones,
// spread over the scenario, every other one for each phase. Below 2×edits objects,
// objects are edited again.
func (r *scenarioRun) editTargets(edits int) (steadyPhase, loadPhase []binding) {
	var candidates []binding
	for _, b := range r.bound {
		if !r.drifted[b.clientID] && r.ready.isReady(b.key()) {
			candidates = append(candidates, b)
		}
	}
	if len(candidates) == 0 {
		return nil, nil
	}
	step := max(1, len(candidates)/(2*edits))
	steadyPhase, loadPhase = make([]binding, 0, edits), make([]binding, 0, edits)
	for k := range edits {
		steadyPhase = append(steadyPhase, candidates[(2*k*step)%len(candidates)])
		loadPhase = append(loadPhase, candidates[((2*k+1)*step)%len(candidates)])
	}
	return steadyPhase, loadPhase
}

// editPhase renames each target, one every interval, then waits (at most the bound
// after the last edit) for their PATCHes to reach Cloudflare.
func (r *scenarioRun) editPhase(ctx context.Context, targets []binding, tag string) latencyPhase {
	lc := r.cfg.editLatency
	phase := latencyPhase{IntervalSeconds: lc.interval.Seconds(), BoundSeconds: lc.bound.Seconds()}
	start := time.Now()
	edits := make([]edit, 0, len(targets))
	tick := time.NewTicker(lc.interval)
	defer tick.Stop()
	for k, b := range targets {
		if k > 0 {
			select {
			case <-ctx.Done():
				return phase
			case <-tick.C:
			}
		}
		edits = append(edits, r.editName(ctx, b, fmt.Sprintf("bench client %05d edit %s%d", b.index, tag, k)))
	}
	var latencies []float64
	waitFor(ctx, 50*time.Millisecond, lc.bound, func() bool {
		var missing int
		latencies, missing = matchEdits(edits, r.emu.patchesSince(start), lc.bound)
		return missing == 0
	})
	phase.Latencies = latencies
	for _, e := range edits {
		phase.EditedAt = append(phase.EditedAt, e.sent.Sub(start).Seconds())
	}
	from, to := r.emu.since(start), r.emu.since(time.Now())
	phase.Calls, phase.RateLimited = opsOfEvents(r.emu.timeline(), func(ev apiEvent) bool { return ev.At >= from && ev.At <= to })
	return phase
}

// editName sets the object's spec.clientName with a merge patch, as kubectl would.
func (r *scenarioRun) editName(ctx context.Context, b binding, name string) edit {
	patch, _ := json.Marshal(map[string]any{"spec": map[string]any{"clientName": name}})
	obj := &v1alpha1.OAuthClient{}
	obj.Namespace, obj.Name = b.namespace, objectName(b.index)
	e := edit{target: b, name: name, sent: time.Now()}
	if err := r.cl.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		logf("  editing %s: %v", b.key(), err)
		e.failed = true
	}
	e.returned = time.Now()
	return e
}

// matchEdits finds, for each edit, the first successful PATCH of its client carrying
// its name, and returns the latencies (-1: missed) and how many edits still wait for
// one. A PATCH that arrived before the edit's own PATCH returned counts as 0.
func matchEdits(edits []edit, patches []patchArrival, bound time.Duration) ([]float64, int) {
	out := make([]float64, len(edits))
	missing := 0
	for i, e := range edits {
		out[i] = -1
		if e.failed {
			continue
		}
		found := false
		for _, p := range patches {
			if p.clientID == e.target.clientID && p.clientName == e.name && p.status < http.StatusMultipleChoices && !p.at.Before(e.sent) {
				if d := p.at.Sub(e.returned); d <= bound {
					out[i] = max(d, 0).Seconds()
				}
				found = true
				break
			}
		}
		if !found {
			missing++
		}
	}
	return out, missing
}

// waitForList waits until the emulator has answered a List made after t, at most
// timeout.
func (r *scenarioRun) waitForList(ctx context.Context, t time.Time, timeout time.Duration) bool {
	return waitFor(ctx, 200*time.Millisecond, timeout, func() bool {
		after := r.emu.since(t)
		for _, ev := range r.emu.timeline() {
			if ev.Op == opList && !ev.Other && ev.At > after && ev.Status == http.StatusOK {
				return true
			}
		}
		return false
	})
}

// applyObjects creates the objects adopting the bindings, 16 at a time.
func (r *scenarioRun) applyObjects(ctx context.Context, bs []binding) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, b := range bs {
		o := objectFor(b.index, b.account, b.namespace)
		o.Spec.ClientID = ptrTo(b.clientID)
		g.Go(func() error { return r.cl.client.Create(gctx, o) })
	}
	return g.Wait()
}

// formatMillis renders seconds as milliseconds below 10 s.
func formatMillis(s float64) string {
	if s >= 10 {
		return formatSeconds(s)
	}
	return fmt.Sprintf("%.0f ms", s*1000)
}
