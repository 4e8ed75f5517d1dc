package manifests_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The annotations that keep a CRD, and so every object of its kind, when the tool that
// installed it uninstalls or prunes.
const (
	helmKeep   = "helm.sh/resource-policy"
	argoKeep   = "argocd.argoproj.io/sync-options"
	fluxKeep   = "kustomize.toolkit.fluxcd.io/prune"
	crdKind    = "CustomResourceDefinition"
	oauthCRD   = "oauthclients.cloudflare.oauth-operator.dev"
	chartCRDs  = "files/crds"
	basesCRDir = "bases"
)

// crdBases returns the generated CRDs of config/crd/bases by file name.
func crdBases(t *testing.T) map[string]*unstructured.Unstructured {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(configDir, "crd", basesCRDir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		objs := decodeYAML(t, data)
		if len(objs) != 1 || objs[0].GetKind() != crdKind {
			t.Fatalf("%s: want one CustomResourceDefinition", p)
		}
		out[filepath.Base(p)] = objs[0]
	}
	return out
}

func crdNames(objs []*unstructured.Unstructured) []string {
	crds := find(objs, crdKind)
	names := make([]string, 0, len(crds))
	for _, o := range crds {
		names = append(names, o.GetName())
	}
	slices.Sort(names)
	return names
}

// TestCRDsReachEveryInstall: every CRD that `make manifests` generates is in the
// kustomize CRD layer (config/crd, and so config/default), in the chart byte for byte
// (files/crds, copied by `make manifests`), and rendered by the chart with the same
// spec. A new CRD that one of them misses fails here, not on a user's cluster.
func TestCRDsReachEveryInstall(t *testing.T) {
	bases := crdBases(t)
	want := make([]string, 0, len(bases))
	for _, crd := range bases {
		want = append(want, crd.GetName())
	}
	slices.Sort(want)

	for _, dir := range []string{"crd", "default"} {
		got := crdNames(kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(configDir, dir)))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config/%s CRDs differ from config/crd/bases; list every base in config/crd/kustomization.yaml (-want +got):\n%s", dir, diff)
		}
	}

	copies, err := filepath.Glob(filepath.Join(chartDir, chartCRDs, "*"))
	if err != nil {
		t.Fatal(err)
	}
	copied := make([]string, 0, len(copies))
	for _, p := range copies {
		copied = append(copied, filepath.Base(p))
	}
	if diff := cmp.Diff(slices.Sorted(maps.Keys(bases)), copied); diff != "" {
		t.Errorf("charts/cloudflare-oauth-operator/%s is stale; run `make manifests` (-config/crd/bases +chart):\n%s", chartCRDs, diff)
	}
	for name := range bases {
		base, _ := os.ReadFile(filepath.Join(configDir, "crd", basesCRDir, name))
		copy, _ := os.ReadFile(filepath.Join(chartDir, chartCRDs, name))
		if string(base) != string(copy) {
			t.Errorf("charts/cloudflare-oauth-operator/%s/%s differs from config/crd/bases; run `make manifests`", chartCRDs, name)
		}
	}

	rendered := map[string]*unstructured.Unstructured{}
	for _, o := range find(helmTemplate(t, nil), crdKind) {
		rendered[o.GetName()] = o
	}
	for _, base := range bases {
		got, ok := rendered[base.GetName()]
		if !ok {
			t.Errorf("the chart does not render CRD %s", base.GetName())
			continue
		}
		if diff := cmp.Diff(base.Object["spec"], got.Object["spec"]); diff != "" {
			t.Errorf("the chart renders CRD %s with another spec (-config/crd/bases +chart):\n%s", base.GetName(), diff)
		}
		if diff := cmp.Diff(base.GetAnnotations(), got.GetAnnotations()); diff != "" {
			t.Errorf("CRD %s annotations (-config/crd/bases +chart):\n%s", base.GetName(), diff)
		}
		if got.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
			t.Errorf("CRD %s labels %v: want the chart's labels", base.GetName(), got.GetLabels())
		}
	}
}

