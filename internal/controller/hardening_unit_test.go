package controller

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Errors are classified by cause: the same status means different things for different
// calls, and a refusal caused by remote state is retried after a refresh, not stalled.
func TestClassifyByCause(t *testing.T) {
	apiErr := func(status int) error { return &cfapi.APIError{StatusCode: status, Method: "X", Path: "/p"} }
	tests := []struct {
		name   string
		op     operation
		err    error
		want   failureKind
		reason string
		asIs   bool
	}{
		{"400 on create is the spec", opCreate, apiErr(400), kindSpec, v1alpha1.ReasonInvalidSpec, false},
		{"422 on update is the spec", opUpdate, apiErr(422), kindSpec, v1alpha1.ReasonInvalidSpec, false},
		{"400 on rotate is remote state (a rotated secret)", opRotate, apiErr(400), kindRemoteState, v1alpha1.ReasonCloudflareError, false},
		{"409 on rotate is remote state", opRotate, apiErr(409), kindRemoteState, v1alpha1.ReasonCloudflareError, false},
		{"400 on promote is remote state (a precondition)", opPromote, apiErr(400), kindRemoteState, v1alpha1.ReasonCloudflareError, false},
		{"400 on restart is remote state (a lock)", opRestartVerification, apiErr(400), kindRemoteState, v1alpha1.ReasonCloudflareError, false},
		{"404 on update: the client is gone", opUpdate, apiErr(404), kindRemoteState, v1alpha1.ReasonClientNotFound, false},
		{"401 is credentials", opList, apiErr(401), kindCredentials, v1alpha1.ReasonUnauthorized, false},
		{"403 is credentials", opCreate, apiErr(403), kindCredentials, v1alpha1.ReasonForbidden, false},
		{"5xx is transient", opCreate, apiErr(503), 0, "", true},
		{"429 keeps its own path", opCreate, apiErr(429), 0, "", true},
		{"a timeout is transient", opRotate, &cfapi.APIError{Method: "POST", Path: "/p"}, 0, "", true},
		{"our pacing keeps its own path", opCreate, &rateLimitedError{wait: time.Second, paced: true}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.op, tt.err)
			if tt.asIs {
				if !errors.Is(got, tt.err) {
					t.Fatalf("classify = %v, want the error unchanged", got)
				}
				return
			}
			var f *failure
			if !errors.As(got, &f) || f.kind != tt.want || f.reason != tt.reason {
				t.Fatalf("classify = %#v, want kind %d reason %s", got, tt.want, tt.reason)
			}
			if pol := policies[f.kind]; f.kind == kindSpec && (pol.retry == nil || pol.retry(&OAuthClientReconciler{}) <= 0) {
				t.Errorf("spec errors must still be re-checked slowly")
			}
		})
	}
}

