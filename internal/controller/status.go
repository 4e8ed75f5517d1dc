package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// conclude records the remote client in status and sets the conditions of a pass that
// reached its goal, or that waits on the user or on DNS.
func (r *OAuthClientReconciler) conclude(p *pass) ctrl.Result {
	obj := p.obj
	setRemoteStatus(obj, p.remote)
	obj.Status.AccountID = p.accountID()
	if rec := obj.Status.VerificationRecord; rec != nil {
		rec.Publication = p.publication
	}
	r.recordVerificationEvents(p)
	if !obj.Observing() {
		obj.Status.SecretName = obj.SecretName()
		mirrorRotationStatus(obj, p.secret)
	}
	setPromotedCondition(obj, p)

	requeue := wait.Jitter(r.SyncPeriod, 0.1)
	if v := obj.Status.ClientURIVerification; v != nil && (v.Status == cfapi.VerificationPending || v.Status == cfapi.VerificationInProgress) {
		requeue = wait.Jitter(r.VerificationPollInterval, 0.2)
	}
	if !p.wakeAt.IsZero() {
		requeue = min(requeue, max(p.wakeAt.Sub(r.now()), 0)+time.Second)
	}

	switch {
	case p.awaitingVerification && verificationFailed(obj):
		markStalled(obj, v1alpha1.ReasonVerificationFailed, verificationFailedMessage(obj))
	case len(p.promotionGaps) > 0 && p.awaitingVerification && len(p.promotionGaps) == 1:
		markProgressing(obj, v1alpha1.ReasonAwaitingVerification, "waiting to promote to public: "+p.promotionGaps[0])
		return ctrl.Result{RequeueAfter: min(requeue, wait.Jitter(r.VerificationPollInterval, 0.2))}
	case len(p.promotionGaps) > 0:
		markStalled(obj, v1alpha1.ReasonMissingPrerequisites, "cannot promote to public: "+strings.Join(p.promotionGaps, "; "))
	case len(p.observedDrift) > 0:
		markReady(obj, v1alpha1.ReasonDriftDetected, fmt.Sprintf("Observe: client %s exists; these fields differ from the spec: %v", p.boundID, p.observedDrift))
	case obj.Observing():
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("Observe: client %s exists and matches the spec", p.boundID))
	case p.rotationPending != "":
		markReady(obj, v1alpha1.ReasonRotationPending, fmt.Sprintf("client %s matches the spec; %s", p.boundID, p.rotationPending))
	case p.secretUnknown:
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("client %s matches the spec; Cloudflare returns a secret only at creation, so Secret %s holds no client_secret until a rotation (spec.secretRotation)", p.boundID, obj.SecretName()))
	default:
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("client %s matches the spec", p.boundID))
	}
	return ctrl.Result{RequeueAfter: requeue}
}

// setPromotedCondition reports promotion when public visibility is wanted or reached.
func setPromotedCondition(obj *v1alpha1.OAuthClient, p *pass) {
	wantPublic := obj.Spec.Visibility != nil && *obj.Spec.Visibility == v1alpha1.VisibilityPublic
	switch {
	case p.remote.Visibility == cfapi.VisibilityPublic:
		setCondition(obj, v1alpha1.ConditionPromoted, metav1.ConditionTrue, v1alpha1.ReasonPromoted, "the client is public")
	case wantPublic && len(p.promotionGaps) > 0:
		reason := v1alpha1.ReasonMissingPrerequisites
		switch {
		case p.awaitingVerification && verificationFailed(obj):
			reason = v1alpha1.ReasonVerificationFailed
		case p.awaitingVerification && len(p.promotionGaps) == 1:
			reason = v1alpha1.ReasonAwaitingVerification
		}
		setCondition(obj, v1alpha1.ConditionPromoted, metav1.ConditionFalse, reason, "missing: "+strings.Join(p.promotionGaps, "; "))
	default:
		meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionPromoted)
	}
}

// recordVerificationEvents tells the user, once per transition, what to publish and
// when verification completes or fails.
func (r *OAuthClientReconciler) recordVerificationEvents(p *pass) {
	obj, prev := p.obj, p.prevVerification
	cur := obj.Status.ClientURIVerification
	if cur == nil || (cur.Status == prev.Status && recordContent(obj) == p.prevRecord) {
		return
	}
	switch cur.Status {
	case cfapi.VerificationPending, cfapi.VerificationInProgress:
		if rec := obj.Status.VerificationRecord; rec != nil && (rec.Content != p.prevRecord || (prev.Status != cfapi.VerificationPending && prev.Status != cfapi.VerificationInProgress)) {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventVerificationRecordRequired, "Verify",
				"publish DNS record: name=%s type=%s content=%s", rec.Name, rec.Type, rec.Content)
		}
	case cfapi.VerificationVerified:
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventClientURIVerified, "Verify", "Cloudflare verified the client URI host")
	case cfapi.VerificationFailed:
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventVerificationFailed, "Verify", "%s", verificationFailedMessage(obj))
	}
}

// recordContent is the content of the verification record in status, or "".
func recordContent(obj *v1alpha1.OAuthClient) string {
	if rec := obj.Status.VerificationRecord; rec != nil {
		return rec.Content
	}
	return ""
}

