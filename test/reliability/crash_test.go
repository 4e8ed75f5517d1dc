package reliability_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// What an iteration does to its batch of objects.
const (
	actCreate = "create"
	actRotate = "rotate"
	actDelete = "delete"
	// actCreateThenDelete creates one object, kills the manager once Cloudflare
	// applied the create but before the response arrives, and deletes the object
	// while no manager runs: the restarted one must find the client the interrupted
	// create made and delete it (or, under Orphan, leave it).
	actCreateThenDelete = "create, then delete while down"
)

// When the manager dies.
const (
	// killAtRandomTime: a random moment after the change reached the apiserver.
	killAtRandomTime = "random time"
	// killBeforeResponse: Cloudflare applied the k-th write of the iteration, and the
	// manager dies before the response reaches it.
	killBeforeResponse = "write applied, killed before the response"
	// killAfterResponse: the manager received the k-th write's response and dies
	// right after, before it can store what it learnt.
	killAfterResponse = "killed right after a write's response"
)

// crashRun is the state of TestCrashSafety: the objects alive and those deleted.
type crashRun struct {
	t     *testing.T
	rng   *rand.Rand
	f     *fixture
	cf    *cloudflare
	proxy *apiProxy
	opts  managerOptions
	m     *manager

	seq                               int
	rotation                          int
	live                              []string
	gone                              gone
	kills, lostResponses, commitLater tally
	// killed counts kills by action and mode; afterWrites counts random-time kills by
	// how many of the iteration's Cloudflare writes were done (0, 1, 2 or more).
	killed      map[string]map[string]int
	afterWrites [3]int
	notSprung   int
	// lost counts lost-response iterations by what was lost.
	lost   map[string]int
	settle []time.Duration
	// slowest is the iteration that took longest to settle.
	slowest string
	// landedToConverged is, for each commit-later iteration, the time from the late
	// write landing to the audit passing.
	landedToConverged []time.Duration
}

// tally counts iterations and those that broke an invariant.
type tally struct {
	iterations, withDuplicates, withLost, withOrphaned, withDeletedOrphan int
}

func (t *tally) add(a audit) {
	t.iterations++
	if a.duplicates > 0 {
		t.withDuplicates++
	}
	if a.lost > 0 || a.missing > 0 {
		t.withLost++
	}
	if a.orphanedUnderDelete > 0 {
		t.withOrphaned++
	}
	if a.deletedUnderOrphan > 0 {
		t.withDeletedOrphan++
	}
}

func (t tally) String() string {
	return fmt.Sprintf("duplicates %d/%d, lost secrets %d/%d, orphaned under Delete %d/%d, deleted under Orphan %d/%d",
		t.withDuplicates, t.iterations, t.withLost, t.iterations, t.withOrphaned, t.iterations, t.withDeletedOrphan, t.iterations)
}

// TestCrashSafety kills the manager with SIGKILL at random points while it creates,
// rotates and deletes, restarts it, and after each iteration asserts: exactly one
// remote client per object, a Secret holding that client's current secret, nothing
// left behind by deletionPolicy Delete and nothing deleted under Orphan. Then it loses
// responses without a kill: Cloudflare applies a create or rotate but the response is
// lost (an emulator fault after the change), or the apiserver fails the writes that
// follow a create or rotate (through a proxy in front of it). Finally Cloudflare
// answers a create or rotate with a fault and commits the write a few hundred
// milliseconds later (the client gave up, the write landed anyway).
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	seed := envInt("RELIABILITY_SEED", time.Now().UnixNano())
	t.Logf("seed %d: RELIABILITY_SEED=%d replays this run's choices", seed, seed)
	cf := newCloudflare(t)
	r := &crashRun{
		t: t, rng: rand.New(rand.NewPCG(uint64(seed), 0xc4a5)), cf: cf,
		f:      newFixture(t, "crash", cf),
		proxy:  newAPIProxy(t),
		gone:   gone{orphans: map[string]string{}, deleted: map[string]string{}},
		killed: map[string]map[string]int{},
		lost:   map[string]int{},
	}
	r.opts = managerOptions{name: "manager", kubeconfig: r.proxy.kubeconfig, apiURL: cf.apiURL(), token: tokenA,
		args: []string{"--leader-elect=false", "--watch-namespaces=" + r.f.ns, "--create-settle=" + createSettle.String()}}
	r.m = startManager(t, r.opts)
	ctx := t.Context()

	if err := r.create(ctx, 4); err != nil {
		t.Fatal(err)
	}
	r.check(ctx, nil, "initial objects")

	for i := range suite.scale.crashIterations {
		r.killIteration(ctx, i)
	}
	lost := 0
	for i := range suite.scale.lostResponses {
		if i%2 == 0 {
			r.lostCloudflareResponse(ctx, i)
		} else {
			lost += r.failedAPIServerWrites(ctx, i)
		}
	}
	for i := range suite.scale.commitLater {
		r.committedLater(ctx, i)
	}

	r.reportFigures(seed, lost)
}

