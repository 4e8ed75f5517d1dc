package manifests_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TestHelmLint runs `helm lint` (the SDK's linter) with the default values and with
// every optional piece switched on; a warning fails like an error.
func TestHelmLint(t *testing.T) {
	for name, values := range map[string]map[string]any{
		"defaults": nil,
		"everything on": {
			"serviceMonitor":   map[string]any{"enabled": true},
			"prometheusRule":   map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}},
			"grafanaDashboard": map[string]any{"enabled": true, "annotations": map[string]any{"grafana_folder": "Operators"}},
			"networkPolicy":    map[string]any{"enabled": true},
			"watchNamespaces":  []any{"team-a", "team-b"},
			"labelSelector":    "shard=a",
			"replicaCount":     1,
			"extraEnv":         []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"}},
			"image":            map[string]any{"digest": "sha256:" + strings.Repeat("0", 64)},
			"accounts":         twoAccounts(),
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

// helmValuesCase is a set of values and what the rendered Deployment must show.
type helmValuesCase struct {
	name     string
	values   map[string]any
	wantArgs []string
	noArgs   []string
	check    func(t *testing.T, dep *appsv1.Deployment)
}

var helmValuesCases = []helmValuesCase{
	{
		name:     "defaults",
		wantArgs: []string{"--remote-sync-period=1m", "--zap-log-level=info", "--max-concurrent-reconciles=4", "--leader-election-id=cfoo-cloudflare-oauth-operator", "--default-credentials-namespace-selector=cloudflare.oauth-operator.dev/default-credentials=true"},
		noArgs:   []string{"--watch-namespaces", "--label-selector", "--oauth-issuer", "--authorization-server"},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			if got := dep.Spec.Template.Spec.Containers[0].Image; got != "ghcr.io/cloudflare-oauth-operator/cloudflare-oauth-operator:0.1.0" {
				t.Errorf("image %q: want the published repository with the appVersion tag", got)
			}
			if dep.Spec.Strategy.Type != "" || len(dep.Spec.Template.Spec.Volumes) != 0 {
				t.Errorf("strategy %+v volumes %+v: want Kubernetes' defaults and none", dep.Spec.Strategy, dep.Spec.Template.Spec.Volumes)
			}
		},
	},
	{
		name: "image and replicaCount",
		values: map[string]any{
			"image":        map[string]any{"repository": "registry.example.com/cfoo", "tag": "v1.2.3", "pullPolicy": "Always"},
			"replicaCount": 3,
		},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			c := dep.Spec.Template.Spec.Containers[0]
			if c.Image != "registry.example.com/cfoo:v1.2.3" || c.ImagePullPolicy != "Always" || *dep.Spec.Replicas != 3 {
				t.Errorf("image %q pull %q replicas %d", c.Image, c.ImagePullPolicy, *dep.Spec.Replicas)
			}
		},
	},
	{
		name: "image digest wins over the tag",
		values: map[string]any{"image": map[string]any{
			"repository": "registry.example.com/cfoo", "tag": "v1.2.3", "digest": "sha256:" + strings.Repeat("ab", 32),
		}},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			if got, want := dep.Spec.Template.Spec.Containers[0].Image, "registry.example.com/cfoo@sha256:"+strings.Repeat("ab", 32); got != want {
				t.Errorf("image %q, want %q", got, want)
			}
		},
	},
	{
		name: "strategy",
		values: map[string]any{"strategy": map[string]any{
			"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": 0, "maxSurge": 1},
		}},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			want := appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: new(intstr.FromInt32(0)), MaxSurge: new(intstr.FromInt32(1)),
			}}
			if diff := cmp.Diff(want, dep.Spec.Strategy); diff != "" {
				t.Errorf("strategy (-want +got):\n%s", diff)
			}
		},
	},
	{
		name: "proxy, token from a Secret and a custom CA",
		values: map[string]any{
			"extraEnv": []any{
				map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"},
				map[string]any{"name": "CLOUDFLARE_API_TOKEN", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "cf", "key": "apiToken"}}},
				map[string]any{"name": "SSL_CERT_DIR", "value": "/etc/ssl/corporate"},
			},
			"extraVolumes":      []any{map[string]any{"name": "ca", "configMap": map[string]any{"name": "corporate-ca"}}},
			"extraVolumeMounts": []any{map[string]any{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": true}},
		},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			pod := dep.Spec.Template.Spec
			c := pod.Containers[0]
			names := make([]string, 0, len(c.Env))
			for _, e := range c.Env {
				names = append(names, e.Name)
			}
			if want := []string{"POD_NAMESPACE", "GOMEMLIMIT", "HTTPS_PROXY", "CLOUDFLARE_API_TOKEN", "SSL_CERT_DIR"}; !cmp.Equal(names, want) {
				t.Errorf("env %v, want %v", names, want)
			}
			if ref := c.Env[3].ValueFrom; ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != "cf" {
				t.Errorf("CLOUDFLARE_API_TOKEN %+v: want it from Secret cf", c.Env[3])
			}
			if len(pod.Volumes) != 1 || pod.Volumes[0].ConfigMap == nil || pod.Volumes[0].ConfigMap.Name != "corporate-ca" {
				t.Errorf("volumes %+v: want the corporate-ca ConfigMap", pod.Volumes)
			}
			if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/ssl/corporate" || !c.VolumeMounts[0].ReadOnly {
				t.Errorf("volumeMounts %+v", c.VolumeMounts)
			}
		},
	},
	{
		name:     "fullnameOverride",
		values:   map[string]any{"fullnameOverride": "oauth"},
		wantArgs: []string{"--leader-election-id=oauth"},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			if dep.Name != "oauth" || dep.Spec.Template.Spec.ServiceAccountName != "oauth" {
				t.Errorf("Deployment %s, service account %s: want both named oauth", dep.Name, dep.Spec.Template.Spec.ServiceAccountName)
			}
		},
	},
	{
		name:     "nameOverride",
		values:   map[string]any{"nameOverride": "cf-oauth"},
		wantArgs: []string{"--leader-election-id=cfoo-cf-oauth"},
		check: func(t *testing.T, dep *appsv1.Deployment) {
			if got := dep.Spec.Selector.MatchLabels["app.kubernetes.io/name"]; got != "cf-oauth" {
				t.Errorf("selector app.kubernetes.io/name=%q, want cf-oauth", got)
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
		name:     "default credentials for every namespace (the selector is passed even when empty)",
		values:   map[string]any{"credentials": map[string]any{"namespaceSelector": ""}},
		wantArgs: []string{"--default-credentials-namespace-selector="},
	},
	{
		name:     "default credentials namespace selector",
		values:   map[string]any{"credentials": map[string]any{"namespaceSelector": "tier in (shared, internal),!restricted"}},
		wantArgs: []string{"--default-credentials-namespace-selector=tier in (shared, internal),!restricted"},
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
		name:     "authorization server, and its deprecated alias",
		values:   map[string]any{"authorizationServer": "https://dash.staging.cloudflare.com", "oauthIssuer": "https://dash.staging.cloudflare.com"},
		wantArgs: []string{"--authorization-server=https://dash.staging.cloudflare.com", "--oauth-issuer=https://dash.staging.cloudflare.com"},
	},
	{
		name:     "extra args",
		values:   map[string]any{"extraArgs": []any{"--cloudflare-api-timeout=10s"}},
		wantArgs: []string{"--cloudflare-api-timeout=10s"},
	},
}

func TestHelmValues(t *testing.T) {
	for _, tc := range helmValuesCases {
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
		if !clusterScoped(r) {
			t.Errorf("cluster-wide rule %+v: with watchNamespaces, namespaced kinds (Secrets, OAuthClients) are granted per namespace", r)
		}
	}
	full := boundRules(t, installs(t)[1], "cfoo-cloudflare-oauth-operator")[""]
	for _, ns := range []string{"team-a", "team-b"} {
		checkAllowlist(t, ns, granted[ns])
		for _, want := range full {
			if clusterScoped(want) {
				continue // cluster-scoped by nature, stays in a ClusterRole
			}
			if !slices.ContainsFunc(granted[ns], func(r rbacv1.PolicyRule) bool { return cmp.Equal(r, want) }) {
				t.Errorf("namespace %s lacks the manager rule %+v", ns, want)
			}
		}
	}
	crdGet := rbacv1.PolicyRule{APIGroups: []string{"apiextensions.k8s.io"}, Resources: []string{"customresourcedefinitions"}, ResourceNames: []string{oauthCRD}, Verbs: []string{"get"}}
	if !slices.ContainsFunc(granted[""], func(r rbacv1.PolicyRule) bool { return cmp.Equal(r, crdGet) }) {
		t.Errorf("with watchNamespaces, the cluster-wide rules %+v lack %+v", granted[""], crdGet)
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
		"zero replicas":          {"replicaCount": 0},
		"bad image digest":       {"image": map[string]any{"digest": "latest"}},
		"env without a name":     {"extraEnv": []any{map[string]any{"value": "x"}}},
		"mount without a path":   {"extraVolumeMounts": []any{map[string]any{"name": "ca"}}},
		"bad strategy":           {"strategy": map[string]any{"type": "BlueGreen"}},
		"bad namespace":          {"watchNamespaces": []any{"Team_A"}},
		"bad resync period":      {"remoteSyncPeriod": "five minutes"},
		"bad log level":          {"logLevel": "verbose"},
		"no concurrency":         {"maxConcurrentReconciles": 0},
		"bad budget":             {"cloudflareRequestBudget": "1000"},
		"bad credentials Secret": {"credentials": map[string]any{"secretName": "Not A Name"}},
		"bad authorization URL":  {"authorizationServer": "dash.cloudflare.com"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := renderChart(releaseName, values); err == nil {
				t.Errorf("values %v were accepted", values)
			}
		})
	}
}

