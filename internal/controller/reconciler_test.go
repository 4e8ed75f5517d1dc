package controller

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	unitAccount = "023e105f4ecef8ad9ca31a8372d0c353"
	unitToken   = "unit-token-3b9d"
)

// fixture is a reconciler wired to controller-runtime's fake client and the in-process
// emulator, for tests that drive Reconcile pass by pass.
type fixture struct {
	r      *OAuthClientReconciler
	c      client.Client
	emu    *cfemu.Server
	events *events.FakeRecorder
	clock  *cfemu.FakeClock
}

func newFixture(t *testing.T, objs ...client.Object) *fixture {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	creds := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "cf"},
		Data:       map[string][]byte{v1alpha1.CredentialsKeyAPIToken: []byte(unitToken)},
	}
	c := fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&v1alpha1.OAuthClient{}).
		WithIndex(&v1alpha1.OAuthClient{}, indexCredentials, func(o client.Object) []string {
			return []string{o.(*v1alpha1.OAuthClient).CredentialsSecretName()}
		}).
		WithIndex(&v1alpha1.OAuthClient{}, indexClientID, claimedClientIDs).
		WithObjects(append(objs, creds)...).
		Build()
	clock := cfemu.NewFakeClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{unitToken: nil}, Now: clock.Now})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	httpClient := &http.Client{Timeout: 5 * time.Second}
	rec := events.NewFakeRecorder(100)
	r := &OAuthClientReconciler{
		Client:    c,
		APIReader: c,
		Recorder:  rec,
		NewAPI: func(creds cfapi.Credentials) (CloudflareAPI, error) {
			return cfapi.New(creds, cfapi.WithBaseURL(srv.URL+"/client/v4"), cfapi.WithHTTPClient(httpClient))
		},
		SyncPeriod:               time.Minute,
		VerificationPollInterval: 10 * time.Second,
	}
	r.init(c)
	r.now = clock.Now
	return &fixture{r: r, c: c, emu: emu, events: rec, clock: clock}
}

func (f *fixture) reconcile(t *testing.T, name string) (ctrl.Result, error) {
	t.Helper()
	return f.r.Reconcile(t.Context(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "team", Name: name}})
}

func (f *fixture) get(t *testing.T, name string) *v1alpha1.OAuthClient {
	t.Helper()
	o := &v1alpha1.OAuthClient{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: name}, o); err != nil {
		t.Fatal(err)
	}
	return o
}

// writes lists the emulator's write calls by route template ("METHOD /path").
func (f *fixture) writes() []string {
	var out []string
	for _, r := range f.emu.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r.Route)
		}
	}
	return out
}

// patchBodies lists the bodies of the PATCH requests Cloudflare received, in order.
func (f *fixture) patchBodies() []string {
	var out []string
	for _, r := range f.emu.Requests() {
		if r.Method == http.MethodPatch {
			out = append(out, string(r.Body))
		}
	}
	return out
}

func unitObject(name string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: name, Generation: 1},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               unitAccount,
			CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: "cf"},
			ClientName:              ptr("Unit"),
			RedirectURIs:            &[]string{"https://unit.example.com/cb"},
			GrantTypes:              &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode},
			Scopes:                  &[]string{"account.read"},
			TokenEndpointAuthMethod: ptr(v1alpha1.AuthMethodClientSecretPost),
		},
	}
}

func TestSecondReconcileWritesNothing(t *testing.T) {
	f := newFixture(t, unitObject("web"))
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POST /accounts/{account_id}/oauth_clients"}, f.writes()); diff != "" {
		t.Fatalf("first pass writes (-want +got):\n%s", diff)
	}
	after1 := f.get(t, "web")
	secret := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "web-oauth-client"}, secret); err != nil {
		t.Fatal(err)
	}

	f.emu.ResetStats()
	res, err := f.reconcile(t, "web")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.emu.Requests(); len(got) != 0 {
		t.Errorf("second pass made Cloudflare calls: %+v", got)
	}
	after2 := f.get(t, "web")
	if after2.ResourceVersion != after1.ResourceVersion {
		t.Errorf("second pass wrote the object: resourceVersion %s -> %s", after1.ResourceVersion, after2.ResourceVersion)
	}
	secret2 := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "web-oauth-client"}, secret2); err != nil {
		t.Fatal(err)
	}
	if secret2.ResourceVersion != secret.ResourceVersion {
		t.Errorf("second pass rewrote the Secret")
	}
	if res.RequeueAfter < time.Minute || res.RequeueAfter > 66*time.Second {
		t.Errorf("RequeueAfter = %s, want the sync period with up to 10%% jitter", res.RequeueAfter)
	}
}

func TestOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		fault       cfemu.FaultRule
		wantErr     bool
		wantReady   string
		wantStalled bool
		wantRequeue func(time.Duration) bool
	}{
		{
			name: "5xx goes to the workqueue backoff", fault: cfemu.FaultRule{Kind: "503"},
			wantErr: true, wantReady: v1alpha1.ReasonCloudflareError,
		},
		{
			name: "429 waits for Retry-After without an error", fault: cfemu.FaultRule{Kind: "429", RetryAfter: 7},
			wantReady:   v1alpha1.ReasonRateLimited,
			wantRequeue: func(d time.Duration) bool { return d >= 7*time.Second && d <= 9*time.Second },
		},
		{
			name: "401 stalls with a slow retry", fault: cfemu.FaultRule{Kind: "401"},
			wantReady: v1alpha1.ReasonUnauthorized, wantStalled: true,
			wantRequeue: func(d time.Duration) bool { return d >= credentialsRetry },
		},
		{
			name: "malformed JSON is transient", fault: cfemu.FaultRule{Kind: "malformed"},
			wantErr: true, wantReady: v1alpha1.ReasonCloudflareError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, unitObject("web"))
			f.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{tt.fault}})
			res, err := f.reconcile(t, "web")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && res != (ctrl.Result{}) {
				t.Errorf("a Result was returned together with an error: %+v", res)
			}
			if tt.wantRequeue != nil && !tt.wantRequeue(res.RequeueAfter) {
				t.Errorf("RequeueAfter = %s", res.RequeueAfter)
			}
			o := f.get(t, "web")
			ready := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
			if ready == nil || ready.Status != metav1.ConditionFalse || ready.Reason != tt.wantReady {
				t.Fatalf("Ready = %+v, want False/%s", ready, tt.wantReady)
			}
			if strings.Contains(ready.Message, unitToken) {
				t.Errorf("the token leaked into the condition: %s", ready.Message)
			}
			stalled := meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionStalled)
			reconciling := meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionReconciling)
			if stalled != tt.wantStalled || reconciling == tt.wantStalled {
				t.Errorf("Stalled=%v Reconciling=%v, want Stalled=%v and the opposite Reconciling", stalled, reconciling, tt.wantStalled)
			}
			if len(f.emu.Clients(unitAccount)) != 0 {
				t.Errorf("a failed pass created a client")
			}
		})
	}
}

func TestRateLimitPausesEveryObjectOnTheToken(t *testing.T) {
	f := newFixture(t, unitObject("a"), unitObject("b"))
	f.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: "429", RetryAfter: 30, Count: 1}}})
	if _, err := f.reconcile(t, "a"); err != nil {
		t.Fatal(err)
	}
	f.emu.ResetStats()
	res, err := f.reconcile(t, "b")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.emu.Requests()); n != 0 {
		t.Errorf("object b called Cloudflare %d times while its token was rate limited", n)
	}
	if res.RequeueAfter < 29*time.Second {
		t.Errorf("object b RequeueAfter = %s, want about the remaining 30s", res.RequeueAfter)
	}
}

