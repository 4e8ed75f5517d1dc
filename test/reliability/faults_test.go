package reliability_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// faultScenario is one kind of Cloudflare misbehaviour.
type faultScenario struct {
	name  string
	rules []cfemu.FaultRule
	// reasons are the Ready=False reasons that describe the fault; any other
	// Ready=False reason seen while it lasts misinforms the user.
	reasons []string
	// total faults answer every request, so every object must end up showing one of
	// the reasons before the fault clears.
	total bool
	// stalled: the reason is a Stalled one (a human must act), not Reconciling.
	stalled bool
	// revoked: the fault is a revoked token; it clears when the user puts a new token
	// in the credentials Secret.
	revoked bool
	// retryAfter is the Retry-After of a 429 fault: no call may follow a 429 within it.
	retryAfter time.Duration
	args       []string
}

const (
	faultProbability = 0.3
	// hotLoopBound is the most Cloudflare calls per object per minute allowed during a
	// fault, on average over the objects; busiestObjectBound is the most for any one
	// object. A hot loop (a retry without backoff, a status write that retriggers the
	// reconcile) makes hundreds to thousands. With the workqueue's per-object
	// exponential backoff (5ms doubling) a failing object makes about a dozen attempts
	// in its first minute, fewer after; a 30% fault rate breaks some objects' retries
	// into several short streaks, which is why one object may make a few times the
	// average.
	hotLoopBound       = 30.0
	busiestObjectBound = 90.0
	// retryAfterSeconds is the Retry-After of the 429 burst.
	retryAfterSeconds = 5
)

func faultScenarios() []faultScenario {
	// A Create or a rotate that ended without a clear answer (a 5xx, a reset, a hang, an
	// unusable 200) may still commit, so the object says it waits for it to settle
	// (ResumingCreate, RotationSettling) before looking again: that too describes the
	// fault.
	cloudflareError := []string{v1alpha1.ReasonCloudflareError, v1alpha1.ReasonResumingCreate, v1alpha1.ReasonRotationSettling}
	p := faultProbability
	rateLimited := []cfemu.FaultRule{{Kind: cfemu.FaultRateLimited, RetryAfter: retryAfterSeconds}}
	return []faultScenario{
		{name: "5xx", reasons: cloudflareError, rules: []cfemu.FaultRule{
			// 10% each of 500, 502 (an HTML page from the edge) and 503: 30% in all.
			{Kind: cfemu.FaultInternalError, Probability: p / 3},
			{Kind: cfemu.FaultBadGateway, Probability: (p / 3) / (1 - p/3)},
			{Kind: cfemu.FaultUnavailable, Probability: (p / 3) / (1 - 2*p/3)},
		}},
		{name: "connection-reset", reasons: cloudflareError, rules: []cfemu.FaultRule{{Kind: cfemu.FaultReset, Probability: p}}},
		{name: "malformed-json", reasons: cloudflareError, rules: []cfemu.FaultRule{{Kind: cfemu.FaultMalformed, Probability: p}}},
		{name: "success-false", reasons: cloudflareError, rules: []cfemu.FaultRule{{Kind: cfemu.FaultSuccessFalse, Probability: p}}},
		{name: "timeout-10s", reasons: cloudflareError,
			rules: []cfemu.FaultRule{{Kind: cfemu.FaultTimeout, Probability: p, Delay: 10 * time.Second}},
			args:  []string{"--cloudflare-api-timeout=2s"}},
		{name: "429-burst", reasons: []string{v1alpha1.ReasonRateLimited}, total: true, rules: rateLimited,
			retryAfter: retryAfterSeconds * time.Second},
		{name: "429-burst-default-budget", reasons: []string{v1alpha1.ReasonRateLimited}, total: true, rules: rateLimited,
			retryAfter: retryAfterSeconds * time.Second, args: []string{"--cloudflare-request-budget=1080/5m"}},
		{name: "401-revoked-token", reasons: []string{v1alpha1.ReasonUnauthorized}, total: true, stalled: true, revoked: true,
			rules: []cfemu.FaultRule{{Kind: cfemu.FaultUnauthorized}}},
	}
}

