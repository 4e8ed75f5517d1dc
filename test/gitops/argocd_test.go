// Package gitops_test checks what Argo CD and Flux see of OAuthClients: the Argo CD
// health check in config/argocd (run with gopher-lua, the interpreter Argo CD embeds,
// with the same restricted set of libraries), kstatus, and that applying the samples
// again after the operator wrote status changes nothing.
package gitops_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	lua "github.com/yuin/gopher-lua"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

var argocdDir = filepath.Join(testenv.RepoRoot(), "config", "argocd")

// healthStatus is what an Argo CD health script returns.
type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// argoStatuses are the health statuses Argo CD understands.
var argoStatuses = []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

func healthScript(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(argocdDir, "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// evalHealth runs a health script the way Argo CD does: the object as the global obj,
// only the package, base and table libraries open, the returned table as the result.
func evalHealth(script string, obj map[string]any) (healthStatus, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.LoadLibName, lua.OpenPackage}, {lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		return healthStatus{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return healthStatus{}, fmt.Errorf("the script returned %s, not a table", l.Get(-1).Type())
	}
	hs := healthStatus{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
	if !slices.Contains(argoStatuses, hs.Status) {
		return hs, fmt.Errorf("status %q is not an Argo CD health status", hs.Status)
	}
	return hs, nil
}

// toLua converts decoded JSON to Lua values, as Argo CD does before calling a script.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		t := l.NewTable()
		for _, e := range v {
			t.Append(toLua(l, e))
		}
		return t
	case map[string]any:
		t := l.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	default:
		panic(fmt.Sprintf("unexpected %T in a decoded object", v))
	}
}

// TestArgoCDHealthCheck runs config/argocd/health_test.yaml, in the format of Argo
// CD's own resource_customizations tests.
func TestArgoCDHealthCheck(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(argocdDir, "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Tests []struct {
			HealthStatus healthStatus `json:"healthStatus"`
			InputPath    string       `json:"inputPath"`
		} `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(raw, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	script := healthScript(t)
	for _, tc := range cases.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join(argocdDir, tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			obj := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(input, &obj.Object); err != nil {
				t.Fatal(err)
			}
			got, err := evalHealth(script, obj.Object)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.HealthStatus {
				t.Errorf("health = %+v, want %+v", got, tc.HealthStatus)
			}
			seen[got.Status] = true
		})
	}
	for _, want := range []string{"Healthy", "Progressing", "Degraded"} {
		if !seen[want] {
			t.Errorf("no test case yields %s", want)
		}
	}
}

// TestArgoCDConfigMap: the argocd-cm patch registers exactly health.lua for OAuthClient.
func TestArgoCDConfigMap(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(argocdDir, "argocd-cm.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(raw, &cm); err != nil {
		t.Fatal(err)
	}
	const key = "resource.customizations.health.cloudflare.oauth-operator.dev_OAuthClient"
	got, ok := cm.Data[key]
	if !ok || cm.Name != "argocd-cm" {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, key)
	}
	if got != healthScript(t) {
		t.Errorf("the script in argocd-cm.yaml differs from health.lua; re-embed health.lua (indented by four spaces)")
	}
}
