package reliability_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// leaseName is the manager's LeaderElectionID.
const leaseName = "cloudflare-oauth-operator.oauth-operator.dev"

// TestLeaderFailover runs two managers with leader election against the same
// apiserver, kills the leader with SIGKILL once a third of a wave of creates reached
// Cloudflare, and asserts that the standby takes over within the lease duration (plus
// its retry period), that the standby never called Cloudflare while it was standby,
// and that the wave ends with zero duplicates and zero lost secrets. Each manager uses
// its own API token, so the emulator can tell who made each call.
func TestLeaderFailover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sc := suite.scale
	n := sc.failoverObjects
	cf := newCloudflare(t)
	f := newFixture(t, "failover", cf)
	kubeconfig := writeKubeconfig(t)
	args := []string{
		"--leader-elect",
		"--leader-election-namespace=" + f.ns,
		"--leader-elect-lease-duration=" + sc.leaseDuration.String(),
		"--leader-elect-renew-deadline=" + sc.renewDeadline.String(),
		"--leader-elect-retry-period=" + sc.retryPeriod.String(),
		"--watch-namespaces=" + f.ns,
	}
	leader := startManager(t, managerOptions{name: "manager-a", kubeconfig: kubeconfig, apiURL: cf.apiURL(), token: tokenA, args: args})
	holderA, err := waitLeaseHolder(ctx, f.ns, "", time.Minute)
	if err != nil {
		t.Fatalf("manager A never became leader: %v\n%s", err, leader.tail(20))
	}
	standby := startManager(t, managerOptions{name: "manager-b", kubeconfig: kubeconfig, apiURL: cf.apiURL(), token: tokenB, args: args})
	if err := pollUntil(ctx, time.Minute, func() bool { return standby.grepLog("Attempting to acquire leader lease") > 0 }); err != nil {
		t.Fatalf("manager B never tried to acquire the lease: %v\n%s", err, standby.tail(20))
	}

	objs := make([]*v1alpha1.OAuthClient, n)
	for i := range objs {
		objs[i] = f.object(fmt.Sprintf("wave-%03d", i), v1alpha1.DeletionPolicyDelete, 0)
	}
	created := make(chan error, 1)
	waveStart := time.Now()
	go func() { created <- createAll(ctx, objs) }()

	// Kill the leader mid-wave.
	if err := pollUntil(ctx, sc.settleTimeout, func() bool { return len(cf.Clients(f.account)) >= n/3 }); err != nil {
		t.Fatalf("the leader created fewer than %d clients: %v\n%s", n/3, err, leader.tail(20))
	}
	killedAt := time.Now()
	leader.kill()
	remoteAtKill := len(cf.Clients(f.account))

	holderB, err := waitLeaseHolder(ctx, f.ns, holderA, sc.leaseDuration+4*sc.retryPeriod+30*time.Second)
	if err != nil {
		t.Fatalf("manager B did not take over: %v\n%s", err, standby.tail(20))
	}
	takeover := time.Since(killedAt)
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	converged := f.waitSettled(ctx, sc.settleTimeout)
	total := time.Since(waveStart)

	var firstB time.Duration
	standbyCalls := 0
	for _, c := range cf.callsOf(f.account, waveStart.Add(-time.Minute), time.Now()) {
		switch {
		case c.Token == tokenB && c.At.Before(killedAt):
			standbyCalls++
		case c.Token == tokenB && firstB == 0:
			firstB = c.At.Sub(killedAt)
		}
	}
	a := f.audit(ctx, gone{})

	if standbyCalls > 0 {
		t.Errorf("the standby made %d Cloudflare calls before it was leader", standbyCalls)
	}
	if bound := sc.leaseDuration + 2*sc.retryPeriod + 2*time.Second; takeover > bound {
		t.Errorf("takeover took %s, more than the lease duration %s + 2 retry periods + 2s", takeover, sc.leaseDuration)
	}
	if a.live != n || !a.ok() {
		t.Errorf("after the failover: %d objects (want %d), %d duplicates, %d lost secrets, %d missing clients:\n%s",
			a.live, n, a.duplicates, a.lost, a.missing, strings.Join(a.problems, "\n"))
	}
	if t.Failed() {
		t.Logf("manager B log tail:\n%s", standby.tail(20))
	}
	t.Logf("lease %s -> %s", holderA, holderB)
	handover := gracefulHandover(t, f.ns, holderB, standby, managerOptions{
		name: "manager-a2", kubeconfig: kubeconfig, apiURL: cf.apiURL(), token: tokenA, args: args})

	const sec = "Leader failover"
	suite.report.note(sec, "%d creates; the leader was killed with SIGKILL when %d of them had reached Cloudflare", n, remoteAtKill)
	suite.report.note(sec, "lease flags: --leader-elect-lease-duration=%s --leader-elect-renew-deadline=%s --leader-elect-retry-period=%s",
		sc.leaseDuration, sc.renewDeadline, sc.retryPeriod)
	suite.report.note(sec, "takeover (kill to the standby holding the Lease): %s; to its first Cloudflare call: %s",
		takeover.Round(100*time.Millisecond), firstB.Round(100*time.Millisecond))
	suite.report.note(sec, "wave settled %s after the takeover, %s after the first create", converged.Round(100*time.Millisecond), total.Round(100*time.Millisecond))
	suite.report.note(sec, "graceful handover (SIGTERM of the leader, which releases the Lease, to the standby holding it): %s",
		handover.Round(100*time.Millisecond))
	suite.report.note(sec, "standby calls to Cloudflare before takeover: %d; duplicates: %d; lost secrets: %d; missing clients: %d",
		standbyCalls, a.duplicates, a.lost, a.missing)
}

// gracefulHandover starts a new standby, stops the leader with SIGTERM and returns how
// long the standby took to hold the Lease: the manager releases it on shutdown.
func gracefulHandover(t *testing.T, ns, holder string, leader *manager, o managerOptions) time.Duration {
	t.Helper()
	ctx := t.Context()
	standby := startManager(t, o)
	if err := pollUntil(ctx, time.Minute, func() bool { return standby.grepLog("Attempting to acquire leader lease") > 0 }); err != nil {
		t.Fatalf("the new standby never tried to acquire the lease: %v\n%s", err, standby.tail(20))
	}
	stopped := time.Now()
	leader.stop()
	if _, err := waitLeaseHolder(ctx, ns, holder, time.Minute); err != nil {
		t.Fatalf("no handover after SIGTERM: %v\n%s", err, standby.tail(20))
	}
	// The leader first finishes its reconciles, then releases the Lease; the standby
	// sees that at its next retry. Waiting for the lease to expire would be a bug.
	d := time.Since(stopped)
	if d >= suite.scale.leaseDuration {
		t.Errorf("graceful handover took %s, no faster than waiting for the %s lease to expire", d, suite.scale.leaseDuration)
	}
	return d
}

// leaseHolder returns the holder of the manager's Lease, "" when there is none.
func leaseHolder(ctx context.Context, ns string) (string, error) {
	lease := &coordinationv1.Lease{}
	if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: leaseName}, lease); err != nil {
		return "", err
	}
	if lease.Spec.HolderIdentity == nil {
		return "", nil
	}
	return *lease.Spec.HolderIdentity, nil
}

// waitLeaseHolder waits for a holder other than not.
func waitLeaseHolder(ctx context.Context, ns, not string, within time.Duration) (string, error) {
	var holder string
	err := pollUntil(ctx, within, func() bool {
		h, err := leaseHolder(ctx, ns)
		holder = h
		return err == nil && h != "" && h != not
	})
	return holder, err
}
