package controller

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// reconcileDelete removes the remote client (deletionPolicy Delete) and then the
// finalizer. Credentials Cloudflare refuses keep the finalizer, with a condition that
// says how to release the object without deleting the client (deletionPolicy: Orphan).
// A client another object holds is never deleted: the object is released alone.
//
// Safety net: deleting the OAuthClient CRD (an uninstall) makes the apiserver delete
// every OAuthClient, and honouring deletionPolicy Delete then would revoke every client
// of every team. So while the CRD is being deleted no client is deleted: each object is
// released as with deletionPolicy Orphan, with a ClientNotDeleted Event (crdguard.go).
func (r *OAuthClientReconciler) reconcileDelete(ctx context.Context, p *pass) (ctrl.Result, error) {
	obj := p.obj
	if !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	keep, err := r.keepsClient(ctx, obj)
	if err != nil {
		return r.outcome(ctx, p, err)
	}
	if !keep {
		err = r.deleteRemote(ctx, p)
		var f *failure
		if errors.As(err, &f) && f.kind == kindCredentials {
			// Without credentials the client cannot be deleted: say so loudly, and how
			// to release the object, rather than block namespace deletion silently.
			err = &failure{kind: kindDeletionBlocked, reason: v1alpha1.ReasonDeletionBlocked, cause: err,
				message: "cannot delete the Cloudflare client (" + f.message +
					"); fix the credentials, or set spec.deletionPolicy: Orphan to release this object and keep the client"}
		}
		if err != nil {
			return r.outcome(ctx, p, err)
		}
	} else if id := boundIDOf(obj); id != "" {
		r.claims.release(obj, accountIDOf(obj), id)
	}
	if err := r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) { controllerutil.RemoveFinalizer(o, v1alpha1.Finalizer) }); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.forget(client.ObjectKeyFromObject(obj))
	return ctrl.Result{}, nil
}

// keepsClient reports whether the object goes away without deleting its Cloudflare
// client: deletionPolicy Orphan, managementPolicy Observe, or an uninstall. Only an
// object about to delete its client pays for the read of the CRD, once per deletion
// pass; live objects never read it.
func (r *OAuthClientReconciler) keepsClient(ctx context.Context, obj *v1alpha1.OAuthClient) (bool, error) {
	if obj.OrphanOnDelete() || obj.Observing() {
		return true, nil
	}
	uninstalling, err := r.crdBeingDeleted(ctx)
	if err != nil || !uninstalling {
		return false, err
	}
	r.releaseForUninstall(ctx, obj)
	return true, nil
}

// deleteRemote deletes the bound client, if this object holds it; a client that is
// already gone counts as done.
func (r *OAuthClientReconciler) deleteRemote(ctx context.Context, p *pass) error {
	if err := r.connect(ctx, p); err != nil {
		return err
	}
	if pause := r.apis.blockedFor(p.credsKey); pause > 0 {
		return &rateLimitedError{wait: pause}
	}
	obj := p.obj
	if obj.Annotations[v1alpha1.AnnotationCreateIntent] != "" && obj.AdoptedClientID() == "" {
		// An interrupted create may have made a client: find it so it is not orphaned.
		if err := r.resumeInterruptedCreate(ctx, p); err != nil {
			return err
		}
	} else {
		p.boundID = boundIDOf(obj)
	}
	if p.boundID == "" {
		return nil
	}
	if err := r.claims.claim(ctx, obj, p.accountID(), p.boundID); err != nil {
		var f *failure
		if errors.As(err, &f) && f.reason == v1alpha1.ReasonClientAlreadyBound {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventClientNotDeleted, "Delete",
				"left Cloudflare client %s alone: another OAuthClient holds it", p.boundID)
			return nil
		}
		return err
	}
	r.unpublishOnDelete(ctx, p)
	if err := p.api.DeleteOAuthClient(ctx, p.accountID(), p.boundID); err != nil && !cfapi.IsNotFound(err) {
		return classify(opDelete, err)
	}
	r.snapshots.Remove(p.account, p.boundID)
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventDeleted, "Delete", "deleted Cloudflare client %s", p.boundID)
	r.claims.release(obj, p.accountID(), p.boundID)
	return nil
}
