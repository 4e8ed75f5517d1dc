package reliability_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// fixture is one scenario's namespace and Cloudflare account.
type fixture struct {
	t       *testing.T
	ns      string
	account string
	cf      *cloudflare
	// credentials is the credentialsRef Secret; "" uses the manager's default token.
	credentials string
}

var accountSeq struct {
	sync.Mutex
	n int
}

// newFixture creates a namespace and picks an account ID of its own.
func newFixture(t *testing.T, ns string, cf *cloudflare) *fixture {
	t.Helper()
	accountSeq.Lock()
	accountSeq.n++
	account := fmt.Sprintf("%032x", 0xacc0000+accountSeq.n)
	accountSeq.Unlock()
	if err := suite.kube.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ns: ns, account: account, cf: cf}
}

// useCredentialsSecret makes new objects use a credentialsRef Secret holding token.
func (f *fixture) useCredentialsSecret(token string) {
	f.t.Helper()
	f.useCredentialsSecretOf(token, "")
}

// useCredentialsSecretOf is useCredentialsSecret for a token of a named Cloudflare user
// (the Secret's cloudflare-user annotation; none when user is ""): tokens of one user
// share one request budget.
func (f *fixture) useCredentialsSecretOf(token, user string) {
	f.t.Helper()
	f.credentials = "cloudflare-credentials"
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: f.credentials},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: token},
	}
	if user != "" {
		sec.Annotations = map[string]string{v1alpha1.AnnotationCloudflareUser: user}
	}
	if err := suite.kube.Create(f.t.Context(), sec); err != nil {
		f.t.Fatal(err)
	}
}

// setToken replaces the token in the credentials Secret.
func (f *fixture) setToken(ctx context.Context, token string) error {
	sec := &corev1.Secret{}
	if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: f.credentials}, sec); err != nil {
		return err
	}
	sec.Data = map[string][]byte{v1alpha1.CredentialsKeyAPIToken: []byte(token)}
	return suite.kube.Update(ctx, sec)
}

// clientName is the Cloudflare client_name of an object: unique per name and account.
func clientName(name string) string { return "rel-" + name }

// object builds a confidential client with a rotation ID, so that a rotation is a
// one-field spec change.
func (f *fixture) object(name string, policy v1alpha1.DeletionPolicy, overlap time.Duration) *v1alpha1.OAuthClient {
	cn := clientName(name)
	redirect := []string{"https://" + name + ".example.com/oauth/callback"}
	grants := []v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeRefreshToken}
	responses := []v1alpha1.ResponseType{v1alpha1.ResponseTypeCode}
	scopes := []string{"account.read", "user-details.read"}
	method := v1alpha1.AuthMethodClientSecretBasic
	obj := &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               f.account,
			ClientName:              &cn,
			RedirectURIs:            &redirect,
			GrantTypes:              &grants,
			ResponseTypes:           &responses,
			Scopes:                  &scopes,
			TokenEndpointAuthMethod: &method,
			DeletionPolicy:          policy,
			SecretRotation: &v1alpha1.SecretRotation{
				RotationID: "r0",
				Overlap:    &metav1.Duration{Duration: overlap},
			},
		},
	}
	if f.credentials != "" {
		obj.Spec.CredentialsRef = &v1alpha1.CredentialsSecretReference{Name: f.credentials}
	}
	return obj
}

// createAll creates objects with a few parallel writers.
func createAll(ctx context.Context, objs []*v1alpha1.OAuthClient) error {
	return parallel(len(objs), 8, func(i int) error { return suite.kube.Create(ctx, objs[i]) })
}

// parallel runs fn(0..n-1) on at most width goroutines and returns the first error.
func parallel(n, width int, fn func(int) error) error {
	var mu sync.Mutex
	var first error
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(width, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

// rotate asks for a rotation by changing the object's rotationID.
func rotate(ctx context.Context, ns, name, rotationID string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		obj := &v1alpha1.OAuthClient{}
		if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return err
		}
		obj.Spec.SecretRotation.RotationID = rotationID
		return suite.kube.Update(ctx, obj)
	})
}

