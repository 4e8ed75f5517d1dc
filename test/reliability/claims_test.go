package reliability_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// TestClaimsSurviveRestart: a Cloudflare client is bound by one OAuthClient
// cluster-wide, and the binding must not live only in a manager's memory. Manager 1
// adopts a client for object A (namespace 1) and is killed with SIGKILL. Manager 2, a
// new process with nothing in memory, then meets object B in namespace 2 naming the
// same client, with another spec (a PATCH would follow) and a rotation request (a
// rotate would follow). B must be refused (Ready=False, ClientAlreadyBound), manager 2
// must make no write to that client, neither while B exists nor when B is deleted
// with deletionPolicy Delete, and A must stay Ready with its Secret's secret current.
// Each manager has its own token, so the emulator tells their calls apart.
func TestClaimsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	cf := newCloudflare(t)
	owner := newFixture(t, "claims-owner", cf)
	intruder := newFixture(t, "claims-intruder", cf)
	intruder.account = owner.account // B names a client of A's account
	kubeconfig := writeKubeconfig(t)
	args := []string{"--leader-elect=false", "--watch-namespaces=" + owner.ns + "," + intruder.ns}

	seeded, err := cf.SeedClient(owner.account, cfapi.OAuthClient{
		ClientName:              clientName("claimed"),
		RedirectURIs:            []string{"https://claimed.example.com/oauth/callback"},
		GrantTypes:              []string{cfapi.GrantAuthorizationCode, cfapi.GrantRefreshToken},
		ResponseTypes:           []string{cfapi.ResponseTypeCode},
		Scopes:                  []string{"account.read", "user-details.read", "offline_access"},
		TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	}, "")
	if err != nil {
		t.Fatal(err)
	}
	id := seeded.ClientID

	// Manager 1 adopts the client for A (its spec matches the client) and rotates the
	// secret once, so that A's Secret holds one.
	m1 := startManager(t, managerOptions{name: "manager-1", kubeconfig: kubeconfig, apiURL: cf.apiURL(), token: tokenA, args: args})
	a := owner.object("claimed", v1alpha1.DeletionPolicyDelete, 0)
	a.Spec.ClientID = &id
	if err := suite.kube.Create(ctx, a); err != nil {
		t.Fatal(err)
	}
	var last error
	if err := pollUntil(ctx, suite.scale.settleTimeout, func() bool { last = adoptedReady(ctx, cf, owner, "claimed", id); return last == nil }); err != nil {
		t.Fatalf("A never adopted client %s: %v\n%s", id, last, m1.tail(20))
	}
	killed := time.Now()
	m1.kill()

	// Manager 2 starts with an empty memory; B names A's client.
	m2 := startManager(t, managerOptions{name: "manager-2", kubeconfig: kubeconfig, apiURL: cf.apiURL(), token: tokenB, args: args})
	b := intruder.object("intruder", v1alpha1.DeletionPolicyDelete, 0)
	b.Spec.ClientID = &id
	if err := suite.kube.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	if last, err := waitReadyReason(ctx, client.ObjectKeyFromObject(b), v1alpha1.ReasonClientAlreadyBound, time.Minute); err != nil {
		t.Fatalf("B never reported ClientAlreadyBound; last: %s\n%s", last, m2.tail(20))
	}
	refused := time.Since(created)
	if err := adoptedReady(ctx, cf, owner, "claimed", id); err != nil {
		t.Errorf("A after B was refused: %v", err)
	}
	bSecret := intruderSecret(ctx, t, cf, intruder, b, id)

	// Deleting B (deletionPolicy Delete) must leave A's client alone.
	if err := intruder.deleteAll(ctx, suite.scale.settleTimeout); err != nil {
		t.Errorf("deleting B: %v\n%s", err, m2.tail(20))
	}
	if err := adoptedReady(ctx, cf, owner, "claimed", id); err != nil {
		t.Errorf("A after B was deleted: %v", err)
	}

	calls := cf.callsOf(owner.account, killed, time.Now())
	if n := countCalls(calls, func(c call) bool { return c.Token == tokenA }); n > 0 {
		t.Errorf("manager 1 made %d calls after it was killed", n)
	}
	m2Calls := countCalls(calls, func(c call) bool { return c.Token == tokenB })
	writes := map[string]int{}
	for _, c := range filterCalls(calls, func(c call) bool { return c.Token == tokenB && c.ClientID == id && c.mutating() }) {
		writes[c.Op]++
	}
	if len(writes) > 0 {
		t.Errorf("manager 2 wrote to the client A holds: %v", writes)
	}
	if remote, ok := cf.GetClient(owner.account, id); !ok || remote.ClientName != clientName("claimed") {
		t.Errorf("A's client after B: present %v, client_name %q", ok, remote.ClientName)
	}
	if t.Failed() {
		t.Logf("manager 2 log tail:\n%s", m2.tail(30))
	}

	const sec = "Client claims across a restart"
	suite.report.note(sec, "A (namespace %s) adopted client %s under manager 1, which was then killed with SIGKILL; manager 2 met B (namespace %s) naming the same client with another client_name and a rotation request",
		owner.ns, id, intruder.ns)
	suite.report.note(sec, "B refused with ClientAlreadyBound %s after its creation; B's Secret: %s; manager 2 made %d calls on the account, writes to A's client: %d (PATCH, rotate, delete included); A still Ready with its secret current",
		refused.Round(100*time.Millisecond), bSecret, m2Calls, len(writes))
}