// TestCloudflareFaults runs, for each fault: half the objects are created and Ready,
// then the fault starts; the other half is created and the first half asked to rotate
// while it lasts. It asserts the conditions describe the fault, that calls stay
// bounded, and that once the fault clears every object converges with exactly one
// remote client and a Secret holding its current secret. Finally everything is deleted
// and no remote client may remain.
func TestCloudflareFaults(t *testing.T) {
	const sec = "Cloudflare faults"
	suite.report.table(sec, "fault", "objects", "fault window", "calls during fault", "calls/object/min (avg)",
		"calls/object/min (busiest object)", "Ready=False reasons seen", "calls inside Retry-After", "converged after clear", "duplicates", "lost secrets", "left after delete")
	for _, sc := range faultScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			runFaultScenario(t, sc)
		})
	}
	suite.report.note(sec, "faults at %.0f%% hit every Cloudflare route; total faults (429, 401) answer every request while they last", faultProbability*100)
	suite.report.note(sec, "calls/object/min: every Cloudflare request made during the fault window (shared Lists included), per object, per minute; bounds asserted: %.0f on average, %.0f for the busiest object", hotLoopBound, busiestObjectBound)
}

func runFaultScenario(t *testing.T, sc faultScenario) {
	ctx := t.Context()
	n := suite.scale.faultObjects
	cf := newCloudflare(t)
	f := newFixture(t, "fault-"+sc.name, cf)
	f.useCredentialsSecret(tokenA)
	m := startManager(t, managerOptions{
		name: "manager", kubeconfig: writeKubeconfig(t), apiURL: cf.apiURL(),
		args: append([]string{"--leader-elect=false", "--watch-namespaces=" + f.ns}, sc.args...),
	})

	objs := make([]*v1alpha1.OAuthClient, n)
	for i := range objs {
		objs[i] = f.object(fmt.Sprintf("%s-%03d", sc.name, i), v1alpha1.DeletionPolicyDelete, 0)
	}
	if err := createAll(ctx, objs[:n/2]); err != nil {
		t.Fatal(err)
	}
	f.waitSettled(ctx, suite.scale.settleTimeout)

	w := f.underFault(ctx, sc, objs[:n/2], objs[n/2:])
	converged := f.waitSettled(ctx, suite.scale.settleTimeout)
	a := f.audit(ctx, gone{})
	if a.live != n || !a.ok() {
		t.Errorf("after the fault cleared: %d objects, %d duplicates, %d lost secrets, %d missing clients:\n%s",
			a.live, a.duplicates, a.lost, a.missing, strings.Join(a.problems, "\n"))
	}

	// Conditions told the truth while the fault lasted.
	if len(w.wrong) > 0 {
		t.Errorf("Ready=False reasons that do not describe the fault %v: %v", sc.reasons, w.wrong)
	}
	if len(w.seen) == 0 {
		t.Errorf("no object reported the fault (Ready=False with %v) while it lasted", sc.reasons)
	}

	// No hot loop, and 429s honoured.
	window := w.end.Sub(w.start)
	avg, busiest, busiestName := callRates(w.calls, n, window, cf, f.account)
	if avg > hotLoopBound || busiest > busiestObjectBound {
		t.Errorf("%.1f calls per object per minute during the fault (bound %.0f); busiest object %s: %.1f (bound %.0f)",
			avg, hotLoopBound, busiestName, busiest, busiestObjectBound)
	}
	early := callsInsideRetryAfter(w.calls, sc.retryAfter)
	if len(early) > 0 {
		t.Errorf("%d calls were made inside the Retry-After of a 429: %v", len(early), early[:min(5, len(early))])
	}
	inside := "-"
	if sc.retryAfter > 0 {
		inside = fmt.Sprint(len(early))
	}

	left := f.deleteEverything(ctx)
	if t.Failed() {
		t.Logf("manager log tail:\n%s", m.tail(20))
	}
	suite.report.row("Cloudflare faults", sc.name, n, window.Round(time.Second), len(w.calls),
		fmt.Sprintf("%.1f", avg), fmt.Sprintf("%.1f", busiest), strings.Join(w.seen, ", "), inside,
		converged.Round(100*time.Millisecond), a.duplicates, a.lost, left)
}

