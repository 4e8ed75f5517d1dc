package controller

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func TestObserveRequests(t *testing.T) {
	creds := cfapi.Credentials{APIToken: "metrics-token-5e2"}
	before := testutil.ToFloat64(apiRequests.WithLabelValues("create", "429"))
	observe := ObserveRequests(creds)
	observe(cfapi.RequestInfo{Operation: "create", StatusCode: 429, Duration: 40 * time.Millisecond,
		RateLimit: &cfapi.RateLimit{Remaining: 17, Reset: time.Minute}})
	if got := testutil.ToFloat64(apiRequests.WithLabelValues("create", "429")) - before; got != 1 {
		t.Errorf("cloudflare_api_requests_total{create,429} grew by %v, want 1", got)
	}
	if got := testutil.ToFloat64(rateLimitRemaining.WithLabelValues(credentialsKey(creds))); got != 17 {
		t.Errorf("cloudflare_ratelimit_remaining = %v, want 17", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(rateLimitRemaining)
	if n, err := testutil.GatherAndCount(reg, "cloudflare_ratelimit_remaining"); err != nil || n == 0 {
		t.Fatalf("gather: %d series, %v", n, err)
	}
	assertNoLabelContains(t, reg, creds.APIToken)
}

// assertNoLabelContains fails when any label value gathered from reg contains s.
func assertNoLabelContains(t *testing.T, reg prometheus.Gatherer, s string) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), s) {
					t.Fatalf("%s has the label value %q", mf.GetName(), l.GetValue())
				}
			}
		}
	}
}

// metricsObject is an OAuthClient in namespace ns as the operator left it: bound to a
// client created at created, with a Ready condition.
func metricsObject(ns, name string, created time.Time, ready metav1.ConditionStatus, reason string) *v1alpha1.OAuthClient {
	o := unitObject(name)
	o.Namespace = ns
	o.Status.ClientID = "client-" + name
	o.Status.Visibility = "private"
	o.Status.CreatedAt = &metav1.Time{Time: created}
	o.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: ready, Reason: reason, LastTransitionTime: metav1.Now()}}
	return o
}

