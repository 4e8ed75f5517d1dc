package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/secretrender"
)

// The client Secret is the durable record of everything about the client's secrets:
// the secrets themselves and, in annotations written in the same update, the rotation
// that produced them (rotation-id, rotated-at) and when the previous secret is to be
// deleted (previous-secret-expires-at). Status only mirrors it. Keeping the record next
// to the secret means a lost status write can never cause a second rotation or the
// deletion of a secret that is still in use.
//
// Cloudflare returns a secret exactly once (from Create or Rotate), so every new secret
// is written to the Secret before anything else can fail. If that write fails anyway,
// the next pass sees the mismatch (no secret held, or Cloudflare holding a rotated secret
// with no overlap recorded) and recovers by rotating once more.

// secretChange is how a pass changes the client Secret.
type secretChange struct {
	// clientSecret is a new client_secret; "" keeps the current one.
	clientSecret string
	// previous sets previous_client_secret; nil keeps it and "" removes it.
	previous *string
	// annotations to set; an empty value removes the annotation.
	annotations map[string]string
	// random holds stable random values carried over from a renamed Secret, by name;
	// the Secret's own win.
	random map[string][]byte
}

// heldSecret is the client_secret the Secret holds for the bound client, or "".
func heldSecret(sec *corev1.Secret, clientID string) string {
	if sec == nil || string(sec.Data[v1alpha1.SecretKeyClientID]) != clientID {
		return ""
	}
	return string(sec.Data[v1alpha1.SecretKeyClientSecret])
}

// previousExpiry reads when the previous secret is to be deleted.
func previousExpiry(sec *corev1.Secret) (time.Time, bool) {
	if sec == nil {
		return time.Time{}, false
	}
	v, ok := sec.Annotations[v1alpha1.AnnotationPreviousSecretExpiresAt]
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, true // unreadable: treat as due, the safe way to end it
	}
	return t, true
}

// rotatedAt reads when the current secret was issued.
func rotatedAt(sec *corev1.Secret) (time.Time, bool) {
	if sec == nil {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, sec.Annotations[v1alpha1.AnnotationRotatedAt])
	return t, err == nil
}

// ensureSecret makes the client Secret hold the bound client's credentials: after a
// rename of spec.secretRef.name it first carries them over from the old Secret, and
// deletes that one last. A secret lost from a client whose secret the operator owns is
// recovered by rotation.
func (r *OAuthClientReconciler) ensureSecret(ctx context.Context, p *pass) error {
	renamed, err := r.renamedSecret(ctx, p)
	if err != nil {
		return err
	}
	if renamed != nil {
		if err := r.carrySecretOver(ctx, p, renamed); err != nil {
			return err
		}
	}
	if err := r.ensureSecretHolds(ctx, p); err != nil {
		return err
	}
	if renamed != nil {
		return r.deleteRenamedSecret(ctx, p, renamed)
	}
	return nil
}

// ensureSecretHolds makes the Secret of the current name hold the credentials.
func (r *OAuthClientReconciler) ensureSecretHolds(ctx context.Context, p *pass) error {
	sec, err := r.clientSecret(ctx, p)
	if err != nil {
		return err
	}
	p.secret = sec
	if p.remote.TokenEndpointAuthMethod == cfapi.AuthMethodNone {
		err := r.updateSecret(ctx, p, secretChange{})
		return err
	}
	if err := r.awaitSettledRotate(ctx, p); err != nil {
		return err
	}
	sec = p.secret
	held := heldSecret(sec, p.boundID)
	_, overlapRecorded := previousExpiry(sec)
	ownsSecrets := p.createdByUs || p.obj.Spec.SecretRotation != nil
	switch {
	case held == "" && p.createdByUs:
		return r.recoverSecret(ctx, p, "was missing from Secret "+p.obj.SecretName(), false)
	case held != "" && ownsSecrets && p.remote.HasRotatedSecret && !overlapRecorded:
		return r.recoverSecret(ctx, p, "was rotated in Cloudflare but the new secret never reached Secret "+p.obj.SecretName(), true)
	case held == "":
		p.secretUnknown = true
	}
	err = r.updateSecret(ctx, p, secretChange{})
	return err
}