// TestHelmSchemaRejectsTypos validates values the way `helm install` does (the chart's
// defaults coalesced with the user's values, then checked against values.schema.json):
// a misspelled key fails instead of being silently ignored, at the top level and in
// every object the chart reads.
func TestHelmSchemaRejectsTypos(t *testing.T) {
	ch := loadChart(t)
	validate := func(values map[string]any) error {
		coalesced, err := util.CoalesceValues(ch, values)
		if err != nil {
			return err
		}
		return util.ValidateAgainstSchema(ch, coalesced)
	}
	accepted := map[string]any{
		"replicaCount": 3,
		"image":        map[string]any{"repository": "r.example.com/cfoo", "tag": "v1", "digest": "sha256:" + strings.Repeat("0", 64)},
		"nodeSelector": map[string]any{"kubernetes.io/os": "linux"},
		"strategy":     map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxSurge": "50%"}},
		"resources":    map[string]any{"requests": map[string]any{"cpu": 1, "memory": "128Mi"}},
		"crds":         map[string]any{"enabled": true, "keep": false},
		"global":       map[string]any{"imageRegistry": "r.example.com"},
	}
	if err := validate(accepted); err != nil {
		t.Fatalf("valid values were refused: %v", err)
	}
	for name, tc := range map[string]struct {
		values map[string]any
		typo   string
	}{
		"replica":               {map[string]any{"replica": 1}, "replica"},
		"replicas (old name)":   {map[string]any{"replicas": 1}, "replicas"},
		"nodeSelectr":           {map[string]any{"nodeSelectr": map[string]any{"disk": "ssd"}}, "nodeSelectr"},
		"image.tga":             {map[string]any{"image": map[string]any{"tga": "v1"}}, "tga"},
		"serviceAccount.nme":    {map[string]any{"serviceAccount": map[string]any{"nme": "x"}}, "nme"},
		"crds.kep":              {map[string]any{"crds": map[string]any{"kep": false}}, "kep"},
		"podDisruptionBudget.x": {map[string]any{"podDisruptionBudget": map[string]any{"minAvaliable": 1}}, "minAvaliable"},
		"resources.limit":       {map[string]any{"resources": map[string]any{"limit": map[string]any{"cpu": "1"}}}, "limit"},
		"strategy.rollingUpdte": {map[string]any{"strategy": map[string]any{"rollingUpdte": map[string]any{}}}, "rollingUpdte"},
		"metrics.prot":          {map[string]any{"metrics": map[string]any{"prot": 9443}}, "prot"},
		"imagePullSecrets.nam":  {map[string]any{"imagePullSecrets": []any{map[string]any{"nam": "regcred"}}}, "nam"},
	} {
		t.Run(name, func(t *testing.T) {
			err := validate(tc.values)
			if err == nil {
				t.Fatalf("values %v were accepted", tc.values)
			}
			if !strings.Contains(err.Error(), tc.typo) {
				t.Errorf("the error does not name %q: %v", tc.typo, err)
			}
		})
	}
}

// TestHelmPodDisruptionBudget: a PodDisruptionBudget with minAvailable 1 over a single
// replica blocks every node drain, so the chart renders none below two replicas.
func TestHelmPodDisruptionBudget(t *testing.T) {
	for _, tc := range []struct {
		values map[string]any
		want   bool
	}{
		{map[string]any{"replicaCount": 1}, false},
		{map[string]any{"replicaCount": 2}, true},
		{map[string]any{"replicaCount": 3}, true},
		{map[string]any{"replicaCount": 2, "podDisruptionBudget": map[string]any{"enabled": false}}, false},
	} {
		got := len(find(helmTemplate(t, tc.values), "PodDisruptionBudget")) == 1
		if got != tc.want {
			t.Errorf("values %v: PodDisruptionBudget rendered=%v, want %v", tc.values, got, tc.want)
		}
	}
}