// settled reports nil once every object in the namespace is Ready for its generation
// with its client recorded, its Secret holds that client's credentials for the
// requested rotation, and no deletion is pending. Otherwise it says what is not.
func (f *fixture) settled(ctx context.Context) error {
	list := &v1alpha1.OAuthClientList{}
	if err := suite.kube.List(ctx, list, client.InNamespace(f.ns)); err != nil {
		return err
	}
	var waiting []string
	for i := range list.Items {
		if err := objectSettled(ctx, &list.Items[i]); err != nil {
			waiting = append(waiting, err.Error())
		}
	}
	if len(waiting) > 0 {
		slices.Sort(waiting)
		return fmt.Errorf("%d of %d objects not settled, e.g. %s", len(waiting), len(list.Items), strings.Join(waiting[:min(3, len(waiting))], "; "))
	}
	return nil
}

func objectSettled(ctx context.Context, obj *v1alpha1.OAuthClient) error {
	name := obj.Name
	if obj.DeletionTimestamp != nil {
		return fmt.Errorf("%s: deletion pending (%s)", name, readyOf(obj))
	}
	ready := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || obj.Status.ObservedGeneration != obj.Generation {
		return fmt.Errorf("%s: %s, observedGeneration %d of %d", name, readyOf(obj), obj.Status.ObservedGeneration, obj.Generation)
	}
	id := obj.Annotations[v1alpha1.AnnotationClientID]
	if id == "" || id != obj.Status.ClientID || obj.Annotations[v1alpha1.AnnotationCreateIntent] != "" {
		return fmt.Errorf("%s: binding not recorded (annotation %q, status %q, intent %q)", name, id, obj.Status.ClientID, obj.Annotations[v1alpha1.AnnotationCreateIntent])
	}
	sec := &corev1.Secret{}
	if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: obj.Namespace, Name: obj.SecretName()}, sec); err != nil {
		return fmt.Errorf("%s: Secret: %w", name, err)
	}
	if got := string(sec.Data[v1alpha1.SecretKeyClientID]); got != id {
		return fmt.Errorf("%s: Secret holds client %q, object is bound to %q", name, got, id)
	}
	if got, want := sec.Annotations[v1alpha1.AnnotationRotationID], obj.Spec.SecretRotation.RotationID; got != want {
		return fmt.Errorf("%s: Secret is from rotation %q, spec asks for %q", name, got, want)
	}
	return nil
}

// readyOf renders the Ready condition.
func readyOf(obj *v1alpha1.OAuthClient) string {
	c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return "no Ready condition"
	}
	return fmt.Sprintf("Ready=%s/%s %q", c.Status, c.Reason, c.Message)
}

// waitSettled waits for settled, failing the test with the last reason on timeout.
func (f *fixture) waitSettled(ctx context.Context, timeout time.Duration) time.Duration {
	f.t.Helper()
	start := time.Now()
	NewWithT(f.t).Eventually(f.settled).WithContext(ctx).WithTimeout(timeout).WithPolling(300 * time.Millisecond).Should(Succeed())
	return time.Since(start)
}

// audit is the verdict on one namespace's objects against Cloudflare.
type audit struct {
	live int
	// duplicates counts remote clients beyond one per object, and clients nobody owns.
	duplicates int
	// lost counts live objects whose Secret does not hold the client's current secret.
	lost int
	// missing counts live objects whose client does not exist.
	missing int
	// orphanedUnderDelete counts clients left behind by deletionPolicy Delete.
	orphanedUnderDelete int
	// deletedUnderOrphan counts clients removed despite deletionPolicy Orphan.
	deletedUnderOrphan int
	problems           []string
}

func (a *audit) problem(format string, args ...any) {
	a.problems = append(a.problems, fmt.Sprintf(format, args...))
}

func (a *audit) ok() bool { return len(a.problems) == 0 }