// faultWindow is what happened while a fault lasted.
type faultWindow struct {
	start, end time.Time
	calls      []call
	// seen are the Ready=False reasons describing the fault; wrong are others.
	seen, wrong []string
}

// underFault starts the fault, creates the second half of the objects and rotates the
// first half under it, waits out the fault window and clears the fault.
func (f *fixture) underFault(ctx context.Context, sc faultScenario, first, second []*v1alpha1.OAuthClient) faultWindow {
	t := f.t
	conds := watchConditions(t, f.ns)
	w := faultWindow{start: time.Now()}
	f.cf.SetFaults(cfemu.Faults{Seed: 1, Rules: sc.rules})
	if err := createAll(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := parallel(len(first), 8, func(i int) error { return rotate(ctx, f.ns, first[i].Name, "r1") }); err != nil {
		t.Fatal(err)
	}
	if sc.total {
		f.waitAllShowing(ctx, sc, suite.scale.faultWindow)
	}
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(time.Until(w.start.Add(suite.scale.faultWindow))):
	}
	w.end = time.Now()
	f.cf.ClearFaults()
	if sc.revoked {
		if err := f.setToken(ctx, tokenB); err != nil {
			t.Fatal(err)
		}
	}
	w.calls = f.cf.callsOf("", w.start, w.end)
	w.seen, w.wrong = conds.readyFalseReasons(w.start, w.end, sc.reasons)
	return w
}

// deleteEverything deletes every object and returns how many remote clients are left
// (-1 when the objects were not all gone in time).
func (f *fixture) deleteEverything(ctx context.Context) int {
	if err := f.deleteAll(ctx, suite.scale.settleTimeout); err != nil {
		f.t.Errorf("deleting every object: %v", err)
		return -1
	}
	left := len(f.cf.Clients(f.account))
	if left != 0 {
		f.t.Errorf("%d remote clients left after every object was deleted", left)
	}
	return left
}

// waitAllShowing waits, within the fault window, until every object reports the
// fault.
func (f *fixture) waitAllShowing(ctx context.Context, sc faultScenario, within time.Duration) {
	f.t.Helper()
	var last string
	err := pollUntil(ctx, within, func() bool {
		list := &v1alpha1.OAuthClientList{}
		if err := suite.kube.List(ctx, list, client.InNamespace(f.ns)); err != nil {
			last = err.Error()
			return false
		}
		for i := range list.Items {
			obj := &list.Items[i]
			ready := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
			want := v1alpha1.ConditionReconciling
			if sc.stalled {
				want = v1alpha1.ConditionStalled
			}
			if ready == nil || ready.Status != metav1.ConditionFalse || !slices.Contains(sc.reasons, ready.Reason) ||
				!meta.IsStatusConditionTrue(obj.Status.Conditions, want) {
				last = fmt.Sprintf("%s: %s, %s not True", obj.Name, readyOf(obj), want)
				return false
			}
		}
		return true
	})
	if err != nil {
		f.t.Errorf("not every object reported the fault %v within %s: %s", sc.reasons, within, last)
	}
}

