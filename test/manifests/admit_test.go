package manifests_test

import (
	"os"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

var (
	clientScheme = func() *runtime.Scheme {
		s := runtime.NewScheme()
		if err := clientgoscheme.AddToScheme(s); err != nil {
			panic(err)
		}
		return s
	}()
	envOnce  sync.Once
	env      *envtest.Environment
	envError error
)

// controlPlane returns the control plane shared by this package's tests, started on
// first use; TestMain stops it.
func controlPlane(t *testing.T) *envtest.Environment {
	t.Helper()
	envOnce.Do(func() { env, envError = testenv.Start() })
	if envError != nil {
		t.Fatal(envError)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		_ = env.Stop()
	}
	os.Exit(code)
}

// TestInstallAdmitted applies both renderings to a real API server with strict field
// validation (a misspelled field fails), then asks Pod Security admission, through a
// dry-run create in a namespace enforcing the restricted profile, to admit a pod of the
// manager's template.
func TestInstallAdmitted(t *testing.T) {
	cp := controlPlane(t)
	c, err := client.New(cp.Config, client.Options{Scheme: clientScheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	// Helm does not create its release namespace; label it as config/default does.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: releaseNamespace, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}); err != nil {
		t.Fatal(err)
	}

	for _, in := range []install{
		{name: "kustomize", namespace: installNamespace, objs: kustomizeBuild(t, configWithComponents(t), "/config/default")},
		{name: "helm", namespace: releaseNamespace, objs: helmTemplate(t, map[string]any{
			"serviceMonitor": map[string]any{"enabled": true},
			"networkPolicy":  map[string]any{"enabled": true},
			// The pass-through values reach the API server as valid objects.
			"strategy":          map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"maxUnavailable": 0}},
			"extraEnv":          []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy.example.com:3128"}},
			"extraVolumes":      []any{map[string]any{"name": "ca", "configMap": map[string]any{"name": "corporate-ca"}}},
			"extraVolumeMounts": []any{map[string]any{"name": "ca", "mountPath": "/etc/ssl/corporate", "readOnly": true}},
		})},
		{name: "helm watchNamespaces", namespace: releaseNamespace, objs: helmTemplateAs(t, "sharded", map[string]any{
			"watchNamespaces": []any{"team-a"},
		})},
	} {
		t.Run(in.name, func(t *testing.T) {
			if in.name == "helm watchNamespaces" {
				if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}); err != nil {
					t.Fatal(err)
				}
			}
			for _, o := range in.objs {
				switch {
				case o.GetKind() == "CustomResourceDefinition":
					continue // installed by testenv from the same file
				case o.GetKind() == "ServiceMonitor" || o.GetKind() == "PrometheusRule":
					continue // the Prometheus Operator's CRDs are not installed here
				}
				if err := c.Create(ctx, o, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
					t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
				}
			}

			dep := one[appsv1.Deployment](t, in.objs, "Deployment")
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, GenerateName: "manager-", Labels: dep.Spec.Template.Labels},
				Spec:       dep.Spec.Template.Spec,
			}
			if err := c.Create(ctx, pod.DeepCopy(), client.DryRunAll); err != nil {
				t.Errorf("a manager pod is not admitted in a namespace enforcing the restricted profile: %v", err)
			}
			// The control: the same pod, allowed to escalate privileges, is refused, so the
			// check above did run.
			bad := pod.DeepCopy()
			bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
			if err := c.Create(ctx, bad, client.DryRunAll); !apierrors.IsForbidden(err) {
				t.Errorf("Pod Security admission did not refuse a privileged pod: %v", err)
			}
		})
	}
}

// rbacReleaseNamespace is the release namespace of TestWatchNamespacesRBACSuffices.
const rbacReleaseNamespace = "cloudflare-oauth-rbac"