// waitReadyReason waits until the object is Ready=False with reason; it returns the
// last Ready condition seen.
func waitReadyReason(ctx context.Context, key client.ObjectKey, reason string, within time.Duration) (string, error) {
	var last string
	err := pollUntil(ctx, within, func() bool {
		obj := &v1alpha1.OAuthClient{}
		if err := suite.kube.Get(ctx, key, obj); err != nil {
			last = err.Error()
			return false
		}
		last = readyOf(obj)
		c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == reason
	})
	return last, err
}

// adoptedReady reports nil once the object adopted the client: Ready for its
// generation, bound to id, and its Secret holding the client's current secret from the
// requested rotation.
func adoptedReady(ctx context.Context, cf *cloudflare, f *fixture, name, id string) error {
	obj := &v1alpha1.OAuthClient{}
	if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: name}, obj); err != nil {
		return err
	}
	if !meta.IsStatusConditionTrue(obj.Status.Conditions, v1alpha1.ConditionReady) || obj.Status.ObservedGeneration != obj.Generation {
		return fmt.Errorf("%s: %s, observedGeneration %d of %d", name, readyOf(obj), obj.Status.ObservedGeneration, obj.Generation)
	}
	if obj.Status.ClientID != id {
		return fmt.Errorf("%s: bound to %q, want %q", name, obj.Status.ClientID, id)
	}
	sec := &corev1.Secret{}
	if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: obj.SecretName()}, sec); err != nil {
		return fmt.Errorf("%s: Secret: %w", name, err)
	}
	if got, want := sec.Annotations[v1alpha1.AnnotationRotationID], obj.Spec.SecretRotation.RotationID; got != want {
		return fmt.Errorf("%s: Secret is from rotation %q, spec asks for %q", name, got, want)
	}
	if !cf.CheckSecret(f.account, id, string(sec.Data[v1alpha1.SecretKeyClientSecret])).Current {
		return fmt.Errorf("%s: Secret's client_secret is not the current secret of %s", name, id)
	}
	return nil
}

// intruderSecret checks that B received nothing of the client's: no Secret naming it
// with a secret that works. It describes what B's Secret holds.
func intruderSecret(ctx context.Context, t *testing.T, cf *cloudflare, f *fixture, b *v1alpha1.OAuthClient, id string) string {
	t.Helper()
	sec := &corev1.Secret{}
	err := suite.kube.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: b.SecretName()}, sec)
	if apierrors.IsNotFound(err) {
		return "none"
	}
	if err != nil {
		t.Fatal(err)
	}
	secret := string(sec.Data[v1alpha1.SecretKeyClientSecret])
	if state := cf.CheckSecret(f.account, id, secret); secret != "" && (state.Current || state.Previous) {
		t.Errorf("B's Secret %s holds a working secret of client %s", sec.Name, id)
	}
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "keys [" + strings.Join(keys, ", ") + "]"
}
