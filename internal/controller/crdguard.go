package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// Uninstalling must never revoke clients. Deleting the OAuthClient CRD (kubectl delete
// -f of the install manifests, a chart that templates its CRDs, a GitOps prune) makes
// the apiserver delete every OAuthClient of every namespace, and a manager still running
// would then honour deletionPolicy Delete on each of them. So before deleting a remote
// client the operator reads the CRD, uncached: if it is being deleted, the object is
// released as if its deletionPolicy were Orphan, with a Warning Event that says why.

// oauthClientCRD is the name of the OAuthClient CustomResourceDefinition,
// <plural>.<group>: oauthclients.cloudflare.oauth-operator.dev.
var oauthClientCRD = "oauthclients." + v1alpha1.GroupVersion.Group

// crdGVK is read as metadata only, so the manager's scheme needs no apiextensions types.
var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// crdBeingDeleted reports whether the OAuthClient CRD is being deleted, read from the
// apiserver (a cached copy could lag behind the deletion of the objects it causes). A
// CRD that is gone counts as being deleted. A failed read is a failure that keeps the
// client: the operator cannot tell, so it does not delete.
func (r *OAuthClientReconciler) crdBeingDeleted(ctx context.Context) (bool, error) {
	crd := &metav1.PartialObjectMetadata{}
	crd.SetGroupVersionKind(crdGVK)
	err := r.APIReader.Get(ctx, client.ObjectKey{Name: oauthClientCRD}, crd)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, crdUnreadable(err)
	}
	return !crd.DeletionTimestamp.IsZero(), nil
}

// crdUnreadable classifies a failed read of the CRD. A refused read (the RBAC rule is
// missing, typically from a chart that lags behind config/rbac) needs a person: Stalled,
// re-checked slowly. Anything else is retried with backoff.
func crdUnreadable(err error) error {
	head := "cannot tell whether the CustomResourceDefinition " + oauthClientCRD +
		" is being deleted, so the Cloudflare client is not deleted yet: "
	if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
		return &failure{kind: kindDeletionBlocked, reason: v1alpha1.ReasonDeletionBlocked, cause: err,
			message: head + err.Error() + "; grant the operator get on customresourcedefinitions " + oauthClientCRD +
				", or set spec.deletionPolicy: Orphan to release this object and keep the client"}
	}
	return &failure{kind: kindTransient, reason: v1alpha1.ReasonDeletionBlocked, cause: err, message: head + err.Error()}
}

// releaseForUninstall records why an object goes away while its Cloudflare client
// stays: the CRD is being deleted.
func (r *OAuthClientReconciler) releaseForUninstall(ctx context.Context, obj *v1alpha1.OAuthClient) {
	id := boundIDOf(obj)
	logf.FromContext(ctx).Info("releasing the object without deleting its Cloudflare client: the CustomResourceDefinition is being deleted",
		"crd", oauthClientCRD, "clientID", id)
	what := "left Cloudflare client " + id + " in place"
	if id == "" {
		what = "left any Cloudflare client of this object in place"
	}
	r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventClientNotDeleted, "Delete",
		"%s: the CustomResourceDefinition %s is being deleted (an uninstall), which deletes every OAuthClient; "+
			"delete the client in Cloudflare if it is no longer wanted", what, oauthClientCRD)
}