// TestWatchNamespacesRBACSuffices impersonates the manager of a Helm release with
// watchNamespaces and a CloudflareAccount, and makes the requests its namespace-scoped
// cache and reconcilers make: they must be allowed, and nothing beyond them.
func TestWatchNamespacesRBACSuffices(t *testing.T) {
	cp := controlPlane(t)
	admin, err := client.New(cp.Config, client.Options{Scheme: clientScheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const platform = "cloudflare-accounts-rbac" // the account's credentials namespace
	for _, ns := range []string{rbacReleaseNamespace, "team-c", "team-d", platform} {
		if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// crds.enabled=false: the CRD is the control plane's, installed by testenv.
	objs, err := renderChartIn("rbac", rbacReleaseNamespace, map[string]any{
		"watchNamespaces": []any{"team-c"},
		"crds":            map[string]any{"enabled": false},
		"accounts": []any{map[string]any{
			"name": "rbac-suffices", "accountID": "023e105f4ecef8ad9ca31a8372d0c353",
			"credentialsRef":    map[string]any{"namespace": platform, "name": "cloudflare-token"},
			"allowedNamespaces": map[string]any{"names": []any{"team-c"}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := admin.Create(ctx, o); err != nil {
			t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}

	cfg := rest.CopyConfig(cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + rbacReleaseNamespace + ":rbac-cloudflare-oauth-operator"}
	sa, err := client.New(cfg, client.Options{Scheme: clientScheme})
	if err != nil {
		t.Fatal(err)
	}
	secrets := func() *metav1.PartialObjectMetadataList {
		l := &metav1.PartialObjectMetadataList{}
		l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		return l
	}
	byName := client.MatchingFields{"metadata.name": "cloudflare-credentials"}
	crd := func() *metav1.PartialObjectMetadata {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(crdGVK)
		return m
	}
	for _, tc := range []struct {
		name    string
		do      func() error
		allowed bool
	}{
		{"watch Secrets in a watched namespace", func() error { return sa.List(ctx, secrets(), client.InNamespace("team-c")) }, true},
		{"write a client Secret in a watched namespace", func() error {
			return sa.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-c", Name: "web-app-oauth"}}, client.DryRunAll)
		}, true},
		{"watch OAuthClients in a watched namespace", func() error {
			l := &metav1.PartialObjectMetadataList{}
			l.SetGroupVersionKind(schema.GroupVersionKind{Group: "cloudflare.oauth-operator.dev", Version: "v1alpha1", Kind: "OAuthClientList"})
			return sa.List(ctx, l, client.InNamespace("team-c"))
		}, true},
		{"watch the default credentials Secret by name", func() error { return sa.List(ctx, secrets(), client.InNamespace(rbacReleaseNamespace), byName) }, true},
		{"read the default credentials Secret", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: rbacReleaseNamespace, Name: "cloudflare-credentials"}, &corev1.Secret{})
		}, true},
		{"list every Secret of the release namespace", func() error { return sa.List(ctx, secrets(), client.InNamespace(rbacReleaseNamespace)) }, false},
		{"list Secrets of an unwatched namespace", func() error { return sa.List(ctx, secrets(), client.InNamespace("team-d")) }, false},
		{"list Secrets cluster-wide", func() error { return sa.List(ctx, secrets()) }, false},
		{"read an account's credentials Secret", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: platform, Name: "cloudflare-token"}, &corev1.Secret{})
		}, true},
		{"watch an account's credentials Secret by name", func() error {
			return sa.List(ctx, secrets(), client.InNamespace(platform), client.MatchingFields{"metadata.name": "cloudflare-token"})
		}, true},
		{"read another Secret of the credentials namespace", func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: platform, Name: "other"}, &corev1.Secret{})
		}, false},
		{"list every Secret of the credentials namespace", func() error { return sa.List(ctx, secrets(), client.InNamespace(platform)) }, false},
		{"watch CloudflareAccounts", func() error { return sa.List(ctx, accountList()) }, true},
		{"create a CloudflareAccount", func() error {
			a := &unstructured.Unstructured{}
			a.SetGroupVersionKind(accountGVK)
			a.SetName("made-by-the-manager")
			return sa.Create(ctx, a, client.DryRunAll)
		}, false},
		{"watch Namespaces' labels", func() error {
			l := &metav1.PartialObjectMetadataList{}
			l.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("NamespaceList"))
			return sa.List(ctx, l)
		}, true},
		{"read the OAuthClient CRD", func() error { return sa.Get(ctx, client.ObjectKey{Name: oauthCRD}, crd()) }, true},
		{"read another CRD", func() error { return sa.Get(ctx, client.ObjectKey{Name: "widgets.example.com"}, crd()) }, false},
	} {
		err := tc.do()
		if apierrors.IsNotFound(err) {
			err = nil // authorized; the object just does not exist
		}
		if got := !apierrors.IsForbidden(err); got != tc.allowed || (tc.allowed && err != nil) {
			t.Errorf("%s: allowed=%v, want %v (%v)", tc.name, got, tc.allowed, err)
		}
	}
}