func TestObservedGenerationOnlyOnConclusion(t *testing.T) {
	obj := unitObject("web")
	obj.Generation = 3
	obj.Status.ObservedGeneration = 2
	f := newFixture(t, obj)
	f.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Kind: "500", Count: 1}}})
	if _, err := f.reconcile(t, "web"); err == nil {
		t.Fatal("want the 500 returned")
	}
	if got := f.get(t, "web").Status.ObservedGeneration; got != 2 {
		t.Errorf("observedGeneration = %d after an inconclusive pass, want 2", got)
	}
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if got := f.get(t, "web").Status.ObservedGeneration; got != 3 {
		t.Errorf("observedGeneration = %d after reaching Ready, want 3", got)
	}
}

func TestPromotionIsGated(t *testing.T) {
	obj := unitObject("pub")
	obj.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
	obj.Spec.ClientURI = ptr("https://pub.example.com")
	obj.Spec.LogoURI = ptr("https://pub.example.com/logo.png")
	f := newFixture(t, obj)
	res, err := f.reconcile(t, "pub")
	if err != nil {
		t.Fatal(err)
	}
	o := f.get(t, "pub")
	ready := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
	if ready.Reason != v1alpha1.ReasonAwaitingVerification {
		t.Fatalf("Ready reason = %s, want %s", ready.Reason, v1alpha1.ReasonAwaitingVerification)
	}
	if res.RequeueAfter > 13*time.Second {
		t.Errorf("RequeueAfter = %s, want the verification poll interval", res.RequeueAfter)
	}
	for _, w := range f.writes() {
		if strings.HasPrefix(w, "PATCH") {
			t.Fatalf("promotion was attempted before verification: %v", f.writes())
		}
	}

	if err := f.emu.SetVerification(unitAccount, o.Status.ClientID, cfapi.VerificationVerified); err != nil {
		t.Fatal(err)
	}
	f.r.snapshots = NewSnapshots(time.Minute) // a new List sees the verification
	if _, err := f.reconcile(t, "pub"); err != nil {
		t.Fatal(err)
	}
	patches := f.patchBodies()
	if diff := cmp.Diff([]string{`{"visibility":"public"}`}, patches); diff != "" {
		t.Errorf("PATCH bodies (-want +got):\n%s", diff)
	}
	if got := f.get(t, "pub").Status.Visibility; got != "public" {
		t.Errorf("status.visibility = %q, want public", got)
	}
}

func TestPeriodicRotation(t *testing.T) {
	obj := unitObject("periodic")
	obj.Spec.SecretRotation = &v1alpha1.SecretRotation{
		Every:   &metav1.Duration{Duration: 90 * 24 * time.Hour},
		Overlap: &metav1.Duration{Duration: time.Hour},
	}
	f := newFixture(t, obj)
	res, err := f.reconcile(t, "periodic")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 1 {
		t.Fatalf("first pass writes = %v, want only the create", got)
	}
	if res.RequeueAfter > 66*time.Second {
		t.Errorf("RequeueAfter = %s: the drift check still runs every sync period", res.RequeueAfter)
	}

	secret := func() *corev1.Secret {
		s := &corev1.Secret{}
		if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "periodic-oauth-client"}, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := string(secret().Data[v1alpha1.SecretKeyClientSecret])

	f.clock.Advance(89 * 24 * time.Hour)
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "periodic"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Fatalf("rotated before the period elapsed: %v", got)
	}

	f.clock.Advance(24*time.Hour + time.Minute)
	if _, err := f.reconcile(t, "periodic"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"POST /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"}, f.writes()); diff != "" {
		t.Fatalf("writes after 90 days (-want +got):\n%s", diff)
	}
	s := secret()
	if string(s.Data[v1alpha1.SecretKeyPreviousClientSecret]) != first || string(s.Data[v1alpha1.SecretKeyClientSecret]) == first {
		t.Fatalf("Secret after rotation: previous must be the first secret and current a new one")
	}
	o := f.get(t, "periodic")
	if o.Status.SecretRotation == nil || o.Status.SecretRotation.PreviousSecretExpiresAt == nil ||
		!o.Status.SecretRotation.PreviousSecretExpiresAt.Time.Equal(f.clock.Now().Add(time.Hour).Truncate(time.Second)) {
		t.Fatalf("status.secretRotation = %+v, want the previous secret to expire after the 1h overlap", o.Status.SecretRotation)
	}

	f.clock.Advance(time.Hour + time.Second)
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "periodic"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"DELETE /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"}, f.writes()); diff != "" {
		t.Fatalf("writes after the overlap (-want +got):\n%s", diff)
	}
	if _, ok := secret().Data[v1alpha1.SecretKeyPreviousClientSecret]; ok {
		t.Fatal("previous_client_secret is still in the Secret after the overlap")
	}

	// The next rotation is due 90 days after the second secret was issued.
	f.clock.Advance(89 * 24 * time.Hour)
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "periodic"); err != nil {
		t.Fatal(err)
	}
	if got := f.writes(); len(got) != 0 {
		t.Fatalf("rotated again too early: %v", got)
	}
}