// reportFigures adds the run's figures to the report.
func (r *crashRun) reportFigures(seed int64, failedWrites int) {
	const sec, where = "Crash safety", "Crash safety: where the manager was killed"
	suite.report.note(sec, "seed %d; %d objects alive at the end, %d deleted under Delete, %d under Orphan",
		seed, len(r.live), len(r.gone.deleted), len(r.gone.orphans))
	suite.report.note(sec, "%d kill -9 iterations with: %s", r.kills.iterations, r.kills)
	suite.report.note(sec, "%d lost-response iterations (no kill) with: %s", r.lostResponses.iterations, r.lostResponses)
	suite.report.note(sec, "%d commit-later iterations (the fault answered, the write landed %s-%s later, below --create-settle=%s) with: %s",
		r.commitLater.iterations, commitLaterMin, commitLaterMin+commitLaterSpread, createSettle, r.commitLater)
	if len(r.landedToConverged) > 0 {
		suite.report.note(sec, "commit-later: from the late write landing to every invariant holding: median %s, max %s",
			median(r.landedToConverged).Round(10*time.Millisecond), slices.Max(r.landedToConverged).Round(10*time.Millisecond))
	}
	for _, what := range slices.Sorted(maps.Keys(r.lost)) {
		suite.report.note(sec, "lost response: %s: %d", what, r.lost[what])
	}
	suite.report.note(sec, "apiserver writes failed on purpose right after a Cloudflare create or rotate: %d", failedWrites)
	suite.report.note(sec, "time from restart (or the change) to all objects settled: median %s, max %s (%s)", median(r.settle).Round(10*time.Millisecond),
		slices.Max(r.settle).Round(10*time.Millisecond), r.slowest)
	suite.report.table(where, "action", killAtRandomTime, killBeforeResponse, killAfterResponse)
	for act, modes := range r.killed {
		suite.report.row(where, act, modes[killAtRandomTime], modes[killBeforeResponse], modes[killAfterResponse])
	}
	suite.report.note(where, "random-time kills landed after 0, 1, 2+ of the iteration's Cloudflare writes: %d, %d, %d",
		r.afterWrites[0], r.afterWrites[1], r.afterWrites[2])
	if r.notSprung > 0 {
		suite.report.note(where, "a write trap was not sprung within 5s %d times; the manager was killed then", r.notSprung)
	}
}

// killIteration changes a batch of objects and kills the manager somewhere in the
// middle, then restarts it and checks.
func (r *crashRun) killIteration(ctx context.Context, i int) {
	ch, err := r.plan(ctx, r.pickAction(), 1+r.rng.IntN(3))
	if err != nil {
		r.t.Fatal(err)
	}
	mode := []string{killAtRandomTime, killBeforeResponse, killAfterResponse}[r.rng.IntN(3)]
	switch {
	case ch.act == actCreateThenDelete:
		mode = killBeforeResponse
	case ch.writes == 0:
		mode = killAtRandomTime // deleting orphaned objects makes no Cloudflare write
	}
	victim := r.m
	var tr *trap
	if mode != killAtRandomTime {
		tr = newTrap(1+r.rng.IntN(ch.writes), ch.ours, func(call) { victim.kill() })
		tr.beforeDelivery = mode == killBeforeResponse
		tr.drop = tr.beforeDelivery
		r.cf.arm(tr)
	}
	delay := time.Duration(r.rng.Int64N(int64(600 * time.Millisecond)))

	start := time.Now()
	if err := r.apply(ctx, ch); err != nil {
		r.t.Fatalf("iteration %d: %s: %v", i, ch.act, err)
	}
	point := mode
	if tr != nil {
		select {
		case c := <-tr.fired:
			point = fmt.Sprintf("%s (%s)", mode, c.Op)
		case <-time.After(5 * time.Second):
			r.cf.disarm(tr)
			r.notSprung++
			point = "trap not sprung within 5s, killed then"
		}
	} else {
		select {
		case <-time.After(time.Until(start.Add(delay))):
		case <-ctx.Done():
		}
		writes := 0
		for _, c := range r.cf.callsOf(r.f.account, start, time.Now()) {
			if ch.ours(c) {
				writes++
			}
		}
		r.afterWrites[min(writes, 2)]++
		point = fmt.Sprintf("%s, after %d Cloudflare writes", mode, writes)
	}
	victim.kill()
	if r.killed[ch.act] == nil {
		r.killed[ch.act] = map[string]int{}
	}
	r.killed[ch.act][mode]++
	if ch.act == actCreateThenDelete {
		if err := r.deleteWhileDown(ctx, ch.objs[0]); err != nil {
			r.t.Fatal(err)
		}
	}
	r.m = startManager(r.t, r.opts)
	r.check(ctx, &r.kills, fmt.Sprintf("iteration %d: %s %v, %s", i, ch.act, ch.names, point))
}

