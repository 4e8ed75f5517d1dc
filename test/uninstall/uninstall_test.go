// Package uninstall_test deletes the OAuthClient CustomResourceDefinition while the
// operator runs, as `kubectl delete -f install.yaml`, a GitOps prune or a chart that
// templates its CRDs would, and checks that no Cloudflare client is deleted with it.
//
// Deleting the CRD makes the apiserver delete every OAuthClient; without the guard in
// internal/controller/crdguard.go the operator would honour deletionPolicy Delete on
// each and revoke every client of every team. The test runs the real reconciler in a
// manager against its own source-built kube-apiserver (deleting the CRD would break a
// shared one) and the in-process Cloudflare emulator in its harsh modes.
package uninstall_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const (
	testToken = "uninstall-token-71c4e9"
	account   = "5f0c2a9b8e7d6c5b4a39281706f5e4d3"
	crdName   = "oauthclients.cloudflare.oauth-operator.dev"
	// settle bounds every wait; the CRD's own finalizer polls its instances every 5s.
	settle = 60 * time.Second
)

// world is a running operator: a control plane, the emulator and a manager.
type world struct {
	kube client.Client
	emu  *cfemu.Server
	logs *lockedBuffer
}

// TestDeletingTheCRDDeletesNoCloudflareClient: with the manager running, deleting the
// CRD releases every OAuthClient (deletionPolicy left at its default, Delete) without a
// single DELETE to Cloudflare, with an Event and a log line on each saying why, and
// releases the credentials Secrets' finalizers, so nothing is
// left stuck. An ordinary deletion, just before, still deletes its client: the guard
// reads the real CRD and lets it through.
func TestDeletingTheCRDDeletesNoCloudflareClient(t *testing.T) {
	g := NewWithT(t)
	w := start(t)
	ctx := t.Context()

	teams, names := []string{"team-a", "team-b"}, []string{"web", "cli"}
	objs := make([]*v1alpha1.OAuthClient, 0, len(teams)*len(names))
	for _, ns := range teams {
		w.namespace(t, ns)
		for _, name := range names {
			objs = append(objs, w.create(t, ns, name))
		}
	}
	control := w.create(t, "team-a", "control")
	ids := map[string]string{} // namespace/name -> Cloudflare client ID
	for _, o := range append(slices.Clone(objs), control) {
		ids[o.Namespace+"/"+o.Name] = w.waitReady(t, o)
	}

	for _, ns := range teams {
		g.Expect(w.credentialsFinalizers(t, ns)).To(ContainElement(v1alpha1.FinalizerCredentialsInUse),
			"the credentials Secret of %s should be held while its objects may delete clients", ns)
	}

	// Control: an ordinary deletion still deletes the remote client.
	g.Expect(w.kube.Delete(ctx, control)).To(Succeed())
	w.waitGone(t, control)
	g.Expect(w.deletes()).To(ConsistOf(HaveSuffix("/" + ids["team-a/control"])))
	_, exists := w.emu.GetClient(account, ids["team-a/control"])
	g.Expect(exists).To(BeFalse(), "the control object's client should be deleted")

	// Uninstall: delete the CRD and wait until the apiserver has removed it, which it
	// does only once every OAuthClient is gone.
	before := len(w.emu.Requests())
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	crd.SetName(crdName)
	g.Expect(w.kube.Delete(ctx, crd)).To(Succeed())
	for _, o := range objs {
		w.waitGone(t, o)
	}
	g.Eventually(func() error {
		return w.kube.Get(ctx, client.ObjectKey{Name: crdName}, crd)
	}, settle, 100*time.Millisecond).Should(Satisfy(apierrors.IsNotFound), "the CRD should be deleted")

	var writes []string
	for _, r := range w.emu.Requests()[before:] {
		if r.Method != http.MethodGet {
			writes = append(writes, r.Method+" "+r.Path)
		}
	}
	g.Expect(writes).To(BeEmpty(), "Cloudflare writes during the uninstall")
	g.Expect(w.deletes()).To(HaveLen(1), "only the control object's client may be deleted")
	for _, o := range objs {
		id := ids[o.Namespace+"/"+o.Name]
		_, exists := w.emu.GetClient(account, id)
		g.Expect(exists).To(BeTrue(), "Cloudflare client %s of %s/%s", id, o.Namespace, o.Name)
		g.Eventually(func() []eventsv1.Event { return w.events(t, o, v1alpha1.EventClientNotDeleted) }, settle, 100*time.Millisecond).
			Should(ContainElement(And(
				HaveField("Type", corev1.EventTypeWarning),
				HaveField("Note", And(ContainSubstring(id), ContainSubstring(crdName+" is being deleted"))),
			)), "Event on %s/%s", o.Namespace, o.Name)
	}
	g.Expect(w.releaseLines(t)).To(ConsistOf(objectKeys(objs)), "info lines saying why each object was released")

	for _, ns := range teams {
		g.Eventually(func() []string { return w.credentialsFinalizers(t, ns) }, settle, 100*time.Millisecond).
			ShouldNot(ContainElement(v1alpha1.FinalizerCredentialsInUse),
				"the credentials Secret of %s keeps the operator's finalizer", ns)
	}
}

