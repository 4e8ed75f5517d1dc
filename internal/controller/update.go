package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// update PATCHes the fields that drifted, in one request; then promotes the client to
// public once Cloudflare's preconditions hold; then restarts verification if the user
// asked for it.
//
// Promotion is its own PATCH, sent after the drift PATCH landed: Cloudflare may judge
// the preconditions on the client as it was before a request, so a logo or a scope
// sent in the same request as visibility:public might not count.
func (r *OAuthClientReconciler) update(ctx context.Context, p *pass) error {
	obj := p.obj
	if v := obj.Spec.Visibility; v != nil && *v == v1alpha1.VisibilityPrivate && p.remote.Visibility == cfapi.VisibilityPublic {
		return newFailure(kindSpec, v1alpha1.ReasonInvalidSpec,
			"the client is public in Cloudflare and promotion cannot be undone; set visibility: public or remove the field")
	}
	d := computeDrift(&obj.Spec, p.remote)
	if !d.empty() {
		if d.params.Scopes != nil || d.params.OptionalScopes != nil {
			if err := r.checkScopes(ctx, p); err != nil {
				return err
			}
		}
		if err := r.patch(ctx, p, opUpdate, d.params); err != nil {
			return err
		}
		if obj.Generation == obj.Status.ObservedGeneration {
			driftCorrections.Inc()
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventDriftCorrected, "Update", "corrected drift in Cloudflare: %s", d)
		} else {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventUpdated, "Update", "updated %s", d)
		}
	}
	if err := r.promote(ctx, p); err != nil {
		return err
	}
	return r.restartVerification(ctx, p)
}

// patch sends one PATCH and records its result. A 404 means the client is gone: it
// leaves the snapshot, and the next pass re-creates it (or reports ClientNotFound).
func (r *OAuthClientReconciler) patch(ctx context.Context, p *pass, op operation, params cfapi.UpdateOAuthClientParams) error {
	updated, err := p.api.UpdateOAuthClient(ctx, p.accountID(), p.remote.ClientID, params)
	if cfapi.IsNotFound(err) {
		r.snapshots.Remove(p.account, p.remote.ClientID)
	}
	if err != nil {
		return classify(op, err)
	}
	r.snapshots.Put(p.account, *updated)
	p.remote = updated
	return nil
}

// promote makes the client public once the spec asks for it and the client, as it is
// now, meets Cloudflare's preconditions; otherwise it records what is missing.
func (r *OAuthClientReconciler) promote(ctx context.Context, p *pass) error {
	v := p.obj.Spec.Visibility
	if v == nil || *v != v1alpha1.VisibilityPublic || p.remote.Visibility == cfapi.VisibilityPublic {
		return nil
	}
	p.promotionGaps, p.awaitingVerification = promotionGaps(&p.obj.Spec, p.remote)
	if len(p.promotionGaps) > 0 {
		return nil
	}
	public := cfapi.VisibilityPublic
	if err := r.patch(ctx, p, opPromote, cfapi.UpdateOAuthClientParams{Visibility: &public}); err != nil {
		return err
	}
	r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventPromoted, "Update", "promoted client %s to public", p.remote.ClientID)
	return nil
}

// restartVerification acts once on each new value of the restart-verification
// annotation. Cloudflare restarts a failed or timed-out verification when client_uri
// is sent unchanged; a verification that is in progress or verified is left alone, as
// restarting it could only undo progress. The value acted on is recorded in an
// annotation before the PATCH, so it never fires twice, even after status is lost.
func (r *OAuthClientReconciler) restartVerification(ctx context.Context, p *pass) error {
	obj := p.obj
	want := obj.Annotations[v1alpha1.AnnotationRestartVerification]
	done := obj.Annotations[v1alpha1.AnnotationVerificationRestarted]
	if done == "" {
		done = obj.Status.LastVerificationRestart // acted on before the annotation existed
	}
	obj.Status.LastVerificationRestart = done
	if want == "" || want == done {
		return nil
	}
	status := ""
	if v := p.remote.ClientURIVerification; v != nil {
		status = v.Status
	}
	if err := r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) { o.Annotations[v1alpha1.AnnotationVerificationRestarted] = want }); err != nil {
		return err
	}
	obj.Status.LastVerificationRestart = want
	if p.remote.ClientURI == "" || (status != cfapi.VerificationFailed && status != cfapi.VerificationPending) {
		reason := "the client has no client URI"
		if p.remote.ClientURI != "" {
			reason = "verification is " + status
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRestartSkipped, "Verify",
			"did not restart verification: %s; the annotation acts only while verification is failed or pending", reason)
		return nil
	}
	uri := p.remote.ClientURI
	if err := r.patch(ctx, p, opRestartVerification, cfapi.UpdateOAuthClientParams{ClientURI: &uri}); err != nil {
		// Not restarted: forget the value, so the next pass tries again.
		_ = r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) { o.Annotations[v1alpha1.AnnotationVerificationRestarted] = done })
		obj.Status.LastVerificationRestart = done
		return err
	}
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRestarted, "Verify", "asked Cloudflare to verify the client URI host again")
	return nil
}