// storeCreatedSecret writes the secret Create returned. Its rotation-id is the spec's
// current one: a fresh secret satisfies the rotation the spec asks for.
func (r *OAuthClientReconciler) storeCreatedSecret(ctx context.Context, p *pass, secret string) error {
	err := r.updateSecret(ctx, p, secretChange{
		clientSecret: secret,
		previous:     ptrTo(""),
		annotations: map[string]string{
			v1alpha1.AnnotationRotationID:              specRotationID(p.obj),
			v1alpha1.AnnotationPreviousSecretExpiresAt: "",
		},
	})
	return err
}

// recoverSecret obtains a secret we can hand out when ours is lost, keeping the secret
// consumers may still use valid for the overlap wherever Cloudflare allows it.
//
// Cloudflare holds at most two secrets and refuses a rotate while a rotated one exists,
// so a rotated secret is deleted first. When the Secret was merely deleted or emptied,
// the current secret survives the rotate as the rotated one: it stays valid until the
// overlap ends and, when this process still remembers it, is handed out as
// previous_client_secret. When a rotation's new secret never reached the Secret
// (newSecretLost), the secret consumers hold is the rotated one, and no second rotate is
// possible without deleting it: it is revoked, and a Warning says so. The rotate and
// the Secret write run detached from the reconcile's cancellation.
func (r *OAuthClientReconciler) recoverSecret(ctx context.Context, p *pass, what string, newSecretLost bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sequenceTimeout)
	defer cancel()
	account, id := p.accountID(), p.boundID
	key := client.ObjectKey{Namespace: p.obj.Namespace, Name: p.obj.SecretName()}
	previous := heldSecret(p.secret, id)
	if previous == "" {
		previous = r.secrets.lastKnown(key, id)
	}
	if p.remote.HasRotatedSecret {
		if err := r.deleteRotated(ctx, p); err != nil {
			return err
		}
	}
	secret, err := p.api.RotateOAuthClientSecret(ctx, account, id)
	if err != nil {
		return r.rotateFailed(ctx, p, err)
	}
	r.markRotated(p, true)
	overlap := rotationOverlap(p.obj)
	if newSecretLost {
		overlap, previous = 0, "" // the rotated secret is one nobody holds
	}
	expires := r.now().Add(overlap)
	if err := r.updateSecret(ctx, p, secretChange{
		clientSecret: secret,
		previous:     &previous,
		annotations: map[string]string{
			v1alpha1.AnnotationRotationID:              specRotationID(p.obj),
			v1alpha1.AnnotationPreviousSecretExpiresAt: expires.UTC().Format(time.RFC3339),
		},
	}); err != nil {
		return err
	}
	if newSecretLost {
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeWarning, v1alpha1.EventSecretRecovered, "Rotate",
			"the client secret %s; rotated it in Cloudflare and stored the new one. The previous secret was revoked: Cloudflare keeps at most two secrets", what)
		return r.finishOverlap(ctx, p)
	}
	r.Recorder.Eventf(p.obj, nil, corev1.EventTypeWarning, v1alpha1.EventSecretRecovered, "Rotate",
		"the client secret %s; rotated it in Cloudflare and stored the new one; the previous secret stays valid until %s", what, expires.UTC().Format(time.RFC3339))
	if overlap <= 0 {
		return r.finishOverlap(ctx, p)
	}
	p.wake(expires)
	return nil
}

// rotationOverlap is how long a previous secret stays valid after a rotation.
func rotationOverlap(obj *v1alpha1.OAuthClient) time.Duration {
	if sr := obj.Spec.SecretRotation; sr != nil && sr.Overlap != nil {
		return max(sr.Overlap.Duration, 0)
	}
	return defaultOverlap
}

// finishOverlap deletes the previous secret in Cloudflare, then from the Secret.
func (r *OAuthClientReconciler) finishOverlap(ctx context.Context, p *pass) error {
	if p.remote.HasRotatedSecret {
		if err := r.deleteRotated(ctx, p); err != nil {
			return err
		}
	}
	err := r.updateSecret(ctx, p, secretChange{
		previous:    ptrTo(""),
		annotations: map[string]string{v1alpha1.AnnotationPreviousSecretExpiresAt: ""},
	})
	return err
}