// pollUntil polls cond every 200ms until it holds or within passes.
func pollUntil(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return context.DeadlineExceeded
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// callRates returns calls per object per minute over the window: on average (every
// call, shared Lists included, divided by the objects) and for the busiest object (the
// calls naming it: its create, and every call on its client ID).
func callRates(calls []call, objects int, window time.Duration, cf *cloudflare, account string) (avg, busiest float64, busiestName string) {
	minutes := window.Minutes()
	avg = float64(len(calls)) / float64(objects) / minutes
	nameOf := map[string]string{}
	for _, c := range cf.Clients(account) {
		nameOf[c.ClientID] = c.ClientName
	}
	for _, c := range calls {
		if c.Op == opCreate && c.ClientID != "" {
			nameOf[c.ClientID] = c.ClientName
		}
	}
	per := map[string]int{}
	for _, c := range calls {
		switch {
		case c.Op == opCreate:
			per[c.ClientName]++
		case c.ClientID != "":
			per[nameOf[c.ClientID]]++
		}
	}
	most := 0
	for _, name := range slices.Sorted(maps.Keys(per)) {
		if per[name] > most {
			most, busiestName = per[name], name
		}
	}
	return avg, float64(most) / minutes, busiestName
}

// callsInsideRetryAfter lists calls made after a 429 but before its Retry-After
// passed. Calls already in flight when the 429 arrived are let off: only calls
// starting more than half a second after it count.
func callsInsideRetryAfter(calls []call, retryAfter time.Duration) []string {
	var out []string
	if retryAfter <= 0 {
		return nil
	}
	for i, c := range calls {
		if c.Status != http.StatusTooManyRequests {
			continue
		}
		for _, later := range calls[i+1:] {
			d := later.At.Sub(c.At)
			if d > 500*time.Millisecond && d < retryAfter-100*time.Millisecond {
				out = append(out, fmt.Sprintf("%s %s %s after a 429", later.Op, later.ClientID, d.Round(time.Millisecond)))
			}
		}
	}
	return out
}

// conditionLog records every Ready condition the apiserver reports for a namespace.
type conditionLog struct {
	mu      sync.Mutex
	entries []conditionEntry
}

type conditionEntry struct {
	at     time.Time
	name   string
	status metav1.ConditionStatus
	reason string
}

// watchConditions watches the namespace's OAuthClients until the test ends.
func watchConditions(t *testing.T, ns string) *conditionLog {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := suite.kube.Watch(ctx, &v1alpha1.OAuthClientList{}, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	l := &conditionLog{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			obj, ok := ev.Object.(*v1alpha1.OAuthClient)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			if c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady); c != nil {
				l.mu.Lock()
				l.entries = append(l.entries, conditionEntry{at: time.Now(), name: obj.Name, status: c.Status, reason: c.Reason})
				l.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		w.Stop()
		cancel()
		<-done
	})
	return l
}

// readyFalseReasons returns the distinct Ready=False reasons seen in [from, to] that
// are in want, and those that are not.
func (l *conditionLog) readyFalseReasons(from, to time.Time, want []string) (seen, wrong []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		if e.status != metav1.ConditionFalse || e.at.Before(from) || e.at.After(to) {
			continue
		}
		if slices.Contains(want, e.reason) {
			if !slices.Contains(seen, e.reason) {
				seen = append(seen, e.reason)
			}
		} else {
			wrong = append(wrong, e.name+": "+e.reason)
		}
	}
	return seen, wrong
}

// TestPacedCallsHonourRetryAfter guards against a bug the 429-burst-default-budget
// scenario found at full scale: with client-side pacing on, a reconcile that checked
// the credentials' 429 block and then queued in the pacer sent its call when its
// pacing slot came, even if a 429 had arrived meanwhile, so calls went out inside
// Retry-After. A small budget makes reconciles queue in the pacer at once, so this
// reproduces it every time.
func TestPacedCallsHonourRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cf := newCloudflare(t)
	f := newFixture(t, "paced-retry-after", cf)
	startManager(t, managerOptions{
		name: "manager", kubeconfig: writeKubeconfig(t), apiURL: cf.apiURL(), token: tokenA,
		// A budget of 30 a minute: a burst of 1, then one call every ~2s.
		args: []string{"--leader-elect=false", "--watch-namespaces=" + f.ns, "--cloudflare-request-budget=30/1m"},
	})
	objs := make([]*v1alpha1.OAuthClient, 6)
	for i := range objs {
		objs[i] = f.object(fmt.Sprintf("paced-%d", i), v1alpha1.DeletionPolicyDelete, 0)
	}
	if err := createAll(ctx, objs); err != nil {
		t.Fatal(err)
	}
	// Once the first create went out, the other reconciles are queued in the pacer.
	if err := pollUntil(ctx, time.Minute, func() bool { return len(cf.Clients(f.account)) > 0 }); err != nil {
		t.Fatal(err)
	}
	const retryAfter = 5
	start := time.Now()
	cf.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: cfemu.FaultRateLimited, RetryAfter: retryAfter}}})
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(retryAfter * time.Second):
	}
	if early := callsInsideRetryAfter(cf.callsOf("", start, time.Now()), retryAfter*time.Second); len(early) > 0 {
		t.Errorf("%d calls were made inside the Retry-After of a 429: %v", len(early), early)
	}
}