func TestObjectsCollector(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	stalledAt := func(o *v1alpha1.OAuthClient, at time.Time) *v1alpha1.OAuthClient {
		o.Status.Conditions = append(o.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue,
			Reason: o.Status.Conditions[0].Reason, LastTransitionTime: metav1.Time{Time: at}})
		return o
	}

	// Verified and public, rotating every 720h; last rotated at t0+10d, its previous
	// secret valid until t0+11d.
	rotating := metricsObject("team", "a", t0, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	rotating.Status.Visibility = "public"
	rotating.Status.ClientURIVerification = &v1alpha1.ClientURIVerification{Status: "verified"}
	rotating.Spec.SecretRotation = &v1alpha1.SecretRotation{Every: &metav1.Duration{Duration: 720 * time.Hour}}
	rotating.Status.HasRotatedSecret = true
	rotating.Status.SecretRotation = &v1alpha1.SecretRotationStatus{
		LastRotatedAt:           &metav1.Time{Time: t0.Add(240 * time.Hour)},
		PreviousSecretExpiresAt: &metav1.Time{Time: t0.Add(264 * time.Hour)},
	}
	// Rotating every hour, but the overlap of the last rotation runs longer: the next
	// rotation waits for it.
	overlapping := metricsObject("team", "b", t0, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	overlapping.Spec.SecretRotation = &v1alpha1.SecretRotation{Every: &metav1.Duration{Duration: time.Hour}}
	overlapping.Status.SecretRotation = &v1alpha1.SecretRotationStatus{
		LastRotatedAt:           &metav1.Time{Time: t0},
		PreviousSecretExpiresAt: &metav1.Time{Time: t0.Add(24 * time.Hour)},
	}
	// Two objects stalled on credentials since different times; one stalled on spec.
	creds1 := stalledAt(metricsObject("ops", "c", t0, metav1.ConditionFalse, v1alpha1.ReasonUnauthorized), t0.Add(time.Hour))
	creds2 := stalledAt(metricsObject("ops", "d", t0, metav1.ConditionFalse, v1alpha1.ReasonUnauthorized), t0.Add(30*time.Minute))
	spec := stalledAt(metricsObject("ops", "e", t0, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec), t0.Add(2*time.Hour))
	spec.Status.ClientURIVerification = &v1alpha1.ClientURIVerification{Status: "failed"}
	// No secret metrics: a public client, an observed client, and an object not yet
	// bound to a client (no Ready condition either).
	public := metricsObject("ops", "f", t0, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	public.Spec.TokenEndpointAuthMethod = ptr(v1alpha1.AuthMethodNone)
	observed := metricsObject("ops", "g", t0, metav1.ConditionTrue, v1alpha1.ReasonReconciled)
	observed.Spec.ManagementPolicy = v1alpha1.ManagementPolicyObserve
	fresh := unitObject("h")

	f := newFixture(t, rotating, overlapping, creds1, creds2, spec, public, observed, fresh)
	want := `
# HELP oauthclients OAuthClient objects by verification status, visibility and readiness.
# TYPE oauthclients gauge
oauthclients{ready="False",verification_status="failed",visibility="private"} 1
oauthclients{ready="False",verification_status="none",visibility="private"} 2
oauthclients{ready="True",verification_status="none",visibility="private"} 3
oauthclients{ready="True",verification_status="verified",visibility="public"} 1
oauthclients{ready="Unknown",verification_status="none",visibility=""} 1
# HELP oauthclients_ready OAuthClient objects by namespace and the status and reason of their Ready condition.
# TYPE oauthclients_ready gauge
oauthclients_ready{namespace="ops",reason="InvalidSpec",status="False"} 1
oauthclients_ready{namespace="ops",reason="Reconciled",status="True"} 2
oauthclients_ready{namespace="ops",reason="Unauthorized",status="False"} 2
oauthclients_ready{namespace="team",reason="Reconciled",status="True"} 2
oauthclients_ready{namespace="team",reason="Unknown",status="Unknown"} 1
# HELP oauthclients_stalled OAuthClient objects with Stalled=True (a person must act), by namespace and reason.
# TYPE oauthclients_stalled gauge
oauthclients_stalled{namespace="ops",reason="InvalidSpec"} 1
oauthclients_stalled{namespace="ops",reason="Unauthorized"} 2
# HELP oauthclients_stalled_since_timestamp_seconds When the longest-stalled object of each namespace and reason became Stalled (Unix seconds).
# TYPE oauthclients_stalled_since_timestamp_seconds gauge
oauthclients_stalled_since_timestamp_seconds{namespace="ops",reason="InvalidSpec"} SPEC_SINCE
oauthclients_stalled_since_timestamp_seconds{namespace="ops",reason="Unauthorized"} CREDS_SINCE
# HELP oauthclients_verification OAuthClient objects by namespace and client URI verification status (pending, in_progress, verified, failed, none).
# TYPE oauthclients_verification gauge
oauthclients_verification{namespace="ops",status="failed"} 1
oauthclients_verification{namespace="ops",status="none"} 4
oauthclients_verification{namespace="team",status="none"} 2
oauthclients_verification{namespace="team",status="verified"} 1
# HELP oauthclients_previous_secret_valid OAuthClient objects whose previous client secret is still valid after a rotation, by namespace.
# TYPE oauthclients_previous_secret_valid gauge
oauthclients_previous_secret_valid{namespace="team"} 1
`
	want = strings.NewReplacer("SPEC_SINCE", formatFloat(float64(t0.Add(2*time.Hour).Unix())),
		"CREDS_SINCE", formatFloat(float64(t0.Add(30*time.Minute).Unix()))).Replace(want)
	names := []string{"oauthclients", "oauthclients_ready", "oauthclients_stalled", "oauthclients_stalled_since_timestamp_seconds",
		"oauthclients_verification", "oauthclients_previous_secret_valid"}
	if err := testutil.CollectAndCompare(newObjectsCollector(f.c), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	secs := func(d time.Duration) float64 { return float64(t0.Add(d).Unix()) }
	wantSecrets := map[string]float64{
		"issued/ops/c": secs(0), "issued/ops/d": secs(0), "issued/ops/e": secs(0),
		"issued/team/a": secs(240 * time.Hour), "next/team/a": secs(960 * time.Hour),
		"issued/team/b": secs(0), "next/team/b": secs(24 * time.Hour),
	}
	got := map[string]float64{}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newObjectsCollector(f.c))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		kind := map[string]string{"oauthclient_secret_issued_timestamp_seconds": "issued", "oauthclient_secret_next_rotation_timestamp_seconds": "next"}[mf.GetName()]
		if kind == "" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[kind+"/"+l["namespace"]+"/"+l["name"]] = m.GetGauge().GetValue()
		}
	}
	if !mapsEqual(got, wantSecrets) {
		t.Errorf("secret timestamps\n got %v\nwant %v", got, wantSecrets)
	}
}

func mapsEqual(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A follower replica reports no object gauges: the leader does, once.
func TestObjectsCollectorOnlyOnTheLeader(t *testing.T) {
	f := newFixture(t, unitObject("a"))
	c := newObjectsCollector(f.c)
	c.leader = func() bool { return false }
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("a follower reported %d series, want none", n)
	}
}

