package manifests_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// install is one rendering of the complete install.
type install struct {
	name      string
	namespace string
	objs      []*unstructured.Unstructured
}

func installs(t *testing.T) []install {
	t.Helper()
	return []install{
		{name: "kustomize config/default", namespace: installNamespace, objs: kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(configDir, "default"))},
		{name: "helm template (default values)", namespace: releaseNamespace, objs: helmTemplate(t, nil)},
	}
}

// managerRulesAllowed is the allowlist of what the manager's service account may do:
// API group/resource -> verbs. Anything else bound to it fails the test. Secrets are
// deleted only after a rename of spec.secretRef.name (the old one, owned by the object).
var managerRulesAllowed = map[string][]string{
	"/secrets": {"get", "list", "watch", "create", "update", "patch", "delete"},
	// spec.verification.publish ExternalDNS: the object's own DNSEndpoint.
	"externaldns.k8s.io/dnsendpoints":                       {"get", "create", "update", "delete"},
	"/events":                                               {"create", "patch"},
	"events.k8s.io/events":                                  {"create", "patch"},
	"coordination.k8s.io/leases":                            {"get", "list", "watch", "create", "update", "patch", "delete"},
	"cloudflare.oauth-operator.dev/oauthclients":            {"get", "list", "watch", "update", "patch"},
	"cloudflare.oauth-operator.dev/oauthclients/status":     {"get", "update", "patch"},
	"cloudflare.oauth-operator.dev/oauthclients/finalizers": {"update"},
	"authentication.k8s.io/tokenreviews":                    {"create"},
	"authorization.k8s.io/subjectaccessreviews":             {"create"},
	// The OAuthClient CRD, by name, cluster-wide: while it is being deleted (an
	// uninstall) no Cloudflare client is deleted.
	"apiextensions.k8s.io/customresourcedefinitions": {"get"},
	// CloudflareAccounts (cluster-scoped): token verification, status, finalizer.
	"cloudflare.oauth-operator.dev/cloudflareaccounts":            {"get", "list", "watch", "update", "patch"},
	"cloudflare.oauth-operator.dev/cloudflareaccounts/status":     {"get", "update", "patch"},
	"cloudflare.oauth-operator.dev/cloudflareaccounts/finalizers": {"update"},
	// Namespaces' labels, for the namespace selectors of accounts and default credentials.
	"/namespaces": {"get", "list", "watch"},
}

func TestInstallDeployment(t *testing.T) {
	for _, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			dep := one[appsv1.Deployment](t, in.objs, "Deployment")
			if dep.Namespace != in.namespace {
				t.Errorf("Deployment namespace = %q, want %q", dep.Namespace, in.namespace)
			}
			if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
				t.Errorf("replicas = %v, want 2", ptrValue(dep.Spec.Replicas))
			}
			pod := dep.Spec.Template
			if sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector); err != nil || !sel.Matches(labels.Set(pod.Labels)) {
				t.Errorf("the Deployment's selector %v does not select its pods %v", dep.Spec.Selector, pod.Labels)
			}
			if len(pod.Spec.Containers) != 1 {
				t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
			}
			c := pod.Spec.Containers[0]
			assertManagerArgs(t, c)
			assertRestricted(t, pod.Spec, c)
			assertProbes(t, c)
			assertResources(t, c)
			assertServiceAccount(t, in, pod.Spec.ServiceAccountName)
			assertMetricsService(t, in, pod.Labels)
			assertPDB(t, in, pod.Labels)
		})
	}
}

func assertManagerArgs(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, arg := range []string{
		"--leader-elect",
		"--metrics-bind-address=:8443",
		"--health-probe-bind-address=:8081",
		"--default-credentials-secret=cloudflare-credentials",
		"--default-credentials-namespace-selector=cloudflare.oauth-operator.dev/default-credentials=true",
	} {
		if !slices.Contains(c.Args, arg) {
			t.Errorf("args %q lack %s", c.Args, arg)
		}
	}
	if slices.Contains(c.Args, "--metrics-secure=false") {
		t.Errorf("metrics must stay secure (HTTPS with authn/authz), args %q", c.Args)
	}
	if containerPort(c, intstr.FromInt32(8443)) != 8443 {
		t.Errorf("the metrics port 8443 is not declared, ports %v", c.Ports)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
		return e.Name == "POD_NAMESPACE" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace"
	}) {
		t.Errorf("POD_NAMESPACE must come from the downward API (for --default-credentials-secret), env %v", c.Env)
	}
}

// assertRestricted spells out the restricted Pod Security profile; TestInstallAdmitted
// also has the API server's Pod Security admission check it.
func assertRestricted(t *testing.T, spec corev1.PodSpec, c corev1.Container) {
	t.Helper()
	psc, sc := spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	if sc == nil || sc.Capabilities == nil {
		t.Fatalf("container securityContext %+v: want capabilities dropped", sc)
	}
	for what, ok := range map[string]bool{
		"allowPrivilegeEscalation: false": sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		"readOnlyRootFilesystem: true":    sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem,
		"runAsNonRoot: true":              sc.RunAsNonRoot != nil && *sc.RunAsNonRoot,
		"capabilities.drop: [ALL]":        cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) && len(sc.Capabilities.Add) == 0,
		"not privileged":                  sc.Privileged == nil || !*sc.Privileged,
	} {
		if !ok {
			t.Errorf("container securityContext: want %s, got %+v", what, sc)
		}
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the manager must not use host namespaces")
	}
}

func assertProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path {
			t.Errorf("%s probe %+v: want HTTP GET %s", probe.name, probe.p, probe.path)
			continue
		}
		if port := containerPort(c, probe.p.HTTPGet.Port); port != 8081 {
			t.Errorf("%s probe port %s resolves to %d, want the health probe port 8081", probe.name, probe.p.HTTPGet.Port.String(), port)
		}
	}
}

func assertResources(t *testing.T, c corev1.Container) {
	t.Helper()
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[res], c.Resources.Limits[res]
		if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s and limit %s must both be set, request <= limit", res, req.String(), lim.String())
		}
	}
	if mem := c.Resources.Limits[corev1.ResourceMemory]; mem.Cmp(resource.MustParse("128Mi")) < 0 {
		t.Errorf("memory limit %s is too small for the informer caches", mem.String())
	}
}

// containerPort resolves a named or numbered port of c; 0 when it is not declared.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	return 0
}

func assertServiceAccount(t *testing.T, in install, name string) {
	t.Helper()
	for _, sa := range find(in.objs, "ServiceAccount") {
		if sa.GetName() == name && sa.GetNamespace() == in.namespace {
			return
		}
	}
	t.Errorf("the pods run as ServiceAccount %q, which the install does not create in %s", name, in.namespace)
}

func assertMetricsService(t *testing.T, in install, podLabels map[string]string) {
	t.Helper()
	svc := one[corev1.Service](t, in.objs, "Service")
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
		t.Errorf("metrics Service selector %v does not select the manager pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Name != "https" || svc.Spec.Ports[0].TargetPort.IntValue() != 8443 {
		t.Errorf("metrics Service ports %+v: want https -> 8443", svc.Spec.Ports)
	}
}

func assertPDB(t *testing.T, in install, podLabels map[string]string) {
	t.Helper()
	pdb := one[policyv1.PodDisruptionBudget](t, in.objs, "PodDisruptionBudget")
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(podLabels)) {
		t.Errorf("PodDisruptionBudget selector %v does not select the manager pods", pdb.Spec.Selector)
	}
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 {
		t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
}

func TestInstallNamespaceAndCRD(t *testing.T) {
	objs := kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(configDir, "default"))
	ns := one[corev1.Namespace](t, objs, "Namespace")
	if ns.Name != installNamespace || ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Errorf("Namespace %s labels %v: want %s enforcing the restricted Pod Security Standard", ns.Name, ns.Labels, installNamespace)
	}
	for _, o := range objs {
		if o.GetNamespace() != "" && o.GetNamespace() != installNamespace {
			t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), installNamespace)
		}
	}
	if !slices.ContainsFunc(find(objs, "CustomResourceDefinition"), func(crd *unstructured.Unstructured) bool {
		return crd.GetName() == "oauthclients.cloudflare.oauth-operator.dev"
	}) {
		t.Error("config/default lacks the CRD oauthclients.cloudflare.oauth-operator.dev")
	}
}

// boundRules returns the rules granted to the manager's service account, with where
// they apply ("" for cluster-wide).
func boundRules(t *testing.T, in install, sa string) map[string][]rbacv1.PolicyRule {
	t.Helper()
	roles := map[string][]rbacv1.PolicyRule{}
	for _, o := range find(in.objs, "ClusterRole") {
		roles["ClusterRole/"+o.GetName()] = convert[rbacv1.ClusterRole](t, o).Rules
	}
	for _, o := range find(in.objs, "Role") {
		roles["Role/"+o.GetNamespace()+"/"+o.GetName()] = convert[rbacv1.Role](t, o).Rules
	}
	isManager := func(subjects []rbacv1.Subject) bool {
		return slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == rbacv1.ServiceAccountKind && s.Name == sa && s.Namespace == in.namespace
		})
	}
	out := map[string][]rbacv1.PolicyRule{}
	for _, o := range find(in.objs, "ClusterRoleBinding") {
		b := convert[rbacv1.ClusterRoleBinding](t, o)
		if isManager(b.Subjects) {
			rules, ok := roles["ClusterRole/"+b.RoleRef.Name]
			if !ok {
				t.Errorf("ClusterRoleBinding %s refers to ClusterRole %s, which the install does not create", b.Name, b.RoleRef.Name)
			}
			out[""] = append(out[""], rules...)
		}
	}
	for _, o := range find(in.objs, "RoleBinding") {
		b := convert[rbacv1.RoleBinding](t, o)
		if !isManager(b.Subjects) {
			continue
		}
		key := "Role/" + b.Namespace + "/" + b.RoleRef.Name
		if b.RoleRef.Kind == "ClusterRole" {
			key = "ClusterRole/" + b.RoleRef.Name
		}
		rules, ok := roles[key]
		if !ok {
			t.Errorf("RoleBinding %s/%s refers to %s, which the install does not create", b.Namespace, b.Name, key)
		}
		out[b.Namespace] = append(out[b.Namespace], rules...)
	}
	return out
}

