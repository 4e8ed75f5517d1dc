package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// defaultOverlap is how long the previous secret stays valid when spec.secretRotation
// does not say.
const defaultOverlap = 24 * time.Hour

// reconcileRotation ends a rotation overlap that is due, and performs a rotation the
// spec asks for: a new rotationID, or the period in `every` elapsed. Cloudflare holds at
// most two secrets and refuses a rotate while a rotated secret exists, so a requested
// rotation waits for the current overlap to end instead of hitting that refusal.
func (r *OAuthClientReconciler) reconcileRotation(ctx context.Context, p *pass) error {
	if p.remote.TokenEndpointAuthMethod == cfapi.AuthMethodNone {
		return nil
	}
	now := r.now()
	if expires, pending := previousExpiry(p.secret); pending {
		if now.Before(expires) {
			p.wake(expires)
		} else {
			if err := r.finishOverlap(ctx, p); err != nil {
				return err
			}
			r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventRotatedSecretDeleted, "DeleteRotatedSecret",
				"deleted the previous client secret; Secret %s holds only the current one", p.obj.SecretName())
		}
	}

	sr := p.obj.Spec.SecretRotation
	if sr == nil {
		return nil
	}
	why, due := r.rotationDue(p, sr, now)
	if !due {
		return nil
	}
	if expires, pending := previousExpiry(p.secret); pending {
		p.rotationPending = fmt.Sprintf("rotation (%s) waits until the previous secret's overlap ends at %s", why, expires.UTC().Format(time.RFC3339))
		return nil
	}
	return r.rotate(ctx, p, sr, why)
}

// rotationDue says whether the spec asks for a rotation now, and why. When it does
// not, it schedules a wake-up for the next periodic one.
func (r *OAuthClientReconciler) rotationDue(p *pass, sr *v1alpha1.SecretRotation, now time.Time) (string, bool) {
	recorded := ""
	if p.secret != nil {
		recorded = p.secret.Annotations[v1alpha1.AnnotationRotationID]
	}
	if sr.RotationID != "" && sr.RotationID != recorded {
		return fmt.Sprintf("rotationID %q", sr.RotationID), true
	}
	if sr.Every == nil {
		return "", false
	}
	last, ok := rotatedAt(p.secret)
	if !ok && p.remote.CreatedAt != nil {
		last = *p.remote.CreatedAt
	}
	next := last.Add(sr.Every.Duration)
	if now.Before(next) {
		p.wake(next)
		return "", false
	}
	return fmt.Sprintf("every %s", sr.Every.Duration), true
}

// rotate rotates the secret and stores the new one with the old one kept as
// previous_client_secret until the overlap ends. The rotate and the Secret write run
// detached from the reconcile's cancellation (a shutdown between them would lose the
// new secret, and recovering it would revoke the old one), and the write retries
// conflicts.
func (r *OAuthClientReconciler) rotate(ctx context.Context, p *pass, sr *v1alpha1.SecretRotation, why string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sequenceTimeout)
	defer cancel()
	if p.remote.HasRotatedSecret {
		// A rotated secret we have no record of (rotated in the dashboard, or by a
		// rotation whose result was lost): Cloudflare refuses a rotate while it exists.
		if err := r.deleteRotated(ctx, p); err != nil {
			return err
		}
	}
	old := heldSecret(p.secret, p.boundID)
	secret, err := p.api.RotateOAuthClientSecret(ctx, p.accountID(), p.boundID)
	if err != nil {
		return r.rotateFailed(ctx, p, err)
	}
	r.markRotated(p, true)
	overlap := rotationOverlap(p.obj)
	expires := r.now().Add(overlap)
	if err := r.updateSecret(ctx, p, secretChange{
		clientSecret: secret,
		previous:     &old,
		annotations: map[string]string{
			v1alpha1.AnnotationRotationID:              sr.RotationID,
			v1alpha1.AnnotationPreviousSecretExpiresAt: expires.UTC().Format(time.RFC3339),
		},
	}); err != nil {
		return err
	}
	r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventSecretRotated, "Rotate",
		"rotated the client secret (%s); the previous secret stays valid until %s", why, expires.UTC().Format(time.RFC3339))
	if overlap <= 0 {
		if err := r.finishOverlap(ctx, p); err != nil {
			return err
		}
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventRotatedSecretDeleted, "DeleteRotatedSecret", "deleted the previous client secret (no overlap)")
		return nil
	}
	p.wake(expires)
	return nil
}

// wake asks for the object to be looked at again no later than t.
func (p *pass) wake(t time.Time) {
	if p.wakeAt.IsZero() || t.Before(p.wakeAt) {
		p.wakeAt = t
	}
}

// rotateFailed records what a failed rotate proves. A refusal proves nothing happened.
// Anything else (a timeout, a reset, a 5xx) proves nothing: the rotate may still commit,
// and rotating again at once could land a second rotation under it whose secret then
// looks lost, so the moment it settles is recorded on the Secret (awaitSettledRotate).
func (r *OAuthClientReconciler) rotateFailed(ctx context.Context, p *pass, err error) error {
	if definitelyNotSent(err) {
		return classify(opRotate, err)
	}
	settled := r.now().Add(r.CreateSettle).UTC().Format(time.RFC3339Nano)
	if werr := r.updateSecret(ctx, p, secretChange{annotations: map[string]string{v1alpha1.AnnotationRotateSettledAt: settled}}); werr != nil {
		return errors.Join(err, werr)
	}
	return classify(opRotate, err)
}

// awaitSettledRotate holds every decision about the secrets while a rotate that ended
// ambiguously may still commit, then judges the client on a List sent after that: if
// the rotate landed, its secret is lost and is recovered; if not, it is simply retried.
func (r *OAuthClientReconciler) awaitSettledRotate(ctx context.Context, p *pass) error {
	v := ""
	if p.secret != nil {
		v = p.secret.Annotations[v1alpha1.AnnotationRotateSettledAt]
	}
	if v == "" {
		return nil
	}
	if settled, err := time.Parse(time.RFC3339Nano, v); err == nil {
		if wait := settled.Sub(r.now()); wait > 0 {
			return &failure{kind: kindWaiting, reason: v1alpha1.ReasonRotationSettling, after: min(wait, r.CreateSettle),
				message: "a secret rotation ended without a clear answer from Cloudflare; waiting for it to settle before looking at the client's secrets again"}
		}
		if _, err := r.snapshots.Ensure(ctx, p.account, settled, p.api); err != nil {
			return err
		}
		if c, ok := r.snapshots.Get(p.account, p.boundID); ok {
			p.remote = &c
		}
	}
	return r.updateSecret(ctx, p, secretChange{annotations: map[string]string{v1alpha1.AnnotationRotateSettledAt: ""}})
}
