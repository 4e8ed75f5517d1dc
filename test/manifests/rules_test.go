package manifests_test

import (
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
)

// grant is one permission a PolicyRule gives: a verb on a resource of an API group,
// for one object (name) or, with an empty name, for every object of the resource.
type grant struct{ Group, Resource, Name, Verb string }

// grantsOf spells rules out as single permissions.
func grantsOf(rules ...rbacv1.PolicyRule) []grant {
	var out []grant
	for _, r := range rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out = append(out, grant{g, res, n, v})
					}
				}
			}
		}
	}
	return out
}

// allows reports whether r gives the permission g.
func allows(r rbacv1.PolicyRule, g grant) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	return has(r.APIGroups, g.Group) && has(r.Resources, g.Resource) && has(r.Verbs, g.Verb) &&
		(len(r.ResourceNames) == 0 || (g.Name != "" && slices.Contains(r.ResourceNames, g.Name)))
}

// covers reports whether rules give every permission of want, however they are split
// into rules: controller-gen merges the markers of resources with equal verbs into one
// rule, while the chart splits namespaced and cluster-scoped resources.
func covers(rules []rbacv1.PolicyRule, want rbacv1.PolicyRule) bool {
	for _, g := range grantsOf(want) {
		if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool { return allows(r, g) }) {
			return false
		}
	}
	return true
}

// clusterScoped reports whether a rule is about cluster-scoped resources only, which a
// Role cannot grant: it stays in a ClusterRole with watchNamespaces too.
func clusterScoped(r rbacv1.PolicyRule) bool {
	return !slices.ContainsFunc(r.Resources, func(res string) bool {
		switch res {
		case "tokenreviews", "subjectaccessreviews", "customresourcedefinitions", "namespaces",
			"cloudflareaccounts", "cloudflareaccounts/status", "cloudflareaccounts/finalizers":
			return false
		}
		return true
	})
}