// deleteWhileDown deletes an object whose create was interrupted. Its client exists
// in Cloudflare, but no ID was recorded: under Orphan exactly one client of its name
// must remain, under Delete none.
func (r *crashRun) deleteWhileDown(ctx context.Context, obj *v1alpha1.OAuthClient) error {
	if obj.OrphanOnDelete() {
		r.gone.orphans[obj.Name] = ""
	} else {
		r.gone.deleted[obj.Name] = ""
	}
	r.live = slices.DeleteFunc(r.live, func(n string) bool { return n == obj.Name })
	return suite.kube.Delete(ctx, &v1alpha1.OAuthClient{ObjectMeta: objectMeta(obj.Namespace, obj.Name)})
}

// lostCloudflareResponse makes Cloudflare apply one create or rotate and then lose
// the response: an error status, a reset connection, a hang or a truncated body.
func (r *crashRun) lostCloudflareResponse(ctx context.Context, i int) {
	act := []string{actCreate, actRotate}[r.rng.IntN(2)]
	route := cfemu.RouteCreateClient
	if act == actRotate {
		route = cfemu.RouteRotateSecret
	}
	kind := []string{cfemu.FaultInternalError, cfemu.FaultBadGateway, cfemu.FaultReset, cfemu.FaultTimeout, cfemu.FaultMalformed}[r.rng.IntN(5)]
	r.cf.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: route, Kind: kind, AfterApply: true, Count: 1}}})
	names, err := r.act(ctx, act, 1+r.rng.IntN(2))
	if err != nil {
		r.t.Fatal(err)
	}
	r.check(ctx, &r.lostResponses, fmt.Sprintf("lost response %d: %s %v, Cloudflare applied it and answered %q", i, act, names, kind))
	r.cf.ClearFaults()
	r.lost[fmt.Sprintf("Cloudflare applied a %s, answered %s", act, kind)]++
}

// The window in which a commit-later write lands, after its request was answered with
// the fault. It stays below the manager's --create-settle (given explicitly; its default
// is --cloudflare-api-timeout, 5s in this suite too): the time the manager allows an
// ambiguous Create to commit before it searches for the client instead of creating
// another.
const (
	commitLaterMin    = 200 * time.Millisecond
	commitLaterSpread = 600 * time.Millisecond
	createSettle      = 5 * time.Second
)

// committedLater makes Cloudflare answer one create or rotate with a fault (a reset,
// a 1s hang then 504, a 500 or a 502) and commit the write 200-800ms later
// (FaultRule.CommitAfter): the manager gave up on the request and the write landed
// anyway, possibly after the manager's own retry. Creates and rotates alternate.
func (r *crashRun) committedLater(ctx context.Context, i int) {
	act := []string{actCreate, actRotate}[i%2]
	route := cfemu.RouteCreateClient
	if act == actRotate {
		route = cfemu.RouteRotateSecret
	}
	kind := []string{cfemu.FaultReset, cfemu.FaultTimeout, cfemu.FaultInternalError, cfemu.FaultBadGateway}[r.rng.IntN(4)]
	after := commitLaterMin + time.Duration(r.rng.Int64N(int64(commitLaterSpread)))
	rule := cfemu.FaultRule{Route: route, Kind: kind, CommitAfter: after, Count: 1}
	if kind == cfemu.FaultTimeout {
		rule.Delay = time.Second
	}
	faultsBefore := r.cf.Stats().Faults
	r.cf.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{rule}})
	start := time.Now()
	names, err := r.act(ctx, act, 1+r.rng.IntN(2))
	if err != nil {
		r.t.Fatal(err)
	}
	what := fmt.Sprintf("commit later %d: %s %v, Cloudflare answered %q and committed it %s later", i, act, names, kind, after.Round(time.Millisecond))
	// Due writes land at the emulator's next request or helper call: polling the count
	// lands this one on time.
	var landed time.Time
	if err := pollUntil(ctx, suite.scale.settleTimeout, func() bool {
		st := r.cf.Stats()
		if st.Faults > faultsBefore && st.PendingCommits == 0 {
			landed = time.Now()
			return true
		}
		return false
	}); err != nil {
		r.t.Fatalf("%s: the fault was not sprung or its write never landed (%v); manager log tail:\n%s", what, err, r.m.tail(30))
	}
	r.cf.ClearFaults()
	r.checkConverged(ctx, &r.commitLater, what)
	r.landedToConverged = append(r.landedToConverged, time.Since(landed))
	r.t.Logf("%s: landed at +%s, converged %s later; Cloudflare calls:\n%s", what, landed.Sub(start).Round(time.Millisecond),
		time.Since(landed).Round(time.Millisecond), describeCalls(r.cf.callsOf(r.f.account, start, time.Now()), start))
	r.lost[fmt.Sprintf("Cloudflare answered a %s %s and committed it later", act, kind)]++
}

