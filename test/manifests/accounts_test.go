package manifests_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// accountsNamespace is the platform team's namespace of the second account's Secret.
const accountsNamespace = "cloudflare-accounts"

// twoAccounts is an accounts value: one account whose Secret is in the release
// namespace (the default), allowed by label, with its own request budget; one whose
// Secret is in the platform team's namespace, allowed by name, with an account ID of
// digits only (YAML would read it as a number unless the chart quotes it).
func twoAccounts() []any {
	return []any{
		map[string]any{
			"name":           "production",
			"accountID":      "023e105f4ecef8ad9ca31a8372d0c353",
			"credentialsRef": map[string]any{"name": "cloudflare-production"},
			"allowedNamespaces": map[string]any{"selector": map[string]any{
				"matchLabels": map[string]any{"cloudflare.oauth-operator.dev/account": "production"},
			}},
			"requestBudget": "600/5m",
		},
		map[string]any{
			"name":              "staging",
			"accountID":         "00000000000000000000000000000001",
			"credentialsRef":    map[string]any{"namespace": accountsNamespace, "name": "cloudflare-staging"},
			"allowedNamespaces": map[string]any{"names": []any{"team-a", "team-b"}},
		},
	}
}

// accountManagerRules is what the manager needs on the cluster-scoped kinds (the
// +kubebuilder:rbac markers of the CloudflareAccount controller): granted cluster-wide
// in every mode.
var accountManagerRules = []rbacv1.PolicyRule{
	{APIGroups: []string{"cloudflare.oauth-operator.dev"}, Resources: []string{"cloudflareaccounts"}, Verbs: []string{"get", "list", "watch", "update", "patch"}},
	{APIGroups: []string{"cloudflare.oauth-operator.dev"}, Resources: []string{"cloudflareaccounts/status"}, Verbs: []string{"get", "update", "patch"}},
	{APIGroups: []string{"cloudflare.oauth-operator.dev"}, Resources: []string{"cloudflareaccounts/finalizers"}, Verbs: []string{"update"}},
	{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
}

// TestHelmAccounts renders two accounts: each becomes a cluster-scoped
// CloudflareAccount with the values' spec (the credentials namespace defaulting to the
// release namespace), kept on uninstall like the CRDs; the API server admits both with
// strict field validation. The default values render none.
func TestHelmAccounts(t *testing.T) {
	if n := len(find(helmTemplate(t, nil), "CloudflareAccount")); n != 0 {
		t.Errorf("the default values render %d CloudflareAccounts, want none", n)
	}

	objs := find(helmTemplate(t, map[string]any{"accounts": twoAccounts()}), "CloudflareAccount")
	want := map[string]map[string]any{
		"production": {
			"accountID":      "023e105f4ecef8ad9ca31a8372d0c353",
			"credentialsRef": map[string]any{"namespace": releaseNamespace, "name": "cloudflare-production"},
			"allowedNamespaces": map[string]any{"selector": map[string]any{
				"matchLabels": map[string]any{"cloudflare.oauth-operator.dev/account": "production"},
			}},
			"requestBudget": "600/5m",
		},
		"staging": {
			"accountID":         "00000000000000000000000000000001",
			"credentialsRef":    map[string]any{"namespace": accountsNamespace, "name": "cloudflare-staging"},
			"allowedNamespaces": map[string]any{"names": []any{"team-a", "team-b"}},
		},
	}
	got := map[string]map[string]any{}
	for _, o := range objs {
		if o.GetAPIVersion() != "cloudflare.oauth-operator.dev/v1alpha1" || o.GetNamespace() != "" {
			t.Errorf("CloudflareAccount %s: apiVersion %s, namespace %q: want v1alpha1, cluster-scoped", o.GetName(), o.GetAPIVersion(), o.GetNamespace())
		}
		if o.GetLabels()["app.kubernetes.io/instance"] != releaseName || o.GetAnnotations()[helmKeep] != "keep" {
			t.Errorf("CloudflareAccount %s: labels %v annotations %v: want the release's labels and %s=keep", o.GetName(), o.GetLabels(), o.GetAnnotations(), helmKeep)
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		got[o.GetName()] = spec
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CloudflareAccounts by name (-want +got):\n%s", diff)
	}

	c := adminClient(t)
	for _, o := range objs {
		if err := c.Create(t.Context(), o, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Errorf("the API server refuses CloudflareAccount %s: %v", o.GetName(), err)
		}
	}

	for _, o := range find(helmTemplate(t, map[string]any{"accounts": twoAccounts(), "crds": map[string]any{"keep": false}}), "CloudflareAccount") {
		if _, ok := o.GetAnnotations()[helmKeep]; ok {
			t.Errorf("with crds.keep=false, CloudflareAccount %s is still kept: %v", o.GetName(), o.GetAnnotations())
		}
	}
}

// TestHelmAccountsSchema: values.schema.json (and the template, for duplicate names)
// refuses accounts the API server or the manager would refuse, and misspelt keys.
func TestHelmAccountsSchema(t *testing.T) {
	with := func(edit func(a map[string]any)) map[string]any {
		accounts := twoAccounts()
		edit(accounts[0].(map[string]any))
		return map[string]any{"accounts": accounts}
	}
	for name, tc := range map[string]struct {
		values map[string]any
		ok     bool
	}{
		"two accounts":              {map[string]any{"accounts": twoAccounts()}, true},
		"no pacing":                 {with(func(a map[string]any) { a["requestBudget"] = "0" }), true},
		"every namespace":           {with(func(a map[string]any) { a["allowedNamespaces"] = map[string]any{"selector": map[string]any{}} }), true},
		"selector expressions":      {with(func(a map[string]any) { a["allowedNamespaces"] = selectorOp("In") }), true},
		"credentials namespaces":    {map[string]any{"rbac": map[string]any{"accountCredentialsNamespaces": []any{"vault"}}}, true},
		"uppercase account ID":      {with(func(a map[string]any) { a["accountID"] = "023E105F4ECEF8AD9CA31A8372D0C353" }), false},
		"short account ID":          {with(func(a map[string]any) { a["accountID"] = "023e105f" }), false},
		"account ID as a number":    {with(func(a map[string]any) { a["accountID"] = 1 }), false},
		"budget without a window":   {with(func(a map[string]any) { a["requestBudget"] = "600" }), false},
		"budget in words":           {with(func(a map[string]any) { a["requestBudget"] = "600 per 5m" }), false},
		"budget with a leading 0":   {with(func(a map[string]any) { a["requestBudget"] = "0600/5m" }), false},
		"no credentials Secret":     {with(func(a map[string]any) { a["credentialsRef"] = map[string]any{"namespace": "x"} }), false},
		"no credentialsRef":         {with(func(a map[string]any) { delete(a, "credentialsRef") }), false},
		"bad credentials namespace": {with(func(a map[string]any) { a["credentialsRef"] = map[string]any{"namespace": "Platform_NS", "name": "x"} }), false},
		"no name":                   {with(func(a map[string]any) { delete(a, "name") }), false},
		"bad name":                  {with(func(a map[string]any) { a["name"] = "Production" }), false},
		"misspelt allowedNamespaces": {with(func(a map[string]any) {
			a["allowedNamespace"] = a["allowedNamespaces"]
			delete(a, "allowedNamespaces")
		}), false},
		"misspelt selector key": {with(func(a map[string]any) {
			a["allowedNamespaces"] = map[string]any{"selector": map[string]any{"matchLabel": map[string]any{}}}
		}), false},
		"bad selector operator":      {with(func(a map[string]any) { a["allowedNamespaces"] = selectorOp("Equals") }), false},
		"bad allowed namespace":      {with(func(a map[string]any) { a["allowedNamespaces"] = map[string]any{"names": []any{"Team A"}} }), false},
		"two accounts of one name":   {with(func(a map[string]any) { a["name"] = "staging" }), false},
		"bad credentials namespaces": {map[string]any{"rbac": map[string]any{"accountCredentialsNamespaces": []any{"Vault"}}}, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderChart(releaseName, tc.values)
			if tc.ok && err != nil {
				t.Errorf("refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Errorf("values %v were accepted", tc.values)
			}
		})
	}
}

func selectorOp(op string) map[string]any {
	return map[string]any{"selector": map[string]any{"matchExpressions": []any{
		map[string]any{"key": "tier", "operator": op, "values": []any{"shared"}},
	}}}
}

// TestHelmAccountCredentialsRBAC: in every mode the manager's rules on the
// cluster-scoped kinds (CloudflareAccounts, Namespaces) are bound cluster-wide. With
// watchNamespaces, the Secrets of the accounts are readable by name in their
// namespaces, and nothing else there; rbac.accountCredentialsNamespaces opens a whole
// namespace, for accounts created outside the chart; a watched namespace needs nothing
// more. Without watchNamespaces the manager's cluster-wide Secret access covers them
// (docs/install.md, "Shared clusters"), so no Role is added.
func TestHelmAccountCredentialsRBAC(t *testing.T) {
	accounts := append(twoAccounts(), map[string]any{
		"name": "team-a-own", "accountID": "0123456789abcdef0123456789abcdef",
		"credentialsRef": map[string]any{"namespace": "team-a", "name": "cloudflare"},
	})
	secretsRule := func(names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: names, Verbs: []string{"get", "list", "watch"}}
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
		want   map[string][]rbacv1.PolicyRule // the account-credentials Role by namespace
	}{
		{
			name:   "all namespaces",
			values: map[string]any{"accounts": accounts},
			want:   map[string][]rbacv1.PolicyRule{},
		},
		{
			name: "watchNamespaces",
			values: map[string]any{
				"accounts": accounts, "watchNamespaces": []any{"team-a", "team-b"},
				"rbac": map[string]any{"accountCredentialsNamespaces": []any{"vault"}},
			},
			want: map[string][]rbacv1.PolicyRule{
				releaseNamespace:  {secretsRule("cloudflare-production")},
				accountsNamespace: {secretsRule("cloudflare-staging")},
				"vault":           {secretsRule()},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := helmTemplate(t, tc.values)
			in := install{name: tc.name, namespace: releaseNamespace, objs: objs}
			dep := one[appsv1.Deployment](t, objs, "Deployment")
			granted := boundRules(t, in, dep.Spec.Template.Spec.ServiceAccountName)
			for _, want := range accountManagerRules {
				if !covers(granted[""], want) {
					t.Errorf("the manager is not granted %+v cluster-wide", want)
				}
			}
			for scope, rules := range granted {
				checkAllowlist(t, "scope "+scope, rules)
			}

			got := map[string][]rbacv1.PolicyRule{}
			for _, o := range find(objs, "Role") {
				if strings.HasSuffix(o.GetName(), "-account-credentials") {
					got[o.GetNamespace()] = convert[rbacv1.Role](t, o).Rules
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("account-credentials Roles by namespace (-want +got):\n%s", diff)
			}
			for ns, rules := range tc.want {
				if !slices.ContainsFunc(granted[ns], func(r rbacv1.PolicyRule) bool { return cmp.Equal(r, rules[0]) }) {
					t.Errorf("the manager is not bound to the account-credentials Role in %s: %+v", ns, granted[ns])
				}
			}
		})
	}
}

// TestHelmAccountsLifecycle: a `helm install` that creates the CloudflareAccount CRD
// cannot create accounts too (Helm maps every object's kind before it creates any), as
// docs/install.md says; the next `helm upgrade` can. Accounts are then kept, like the
// CRDs (crds.keep), when an upgrade drops them from the values and on `helm uninstall`:
// OAuthClients in other namespaces name them.
func TestHelmAccountsLifecycle(t *testing.T) {
	c := adminClient(t)
	withoutOurCRDs(t, c)
	h := newHelmRun(t, "accounts", "helm-accounts")
	accountNames := func() []string {
		l := accountList()
		if err := c.List(t.Context(), l); err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(l.Items))
		for _, a := range l.Items {
			names = append(names, a.Name)
		}
		return names
	}

	if err := h.install(loadChart(t), false, map[string]any{"accounts": twoAccounts()}); err == nil {
		t.Fatal("helm install created CloudflareAccounts together with their CRD; update docs/install.md")
	}
	if err := h.install(loadChart(t), false, nil); err != nil {
		t.Fatalf("helm install: %v", err)
	}
	// A new helm process: its discovery of the API server's kinds finds the new CRD.
	h = newHelmRun(t, h.name, h.namespace)
	upgrade := func(values map[string]any) {
		t.Helper()
		up := action.NewUpgrade(h.cfg)
		up.Namespace, up.WaitStrategy = h.namespace, kube.HookOnlyStrategy
		if _, err := up.RunWithContext(t.Context(), h.name, loadChart(t), values); err != nil {
			t.Fatalf("helm upgrade: %v", err)
		}
	}
	upgrade(map[string]any{"accounts": twoAccounts()})
	if got := accountNames(); !cmp.Equal(got, []string{"production", "staging"}) {
		t.Fatalf("after helm upgrade with two accounts, CloudflareAccounts %v", got)
	}
	upgrade(map[string]any{"accounts": twoAccounts()[:1]})
	if got := accountNames(); !cmp.Equal(got, []string{"production", "staging"}) {
		t.Errorf("an upgrade that drops an account deleted it: CloudflareAccounts %v", got)
	}
	h.uninstall(c)
	if got := accountNames(); !cmp.Equal(got, []string{"production", "staging"}) {
		t.Errorf("helm uninstall deleted CloudflareAccounts: %v are left", got)
	}
}

// withoutOurCRDs deletes the CRDs of config/crd/bases, and every object of their kinds,
// as on a fresh cluster; the test's cleanup puts them back as testenv installed them,
// for the tests that share the control plane.
func withoutOurCRDs(t *testing.T, c client.Client) {
	t.Helper()
	bases := crdBases(t)
	for _, crd := range bases {
		deleteCRD(t, c, crd.GetName())
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		for _, crd := range bases {
			deleteCRD(t, c, crd.GetName()) // the release's, kept on uninstall
			if err := c.Create(ctx, crd.DeepCopy()); err != nil {
				t.Fatalf("recreating CRD %s: %v", crd.GetName(), err)
			}
			eventually(t, "CRD "+crd.GetName()+" is established", func(ctx context.Context) error {
				got, err := getCRD(ctx, c, crd.GetName())
				if err != nil {
					return err
				}
				conditions, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
				for _, cond := range conditions {
					if m, _ := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
						return nil
					}
				}
				return errors.New("not established")
			})
		}
	})
}
