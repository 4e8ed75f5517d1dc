package manifests_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var accountGVK = schema.GroupVersionKind{Group: "cloudflare.oauth-operator.dev", Version: "v1alpha1", Kind: "CloudflareAccount"}

func accountList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(accountGVK.GroupVersion().WithKind("CloudflareAccountList"))
	return l
}

// userRoleKinds are the user ClusterRoles every install ships, by what their names
// contain.
var userRoleKinds = []string{"oauthclient-editor", "oauthclient-viewer", "cloudflareaccount-editor", "cloudflareaccount-viewer"}

// userRoles returns the install's user ClusterRoles by kind.
func userRoles(t *testing.T, in install) map[string]*rbacv1.ClusterRole {
	t.Helper()
	out := map[string]*rbacv1.ClusterRole{}
	for _, o := range find(in.objs, "ClusterRole") {
		for _, kind := range userRoleKinds {
			if strings.Contains(o.GetName(), kind) {
				if out[kind] != nil {
					t.Fatalf("two %s roles: %s and %s", kind, out[kind].Name, o.GetName())
				}
				out[kind] = convert[rbacv1.ClusterRole](t, o)
			}
		}
	}
	if len(out) != len(userRoleKinds) {
		t.Fatalf("the install's user roles %v: want one of each of %v", slices.Collect(maps.Keys(out)), userRoleKinds)
	}
	return out
}

const (
	aggregateToAdmin = "rbac.authorization.k8s.io/aggregate-to-admin"
	aggregateToEdit  = "rbac.authorization.k8s.io/aggregate-to-edit"
	aggregateToView  = "rbac.authorization.k8s.io/aggregate-to-view"
)

// TestInstallUserRoles: both installs ship the same user roles. OAuthClients: editing
// aggregates into admin and edit, reading into view. CloudflareAccounts: reading
// aggregates into view only, editing into nothing (the platform team's, bound by
// hand). No user role grants anything outside the operator's API group: no Secret.
func TestInstallUserRoles(t *testing.T) {
	wantAggregation := map[string][]string{
		"oauthclient-editor":       {aggregateToAdmin, aggregateToEdit},
		"oauthclient-viewer":       {aggregateToView},
		"cloudflareaccount-editor": nil,
		"cloudflareaccount-viewer": {aggregateToView},
	}
	var first map[string]*rbacv1.ClusterRole
	for _, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			roles := userRoles(t, in)
			for kind, role := range roles {
				var got []string
				for k, v := range role.Labels {
					if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
						got = append(got, k)
					}
				}
				slices.Sort(got)
				if !cmp.Equal(got, wantAggregation[kind]) {
					t.Errorf("%s aggregates into %v, want %v", role.Name, got, wantAggregation[kind])
				}
				for _, r := range role.Rules {
					if !cmp.Equal(r.APIGroups, []string{"cloudflare.oauth-operator.dev"}) || len(r.NonResourceURLs) > 0 {
						t.Errorf("user role %s grants %+v", role.Name, r)
					}
				}
			}
			if first == nil {
				first = roles
				return
			}
			for kind, role := range roles {
				if diff := cmp.Diff(grantSet(first[kind].Rules), grantSet(role.Rules)); diff != "" {
					t.Errorf("%s differs from the first install's %s (-first +this):\n%s", role.Name, first[kind].Name, diff)
				}
			}
		})
	}
	t.Run("helm without aggregation", func(t *testing.T) {
		// The account roles are still there to bind by hand, and aggregate into nothing.
		objs := helmTemplate(t, map[string]any{"rbac": map[string]any{"aggregateToDefaultRoles": false}})
		var accountRoles []string
		for _, o := range find(objs, "ClusterRole") {
			if strings.Contains(o.GetName(), "cloudflareaccount-") {
				accountRoles = append(accountRoles, o.GetName())
			}
			for k := range o.GetLabels() {
				if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") {
					t.Errorf("ClusterRole %s aggregates (%s) with rbac.aggregateToDefaultRoles=false", o.GetName(), k)
				}
			}
		}
		if len(accountRoles) != 2 {
			t.Errorf("CloudflareAccount user roles %v: want the viewer and the editor", accountRoles)
		}
	})
}

