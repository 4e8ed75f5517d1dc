package controller

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// crdReader plays the apiserver's answer to the read of the OAuthClient CRD, and
// counts the reads.
type crdReader struct {
	deleting bool
	err      error
	reads    int
}

func (c *crdReader) install(f *fixture) {
	f.r.APIReader = interceptor.NewClient(f.c.(client.WithWatch), interceptor.Funcs{
		Get: func(ctx context.Context, cl client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*metav1.PartialObjectMetadata); !ok || key.Name != oauthClientCRD {
				return cl.Get(ctx, key, obj, opts...)
			}
			c.reads++
			if c.err != nil {
				return c.err
			}
			obj.SetName(key.Name)
			if c.deleting {
				obj.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
			}
			return nil
		},
	})
}

var crdResource = schema.GroupResource{Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"}

// The guard decides from the CRD's answer: delete the client only when the CRD is
// there and not being deleted; otherwise keep it, releasing the object when the CRD is
// going (or gone), and keeping the finalizer when the operator cannot tell.
func TestDeletionFollowsTheCRD(t *testing.T) {
	for _, tc := range []struct {
		name       string
		crd        crdReader
		wantDelete bool
		wantGone   bool
		wantError  bool
		wantEvent  string // "Type Reason" prefix of an expected event
		wantReady  string // "Condition/Reason" while the object stays
	}{
		{name: "CRD in place", wantDelete: true, wantGone: true, wantEvent: "Normal " + v1alpha1.EventDeleted},
		{name: "CRD being deleted", crd: crdReader{deleting: true}, wantGone: true, wantEvent: "Warning " + v1alpha1.EventClientNotDeleted},
		{name: "CRD gone", crd: crdReader{err: apierrors.NewNotFound(crdResource, oauthClientCRD)}, wantGone: true,
			wantEvent: "Warning " + v1alpha1.EventClientNotDeleted},
		{name: "read forbidden", crd: crdReader{err: apierrors.NewForbidden(crdResource, oauthClientCRD, errors.New("RBAC"))},
			wantEvent: "Warning " + v1alpha1.ReasonDeletionBlocked, wantReady: v1alpha1.ConditionStalled + "/" + v1alpha1.ReasonDeletionBlocked},
		{name: "apiserver unavailable", crd: crdReader{err: apierrors.NewServiceUnavailable("etcd leader changed")}, wantError: true,
			wantReady: v1alpha1.ConditionReconciling + "/" + v1alpha1.ReasonDeletionBlocked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, unitObject("app"))
			crd := tc.crd
			crd.install(f)
			if _, err := f.reconcile(t, "app"); err != nil {
				t.Fatal(err)
			}
			id := f.get(t, "app").Status.ClientID
			if id == "" || crd.reads != 0 {
				t.Fatalf("after a live pass: client %q, %d CRD reads; want a client and no read", id, crd.reads)
			}
			f.drainEvents()
			if err := f.c.Delete(t.Context(), f.get(t, "app")); err != nil {
				t.Fatal(err)
			}

			_, err := f.reconcile(t, "app")
			if (err != nil) != tc.wantError {
				t.Fatalf("reconcile error %v, want error: %v", err, tc.wantError)
			}
			if crd.reads != 1 {
				t.Errorf("%d CRD reads in the deletion pass, want 1", crd.reads)
			}
			deleted := slices.Contains(f.writes(), cfemu.RouteDeleteClient)
			if _, exists := f.emu.GetClient(unitAccount, id); deleted != tc.wantDelete || exists == tc.wantDelete {
				t.Errorf("DELETE sent %v, client still in Cloudflare %v; want the client deleted: %v", deleted, exists, tc.wantDelete)
			}
			if tc.wantEvent != "" && !hasEventPrefix(f.drainEvents(), tc.wantEvent) {
				t.Errorf("no %q event", tc.wantEvent)
			}
			err = f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: "app"}, &v1alpha1.OAuthClient{})
			if gone := apierrors.IsNotFound(err); gone != tc.wantGone {
				t.Fatalf("object gone %v (%v), want %v", gone, err, tc.wantGone)
			}
			if tc.wantGone {
				return
			}
			obj := f.get(t, "app")
			if !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
				t.Error("the finalizer was removed although the client was neither deleted nor known to be kept")
			}
			typ, reason, _ := strings.Cut(tc.wantReady, "/")
			if c := meta.FindStatusCondition(obj.Status.Conditions, typ); c == nil || c.Status != metav1.ConditionTrue || c.Reason != reason ||
				!strings.Contains(c.Message, "cannot tell whether the CustomResourceDefinition "+oauthClientCRD+" is being deleted") {
				t.Errorf("%s condition %+v, want True/%s saying the operator cannot tell", typ, c, reason)
			}
		})
	}
}

// Objects that keep their client anyway (deletionPolicy Orphan) never read the CRD.
func TestOrphanDeletionReadsNoCRD(t *testing.T) {
	obj := unitObject("kept")
	obj.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
	f := newFixture(t, obj)
	crd := &crdReader{deleting: true}
	crd.install(f)
	if _, err := f.reconcile(t, "kept"); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(t.Context(), f.get(t, "kept")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reconcile(t, "kept"); err != nil {
		t.Fatal(err)
	}
	if crd.reads != 0 {
		t.Errorf("%d CRD reads, want none", crd.reads)
	}
	for _, w := range f.writes() {
		if strings.HasPrefix(w, http.MethodDelete) {
			t.Errorf("Cloudflare call %s", w)
		}
	}
}

func hasEventPrefix(events []string, prefix string) bool {
	for _, e := range events {
		if strings.HasPrefix(e, prefix+" ") {
			return true
		}
	}
	return false
}
