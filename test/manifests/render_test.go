// Package manifests_test renders the install manifests the way users do (kustomize's
// krusty, as in `kubectl kustomize config/default`; the Helm SDK's loader and engine, as
// in `helm template`) and checks the properties the deployment promises: two replicas
// with leader election, the restricted Pod Security profile, probes, resources, secure
// metrics and least-privilege RBAC. The rendered objects are also applied to a real API
// server, with strict field validation and Pod Security admission, and the chart is
// installed, upgraded and uninstalled there with the Helm SDK's actions, to show that
// CRD upgrades reach the cluster and that the CRDs outlive an uninstall.
package manifests_test

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const (
	// installNamespace is where config/default installs the operator.
	installNamespace = "cloudflare-oauth-operator-system"
	// releaseNamespace and releaseName are used for `helm template`.
	releaseNamespace = "cloudflare-oauth"
	releaseName      = "cfoo"
)

var (
	configDir = filepath.Join(testenv.RepoRoot(), "config")
	chartDir  = filepath.Join(testenv.RepoRoot(), "charts", "cloudflare-oauth-operator")
)

// kustomizeBuild renders dir like `kubectl kustomize dir`, from fsys.
func kustomizeBuild(t *testing.T, fsys filesys.FileSystem, dir string) []*unstructured.Unstructured {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // kubectl's order: namespaces and CRDs first
	resMap, err := krusty.MakeKustomizer(opts).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeYAML(t, out)
}

// configWithComponents copies config/ into memory and uncomments the optional
// components in config/operator, as a user enabling them would.
func configWithComponents(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(configDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(configDir, path)
		if rel == filepath.Join("operator", "kustomization.yaml") {
			for _, c := range []string{"prometheus", "network-policy"} {
				enabled := bytes.ReplaceAll(data, []byte("#- ../"+c+"\n"), []byte("- ../"+c+"\n"))
				if bytes.Equal(enabled, data) {
					return errors.New("config/operator/kustomization.yaml has no commented-out component ../" + c)
				}
				data = enabled
			}
		}
		return mem.WriteFile(filepath.Join("/config", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// helmTemplate renders the chart like `helm template cfoo charts/cloudflare-oauth-operator
// -n cloudflare-oauth --set ...`, validating values against values.schema.json.
func helmTemplate(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(releaseName, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return objs
}

// helmTemplateAs renders the chart as another release, so that its objects do not
// collide with those of releaseName.
func helmTemplateAs(t *testing.T, release string, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := renderChart(release, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return objs
}

func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func renderChart(release string, values map[string]any) ([]*unstructured.Unstructured, error) {
	return renderChartIn(release, releaseNamespace, values)
}

// renderChartIn renders the chart as release in namespace.
func renderChartIn(release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, err
	}
	return renderLoaded(ch, release, namespace, values)
}

// renderLoaded renders a loaded (possibly modified) chart like `helm template`.
func renderLoaded(ch *chartv2.Chart, release, namespace string, values map[string]any) ([]*unstructured.Unstructured, error) {
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{
		Name: release, Namespace: namespace, Revision: 1, IsInstall: true,
	}, nil)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	for name, content := range files {
		base := filepath.Base(name)
		// Like helm template: partials and NOTES.txt are not manifests.
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(content) == "" {
			continue
		}
		buf.WriteString("---\n# Source: " + name + "\n" + content + "\n")
	}
	return decodeYAMLBytes(buf.Bytes())
}

func decodeYAML(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	objs, err := decodeYAMLBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func decodeYAMLBytes(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// find returns the objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the single object of a kind, converted to T.
func one[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	found := find(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s, found %d", kind, len(found))
	}
	return convert[T](t, found[0])
}

func convert[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}