// gone is what must hold for objects deleted during the scenario.
type gone struct {
	// orphans maps object names deleted with Orphan to the client that must remain
	// ("": one of that name, whose ID was never recorded).
	orphans map[string]string
	// deleted maps object names deleted with Delete to the client that must be gone.
	deleted map[string]string
}

// audit checks the invariants the operator promises: one remote client per object,
// a Secret holding its current secret, nothing orphaned under Delete and nothing
// deleted under Orphan, and no client that nobody owns.
func (f *fixture) audit(ctx context.Context, g gone) audit {
	f.t.Helper()
	var a audit
	list := &v1alpha1.OAuthClientList{}
	if err := suite.kube.List(ctx, list, client.InNamespace(f.ns)); err != nil {
		f.t.Fatal(err)
	}
	byName := f.cf.clientsByName(f.account)
	seen := map[string]bool{}
	for i := range list.Items {
		obj := &list.Items[i]
		a.live++
		cn := clientName(obj.Name)
		seen[cn] = true
		remote := byName[cn]
		switch {
		case len(remote) == 0:
			a.missing++
			a.problem("%s: no remote client", obj.Name)
			continue
		case len(remote) > 1:
			a.duplicates += len(remote) - 1
			a.problem("%s: %d remote clients %v", obj.Name, len(remote), ids(remote))
		}
		if remote[0].ClientID != obj.Status.ClientID && len(remote) == 1 {
			a.problem("%s: bound to %q, the remote client is %q", obj.Name, obj.Status.ClientID, remote[0].ClientID)
		}
		sec := &corev1.Secret{}
		if err := suite.kube.Get(ctx, client.ObjectKey{Namespace: f.ns, Name: obj.SecretName()}, sec); err != nil {
			a.lost++
			a.problem("%s: Secret: %v", obj.Name, err)
			continue
		}
		state := f.cf.CheckSecret(f.account, string(sec.Data[v1alpha1.SecretKeyClientID]), string(sec.Data[v1alpha1.SecretKeyClientSecret]))
		if !state.Current {
			a.lost++
			a.problem("%s: Secret's client_secret is not the current secret of %s (previous: %v)", obj.Name, sec.Data[v1alpha1.SecretKeyClientID], state.Previous)
		}
	}
	for name, id := range g.orphans {
		cn := clientName(name)
		seen[cn] = true
		if _, ok := f.cf.GetClient(f.account, id); id != "" && !ok {
			a.deletedUnderOrphan++
			a.problem("%s (Orphan): client %s was deleted", name, id)
		}
		if id == "" && len(byName[cn]) == 0 {
			// Deleted before its ID was recorded, after Cloudflare created the client.
			a.deletedUnderOrphan++
			a.problem("%s (Orphan): the client its interrupted create made was deleted", name)
		}
		if n := len(byName[cn]); n > 1 {
			a.duplicates += n - 1
			a.problem("%s (Orphan): %d remote clients %v", name, n, ids(byName[cn]))
		}
	}
	for name := range g.deleted {
		cn := clientName(name)
		seen[cn] = true
		if n := len(byName[cn]); n > 0 {
			a.orphanedUnderDelete += n
			a.problem("%s (Delete): %d remote clients left %v", name, n, ids(byName[cn]))
		}
	}
	for cn, cs := range byName {
		if !seen[cn] {
			a.duplicates += len(cs)
			a.problem("remote clients %v (%s) belong to no object", ids(cs), cn)
		}
	}
	slices.Sort(a.problems)
	return a
}

func ids(cs []cfapi.OAuthClient) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ClientID
	}
	return out
}

// deleteAll deletes every object in the namespace and waits until they are gone.
func (f *fixture) deleteAll(ctx context.Context, timeout time.Duration) error {
	if err := suite.kube.DeleteAllOf(ctx, &v1alpha1.OAuthClient{}, client.InNamespace(f.ns)); err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 300*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		list := &v1alpha1.OAuthClientList{}
		if err := suite.kube.List(ctx, list, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		return len(list.Items) == 0, nil
	})
}

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

// median of durations; 0 for none.
func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