// drainEvents returns the FakeRecorder's events so far ("Type Reason Message").
func (f *fixture) drainEvents() []string {
	var out []string
	for {
		select {
		case e := <-f.events.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestStalledEmitsOneWarningPerStall(t *testing.T) {
	obj := unitObject("stuck")
	obj.Spec.CredentialsRef = &v1alpha1.CredentialsSecretReference{Name: "missing"}
	f := newFixture(t, obj)
	for range 3 {
		if _, err := f.reconcile(t, "stuck"); err != nil {
			t.Fatal(err)
		}
	}
	stalls := func(reason string) int {
		n := 0
		for _, e := range f.drainEvents() {
			if strings.HasPrefix(e, corev1.EventTypeWarning+" "+reason+" ") {
				n++
			}
		}
		return n
	}
	if n := stalls(v1alpha1.ReasonCredentialsNotFound); n != 1 {
		t.Fatalf("%d Warning %s events over 3 stalled passes, want 1", n, v1alpha1.ReasonCredentialsNotFound)
	}

	// Stalling for another reason is news: one more Warning.
	bad := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "missing"},
		Data: map[string][]byte{v1alpha1.CredentialsKeyAPIToken: []byte("has whitespace")}}
	if err := f.c.Create(t.Context(), bad); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := f.reconcile(t, "stuck"); err != nil {
			t.Fatal(err)
		}
	}
	if n := stalls(v1alpha1.ReasonInvalidCredentials); n != 1 {
		t.Fatalf("%d Warning %s events over 2 stalled passes, want 1", n, v1alpha1.ReasonInvalidCredentials)
	}
	if got := meta.FindStatusCondition(f.get(t, "stuck").Status.Conditions, v1alpha1.ConditionStalled); got == nil || got.Reason != v1alpha1.ReasonInvalidCredentials {
		t.Fatalf("Stalled condition %+v, want reason %s", got, v1alpha1.ReasonInvalidCredentials)
	}
}

// The operator-wide default credentials serve only the namespaces that opted in.
func TestDefaultCredentialsAreOptInPerNamespace(t *testing.T) {
	obj := unitObject("web")
	obj.Spec.CredentialsRef = nil
	f := newFixture(t, obj)
	f.r.DefaultCredentials.Env = cfapi.Credentials{APIToken: unitToken}
	f.r.DefaultCredentialsNamespaces = labels.SelectorFromSet(labels.Set{v1alpha1.LabelDefaultCredentials: "true"})

	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	got := meta.FindStatusCondition(f.get(t, "web").Status.Conditions, v1alpha1.ConditionStalled)
	if got == nil || got.Reason != v1alpha1.ReasonDefaultCredentialsNotAllowed {
		t.Fatalf("Stalled = %+v, want reason %s", got, v1alpha1.ReasonDefaultCredentialsNotAllowed)
	}
	if len(f.emu.Requests()) != 0 {
		t.Fatalf("the default credentials were used for a namespace that did not opt in: %d calls", len(f.emu.Requests()))
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Labels: map[string]string{v1alpha1.LabelDefaultCredentials: "true"}}}
	if err := f.c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if ready := meta.FindStatusCondition(f.get(t, "web").Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Status != metav1.ConditionTrue {
		t.Fatalf("Ready = %+v after the namespace opted in", ready)
	}
}