func TestDefinitelyNotSent(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&rateLimitedError{paced: true}, true},
		{&notSentError{cause: context.Canceled}, true},
		{&cfapi.APIError{StatusCode: http.StatusBadRequest}, true},
		{&cfapi.APIError{StatusCode: http.StatusTooManyRequests}, true},
		{&cfapi.APIError{StatusCode: http.StatusBadGateway}, false},
		{&cfapi.APIError{StatusCode: 0}, false}, // timeout, reset
		{errors.New("unexpected EOF"), false},
	} {
		if got := definitelyNotSent(tt.err); got != tt.want {
			t.Errorf("definitelyNotSent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// Our own pacer refusing a Create proves nothing was sent: no create intent is left
// behind to force a search.
func TestPacingRefusalLeavesNoCreateIntent(t *testing.T) {
	f := newFixture(t, unitObject("paced"))
	// 40 per hour: a burst of 2 (the List and the scope catalogue), then nothing for
	// about 95s.
	f.r.apis = newAPIClients(f.r.NewAPI, RequestBudget{Requests: 40, Window: time.Hour}, f.r.now)
	intents := 0 // patches that write or remove the intent
	f.r.Client = interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if data, err := patch.Data(obj); err == nil && strings.Contains(string(data), v1alpha1.AnnotationCreateIntent) {
				intents++
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	res, err := f.reconcile(t, "paced")
	if err != nil {
		t.Fatal(err)
	}
	if res.RequeueAfter <= 0 {
		t.Errorf("RequeueAfter = %s, want a wait for the budget", res.RequeueAfter)
	}
	o := f.get(t, "paced")
	if _, ok := o.Annotations[v1alpha1.AnnotationCreateIntent]; ok {
		t.Errorf("a create intent was left behind by a call that was never sent: %v", o.Annotations)
	}
	if got := f.writes(); len(got) != 0 {
		t.Errorf("Cloudflare writes = %v, want none", got)
	}
	if c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonRateLimited {
		t.Errorf("Ready = %+v, want RateLimited", c)
	}
	if intents != 0 {
		t.Errorf("%d apiserver writes of the create intent for a Create the budget refused, want 0: the budget is asked first", intents)
	}
}

// A PATCH answered 404 means the client is gone: it leaves the snapshot at once, so the
// next pass re-creates it instead of patching a ghost until the next List.
func TestPatchNotFoundDropsTheClient(t *testing.T) {
	f := newFixture(t, unitObject("ghost"))
	if _, err := f.reconcile(t, "ghost"); err != nil {
		t.Fatal(err)
	}
	o := f.get(t, "ghost")
	id := o.Status.ClientID
	if err := f.emu.DeleteClient(unitAccount, id); err != nil {
		t.Fatal(err)
	}
	o.Spec.ClientName = ptr("Renamed")
	o.Generation++
	if err := f.c.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t, "ghost"); err == nil {
		t.Fatal("the PATCH of a deleted client succeeded")
	}
	key := accountKey{creds: credentialsKey(cfapi.Credentials{APIToken: unitToken}), account: unitAccount}
	if _, ok := f.r.snapshots.Get(key, id); ok {
		t.Fatal("the client answered 404 is still in the snapshot")
	}
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "ghost"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 1 || got[0] != cfemu.RouteCreateClient {
		t.Errorf("writes after the 404 = %v, want one re-create", got)
	}
}

// cancelOnRotate cancels the reconcile's context the moment a rotate returns, as a
// shutdown at the worst moment would.
type cancelOnRotate struct {
	CloudflareAPI
	cancel context.CancelFunc
}

func (c *cancelOnRotate) RotateOAuthClientSecret(ctx context.Context, accountID, clientID string) (string, error) {
	s, err := c.CloudflareAPI.RotateOAuthClientSecret(ctx, accountID, clientID)
	c.cancel()
	return s, err
}

// A shutdown between the rotate and the Secret write must not lose the new secret (the
// next pass would have had to revoke the old one to recover).
func TestRotationSurvivesCancellation(t *testing.T) {
	obj := unitObject("rot")
	obj.Spec.SecretRotation = &v1alpha1.SecretRotation{RotationID: "a"}
	f := newFixture(t, obj)
	if _, err := f.reconcile(t, "rot"); err != nil {
		t.Fatal(err)
	}
	o := f.get(t, "rot")
	o.Spec.SecretRotation.RotationID = "b"
	o.Generation++
	if err := f.c.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	inner := f.r.NewAPI
	f.r.apis = newAPIClients(func(c cfapi.Credentials) (CloudflareAPI, error) {
		api, err := inner(c)
		return &cancelOnRotate{CloudflareAPI: api, cancel: cancel}, err
	}, RequestBudget{}, f.r.now)
	_, _ = f.r.Reconcile(ctx, reconcileRequest("rot"))
	sec := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "rot-oauth-client"}, sec); err != nil {
		t.Fatal(err)
	}
	id := o.Status.ClientID
	if st := f.emu.CheckSecret(unitAccount, id, string(sec.Data[v1alpha1.SecretKeyClientSecret])); !st.Current {
		t.Fatalf("after a cancelled pass the Secret does not hold Cloudflare's current secret (%+v)", st)
	}
	if sec.Annotations[v1alpha1.AnnotationRotationID] != "b" {
		t.Errorf("rotation-id = %q, want b", sec.Annotations[v1alpha1.AnnotationRotationID])
	}
}

// Deleting the last object of a token drops everything held for it.
func TestForgetsStateOfDeletedObjects(t *testing.T) {
	f := newFixture(t, unitObject("gone"))
	if _, err := f.reconcile(t, "gone"); err != nil {
		t.Fatal(err)
	}
	if f.r.usage.objects() != 1 || len(f.r.apis.byKey) != 1 || f.r.secrets.size() == 0 {
		t.Fatalf("after a pass: %d objects, %d clients, %d Secrets held", f.r.usage.objects(), len(f.r.apis.byKey), f.r.secrets.size())
	}
	if err := f.c.Delete(t.Context(), f.get(t, "gone")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t, "gone"); err != nil {
		t.Fatal(err)
	}
	if f.r.usage.objects() != 0 || len(f.r.apis.byKey) != 0 || len(f.r.apis.budgets) != 0 || f.r.secrets.size() != 0 {
		t.Errorf("after the deletion: %d objects, %d clients, %d budgets, %d Secrets still held",
			f.r.usage.objects(), len(f.r.apis.byKey), len(f.r.apis.budgets), f.r.secrets.size())
	}
	if n := len(f.r.snapshots.accounts); n != 0 {
		t.Errorf("%d snapshots still held", n)
	}
}

func reconcileRequest(name string) ctrlreconcile.Request {
	return ctrlreconcile.Request{NamespacedName: client.ObjectKey{Namespace: "team", Name: name}}
}

// A rotate refused because of remote state the snapshot did not show (someone rotated
// in the dashboard; the strict emulator answers 400, as Cloudflare may) is retried
// after refreshing the snapshot: never stalled as an invalid spec.
func TestRemoteStateRefusalIsRetriedAfterARefresh(t *testing.T) {
	obj := unitObject("stale")
	obj.Spec.SecretRotation = &v1alpha1.SecretRotation{RotationID: "a", Overlap: nil}
	f := newFixture(t, obj)
	f.emu.SetStrict(cfemu.Harsh(1))
	if _, err := f.reconcile(t, "stale"); err != nil {
		t.Fatal(err)
	}
	o := f.get(t, "stale")
	id := o.Status.ClientID
	// Out of band: a rotation in the dashboard. The snapshot still says no rotated secret.
	dashboard, err := f.r.NewAPI(cfapi.Credentials{APIToken: unitToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dashboard.RotateOAuthClientSecret(t.Context(), unitAccount, id); err != nil {
		t.Fatal(err)
	}
	o.Spec.SecretRotation.RotationID = "b"
	o.Generation++
	if err := f.c.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	_, err = f.reconcile(t, "stale")
	var fl *failure
	if !errors.As(err, &fl) || fl.kind != kindRemoteState {
		t.Fatalf("err = %v, want a remote-state failure for the workqueue's backoff", err)
	}
	got := f.get(t, "stale")
	if meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionStalled) {
		t.Fatalf("stalled on a refusal caused by remote state: %+v", got.Status.Conditions)
	}
	// The retry lists again, sees the rotated secret, and ends with a usable secret.
	if _, err := f.reconcile(t, "stale"); err != nil {
		t.Fatal(err)
	}
	sec := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "stale-oauth-client"}, sec); err != nil {
		t.Fatal(err)
	}
	if st := f.emu.CheckSecret(unitAccount, id, string(sec.Data[v1alpha1.SecretKeyClientSecret])); !st.Current {
		t.Errorf("the Secret does not hold Cloudflare's current secret after the retry (%+v)", st)
	}
	if c := meta.FindStatusCondition(f.get(t, "stale").Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != "True" {
		t.Errorf("Ready = %+v, want True", c)
	}
}

// Cloudflare may judge promotion on the client as it was before a request (the strict
// emulator does): a logo added in the same pass as the promotion goes in its own PATCH
// first, and the promotion follows, instead of a refusal on every pass.
func TestPromotionIsItsOwnPatch(t *testing.T) {
	obj := unitObject("pub")
	obj.Spec.ClientURI = ptr("https://pub.example.com")
	f := newFixture(t, obj)
	f.emu.SetStrict(cfemu.Strict{PromotionBeforePatch: true})
	if _, err := f.reconcile(t, "pub"); err != nil {
		t.Fatal(err)
	}
	o := f.get(t, "pub")
	if err := f.emu.SetVerification(unitAccount, o.Status.ClientID, cfapi.VerificationVerified); err != nil {
		t.Fatal(err)
	}
	f.r.snapshots.Invalidate(accountKey{creds: credentialsKey(cfapi.Credentials{APIToken: unitToken}), account: unitAccount})
	o.Spec.LogoURI = ptr("https://pub.example.com/logo.png")
	o.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
	o.Generation++
	if err := f.c.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "pub"); err != nil {
		t.Fatal(err)
	}
	patches := f.patchBodies()
	want := []string{`{"logo_uri":"https://pub.example.com/logo.png"}`, `{"visibility":"public"}`}
	if len(patches) != 2 || patches[0] != want[0] || patches[1] != want[1] {
		t.Fatalf("PATCH bodies = %v, want %v", patches, want)
	}
	if c, _ := f.emu.GetClient(unitAccount, o.Status.ClientID); c.Visibility != cfapi.VisibilityPublic {
		t.Errorf("visibility = %s, want public", c.Visibility)
	}
}
