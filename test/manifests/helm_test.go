package manifests_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// TestHelmLint runs `helm lint` (the SDK's linter) with the default values and with
// every optional piece switched on; a warning fails like an error.
func TestHelmLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"everything on": {
			"serviceMonitor":  map[string]any{"enabled": true},
			"networkPolicy":   map[string]any{"enabled": true},
			"watchNamespaces": []any{"team-a", "team-b"},
			"labelSelector":   "shard=a",
		},
	} {
		t.Run(name, func(t *testing.T) {
			result := lint.RunAll(chartDir, values, releaseNamespace)
			for _, m := range result.Messages {
				if m.Severity >= support.WarningSev {
					t.Error(m.Error())
				} else {
					t.Log(m.Error())
				}
			}
		})
	}
}

func TestHelmValues(t *testing.T) {
	tests := []struct {
		name     string
		values   map[string]any
		wantArgs []string
		noArgs   []string
		check    func(t *testing.T, dep *appsv1.Deployment)
	}{
		{
			name:     "defaults",
			wantArgs: []string{"--remote-sync-period=1m", "--zap-log-level=info", "--max-concurrent-reconciles=4", "--leader-election-id=cfoo-cloudflare-oauth-operator"},
			noArgs:   []string{"--watch-namespaces", "--label-selector", "--oauth-issuer"},
			check: func(t *testing.T, dep *appsv1.Deployment) {
				if got := dep.Spec.Template.Spec.Containers[0].Image; got != "cloudflare-oauth-operator:0.1.0" {
					t.Errorf("image %q: want the appVersion tag", got)
				}
			},
		},
		{
			name: "image and replicas",
			values: map[string]any{
				"image":    map[string]any{"repository": "registry.example.com/cfoo", "tag": "v1.2.3", "pullPolicy": "Always"},
				"replicas": 3,
			},
			check: func(t *testing.T, dep *appsv1.Deployment) {
				c := dep.Spec.Template.Spec.Containers[0]
				if c.Image != "registry.example.com/cfoo:v1.2.3" || c.ImagePullPolicy != "Always" || *dep.Spec.Replicas != 3 {
					t.Errorf("image %q pull %q replicas %d", c.Image, c.ImagePullPolicy, *dep.Spec.Replicas)
				}
			},
		},
		{
			name:     "credentials Secret",
			values:   map[string]any{"credentials": map[string]any{"secretName": "cf-token"}},
			wantArgs: []string{"--default-credentials-secret=cf-token"},
		},
		{
			name:   "no default credentials",
			values: map[string]any{"credentials": map[string]any{"secretName": ""}},
			noArgs: []string{"--default-credentials-secret"},
		},
		{
			name:     "resync period, log level, scale",
			values:   map[string]any{"remoteSyncPeriod": "5m", "logLevel": "debug", "maxConcurrentReconciles": 16},
			wantArgs: []string{"--remote-sync-period=5m", "--zap-log-level=debug", "--max-concurrent-reconciles=16"},
		},
		{
			name:     "watch namespaces and label selector",
			values:   map[string]any{"watchNamespaces": []any{"team-a", "team-b"}, "labelSelector": "shard in (a,b)"},
			wantArgs: []string{"--watch-namespaces=team-a,team-b", "--label-selector=shard in (a,b)"},
		},
		{
			name:     "insecure metrics",
			values:   map[string]any{"metrics": map[string]any{"secure": false, "port": 8080}},
			wantArgs: []string{"--metrics-secure=false", "--metrics-bind-address=:8080"},
		},
		{
			name:     "extra args",
			values:   map[string]any{"extraArgs": []any{"--cloudflare-api-timeout=10s"}},
			wantArgs: []string{"--cloudflare-api-timeout=10s"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dep := one[appsv1.Deployment](t, helmTemplate(t, tc.values), "Deployment")
			args := dep.Spec.Template.Spec.Containers[0].Args
			for _, want := range tc.wantArgs {
				if !slices.Contains(args, want) {
					t.Errorf("args %q lack %q", args, want)
				}
			}
			for _, unwanted := range tc.noArgs {
				if slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, unwanted) }) {
					t.Errorf("args %q contain %s", args, unwanted)
				}
			}
			if tc.check != nil {
				tc.check(t, dep)
			}
		})
	}
}

// TestHelmWatchNamespacesRBAC: with watchNamespaces the manager gets no cluster-wide
// Secret access: the manager's rules per watched namespace, and read access to the one
// default credentials Secret in the release namespace.
func TestHelmWatchNamespacesRBAC(t *testing.T) {
	objs := helmTemplate(t, map[string]any{"watchNamespaces": []any{"team-a", "team-b"}})
	in := install{name: "helm watchNamespaces", namespace: releaseNamespace, objs: objs}
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	granted := boundRules(t, in, dep.Spec.Template.Spec.ServiceAccountName)

	for _, r := range granted[""] {
		if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "oauthclients") {
			t.Errorf("cluster-wide rule %+v: with watchNamespaces, Secrets and OAuthClients are granted per namespace", r)
		}
	}
	full := boundRules(t, installs(t)[1], "cfoo-cloudflare-oauth-operator")[""]
	for _, ns := range []string{"team-a", "team-b"} {
		checkAllowlist(t, ns, granted[ns])
		for _, want := range full {
			if slices.Contains(want.Resources, "tokenreviews") || slices.Contains(want.Resources, "subjectaccessreviews") {
				continue // cluster-scoped by nature, stays in the ClusterRole
			}
			if !slices.ContainsFunc(granted[ns], func(r rbacv1.PolicyRule) bool { return cmp.Equal(r, want) }) {
				t.Errorf("namespace %s lacks the manager rule %+v", ns, want)
			}
		}
	}
	want := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{"cloudflare-credentials"}, Verbs: []string{"get", "list", "watch"}}
	if !slices.ContainsFunc(granted[releaseNamespace], func(r rbacv1.PolicyRule) bool { return cmp.Equal(r, want) }) {
		t.Errorf("release namespace rules %+v lack %+v", granted[releaseNamespace], want)
	}
	for _, r := range granted[releaseNamespace] {
		if slices.Contains(r.Resources, "secrets") && len(r.ResourceNames) == 0 {
			t.Errorf("release namespace rule %+v grants every Secret", r)
		}
	}
}

// TestHelmSchema: values.schema.json rejects values the manager would refuse at start.
func TestHelmSchema(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"zero replicas":          {"replicas": 0},
		"bad namespace":          {"watchNamespaces": []any{"Team_A"}},
		"bad resync period":      {"remoteSyncPeriod": "five minutes"},
		"bad log level":          {"logLevel": "verbose"},
		"no concurrency":         {"maxConcurrentReconciles": 0},
		"bad budget":             {"cloudflareRequestBudget": "1000"},
		"bad credentials Secret": {"credentials": map[string]any{"secretName": "Not A Name"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := renderChart(releaseName, values); err == nil {
				t.Errorf("values %v were accepted", values)
			}
		})
	}
}