// crdGVK is handled as unstructured: the test needs no apiextensions types.
var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// start runs a control plane with the CRDs, the emulator and the manager; everything
// stops when the test ends.
func start(t *testing.T) *world {
	t.Helper()
	logs := &lockedBuffer{}
	// Info and above only: the line that explains a release must be at info level.
	logf.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(false), zap.JSONEncoder(), zap.Level(zapcore.InfoLevel)))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log:\n%s", logs.String())
		}
	})

	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	kube, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{testToken: nil}, Strict: cfemu.Harsh(19)})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)

	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		t.Fatal(err)
	}
	httpClient := &http.Client{Timeout: 5 * time.Second}
	r := &controller.OAuthClientReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("cloudflare-oauth-operator"),
		NewAPI: func(creds cfapi.Credentials) (controller.CloudflareAPI, error) {
			return cfapi.New(creds, cfapi.WithBaseURL(srv.URL+cfemu.BasePath), cfapi.WithHTTPClient(httpClient))
		},
		SyncPeriod:               2 * time.Second,
		VerificationPollInterval: 300 * time.Millisecond,
		RequestTimeout:           httpClient.Timeout,
		CreateSettle:             time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("manager: %v", err)
		}
	})
	return &world{kube: kube, emu: emu, logs: logs}
}

// namespace creates a team's namespace with its credentials Secret "cf".
func (w *world) namespace(t *testing.T, name string) {
	t.Helper()
	if err := w.kube.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := w.kube.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "cf"},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: testToken},
	}); err != nil {
		t.Fatal(err)
	}
}

// manifest is what a team applies: deletionPolicy is left at its default.
const manifest = `
spec:
  accountID: ` + account + `
  credentialsRef:
    name: cf
  redirectURIs: ["https://app.example.com/cb"]
  grantTypes: [authorization_code, refresh_token]
  responseTypes: [code]
  scopes: [account.read, user-details.read]
  tokenEndpointAuthMethod: client_secret_basic
`

// create applies the manifest as namespace/name.
func (w *world) create(t *testing.T, ns, name string) *v1alpha1.OAuthClient {
	t.Helper()
	o := &v1alpha1.OAuthClient{}
	if err := yaml.UnmarshalStrict([]byte(manifest), o); err != nil {
		t.Fatal(err)
	}
	o.Namespace, o.Name = ns, name
	o.Spec.ClientName = new("App " + ns + "/" + name)
	if err := w.kube.Create(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	return o
}

// waitReady waits until the object is Ready and its client exists in Cloudflare, and
// returns the client's ID.
func (w *world) waitReady(t *testing.T, o *v1alpha1.OAuthClient) string {
	t.Helper()
	var id string
	NewWithT(t).Eventually(func() string {
		got := &v1alpha1.OAuthClient{}
		if err := w.kube.Get(t.Context(), client.ObjectKeyFromObject(o), got); err != nil {
			return err.Error()
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
		if ready == nil || ready.Status != metav1.ConditionTrue {
			return "not Ready"
		}
		id = got.Status.ClientID
		if _, ok := w.emu.GetClient(account, id); !ok {
			return "client " + id + " not in Cloudflare"
		}
		return ""
	}, settle, 50*time.Millisecond).Should(BeEmpty(), "%s/%s", o.Namespace, o.Name)
	return id
}

// waitGone waits until the object no longer exists.
func (w *world) waitGone(t *testing.T, o *v1alpha1.OAuthClient) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		return w.kube.Get(t.Context(), client.ObjectKeyFromObject(o), &v1alpha1.OAuthClient{})
	}, settle, 50*time.Millisecond).Should(Satisfy(apierrors.IsNotFound), "%s/%s should be gone", o.Namespace, o.Name)
}

// releaseLines lists, once each, the namespace/name of the objects an info-level log
// line says were released because the CRD is being deleted.
func (w *world) releaseLines(t *testing.T) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(w.logs.String()) {
		var entry struct {
			Level, Msg, CRD, Namespace, Name string
		}
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry.Level == "info" && entry.CRD == crdName && strings.Contains(entry.Msg, "the CustomResourceDefinition is being deleted") {
			out = append(out, entry.Namespace+"/"+entry.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out) // a release retried after a conflict logs again
}

func objectKeys(objs []*v1alpha1.OAuthClient) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Namespace+"/"+o.Name)
	}
	return out
}

// credentialsFinalizers returns the finalizers of the credentials Secret of a namespace.
func (w *world) credentialsFinalizers(t *testing.T, ns string) []string {
	t.Helper()
	sec := &corev1.Secret{}
	if err := w.kube.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cf"}, sec); err != nil {
		t.Fatal(err)
	}
	return sec.Finalizers
}

// deletes lists the paths of every client DELETE Cloudflare received.
func (w *world) deletes() []string {
	var out []string
	for _, r := range w.emu.Requests() {
		if r.Route == cfemu.RouteDeleteClient {
			out = append(out, r.Path)
		}
	}
	return out
}

// events lists the Events about o with the given reason.
func (w *world) events(t *testing.T, o *v1alpha1.OAuthClient, reason string) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := w.kube.List(t.Context(), list, client.InNamespace(o.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Reason == reason && e.Regarding.Name == o.Name && e.Regarding.Kind == "OAuthClient" {
			out = append(out, e)
		}
	}
	return out
}

// lockedBuffer is a log sink safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