// TestCRDsKeepAnnotations: a CRD survives `helm uninstall` (crds.keep, the default),
// Argo CD's prune and Application deletion, and Flux's prune; each annotation is what
// that tool reads.
func TestCRDsKeepAnnotations(t *testing.T) {
	kustomized := find(kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(configDir, "crd")), crdKind)
	charted := find(helmTemplate(t, nil), crdKind)
	for _, crd := range append(kustomized, charted...) {
		want := map[string]string{helmKeep: "keep", argoKeep: "Prune=false,Delete=false", fluxKeep: "disabled"}
		for k, v := range want {
			if got := crd.GetAnnotations()[k]; got != v {
				t.Errorf("CRD %s: annotation %s=%q, want %q", crd.GetName(), k, got, v)
			}
		}
	}
}

// TestChartCRDValues: crds.enabled=false renders no CRD (the CRDs are managed another
// way); crds.keep=false drops only Helm's keep annotation, so that `helm uninstall`
// deletes the CRDs while Argo CD and Flux still never prune them.
func TestChartCRDValues(t *testing.T) {
	if crds := find(helmTemplate(t, map[string]any{"crds": map[string]any{"enabled": false}}), crdKind); len(crds) != 0 {
		t.Errorf("crds.enabled=false rendered %d CRDs", len(crds))
	}
	crds := find(helmTemplate(t, map[string]any{"crds": map[string]any{"keep": false}}), crdKind)
	if len(crds) == 0 {
		t.Fatal("crds.keep=false rendered no CRD")
	}
	for _, crd := range crds {
		a := crd.GetAnnotations()
		if _, ok := a[helmKeep]; ok {
			t.Errorf("crds.keep=false: CRD %s still has %s", crd.GetName(), helmKeep)
		}
		if a[argoKeep] == "" || a[fluxKeep] == "" {
			t.Errorf("crds.keep=false: CRD %s lost the Argo CD or Flux annotation: %v", crd.GetName(), a)
		}
	}
}

// TestChartCRDTemplateReadsDataOnly: the chart reads each CRD file as data, so a
// description holding template syntax renders verbatim instead of being evaluated.
func TestChartCRDTemplateReadsDataOnly(t *testing.T) {
	const marker = `Set it with {{ .Values.image.tag }}, never {{ fail "evaluated" }}.`
	schemaDescription := []string{"spec", "versions"}
	ch := loadChart(t)
	found := false
	for _, f := range ch.Files {
		if !strings.HasPrefix(f.Name, chartCRDs+"/") {
			continue
		}
		crd := decodeYAML(t, f.Data)[0]
		versions, _, _ := unstructured.NestedSlice(crd.Object, schemaDescription...)
		for _, v := range versions {
			if err := unstructured.SetNestedField(v.(map[string]any), marker, "schema", "openAPIV3Schema", "description"); err != nil {
				t.Fatal(err)
			}
		}
		if err := unstructured.SetNestedSlice(crd.Object, versions, schemaDescription...); err != nil {
			t.Fatal(err)
		}
		data, err := yaml.Marshal(crd.Object)
		if err != nil {
			t.Fatal(err)
		}
		f.Data, found = data, true
	}
	if !found {
		t.Fatalf("the chart has no %s", chartCRDs)
	}
	objs, err := renderLoaded(ch, releaseName, releaseNamespace, nil)
	if err != nil {
		t.Fatalf("a CRD description holding {{ }} broke the chart: %v", err)
	}
	for _, crd := range find(objs, crdKind) {
		versions, _, _ := unstructured.NestedSlice(crd.Object, schemaDescription...)
		for _, v := range versions {
			if got, _, _ := unstructured.NestedString(v.(map[string]any), "schema", "openAPIV3Schema", "description"); got != marker {
				t.Errorf("CRD %s description %q, want %q verbatim", crd.GetName(), got, marker)
			}
		}
	}
}
