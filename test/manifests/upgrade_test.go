package manifests_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// probeField is the spec field an upgraded CRD adds in these tests.
const probeField = "upgradeProbe"

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: crdKind}

// adminClient returns a client of the shared control plane that reads any kind as
// unstructured objects.
func adminClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(controlPlane(t).Config, client.Options{Scheme: clientScheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// oauthClientBase returns the generated OAuthClient CRD of config/crd/bases.
func oauthClientBase(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	for _, crd := range crdBases(t) {
		if crd.GetName() == oauthCRD {
			return crd
		}
	}
	t.Fatalf("config/crd/bases has no %s", oauthCRD)
	return nil
}

// withProbeField returns crd with the string field spec.upgradeProbe added to every
// version's schema, as a newer release of the operator would add a field.
func withProbeField(t *testing.T, crd *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	out := crd.DeepCopy()
	versions, _, _ := unstructured.NestedSlice(out.Object, "spec", "versions")
	for _, v := range versions {
		err := unstructured.SetNestedMap(v.(map[string]any), map[string]any{
			"type": "string", "description": "A field added by an upgrade.",
		}, "schema", "openAPIV3Schema", "properties", "spec", "properties", probeField)
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := unstructured.SetNestedSlice(out.Object, versions, "spec", "versions"); err != nil {
		t.Fatal(err)
	}
	return out
}

// getCRD reads a CRD from the API server.
func getCRD(ctx context.Context, c client.Client, name string) (*unstructured.Unstructured, error) {
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(crdGVK)
	return crd, c.Get(ctx, client.ObjectKey{Name: name}, crd)
}

// hasProbeField reports whether every version of the stored CRD has spec.upgradeProbe.
func hasProbeField(crd *unstructured.Unstructured) bool {
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	for _, v := range versions {
		if _, ok, _ := unstructured.NestedMap(v.(map[string]any), "schema", "openAPIV3Schema", "properties", "spec", "properties", probeField); !ok {
			return false
		}
	}
	return len(versions) > 0
}

// sampleOf returns config/samples/confidential-client.yaml as an object of crd's
// group, version and kind, with spec.upgradeProbe set.
func sampleOf(t *testing.T, crd *unstructured.Unstructured, namespace string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "samples", "confidential-client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	obj := decodeYAML(t, data)[0]
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	kind, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "kind")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	version, _, _ := unstructured.NestedString(versions[0].(map[string]any), "name")
	obj.SetGroupVersionKind(schema.GroupVersionKind{Group: group, Version: version, Kind: kind})
	obj.SetNamespace(namespace)
	if err := unstructured.SetNestedField(obj.Object, "probe", "spec", probeField); err != nil {
		t.Fatal(err)
	}
	return obj
}

// sampleWithoutProbe returns the sample without spec.upgradeProbe.
func sampleWithoutProbe(sample *unstructured.Unstructured) *unstructured.Unstructured {
	out := sample.DeepCopy()
	unstructured.RemoveNestedField(out.Object, "spec", probeField)
	return out
}

// probeFieldServed is nil once the API server accepts an object setting
// spec.upgradeProbe under strict field validation (a dry run): the new schema is
// served, not only stored.
func probeFieldServed(ctx context.Context, c client.Client, obj *unstructured.Unstructured) error {
	return c.Create(ctx, obj.DeepCopy(), client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
}

// eventually polls cond every 100ms until it returns nil, failing the test after 30s.
func eventually(t *testing.T, what string, cond func(ctx context.Context) error) {
	t.Helper()
	var last error
	// WithoutCancel: cleanups call it too, after t.Context() is done.
	ctx := context.WithoutCancel(t.Context())
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = cond(ctx)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last: %v)", what, err, last)
	}
}

// deleteCRD deletes a CRD and waits until it is gone.
func deleteCRD(t *testing.T, c client.Client, name string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	crd, err := getCRD(ctx, c, name)
	if apierrors.IsNotFound(err) {
		return
	}
	if err == nil {
		err = c.Delete(ctx, crd)
	}
	if client.IgnoreNotFound(err) != nil {
		t.Fatalf("deleting CRD %s: %v", name, err)
	}
	eventually(t, "CRD "+name+" is gone", func(ctx context.Context) error {
		_, err := getCRD(ctx, c, name)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return errors.Join(errors.New("still there"), err)
	})
}

// deleteOurCRDs deletes every CRD of config/crd/bases, as a fresh cluster has none.
func deleteOurCRDs(t *testing.T, c client.Client) {
	t.Helper()
	for _, crd := range crdBases(t) {
		deleteCRD(t, c, crd.GetName())
	}
}

// resetCRDs puts the control plane's CRDs back as testenv created them, from
// config/crd/bases, for the tests that share the control plane.
func resetCRDs(t *testing.T, c client.Client) {
	t.Helper()
	for _, crd := range crdBases(t) {
		resetCRD(t, c, crd)
	}
}

func resetCRD(t *testing.T, c client.Client, base *unstructured.Unstructured) {
	t.Helper()
	name := base.GetName()
	deleteCRD(t, c, name)
	ctx := context.WithoutCancel(t.Context())
	if err := c.Create(ctx, base); err != nil {
		t.Fatalf("recreating CRD %s: %v", name, err)
	}
	eventually(t, "CRD "+name+" is established", func(ctx context.Context) error {
		crd, err := getCRD(ctx, c, name)
		if err != nil {
			return err
		}
		conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, cond := range conditions {
			if m := cond.(map[string]any); m["type"] == "Established" && m["status"] == "True" {
				return nil
			}
		}
		return errors.New("not established")
	})
}