func grantSet(rules []rbacv1.PolicyRule) []grant {
	g := grantsOf(rules...)
	slices.SortFunc(g, func(a, b grant) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return g
}

// TestSharedClusterRBAC asks a real API server, as each user (impersonation), what the
// user roles of each install let a shared cluster's people do:
//   - alice, of an application team, bound to the built-in edit role in her namespace:
//     creates, updates and deletes OAuthClients there (naming a CloudflareAccount), but
//     reads no Secret of the platform team's namespace and can neither see nor write a
//     CloudflareAccount: accounts are cluster-scoped, and a RoleBinding grants nothing
//     on them, although the account viewer role aggregates into view and so into edit;
//   - tom, her namespace's admin: cannot bind anyone to the account editor role;
//   - bob, bound to view cluster-wide (an auditor): reads the accounts, writes none and
//     reads no Secret;
//   - carol, of the platform team, bound to the account editor role: creates, updates
//     and deletes accounts, but writes no status and reads no Secret or OAuthClient.
//
// envtest runs no kube-controller-manager, so no clusterrole-aggregation controller: the
// test aggregates admin, edit and view itself, from the API server's own aggregation
// rules and bootstrap roles and the install's roles, as that controller would.
func TestSharedClusterRBAC(t *testing.T) {
	admin := adminClient(t)
	for i, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			sharedClusterRBAC(t, admin, in, fmt.Sprintf("tenancy-%d", i))
		})
	}
}