// failedAPIServerWrites fails the manager's next apiserver writes right after
// Cloudflare answers a create or rotate. It returns how many writes failed.
func (r *crashRun) failedAPIServerWrites(ctx context.Context, i int) int {
	act := []string{actCreate, actRotate}[r.rng.IntN(2)]
	n := 1 + r.rng.IntN(3)
	applyFirst := r.rng.IntN(2) == 0
	op := opCreate
	if act == actRotate {
		op = opRotate
	}
	tr := newTrap(1, func(c call) bool { return c.Op == op && c.Status == http.StatusOK }, func(call) {
		r.proxy.failNextWrites(r.f.ns, n, applyFirst)
	})
	tr.beforeDelivery = true
	r.cf.arm(tr)
	names, err := r.act(ctx, act, 1+r.rng.IntN(2))
	if err != nil {
		r.t.Fatal(err)
	}
	how := "refused"
	if applyFirst {
		how = "applied but answered 500"
	}
	r.check(ctx, &r.lostResponses, fmt.Sprintf("apiserver failures %d: %s %v, next %d writes %s", i, act, names, n, how))
	r.cf.disarm(tr)
	failed := r.proxy.stopFailing()
	r.lost[fmt.Sprintf("the apiserver writes after a Cloudflare %s %s", act, how)]++
	return len(failed)
}

// pickAction keeps between 3 and 10 objects alive.
func (r *crashRun) pickAction() string {
	switch {
	case len(r.live) < 3:
		return actCreate
	case len(r.live) > 10:
		return actDelete
	}
	return []string{actCreate, actRotate, actDelete, actCreateThenDelete}[r.rng.IntN(4)]
}

// change is an action planned on a batch of objects.
type change struct {
	act   string
	names []string
	// writes is about how many Cloudflare writes the change makes.
	writes int
	objs   []*v1alpha1.OAuthClient // to create
	id     string                  // rotation ID
	// clientIDs are the batch's remote clients, known before a rotate or delete.
	clientIDs []string
}

// ours reports whether a Cloudflare write is one of the change's: a create of one of
// its objects, or a write to one of its clients.
func (ch change) ours(c call) bool {
	if !c.mutating() {
		return false
	}
	if c.Op == opCreate {
		return slices.ContainsFunc(ch.names, func(n string) bool { return clientName(n) == c.ClientName })
	}
	return slices.Contains(ch.clientIDs, c.ClientID)
}

// plan chooses the objects of an action and updates the run's bookkeeping.
func (r *crashRun) plan(ctx context.Context, act string, batch int) (change, error) {
	ch := change{act: act}
	switch act {
	case actCreate, actCreateThenDelete:
		if act == actCreateThenDelete {
			batch = 1
		}
		ch.objs = r.newObjects(batch)
		for _, o := range ch.objs {
			ch.names = append(ch.names, o.Name)
		}
		ch.writes = batch
	case actRotate:
		r.rotation++
		ch.id = fmt.Sprintf("r%d", r.rotation)
		ch.names = r.pick(batch)
		ch.writes = 2 * len(ch.names) // rotate, then delete the rotated secret
		for _, name := range ch.names {
			obj := &v1alpha1.OAuthClient{}
			if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: r.f.ns, Name: name}, obj); err != nil {
				return ch, err
			}
			ch.clientIDs = append(ch.clientIDs, obj.Status.ClientID)
		}
	default:
		ch.names = r.pick(batch)
		for _, name := range ch.names {
			obj := &v1alpha1.OAuthClient{}
			if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: r.f.ns, Name: name}, obj); err != nil {
				return ch, err
			}
			ch.clientIDs = append(ch.clientIDs, obj.Status.ClientID)
			if obj.OrphanOnDelete() {
				r.gone.orphans[name] = obj.Status.ClientID
			} else {
				r.gone.deleted[name] = obj.Status.ClientID
				ch.writes++
			}
			r.live = slices.DeleteFunc(r.live, func(n string) bool { return n == name })
		}
	}
	return ch, nil
}

