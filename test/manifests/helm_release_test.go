package manifests_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// probeCRD is the second CRD the upgraded chart adds.
const probeCRD = "upgradeprobes.cloudflare.oauth-operator.dev"

// helmConfig returns the Helm SDK's action configuration for the shared control plane,
// as `helm --kubeconfig F -n NS` builds it: a kubeconfig of an admin user, releases
// stored in Secrets, and the field manager "helm" of the helm binary.
func helmConfig(t *testing.T, namespace string) *action.Configuration {
	t.Helper()
	user, err := controlPlane(t).AddUser(envtest.User{Name: "helm-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	cacheDir := filepath.Join(dir, "cache")
	flags := genericclioptions.NewConfigFlags(true)
	flags.KubeConfig, flags.Namespace, flags.CacheDir = &path, &namespace, &cacheDir

	kube.ManagedFieldsManager = "helm" // what cmd/helm sets
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	if err := cfg.Init(flags, namespace, "secret"); err != nil {
		t.Fatal(err)
	}
	cfg.Capabilities = capabilities(t, flags)
	return cfg
}

// capabilities returns what Helm discovers of the control plane, except that an
// unstamped kube-apiserver (built from source without the version ldflags, it reports
// v0.0.0-master) is given the version of its assets directory, <version>-<os>-<arch>:
// otherwise the chart's kubeVersion (>=1.29) refuses it.
func capabilities(t *testing.T, getter genericclioptions.RESTClientGetter) *common.Capabilities {
	t.Helper()
	dc, err := getter.ToDiscoveryClient()
	if err != nil {
		t.Fatal(err)
	}
	apiVersions, err := action.GetVersionSet(dc)
	if err != nil {
		t.Fatal(err)
	}
	server, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	version := server.GitVersion
	if strings.HasPrefix(version, "v0.0.0") {
		assets, err := testenv.AssetsDir()
		if err != nil {
			t.Fatal(err)
		}
		version = "v" + strings.SplitN(filepath.Base(assets), "-", 2)[0]
	}
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		t.Fatalf("control plane version %q: want vMAJOR.MINOR...", version)
	}
	return &common.Capabilities{
		APIVersions: apiVersions,
		KubeVersion: common.KubeVersion{Version: version, Major: parts[0], Minor: parts[1]},
		HelmVersion: common.DefaultCapabilities.HelmVersion,
	}
}

// upgradedChart copies the chart into a temporary directory, adds spec.upgradeProbe
// to the OAuthClient CRD and a second CRD file, as a newer chart release would, and
// loads it.
func upgradedChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cloudflare-oauth-operator")
	if err := os.CopyFS(dir, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	crdFile := filepath.Join(dir, chartCRDs, "cloudflare.oauth-operator.dev_oauthclients.yaml")
	data, err := os.ReadFile(crdFile)
	if err != nil {
		t.Fatal(err)
	}
	upgraded, err := yaml.Marshal(withProbeField(t, decodeYAML(t, data)[0]).Object)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(crdFile, upgraded, 0o600); err != nil {
		t.Fatal(err)
	}
	second := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ` + probeCRD + `
  annotations:
    argocd.argoproj.io/sync-options: Prune=false,Delete=false
    kustomize.toolkit.fluxcd.io/prune: disabled
spec:
  group: cloudflare.oauth-operator.dev
  names: {kind: UpgradeProbe, listKind: UpgradeProbeList, plural: upgradeprobes, singular: upgradeprobe}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`
	if err := os.WriteFile(filepath.Join(dir, chartCRDs, "cloudflare.oauth-operator.dev_upgradeprobes.yaml"), []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	ch, err := loader.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// helmRun runs Helm's install, upgrade and uninstall actions for one release, with the
// CLI's defaults (server-side apply, no --wait). Release names and namespaces differ
// from the other tests' objects.
type helmRun struct {
	t         *testing.T
	cfg       *action.Configuration
	name      string
	namespace string
}

func newHelmRun(t *testing.T, name, namespace string) *helmRun {
	t.Helper()
	return &helmRun{t: t, cfg: helmConfig(t, namespace), name: name, namespace: namespace}
}

// install is `helm install NAME CHART -n NS --create-namespace [--take-ownership]
// [--set ...]`.
func (h *helmRun) install(ch *chartv2.Chart, takeOwnership bool, values map[string]any) error {
	in := action.NewInstall(h.cfg)
	in.ReleaseName, in.Namespace, in.CreateNamespace = h.name, h.namespace, true
	in.WaitStrategy = kube.HookOnlyStrategy
	in.TakeOwnership = takeOwnership
	_, err := in.RunWithContext(h.t.Context(), ch, values)
	return err
}

// upgrade is `helm upgrade NAME CHART -n NS [--force-conflicts]`.
func (h *helmRun) upgrade(ch *chartv2.Chart, forceConflicts bool) error {
	up := action.NewUpgrade(h.cfg)
	up.Namespace, up.WaitStrategy, up.ForceConflicts = h.namespace, kube.HookOnlyStrategy, forceConflicts
	_, err := up.RunWithContext(h.t.Context(), h.name, ch, nil)
	return err
}

// uninstall is `helm uninstall NAME -n NS`, and waits until the manager Deployment is
// gone, to know that it did delete the release's objects.
func (h *helmRun) uninstall(c client.Client) {
	h.t.Helper()
	un := action.NewUninstall(h.cfg)
	un.WaitStrategy = kube.HookOnlyStrategy
	if _, err := un.Run(h.name); err != nil {
		h.t.Fatalf("helm uninstall: %v", err)
	}
	eventually(h.t, "helm uninstall deletes the manager Deployment", func(ctx context.Context) error {
		err := c.Get(ctx, client.ObjectKey{Namespace: h.namespace, Name: h.name + "-cloudflare-oauth-operator"}, &appsv1.Deployment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(errors.New("the Deployment is still there"), err)
	})
}

// assertUpgraded checks that the upgraded chart's CRD changes reached the API server:
// spec.upgradeProbe is stored and served, and the second CRD exists.
func assertUpgraded(t *testing.T, c client.Client, sample *unstructured.Unstructured) {
	t.Helper()
	if crd, err := getCRD(t.Context(), c, oauthCRD); err != nil || !hasProbeField(crd) {
		t.Fatalf("after helm upgrade, CRD %s lacks spec.%s (%v)", oauthCRD, probeField, err)
	}
	eventually(t, "the upgraded CRD serves spec."+probeField, func(ctx context.Context) error {
		return probeFieldServed(ctx, c, sample)
	})
	if _, err := getCRD(t.Context(), c, probeCRD); err != nil {
		t.Fatalf("helm upgrade did not create the chart's new CRD %s: %v", probeCRD, err)
	}
}

// assertOneReleaseOwnsCRDs: a CRD belongs to one release, so a second release in the
// cluster (a shard, a per-team install) is refused unless installed with
// crds.enabled=false, as docs/install.md says.
func assertOneReleaseOwnsCRDs(t *testing.T, c client.Client, namespace string) {
	t.Helper()
	second := newHelmRun(t, "second", namespace)
	if err := second.install(loadChart(t), false, nil); err == nil {
		t.Error("a second release installed the CRDs the first one owns")
	}
	if err := second.install(loadChart(t), false, map[string]any{"crds": map[string]any{"enabled": false}}); err != nil {
		t.Fatalf("a second release with crds.enabled=false: %v", err)
	}
	second.uninstall(c)
	if _, err := getCRD(t.Context(), c, oauthCRD); err != nil {
		t.Fatalf("uninstalling the second release: CRD %s: %v", oauthCRD, err)
	}
}

// TestHelmUpgradeCRDs installs the chart with the Helm SDK (what `helm install`,
// `helm upgrade` and `helm uninstall` run) into a control plane without the CRD, then
// upgrades it with a chart whose OAuthClient CRD has a new field and which adds a
// second CRD: both reach the API server, and the new field is served. `helm uninstall`
// then removes the operator but, with crds.keep, leaves both CRDs. On the way, a second
// release needs crds.enabled=false.
func TestHelmUpgradeCRDs(t *testing.T) {
	c := adminClient(t)
	deleteOurCRDs(t, c) // testenv installed them; a fresh cluster has none
	t.Cleanup(func() {
		deleteCRD(t, c, probeCRD)
		resetCRDs(t, c)
	})
	h := newHelmRun(t, "upgrade", "helm-upgrade")

	if err := h.install(loadChart(t), false, nil); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	crd, err := getCRD(t.Context(), c, oauthCRD)
	if err != nil {
		t.Fatalf("helm install did not create CRD %s: %v", oauthCRD, err)
	}
	if crd.GetAnnotations()["meta.helm.sh/release-name"] != h.name || crd.GetAnnotations()[helmKeep] != "keep" {
		t.Errorf("after helm install, CRD annotations %v: want it in release %s, with %s=keep", crd.GetAnnotations(), h.name, helmKeep)
	}
	sample := sampleOf(t, crd, h.namespace)
	eventually(t, "the installed CRD is served", func(ctx context.Context) error {
		return c.Create(ctx, sampleWithoutProbe(sample), client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
	})
	if probeFieldServed(t.Context(), c, sample) == nil {
		t.Fatal("the control failed: the installed CRD already serves spec." + probeField)
	}

	assertOneReleaseOwnsCRDs(t, c, h.namespace)

	if err := h.upgrade(upgradedChart(t), false); err != nil {
		t.Fatalf("helm upgrade: %v", err)
	}
	assertUpgraded(t, c, sample)

	h.uninstall(c)
	for _, name := range []string{oauthCRD, probeCRD} {
		kept, err := getCRD(t.Context(), c, name)
		if err != nil || kept.GetDeletionTimestamp() != nil {
			t.Errorf("helm uninstall with crds.keep deleted CRD %s (%v)", name, err)
		}
	}
}

// TestHelmTakeOverCRDs: on a cluster whose CRD another tool applied first (`make
// install`, `kubectl apply -k config/crd`; here testenv), `helm install
// --take-ownership` adopts it, and the first `helm upgrade` that changes it conflicts
// with that tool's field manager (spec.versions is one atomic list) unless run with
// --force-conflicts, as docs/install.md says.
func TestHelmTakeOverCRDs(t *testing.T) {
	c := adminClient(t)
	t.Cleanup(func() {
		deleteCRD(t, c, probeCRD)
		resetCRDs(t, c)
	})
	h := newHelmRun(t, "takeover", "helm-takeover")

	if err := h.install(loadChart(t), false, nil); err == nil {
		t.Fatal("helm install adopted a CRD it does not own without --take-ownership")
	}
	if err := h.install(loadChart(t), true, nil); err != nil {
		t.Fatalf("helm install --take-ownership: %v", err)
	}
	crd, err := getCRD(t.Context(), c, oauthCRD)
	if err != nil {
		t.Fatal(err)
	}
	upgraded := upgradedChart(t)
	if err := h.upgrade(upgraded, false); !apierrors.IsConflict(err) {
		t.Errorf("helm upgrade without --force-conflicts: %v, want a field manager conflict", err)
	}
	if err := h.upgrade(upgraded, true); err != nil {
		t.Fatalf("helm upgrade --force-conflicts: %v", err)
	}
	assertUpgraded(t, c, sampleOf(t, crd, h.namespace))
	h.uninstall(c)
}