func sharedClusterRBAC(t *testing.T, admin client.Client, in install, p string) {
	ctx := t.Context()
	platform, team := p+"-platform", p+"-team"
	alice, tom, bob, carol := "alice@"+p, "tom@"+p, "bob@"+p, "carol@"+p
	create := func(objs ...client.Object) {
		t.Helper()
		for _, o := range objs {
			if err := admin.Create(ctx, o); err != nil {
				t.Fatalf("%T %s: %v", o, o.GetName(), err)
			}
		}
	}
	create(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: platform}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: team}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: platform, Name: "cloudflare-production"}, StringData: map[string]string{"apiToken": "placeholder"}},
	)

	// The install's user roles, renamed so that installs and tests do not collide.
	roles := userRoles(t, in)
	ours := make([]*rbacv1.ClusterRole, 0, len(roles))
	for _, r := range roles {
		r.Name = p + "-" + r.Name
		ours = append(ours, r)
		create(r.DeepCopy())
	}
	builtin := aggregateDefaultRoles(t, admin, ours)
	for _, name := range []string{"admin", "edit", "view"} {
		create(&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: p + "-" + name}, Rules: builtin[name]})
	}
	user := func(name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name}
	}
	roleRef := func(name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}
	}
	create(
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "alice-edit"}, RoleRef: roleRef(p + "-edit"), Subjects: []rbacv1.Subject{user(alice)}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: team, Name: "tom-admin"}, RoleRef: roleRef(p + "-admin"), Subjects: []rbacv1.Subject{user(tom)}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: p + "-bob-view"}, RoleRef: roleRef(p + "-view"), Subjects: []rbacv1.Subject{user(bob)}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: p + "-carol-accounts"}, RoleRef: roleRef(roles["cloudflareaccount-editor"].Name), Subjects: []rbacv1.Subject{user(carol)}},
	)

	as := map[string]client.Client{}
	for _, u := range []string{alice, tom, bob, carol} {
		cfg := rest.CopyConfig(controlPlane(t).Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: u}
		c, err := client.New(cfg, client.Options{Scheme: clientScheme})
		if err != nil {
			t.Fatal(err)
		}
		as[u] = c
	}
	// The API server's authorizer learns of new bindings through its informers: wait
	// until each binding is in force, asking as the user (SelfSubjectAccessReview).
	for u, attrs := range map[string]authorizationv1.ResourceAttributes{
		alice: {Namespace: team, Verb: "create", Group: accountGVK.Group, Resource: "oauthclients"},
		tom:   {Namespace: team, Verb: "create", Group: rbacv1.GroupName, Resource: "rolebindings"},
		bob:   {Verb: "list", Group: accountGVK.Group, Resource: "cloudflareaccounts"},
		carol: {Verb: "create", Group: accountGVK.Group, Resource: "cloudflareaccounts"},
	} {
		eventually(t, u+" may "+attrs.Verb+" "+attrs.Resource, func(ctx context.Context) error {
			return selfAllowed(ctx, as[u], attrs)
		})
	}

	acct := accountOf(p+"-production", platform, "cloudflare-production", team)
	web := oauthClientOf(team, "web-app", acct.GetName())
	merge := func(patch string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(patch)) }
	readToken := func(c client.Client) error {
		return c.Get(ctx, client.ObjectKey{Namespace: platform, Name: "cloudflare-production"}, &corev1.Secret{})
	}
	secrets := func(ns string) func(c client.Client) error {
		return func(c client.Client) error { return c.List(ctx, &corev1.SecretList{}, client.InNamespace(ns)) }
	}
	getAccount := func(c client.Client) error {
		return c.Get(ctx, client.ObjectKey{Name: acct.GetName()}, &unstructured.Unstructured{Object: map[string]any{"apiVersion": acct.GetAPIVersion(), "kind": acct.GetKind()}})
	}
	listAccounts := func(c client.Client) error { return c.List(ctx, accountList()) }
	patchAccount := func(c client.Client) error {
		return c.Patch(ctx, acct.DeepCopy(), merge(`{"spec":{"requestBudget":"600/5m"}}`))
	}
	patchAccountStatus := func(c client.Client) error {
		return c.Status().Patch(ctx, acct.DeepCopy(), merge(`{"status":{"boundClients":1}}`))
	}
	otherAccount := func(c client.Client) error {
		return c.Create(ctx, accountOf(p+"-other", team, "cloudflare", team), client.DryRunAll)
	}
	deleteAccount := func(c client.Client) error { return c.Delete(ctx, acct.DeepCopy()) }
	bindTo := func(role string) func(c client.Client) error {
		return func(c client.Client) error {
			return c.Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Namespace: team, GenerateName: "tom-"},
				RoleRef:    roleRef(role), Subjects: []rbacv1.Subject{user(tom)},
			}, client.DryRunAll)
		}
	}

	for _, step := range []struct {
		who, what string
		do        func(c client.Client) error
		allowed   bool
	}{
		{carol, "creates a CloudflareAccount", func(c client.Client) error { return c.Create(ctx, acct.DeepCopy()) }, true},
		{carol, "updates it", patchAccount, true},
		{carol, "writes its status", patchAccountStatus, false},
		{carol, "reads its token Secret", readToken, false},
		{carol, "lists the team's OAuthClients", listOAuthClients(ctx, team), false},

		{alice, "creates an OAuthClient naming the account", func(c client.Client) error { return c.Create(ctx, web.DeepCopy()) }, true},
		{alice, "updates it", func(c client.Client) error {
			return c.Patch(ctx, web.DeepCopy(), merge(`{"spec":{"clientName":"Web App 2"}}`))
		}, true},
		{alice, "lists her namespace's Secrets (edit does)", secrets(team), true},
		{alice, "reads the account's token Secret", readToken, false},
		{alice, "lists the platform namespace's Secrets", secrets(platform), false},
		{alice, "reads the CloudflareAccount", getAccount, false},
		{alice, "lists CloudflareAccounts", listAccounts, false},
		{alice, "creates a CloudflareAccount", otherAccount, false},
		{alice, "updates the CloudflareAccount", patchAccount, false},
		{alice, "writes its status", patchAccountStatus, false},
		{alice, "deletes the CloudflareAccount", deleteAccount, false},
		{alice, "deletes her OAuthClient", func(c client.Client) error { return c.Delete(ctx, web.DeepCopy()) }, true},

		{tom, "binds himself to the OAuthClient editor role in his namespace", bindTo(roles["oauthclient-editor"].Name), true},
		{tom, "binds himself to the account editor role in his namespace", bindTo(roles["cloudflareaccount-editor"].Name), false},
		{tom, "binds himself to the account editor role cluster-wide", func(c client.Client) error {
			return c.Create(ctx, &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "tom-"},
				RoleRef:    roleRef(roles["cloudflareaccount-editor"].Name), Subjects: []rbacv1.Subject{user(tom)},
			}, client.DryRunAll)
		}, false},
		{tom, "reads the account's token Secret", readToken, false},

		{bob, "reads the CloudflareAccount", getAccount, true},
		{bob, "lists CloudflareAccounts", listAccounts, true},
		{bob, "lists the team's OAuthClients", listOAuthClients(ctx, team), true},
		{bob, "updates the CloudflareAccount", patchAccount, false},
		{bob, "deletes the CloudflareAccount", deleteAccount, false},
		{bob, "reads the account's token Secret", readToken, false},
		{bob, "creates an OAuthClient", func(c client.Client) error {
			return c.Create(ctx, oauthClientOf(team, "bobs", acct.GetName()), client.DryRunAll)
		}, false},

		{carol, "deletes the CloudflareAccount", deleteAccount, true},
	} {
		err := step.do(as[step.who])
		got := !apierrors.IsForbidden(err)
		switch {
		case got != step.allowed:
			t.Errorf("%s %s: allowed=%v, want %v (%v)", step.who, step.what, got, step.allowed, err)
		case step.allowed && err != nil: // every object the steps name exists
			t.Errorf("%s %s: %v", step.who, step.what, err)
		}
	}
}

