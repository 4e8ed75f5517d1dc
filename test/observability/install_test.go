package observability_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// install is the rendered objects of one way to install the operator.
type install struct {
	name string
	objs []*unstructured.Unstructured
}

func (in install) one(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range in.objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d %s objects, want 1", in.name, len(found), kind)
	}
	return found[0]
}

// TestInstallsShipTheSameRulesAndDashboard renders config/default with the optional
// components enabled and the chart with prometheusRule and grafanaDashboard on: both
// carry config/prometheus's rules and config/grafana's dashboard, unchanged, and the
// dashboard ConfigMap has the label Grafana's sidecar looks for.
func TestInstallsShipTheSameRulesAndDashboard(t *testing.T) {
	spec, _ := ruleGroups(t)
	var wantRules any
	if err := yaml.Unmarshal(spec, &wantRules); err != nil {
		t.Fatal(err)
	}
	dashboard, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var wantDashboard any
	if err := json.Unmarshal(dashboard, &wantDashboard); err != nil {
		t.Fatal(err)
	}

	for _, in := range []install{
		{name: "kustomize", objs: kustomizeWithComponents(t)},
		{name: "helm", objs: helmTemplate(t, map[string]any{
			"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
			"grafanaDashboard": map[string]any{"enabled": true, "annotations": map[string]any{"grafana_folder": "Operators"}},
			"serviceMonitor":   map[string]any{"enabled": true},
		})},
	} {
		t.Run(in.name, func(t *testing.T) {
			rule := in.one(t, "PrometheusRule")
			if diff := cmp.Diff(wantRules, rule.Object["spec"]); diff != "" {
				t.Errorf("PrometheusRule spec differs from config/prometheus (-want +got):\n%s", diff)
			}
			cm := in.one(t, "ConfigMap")
			if cm.GetLabels()["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap labels %v: want grafana_dashboard: \"1\"", cm.GetLabels())
			}
			data, _, _ := unstructured.NestedStringMap(cm.Object, "data")
			var got any
			if err := json.Unmarshal([]byte(data["cloudflare-oauth-operator.json"]), &got); err != nil {
				t.Fatalf("dashboard ConfigMap data %v: %v", keys(data), err)
			}
			if diff := cmp.Diff(wantDashboard, got); diff != "" {
				t.Errorf("dashboard differs from config/grafana (-want +got):\n%s", diff)
			}
			sm := in.one(t, "ServiceMonitor")
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(endpoints) != 1 || endpoints[0].(map[string]any)["honorLabels"] != true {
				t.Errorf("ServiceMonitor endpoints %v: want honorLabels, so the object metrics keep their namespace label", endpoints)
			}
			if in.name == "helm" {
				if rule.GetLabels()["release"] != "kube-prometheus-stack" || cm.GetAnnotations()["grafana_folder"] != "Operators" {
					t.Errorf("prometheusRule.labels %v, grafanaDashboard.annotations %v not applied", rule.GetLabels(), cm.GetAnnotations())
				}
			}
		})
	}
	t.Run("helm defaults render neither", func(t *testing.T) {
		for _, o := range helmTemplate(t, nil) {
			if o.GetKind() == "PrometheusRule" || o.GetKind() == "ConfigMap" {
				t.Errorf("the defaults render %s %s", o.GetKind(), o.GetName())
			}
		}
	})
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// kustomizeWithComponents renders config/default from an in-memory copy of config/ in
// which config/operator enables the prometheus and grafana components, as a user would.
func kustomizeWithComponents(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	configDir := filepath.Join(testenv.RepoRoot(), "config")
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
			for _, c := range []string{"prometheus", "grafana"} {
				enabled := bytes.ReplaceAll(data, []byte("#- ../"+c+"\n"), []byte("- ../"+c+"\n"))
				if bytes.Equal(enabled, data) {
					t.Fatalf("config/operator/kustomization.yaml has no commented-out component ../%s", c)
				}
				data = enabled
			}
		}
		return mem.WriteFile(filepath.Join("/config", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := krusty.MakeDefaultOptions()
	resMap, err := krusty.MakeKustomizer(opts).Run(mem, "/config/default")
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	out, err := resMap.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, out)
}

// helmTemplate renders the chart like `helm template`.
func helmTemplate(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	ch, err := loader.Load(filepath.Join(testenv.RepoRoot(), "charts", "cloudflare-oauth-operator"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := util.ToRenderValues(ch, values, common.ReleaseOptions{Name: "cfoo", Namespace: "cloudflare-oauth", Revision: 1, IsInstall: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := engine.Render(ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for name, content := range files {
		base := filepath.Base(name)
		if strings.HasPrefix(base, "_") || base == "NOTES.txt" || strings.TrimSpace(content) == "" {
			continue
		}
		buf.WriteString("---\n" + content + "\n")
	}
	return decode(t, buf.Bytes())
}

func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs
			}
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}