// checkAllowlist fails for any granted verb outside managerRulesAllowed and for
// wildcards.
func checkAllowlist(t *testing.T, scope string, rules []rbacv1.PolicyRule) {
	t.Helper()
	for _, r := range rules {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("%s: the manager needs no non-resource URL, got %v", scope, r.NonResourceURLs)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				allowed, ok := managerRulesAllowed[g+"/"+res]
				if !ok {
					t.Errorf("%s: %s/%s is not in the allowlist", scope, g, res)
					continue
				}
				for _, v := range r.Verbs {
					if !slices.Contains(allowed, v) {
						t.Errorf("%s: verb %q on %s/%s is not in the allowlist %v", scope, v, g, res, allowed)
					}
				}
			}
		}
	}
}

func TestInstallRBAC(t *testing.T) {
	generated, err := os.ReadFile(filepath.Join(configDir, "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var managerRole rbacv1.ClusterRole
	if err := yaml.UnmarshalStrict(generated, &managerRole); err != nil {
		t.Fatal(err)
	}
	for _, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			dep := one[appsv1.Deployment](t, in.objs, "Deployment")
			granted := boundRules(t, in, dep.Spec.Template.Spec.ServiceAccountName)
			if len(granted[""]) == 0 {
				t.Fatal("the manager's service account is bound to no ClusterRole")
			}
			for scope, rules := range granted {
				if scope == "" {
					scope = "cluster-wide"
				} else if scope != in.namespace {
					t.Errorf("the manager has a Role in unexpected namespace %s", scope)
				}
				checkAllowlist(t, scope, rules)
			}
			// Everything role.yaml (generated from the markers) grants must be granted
			// cluster-wide: a chart lagging behind the markers would break the manager.
			for _, want := range managerRole.Rules {
				if !covers(granted[""], want) {
					t.Errorf("the rule %+v of config/rbac/role.yaml is not granted cluster-wide", want)
				}
			}
			// The aggregated user roles are about OAuthClients only.
			for _, o := range find(in.objs, "ClusterRole") {
				if !strings.Contains(o.GetName(), "oauthclient-") {
					continue
				}
				for _, r := range convert[rbacv1.ClusterRole](t, o).Rules {
					if !cmp.Equal(r.APIGroups, []string{"cloudflare.oauth-operator.dev"}) {
						t.Errorf("aggregated role %s grants %v", o.GetName(), r.APIGroups)
					}
				}
			}
		})
	}
}

func TestOptionalComponents(t *testing.T) {
	for _, in := range []install{
		{name: "kustomize with components", namespace: installNamespace, objs: kustomizeBuild(t, configWithComponents(t), "/config/default")},
		{name: "helm serviceMonitor and networkPolicy", namespace: releaseNamespace, objs: helmTemplate(t, map[string]any{
			"serviceMonitor": map[string]any{"enabled": true},
			"networkPolicy":  map[string]any{"enabled": true},
		})},
	} {
		t.Run(in.name, func(t *testing.T) {
			dep := one[appsv1.Deployment](t, in.objs, "Deployment")
			podLabels := labels.Set(dep.Spec.Template.Labels)
			svc := one[corev1.Service](t, in.objs, "Service")

			sm := one[unstructured.Unstructured](t, in.objs, "ServiceMonitor")
			if sm.GetNamespace() != in.namespace {
				t.Errorf("ServiceMonitor namespace %q, want %q", sm.GetNamespace(), in.namespace)
			}
			sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
			if len(sel) == 0 || !labels.SelectorFromSet(sel).Matches(labels.Set(svc.Labels)) {
				t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", sel, svc.Labels)
			}
			endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
			if len(endpoints) != 1 {
				t.Fatalf("ServiceMonitor endpoints %v", endpoints)
			}
			ep := endpoints[0].(map[string]any)
			if ep["scheme"] != "https" || ep["port"] != svc.Spec.Ports[0].Name || ep["bearerTokenFile"] == nil {
				t.Errorf("ServiceMonitor endpoint %v: want HTTPS on port %q with the service account token", ep, svc.Spec.Ports[0].Name)
			}

			np := one[networkingv1.NetworkPolicy](t, in.objs, "NetworkPolicy")
			npSel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil || !npSel.Matches(podLabels) {
				t.Errorf("NetworkPolicy podSelector %v does not select the manager pods", np.Spec.PodSelector)
			}
			if !cmp.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) || len(np.Spec.Ingress) != 1 ||
				len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.IntValue() != 8443 {
				t.Errorf("NetworkPolicy %+v: want ingress to 8443 only", np.Spec)
			}
		})
	}
}

func ptrValue[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