// selfAllowed asks, as the user of c, whether the user may do attrs.
func selfAllowed(ctx context.Context, c client.Client, attrs authorizationv1.ResourceAttributes) error {
	review := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &attrs}}
	if err := c.Create(ctx, review); err != nil {
		return err
	}
	if !review.Status.Allowed {
		return errors.New("not allowed yet")
	}
	return nil
}

func listOAuthClients(ctx context.Context, ns string) func(c client.Client) error {
	return func(c client.Client) error {
		l := &metav1.PartialObjectMetadataList{}
		l.SetGroupVersionKind(accountGVK.GroupVersion().WithKind("OAuthClientList"))
		return c.List(ctx, l, client.InNamespace(ns))
	}
}

// aggregateDefaultRoles returns the rules of the built-in admin, edit and view
// ClusterRoles as kube-controller-manager's clusterrole-aggregation controller would
// write them in a cluster holding the API server's bootstrap roles and ours: each
// collects the rules of the roles its aggregationRule selects; view is labelled to
// aggregate into edit, and edit into admin, so rules flow up until nothing changes.
func aggregateDefaultRoles(t *testing.T, admin client.Client, ours []*rbacv1.ClusterRole) map[string][]rbacv1.PolicyRule {
	t.Helper()
	var bootstrap rbacv1.ClusterRoleList
	if err := admin.List(t.Context(), &bootstrap, client.MatchingLabels{"kubernetes.io/bootstrapping": "rbac-defaults"}); err != nil {
		t.Fatal(err)
	}
	pool := map[string]*rbacv1.ClusterRole{}
	for i := range bootstrap.Items {
		pool[bootstrap.Items[i].Name] = &bootstrap.Items[i]
	}
	for _, r := range ours {
		pool[r.Name] = r.DeepCopy()
	}
	names := slices.Sorted(maps.Keys(pool))
	out := map[string][]rbacv1.PolicyRule{}
	for changed := true; changed; {
		changed = false
		for _, name := range []string{"view", "edit", "admin"} {
			role := pool[name]
			if role == nil || role.AggregationRule == nil {
				t.Fatalf("the API server has no aggregated ClusterRole %s", name)
			}
			var rules []rbacv1.PolicyRule
			for _, other := range names {
				if other == name || !selectedBy(t, role.AggregationRule, pool[other].Labels) {
					continue
				}
				for _, r := range pool[other].Rules {
					if !slices.ContainsFunc(rules, func(have rbacv1.PolicyRule) bool { return cmp.Equal(have, r) }) {
						rules = append(rules, r)
					}
				}
			}
			if !cmp.Equal(rules, role.Rules) {
				role.Rules, changed = rules, true
			}
			out[name] = rules
		}
	}
	return out
}

func selectedBy(t *testing.T, rule *rbacv1.AggregationRule, set map[string]string) bool {
	t.Helper()
	for _, s := range rule.ClusterRoleSelectors {
		sel, err := metav1.LabelSelectorAsSelector(&s)
		if err != nil {
			t.Fatal(err)
		}
		if sel.Matches(labels.Set(set)) {
			return true
		}
	}
	return false
}

// accountOf is a CloudflareAccount whose token is Secret ns/secret, allowing namespaces.
func accountOf(name, ns, secret string, allowed ...string) *unstructured.Unstructured {
	names := make([]any, 0, len(allowed))
	for _, a := range allowed {
		names = append(names, a)
	}
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"accountID":         "023e105f4ecef8ad9ca31a8372d0c353",
			"credentialsRef":    map[string]any{"namespace": ns, "name": secret},
			"allowedNamespaces": map[string]any{"names": names},
		},
	}}
	u.SetGroupVersionKind(accountGVK)
	u.SetName(name)
	return u
}

// oauthClientOf is an OAuthClient in ns naming the CloudflareAccount account.
func oauthClientOf(ns, name, account string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"spec": map[string]any{
			"accountRef":              map[string]any{"name": account},
			"clientName":              "Web App",
			"redirectURIs":            []any{"https://app.example.com/oauth/callback"},
			"grantTypes":              []any{"authorization_code"},
			"responseTypes":           []any{"code"},
			"scopes":                  []any{"account.read"},
			"tokenEndpointAuthMethod": "client_secret_basic",
		},
	}}
	u.SetGroupVersionKind(accountGVK.GroupVersion().WithKind("OAuthClient"))
	u.SetNamespace(ns)
	u.SetName(name)
	return u
}