// setRemoteStatus copies the remote facts users need into status.
func setRemoteStatus(obj *v1alpha1.OAuthClient, c *cfapi.OAuthClient) {
	st := &obj.Status
	st.ClientID = c.ClientID
	st.Visibility = c.Visibility
	st.HasRotatedSecret = c.HasRotatedSecret
	st.CreatedAt, st.UpdatedAt, st.PromotedAt = metaTime(c.CreatedAt), metaTime(c.UpdatedAt), metaTime(c.PromotedAt)
	st.ClientURIVerification, st.VerificationRecord = nil, nil
	if v := c.ClientURIVerification; v != nil && (v.Status != "" || v.Text != "") {
		st.ClientURIVerification = &v1alpha1.ClientURIVerification{Status: v.Status}
		if want, ok := verificationWant(c); ok {
			st.VerificationRecord = &v1alpha1.DNSRecord{Type: "TXT", Name: want.Host, Content: want.Text}
		}
	}
	setVerificationCondition(obj)
}

func metaTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// setVerificationCondition mirrors Cloudflare's verification status in
// ClientURIVerified: True when verified, False when failed, Unknown otherwise.
func setVerificationCondition(obj *v1alpha1.OAuthClient) {
	cond := metav1.Condition{Type: v1alpha1.ConditionClientURIVerified, ObservedGeneration: obj.Generation}
	v := obj.Status.ClientURIVerification
	switch {
	case v == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonNoClientURI, "the client has no client URI to verify"
	case v.Status == cfapi.VerificationVerified:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1alpha1.ReasonVerificationVerified, "Cloudflare verified the client URI host"
	case v.Status == cfapi.VerificationFailed:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonVerificationStatusFailed, verificationFailedMessage(obj)
	case v.Status == cfapi.VerificationPending:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonVerificationPending, "verification is queued; publish status.verificationRecord"
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonVerificationInProgress, "Cloudflare is checking DNS for status.verificationRecord"
	}
	meta.SetStatusCondition(&obj.Status.Conditions, cond)
}

// patchMeta applies mutate to the object's metadata and patches it when it changed. It
// leaves the in-memory status alone, so status is still written once, at the end.
func (r *OAuthClientReconciler) patchMeta(ctx context.Context, obj *v1alpha1.OAuthClient, mutate func(*v1alpha1.OAuthClient)) error {
	changed := obj.DeepCopy()
	mutate(changed)
	if equality.Semantic.DeepEqual(obj.ObjectMeta, changed.ObjectMeta) {
		return nil
	}
	if err := r.Patch(ctx, changed, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	obj.ObjectMeta = changed.ObjectMeta
	return nil
}

// writeStatus patches status when the pass changed it. A failed write is joined with the
// pass's error, never dropped.
//
// A pass that met a conflict worked from a stale copy of the object (the cache lagged
// behind our own last write): it writes nothing, and the retry starts from a fresh copy.
func (r *OAuthClientReconciler) writeStatus(ctx context.Context, before, obj *v1alpha1.OAuthClient, res ctrl.Result, err error) (ctrl.Result, error) {
	if apierrors.IsConflict(err) {
		return ctrl.Result{}, err
	}
	if equality.Semantic.DeepEqual(before.Status, obj.Status) {
		return res, err
	}
	base := obj.DeepCopy()
	base.Status = before.Status
	// Optimistic: a pass that worked from a stale copy must not overwrite the status a
	// newer pass wrote; it is retried from a fresh copy instead.
	if patchErr := r.Status().Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); patchErr != nil && !apierrors.IsNotFound(patchErr) {
		if apierrors.IsConflict(patchErr) && err == nil {
			return ctrl.Result{}, patchErr
		}
		return ctrl.Result{}, errors.Join(err, fmt.Errorf("writing status: %w", patchErr))
	}
	r.recordStalled(before, obj)
	return res, err
}

// recordStalled emits one Warning Event when the object becomes Stalled, or stalls for
// another reason: a person reading `kubectl describe` or `kubectl get events` sees why,
// once, not on every retry. The Event's reason is the Stalled condition's reason.
func (r *OAuthClientReconciler) recordStalled(before, obj *v1alpha1.OAuthClient) {
	now := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionStalled)
	if now == nil || now.Status != metav1.ConditionTrue {
		return
	}
	if was := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionStalled); was != nil &&
		was.Status == metav1.ConditionTrue && was.Reason == now.Reason {
		return
	}
	r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, now.Reason, "Reconcile", "%s", now.Message)
}

// verificationFailed reports whether Cloudflare gave up verifying the client URI host.
func verificationFailed(obj *v1alpha1.OAuthClient) bool {
	v := obj.Status.ClientURIVerification
	return v != nil && v.Status == cfapi.VerificationFailed
}

// verificationFailedMessage tells a person exactly what to do after a failed
// verification: the record to publish and the annotation that restarts it.
func verificationFailedMessage(obj *v1alpha1.OAuthClient) string {
	what := "publish status.verificationRecord"
	if rec := obj.Status.VerificationRecord; rec != nil {
		what = fmt.Sprintf("publish the DNS record %s %s %q", rec.Name, rec.Type, rec.Content)
	}
	return "Cloudflare could not verify the client URI host (failed or timed out after two days); " + what +
		", then set the annotation " + v1alpha1.AnnotationRestartVerification + " to a new value (or change clientURI) to restart verification"
}