// deleteRotated deletes the client's rotated (old) secret; nothing to delete is done.
func (r *OAuthClientReconciler) deleteRotated(ctx context.Context, p *pass) error {
	err := p.api.DeleteRotatedOAuthClientSecret(ctx, p.accountID(), p.boundID)
	if err != nil && !cfapi.IsNotFound(err) && !cfapi.IsValidation(err) {
		return classify(opDeleteRotated, err)
	}
	r.markRotated(p, false)
	return nil
}

// markRotated records has_rotated_secret after our own rotate or delete-rotated call.
func (r *OAuthClientReconciler) markRotated(p *pass, rotated bool) {
	r.snapshots.Update(p.account, p.boundID, func(c *cfapi.OAuthClient) { c.HasRotatedSecret = rotated })
	p.remote.HasRotatedSecret = rotated
}

// clientSecret returns the object's client Secret, nil when it does not exist, or an
// error when a Secret of that name belongs to someone else.
func (r *OAuthClientReconciler) clientSecret(ctx context.Context, p *pass) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: p.obj.Namespace, Name: p.obj.SecretName()}
	sec, err := r.secrets.get(ctx, key)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(sec, p.obj) {
		return nil, newFailure(kindConflict, v1alpha1.ReasonSecretConflict,
			"Secret %s exists and is not owned by this OAuthClient; choose another spec.secretRef.name or delete it", key)
	}
	return sec, nil
}

// updateSecret applies a change to the client Secret (creating it if needed), writes it
// when anything differs, and leaves the result in p.secret. Secrets and rotation records of a different client (after a
// re-create) are dropped.
//
// A conflict (the Secret changed since we read it: a user's edit, a stale read) is
// retried from a fresh read: a new secret Cloudflare returned only once must land.
func (r *OAuthClientReconciler) updateSecret(ctx context.Context, p *pass, ch secretChange) error {
	key := client.ObjectKey{Namespace: p.obj.Namespace, Name: p.obj.SecretName()}
	var err error
	for range 5 {
		err = r.writeSecret(ctx, p, ch)
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			return err
		}
		r.secrets.forget(key) // read it again from the API server
	}
	return err
}

// writeSecret is one attempt of updateSecret. A template that cannot be rendered does
// not hold back a change of the record (a new secret must land); its failure is
// returned once the record is written, and nothing is written for it alone.
func (r *OAuthClientReconciler) writeSecret(ctx context.Context, p *pass, ch secretChange) error {
	existing, err := r.clientSecret(ctx, p)
	if err != nil {
		return err
	}
	sec, templateErr := r.desiredSecret(p, existing, ch)
	if err := controllerutil.SetControllerReference(p.obj, sec, r.Scheme()); err != nil {
		return err
	}
	p.obj.Status.SecretName = sec.Name
	if existing != nil && equality.Semantic.DeepEqual(existing, sec) {
		p.secret = existing
		return templateErr
	}
	done := r.secrets.beginWrite(client.ObjectKeyFromObject(sec))
	defer done()
	if existing == nil {
		err = r.Create(ctx, sec)
	} else {
		err = r.Update(ctx, sec)
	}
	if err != nil {
		return secretRefused(p, sec, err)
	}
	r.secrets.remember(sec)
	p.secret = sec
	r.secretWritten(p, existing, sec)
	return templateErr
}

