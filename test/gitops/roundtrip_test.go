package gitops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const (
	// applier is the field manager of the GitOps tool (Argo CD's, with server-side apply).
	applier   = "argocd-controller"
	testToken = "gitops-token-41d7"
	// adoptedClientID is the client config/samples/adopted-client.yaml adopts.
	adoptedClientID = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
	sampleAccount   = "023e105f4ecef8ad9ca31a8372d0c353"
)

// defaultedSpecFields are the only spec fields the API server may add to a manifest
// (CRD defaults). Anything else in the live spec that the manifest lacks would be a
// field fighting the GitOps tool's diff.
var defaultedSpecFields = []string{"deletionPolicy", "managementPolicy"}

// samples reads the OAuthClients of config/samples.
func samples(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if u.GetKind() == "OAuthClient" {
				out = append(out, u)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("config/samples has no OAuthClient")
	}
	return out
}

// startOperator runs the control plane, the emulator (with the client the adoption
// sample expects) and the manager in-process, and returns a client.
func startOperator(t *testing.T) client.Client {
	t.Helper()
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	k8s, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}

	// The samples' hosts lie in example.com, which the token may edit: the web-app sample
	// publishes its verification record there and goes public.
	emu := cfemu.New(cfemu.Options{
		Tokens:         map[string][]string{testToken: nil},
		VerifyAfter:    time.Second,
		Zones:          []cfemu.ZoneSpec{{Name: "example.com"}},
		DNS:            map[string]cfemu.DNSPermissions{testToken: cfemu.DNSEditor()},
		DNSPropagation: time.Second,
	})
	if _, err := emu.SeedClient(sampleAccount, cfapi.OAuthClient{
		ClientID: adoptedClientID, ClientName: "Legacy dashboard client",
		RedirectURIs: []string{"https://legacy.example.com/callback"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scopes: []string{"account.read"}, TokenEndpointAuthMethod: "client_secret_basic",
	}, ""); err != nil {
		t.Fatal(err)
	}
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
		MaxConcurrentReconciles:  2,
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	return k8s
}

// apply server-side applies obj as the GitOps tool and returns the object the API
// server answered with.
func apply(ctx context.Context, k8s client.Client, obj *unstructured.Unstructured, opts ...client.ApplyOption) (*unstructured.Unstructured, error) {
	u := obj.DeepCopy()
	err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), append([]client.ApplyOption{client.FieldOwner(applier), client.ForceOwnership}, opts...)...)
	return u, err
}

// TestApplyTwiceNoDiff applies config/samples as a GitOps tool would, lets the operator
// reconcile them to Ready and write status, annotations and finalizers, and then checks
// that applying the same manifests again is a no-op: a server-side dry-run apply (what
// Argo CD's server-side diff runs) returns the live spec unchanged, a real apply bumps no
// generation, and the live spec holds nothing beyond the manifest but CRD defaults.
func TestApplyTwiceNoDiff(t *testing.T) {
	k8s := startOperator(t)
	g := NewWithT(t)
	ctx := t.Context()
	const ns = "gitops"
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cloudflare-credentials"},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: testToken},
	})).To(Succeed())

	manifests := samples(t)
	for _, m := range manifests {
		m.SetNamespace(ns)
		_, err := apply(ctx, k8s, m)
		g.Expect(err).NotTo(HaveOccurred(), m.GetName())
	}

	script := healthScript(t)
	for _, m := range manifests {
		key := client.ObjectKeyFromObject(m)
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(m.GroupVersionKind())
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, key, live)).To(Succeed())
			res, err := status.Compute(live)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.Status).To(Equal(status.CurrentStatus), "kstatus of %s: %s", key, res.Message)
			hs, err := evalHealth(script, live.Object)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(hs.Status).To(Equal("Healthy"), "Argo CD health of %s: %s", key, hs.Message)
		}).WithTimeout(30*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), key.String())
	}

	for _, m := range manifests {
		t.Run(m.GetName(), func(t *testing.T) { checkReapply(t, k8s, m) })
	}
}

// checkReapply checks that applying manifest m again, after the operator reconciled it,
// changes nothing.
func checkReapply(t *testing.T, k8s client.Client, m *unstructured.Unstructured) {
	ctx := t.Context()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(m.GroupVersionKind())
	if err := k8s.Get(ctx, client.ObjectKeyFromObject(m), live); err != nil {
		t.Fatal(err)
	}
	if len(live.GetFinalizers()) == 0 && live.GetAnnotations()[v1alpha1.AnnotationClientID] == "" {
		t.Errorf("the operator wrote no metadata; the round trip proves little")
	}
	liveSpec := specOf(live)

	// The live spec is the manifest plus CRD defaults, nothing else.
	manifestSpec := specOf(m)
	for field := range liveSpec {
		if _, inManifest := manifestSpec[field]; !inManifest && !slices.Contains(defaultedSpecFields, field) {
			t.Errorf("spec.%s is in the live object but not in the manifest: it would show as a diff", field)
		}
	}
	for field, want := range manifestSpec {
		if diff := cmp.Diff(want, liveSpec[field]); diff != "" {
			t.Errorf("spec.%s was changed after apply (-manifest +live):\n%s", field, diff)
		}
	}

	// What Argo CD's server-side diff does: a dry-run apply of the manifest.
	dry, err := apply(ctx, k8s, m, client.DryRunAll)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(liveSpec, specOf(dry)); diff != "" {
		t.Errorf("a dry-run apply of the same manifest changes the spec (-live +dry-run):\n%s", diff)
	}
	if dry.GetGeneration() != live.GetGeneration() {
		t.Errorf("a dry-run apply moves generation %d to %d", live.GetGeneration(), dry.GetGeneration())
	}

	// Apply for real: no new generation, same metadata the operator owns.
	again, err := apply(ctx, k8s, m)
	if err != nil {
		t.Fatal(err)
	}
	if again.GetGeneration() != live.GetGeneration() {
		t.Errorf("applying the same manifest again moved generation %d to %d", live.GetGeneration(), again.GetGeneration())
	}
	if !cmp.Equal(again.GetFinalizers(), live.GetFinalizers()) || !maps.Equal(again.GetAnnotations(), live.GetAnnotations()) {
		t.Errorf("applying again changed the operator's metadata: finalizers %v -> %v, annotations %v -> %v",
			live.GetFinalizers(), again.GetFinalizers(), live.GetAnnotations(), again.GetAnnotations())
	}
	checkSpecOwners(t, again)
}

// checkSpecOwners fails when anyone but the GitOps tool owns a spec field: the operator
// never writes spec.
func checkSpecOwners(t *testing.T, obj *unstructured.Unstructured) {
	t.Helper()
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == applier || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			t.Fatal(err)
		}
		if _, ok := fields["f:spec"]; ok {
			t.Errorf("field manager %q (operation %s) owns spec fields: %s", mf.Manager, mf.Operation, mf.FieldsV1.GetRawString())
		}
	}
}

func specOf(u *unstructured.Unstructured) map[string]any {
	spec, _, _ := unstructured.NestedMap(u.Object, "spec")
	return spec
}