// apply makes the change in the apiserver.
func (r *crashRun) apply(ctx context.Context, ch change) error {
	n := len(ch.names)
	switch ch.act {
	case actCreate, actCreateThenDelete:
		return parallel(n, n, func(i int) error { return suite.kube.Create(ctx, ch.objs[i]) })
	case actRotate:
		return parallel(n, n, func(i int) error { return rotate(ctx, r.f.ns, ch.names[i], ch.id) })
	default:
		return parallel(n, n, func(i int) error {
			return suite.kube.Delete(ctx, &v1alpha1.OAuthClient{ObjectMeta: objectMeta(r.f.ns, ch.names[i])})
		})
	}
}

// act plans and applies an action.
func (r *crashRun) act(ctx context.Context, act string, batch int) ([]string, error) {
	ch, err := r.plan(ctx, act, batch)
	if err != nil {
		return nil, err
	}
	return ch.names, r.apply(ctx, ch)
}

// create creates n objects.
func (r *crashRun) create(ctx context.Context, n int) error {
	_, err := r.act(ctx, actCreate, n)
	return err
}

// newObjects builds n objects with a random deletion policy and overlap, and counts
// them alive.
func (r *crashRun) newObjects(n int) []*v1alpha1.OAuthClient {
	objs := make([]*v1alpha1.OAuthClient, n)
	for i := range objs {
		r.seq++
		name := fmt.Sprintf("crash-%03d", r.seq)
		policy := []v1alpha1.DeletionPolicy{v1alpha1.DeletionPolicyDelete, v1alpha1.DeletionPolicyOrphan}[r.rng.IntN(2)]
		overlap := []time.Duration{0, 2 * time.Second}[r.rng.IntN(2)]
		objs[i] = r.f.object(name, policy, overlap)
		r.live = append(r.live, name)
	}
	return objs
}

// pick chooses up to n distinct live objects.
func (r *crashRun) pick(n int) []string {
	perm := r.rng.Perm(len(r.live))
	out := make([]string, 0, n)
	for _, i := range perm[:min(n, len(perm))] {
		out = append(out, r.live[i])
	}
	return out
}

// check waits for the objects to settle and audits them into tl; the first
// iteration that breaks an invariant ends the test (the seed replays it).
func (r *crashRun) check(ctx context.Context, tl *tally, what string) {
	r.t.Helper()
	r.checkUntil(ctx, tl, what, false)
}

// checkConverged is check for a write Cloudflare committed after the manager may have
// settled: the manager learns of it at its next look at the account (a List at most a
// --remote-sync-period old), so the audit is repeated until it passes or the settle
// timeout ends. Only the final state counts.
func (r *crashRun) checkConverged(ctx context.Context, tl *tally, what string) {
	r.t.Helper()
	r.checkUntil(ctx, tl, what, true)
}

func (r *crashRun) checkUntil(ctx context.Context, tl *tally, what string, untilAudited bool) {
	r.t.Helper()
	start := time.Now()
	var last error
	err := pollUntil(ctx, suite.scale.settleTimeout, func() bool {
		last = r.f.settled(ctx)
		if last == nil && untilAudited {
			if a := r.f.audit(ctx, r.gone); !a.ok() || a.live != len(r.live) {
				last = fmt.Errorf("settled, but the audit finds: %s", strings.Join(a.problems, "; "))
			}
		}
		return last == nil
	})
	if took := time.Since(start); tl != nil {
		if len(r.settle) == 0 || took > slices.Max(r.settle) {
			r.slowest = what
		}
		r.settle = append(r.settle, took)
	}
	a := r.f.audit(ctx, r.gone)
	if tl != nil {
		tl.add(a)
	}
	if err != nil || !a.ok() || a.live != len(r.live) {
		r.t.Fatalf("%s: settled: %v (%v); %d objects (want %d); problems:\n%s\nmanager log tail:\n%s",
			what, err, last, a.live, len(r.live), strings.Join(a.problems, "\n"), r.m.tail(30))
	}
}