// desiredSecret is the Secret as the change leaves it: the record of the bound
// client's secrets, what consumers read next to it (present), the rotation annotations
// and the hash of the data. Secrets and rotation records of a different client (after
// a re-create) are dropped.
func (r *OAuthClientReconciler) desiredSecret(p *pass, existing *corev1.Secret, ch secretChange) (*corev1.Secret, error) {
	obj := p.obj
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: obj.Namespace, Name: obj.SecretName()}, Type: corev1.SecretTypeOpaque}
	sameClient := existing != nil && string(existing.Data[v1alpha1.SecretKeyClientID]) == p.boundID
	if existing != nil {
		sec = existing.DeepCopy()
	}
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	if !sameClient {
		for _, k := range []string{v1alpha1.AnnotationRotationID, v1alpha1.AnnotationPreviousSecretExpiresAt, v1alpha1.AnnotationRotateSettledAt} {
			delete(sec.Annotations, k)
		}
	}
	for k, v := range ch.annotations {
		if v == "" {
			delete(sec.Annotations, k)
		} else {
			sec.Annotations[k] = v
		}
	}
	templateErr := r.present(p, sec, existing, r.secretData(p, existing, sameClient, ch), ch)
	if _, carried := ch.annotations[v1alpha1.AnnotationRotatedAt]; newSecretIn(existing, sec) && !carried {
		sec.Annotations[v1alpha1.AnnotationRotatedAt] = r.now().UTC().Format(time.RFC3339)
	}
	sec.Annotations[v1alpha1.AnnotationDataHash] = secretrender.Hash(sec.Data)
	sec.StringData = nil
	if sec.Labels == nil {
		sec.Labels = map[string]string{}
	}
	sec.Labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagerName
	sec.Labels[v1alpha1.LabelOAuthClient] = obj.Name
	return sec, templateErr
}

// newSecretIn reports whether sec holds a client_secret existing does not.
func newSecretIn(existing, sec *corev1.Secret) bool {
	secret := sec.Data[v1alpha1.SecretKeyClientSecret]
	return secret != nil && (existing == nil || string(existing.Data[v1alpha1.SecretKeyClientSecret]) != string(secret))
}

// secretWritten records a write users should hear of: a new secret, or a Secret
// re-rendered from its template.
func (r *OAuthClientReconciler) secretWritten(p *pass, existing, sec *corev1.Secret) {
	switch {
	case newSecretIn(existing, sec):
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventSecretWritten, "WriteSecret", "wrote client credentials to Secret %s", sec.Name)
	case existing != nil && p.obj.Spec.SecretTemplate != nil && existing.Annotations[v1alpha1.AnnotationDataHash] != sec.Annotations[v1alpha1.AnnotationDataHash]:
		r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventSecretWritten, "WriteSecret", "rendered Secret %s from spec.secretTemplate", sec.Name)
	}
}

// secretData is the record the client Secret must hold after the change:
// client_id, client_secret and previous_client_secret.
func (r *OAuthClientReconciler) secretData(p *pass, existing *corev1.Secret, sameClient bool, ch secretChange) map[string][]byte {
	data := map[string][]byte{v1alpha1.SecretKeyClientID: []byte(p.boundID)}
	if p.remote.TokenEndpointAuthMethod == cfapi.AuthMethodNone {
		return data // public clients have no secret
	}
	if sameClient {
		for _, k := range []string{v1alpha1.SecretKeyClientSecret, v1alpha1.SecretKeyPreviousClientSecret} {
			if v, ok := existing.Data[k]; ok {
				data[k] = v
			}
		}
	}
	if ch.clientSecret != "" {
		data[v1alpha1.SecretKeyClientSecret] = []byte(ch.clientSecret)
	}
	switch {
	case ch.previous == nil:
	case *ch.previous == "":
		delete(data, v1alpha1.SecretKeyPreviousClientSecret)
	default:
		data[v1alpha1.SecretKeyPreviousClientSecret] = []byte(*ch.previous)
	}
	return data
}

// mirrorRotationStatus copies the Secret's rotation record into status.
func mirrorRotationStatus(obj *v1alpha1.OAuthClient, sec *corev1.Secret) {
	if sec == nil || (obj.Spec.SecretRotation == nil && sec.Annotations[v1alpha1.AnnotationPreviousSecretExpiresAt] == "") {
		obj.Status.SecretRotation = nil
		return
	}
	st := &v1alpha1.SecretRotationStatus{LastRotationID: sec.Annotations[v1alpha1.AnnotationRotationID]}
	if t, ok := rotatedAt(sec); ok {
		st.LastRotatedAt = &metav1.Time{Time: t}
	}
	if t, ok := previousExpiry(sec); ok {
		st.PreviousSecretExpiresAt = &metav1.Time{Time: t.UTC().Truncate(time.Second)}
	}
	obj.Status.SecretRotation = st
}

func specRotationID(obj *v1alpha1.OAuthClient) string {
	if obj.Spec.SecretRotation == nil {
		return ""
	}
	return obj.Spec.SecretRotation.RotationID
}

func ptrTo[T any](v T) *T { return &v }
