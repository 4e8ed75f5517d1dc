package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// Renaming spec.secretRef.name moves the credentials; it never rotates. The Secret the
// object wrote before (status.secretName) is ours, so its client_secret, any previous
// secret still in its overlap, and the rotation record are copied into the new Secret
// before anything looks for a lost secret there. The old Secret is deleted only once
// the new one holds them. A crash in between leaves both, and the next pass finishes
// the move: the copy is skipped when the new Secret already holds the secret.

// renamedSecret returns the Secret the object wrote under its previous name, when
// spec.secretRef.name changed and that Secret still exists and is ours; nil otherwise.
func (r *OAuthClientReconciler) renamedSecret(ctx context.Context, p *pass) (*corev1.Secret, error) {
	oldName := p.obj.Status.SecretName
	if oldName == "" || oldName == p.obj.SecretName() {
		return nil, nil
	}
	old, err := r.secrets.get(ctx, client.ObjectKey{Namespace: p.obj.Namespace, Name: oldName})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !metav1.IsControlledBy(old, p.obj) {
		return nil, nil // not ours (any more): never touch it
	}
	return old, nil
}

// carrySecretOver copies the client secret and its rotation record from the old Secret
// into the new one, unless the new one already holds the client's secret.
func (r *OAuthClientReconciler) carrySecretOver(ctx context.Context, p *pass, old *corev1.Secret) error {
	secret := heldSecret(old, p.boundID)
	if secret == "" {
		return nil // nothing Cloudflare could not give again
	}
	current, err := r.clientSecret(ctx, p)
	if err != nil {
		return err // a Secret of the new name that is not ours: SecretConflict, old kept
	}
	if heldSecret(current, p.boundID) != "" {
		return nil
	}
	previous := string(old.Data[v1alpha1.SecretKeyPreviousClientSecret])
	annotations := map[string]string{}
	for _, k := range []string{v1alpha1.AnnotationRotationID, v1alpha1.AnnotationPreviousSecretExpiresAt, v1alpha1.AnnotationRotateSettledAt} {
		annotations[k] = old.Annotations[k] // "" removes it from the new Secret
	}
	if t := old.Annotations[v1alpha1.AnnotationRotatedAt]; t != "" {
		annotations[v1alpha1.AnnotationRotatedAt] = t // when the secret was issued, not moved
	}
	return r.updateSecret(ctx, p, secretChange{clientSecret: secret, previous: &previous, annotations: annotations, random: randomsOf(old)})
}

// deleteRenamedSecret deletes the old Secret once the new one is in place. If the
// deletion fails, status keeps naming the old Secret so the next pass tries again.
func (r *OAuthClientReconciler) deleteRenamedSecret(ctx context.Context, p *pass, old *corev1.Secret) error {
	key := client.ObjectKeyFromObject(old)
	err := r.Delete(ctx, old, client.Preconditions{UID: &old.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		p.obj.Status.SecretName = old.Name
		return fmt.Errorf("deleting Secret %s after the rename to %s: %w", old.Name, p.obj.SecretName(), err)
	}
	r.secrets.forget(key)
	r.Recorder.Eventf(p.obj, nil, corev1.EventTypeNormal, v1alpha1.EventSecretMoved, "WriteSecret",
		"moved the client credentials from Secret %s to Secret %s without a rotation, and deleted %s", old.Name, p.obj.SecretName(), old.Name)
	return nil
}