func TestStateCollector(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	inner := &limitedOnce{}
	apis := newAPIClients(func(cfapi.Credentials) (CloudflareAPI, error) { return inner, nil }, DefaultRequestBudget, clock.now)
	token := "state-token-91ab"
	api, _, err := apis.get(resolved{creds: cfapi.Credentials{APIToken: token}, user: "Platform@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.ListOAuthClients(t.Context(), "x"); err == nil {
		t.Fatal("want the 429")
	}
	// Within the block: no call reaches Cloudflare, and no second block starts.
	_, _ = api.ListOAuthClients(t.Context(), "x")
	b := api.(*pacedAPI).budget()
	b.stats.record(&cfapi.RateLimit{Remaining: 40, Quota: 1200, Reset: time.Minute}, clock.t)

	snaps := NewSnapshots(time.Minute)
	snaps.now = clock.now
	acct := accountKey{creds: "k1", account: "acct-1"}
	snaps.replace(acct, clock.t.Add(-10*time.Minute), nil)
	snaps.replace(accountKey{creds: "k2", account: "acct-1"}, clock.t.Add(-2*time.Minute), nil)
	snaps.Invalidate(acct) // a refused write: the age still shows
	snaps.Put(accountKey{creds: "k3", account: "never-listed"}, cfapi.OAuthClient{ClientID: "c"})

	c := &stateCollector{apis: apis, snapshots: snaps, now: clock.now}
	user := userLabel("user:Platform@example.com")
	if !strings.HasPrefix(user, "user:sha256-") || strings.Contains(user, "example.com") {
		t.Fatalf("user label %q: want the e-mail hashed", user)
	}
	blocked := float64(clock.t.Add(30 * time.Second).Unix())
	want := `
# HELP cloudflare_budget_blocked_until_timestamp_seconds When the current or last block of the user's calls ends (Unix seconds; 0: never blocked). A block follows a 429 or a Ratelimit header with nothing remaining.
# TYPE cloudflare_budget_blocked_until_timestamp_seconds gauge
cloudflare_budget_blocked_until_timestamp_seconds{user="USER"} BLOCKED
# HELP cloudflare_budget_blocks_total Blocks of the user's calls that started (after a 429, or a Ratelimit header with nothing remaining).
# TYPE cloudflare_budget_blocks_total counter
cloudflare_budget_blocks_total{user="USER"} 1
# HELP cloudflare_budget_deferred_total Calls the operator deferred because the user's request budget (--cloudflare-request-budget) was spent.
# TYPE cloudflare_budget_deferred_total counter
cloudflare_budget_deferred_total{user="USER"} 0
# HELP cloudflare_budget_quota Requests Cloudflare allows the user per window (Ratelimit-Policy header); absent once that window has ended.
# TYPE cloudflare_budget_quota gauge
cloudflare_budget_quota{user="USER"} 1200
# HELP cloudflare_budget_remaining Requests Cloudflare says remain in its current rate-limit window for the user (Ratelimit header); absent once that window has ended.
# TYPE cloudflare_budget_remaining gauge
cloudflare_budget_remaining{user="USER"} 40
# HELP cloudflare_rate_limited_responses_total 429 answers from Cloudflare, per user: each blocks every call of the user for its Retry-After.
# TYPE cloudflare_rate_limited_responses_total counter
cloudflare_rate_limited_responses_total{user="USER"} 1
# HELP cloudflare_snapshot_last_list_timestamp_seconds When the oldest of the account's client snapshots was last listed successfully (Unix seconds).
# TYPE cloudflare_snapshot_last_list_timestamp_seconds gauge
cloudflare_snapshot_last_list_timestamp_seconds{account="acct-1"} LISTED
# HELP cloudflare_snapshot_max_age_seconds How long a List of an account's clients is reused (--remote-sync-period).
# TYPE cloudflare_snapshot_max_age_seconds gauge
cloudflare_snapshot_max_age_seconds 60
`
	want = strings.NewReplacer("USER", user, "BLOCKED", formatFloat(blocked),
		"LISTED", formatFloat(float64(clock.t.Add(-10*time.Minute).Unix()))).Replace(want)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}

	// Once Cloudflare's window has turned, what its header said is no longer reported.
	clock.t = clock.t.Add(2 * time.Minute)
	if n := testutil.CollectAndCount(c, "cloudflare_budget_remaining", "cloudflare_budget_quota"); n != 0 {
		t.Errorf("%d budget window series after the window ended, want none", n)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	assertNoLabelContains(t, reg, token)
	assertNoLabelContains(t, reg, "example.com")
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func TestUserLabel(t *testing.T) {
	for in, want := range map[string]string{
		"token:0123456789abcdef": "token:0123456789abcdef",
		"user:platform-team":     "user:platform-team",
	} {
		if got := userLabel(in); got != want {
			t.Errorf("userLabel(%q) = %q, want %q", in, got, want)
		}
	}
	if userLabel("user:a@example.com") == userLabel("user:A@example.com") {
		t.Error("two budgets must never share a label")
	}
}

// Every reconcile that ends in outcome is counted once, by the Ready reason it set.
func TestReconcileFailuresCounted(t *testing.T) {
	obj := unitObject("fail")
	obj.Spec.CredentialsRef.Name = "missing"
	f := newFixture(t, obj)
	before := testutil.ToFloat64(reconcileFailures.WithLabelValues(v1alpha1.ReasonCredentialsNotFound))
	if _, err := f.reconcile(t, "fail"); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(reconcileFailures.WithLabelValues(v1alpha1.ReasonCredentialsNotFound)) - before; got != 1 {
		t.Errorf("oauthclient_reconcile_failures_total{reason=CredentialsNotFound} grew by %v, want 1", got)
	}
}
