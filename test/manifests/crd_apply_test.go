package manifests_test

import (
	"context"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// documentedManager is the field manager of the documented CRD upgrade, `make install`:
// kubectl apply --server-side --field-manager=cloudflare-oauth-operator --force-conflicts -k config/crd
const documentedManager = "cloudflare-oauth-operator"

// renamedCRD returns the OAuthClient CRD moved to another API group, so that a test
// can install and upgrade it without touching the control plane's OAuthClient CRD.
func renamedCRD(t *testing.T, group string) *unstructured.Unstructured {
	t.Helper()
	crd := oauthClientBase(t).DeepCopy()
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	crd.SetName(plural + "." + group)
	if err := unstructured.SetNestedField(crd.Object, group, "spec", "group"); err != nil {
		t.Fatal(err)
	}
	return crd
}

// nextRelease returns crd as a newer release generates it: a new field, a reworded
// description and another controller-gen version. The last two change values that the
// first installer owns, which is where field managers can conflict.
func nextRelease(t *testing.T, crd *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	out := withProbeField(t, crd)
	versions, _, _ := unstructured.NestedSlice(out.Object, "spec", "versions")
	for _, v := range versions {
		if err := unstructured.SetNestedField(v.(map[string]any), "Reworded by the next release.", "schema", "openAPIV3Schema", "description"); err != nil {
			t.Fatal(err)
		}
	}
	if err := unstructured.SetNestedSlice(out.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	annotations := out.GetAnnotations()
	annotations["controller-gen.kubebuilder.io/version"] = "v9.9.9"
	out.SetAnnotations(annotations)
	return out
}

// serverSideApply is `kubectl apply --server-side --field-manager=MANAGER
// [--force-conflicts]` of one object.
func serverSideApply(ctx context.Context, c client.Client, obj *unstructured.Unstructured, manager string, force bool) error {
	opts := []client.ApplyOption{client.FieldOwner(manager)}
	if force {
		opts = append(opts, client.ForceOwnership)
	}
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()), opts...)
}

// TestCRDUpgradeServerSideApply reproduces the documented CRD upgrade for kustomize
// users with the Go client: server-side apply of the next release's CRD with the
// field manager cloudflare-oauth-operator and --force-conflicts. Whoever applied the
// CRD first, the upgrade succeeds and the new field is served. Without
// --force-conflicts it conflicts when another manager applied the CRD first (a Helm
// release, or `kubectl apply` without --server-side, as `make install` did before):
// that is why the documented command forces.
func TestCRDUpgradeServerSideApply(t *testing.T) {
	c := adminClient(t)
	for _, tc := range []struct {
		name              string
		group             string
		firstInstall      func(ctx context.Context, crd *unstructured.Unstructured) error
		conflictsUnforced bool
	}{
		{
			name:  "first installed by the documented command",
			group: "ssa-documented.oauth-operator.dev",
			firstInstall: func(ctx context.Context, crd *unstructured.Unstructured) error {
				return serverSideApply(ctx, c, crd, documentedManager, true)
			},
		},
		{
			name:  "first installed by a Helm release",
			group: "ssa-helm.oauth-operator.dev",
			firstInstall: func(ctx context.Context, crd *unstructured.Unstructured) error {
				return serverSideApply(ctx, c, crd, "helm", false)
			},
			conflictsUnforced: true,
		},
		{
			name:  "first installed by a client-side kubectl apply",
			group: "ssa-client-side.oauth-operator.dev",
			firstInstall: func(ctx context.Context, crd *unstructured.Unstructured) error {
				return c.Create(ctx, crd.DeepCopy(), client.FieldOwner("kubectl-client-side-apply"))
			},
			conflictsUnforced: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			v1 := renamedCRD(t, tc.group)
			t.Cleanup(func() { deleteCRD(t, c, v1.GetName()) })
			if err := tc.firstInstall(ctx, v1); err != nil {
				t.Fatalf("installing %s: %v", v1.GetName(), err)
			}
			sample := sampleOf(t, v1, "default")
			eventually(t, "the first CRD is served", func(ctx context.Context) error {
				return c.Create(ctx, sampleWithoutProbe(sample), client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			})

			v2 := nextRelease(t, v1)
			err := serverSideApply(ctx, c, v2, documentedManager, false)
			if tc.conflictsUnforced != apierrors.IsConflict(err) || (!tc.conflictsUnforced && err != nil) {
				t.Errorf("apply without --force-conflicts: %v, want a conflict: %v", err, tc.conflictsUnforced)
			}
			if err := serverSideApply(ctx, c, v2, documentedManager, true); err != nil {
				t.Fatalf("the documented upgrade failed: %v", err)
			}
			eventually(t, "the upgraded CRD serves spec."+probeField, func(ctx context.Context) error {
				return probeFieldServed(ctx, c, sample)
			})
			live, err := getCRD(ctx, c, v1.GetName())
			if err != nil || live.GetAnnotations()["controller-gen.kubebuilder.io/version"] != "v9.9.9" {
				t.Errorf("after the upgrade, CRD %s is not the next release's (%v)", v1.GetName(), err)
			}
		})
	}
}
