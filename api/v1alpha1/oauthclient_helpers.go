package v1alpha1

// DefaultSecretNameSuffix is appended to the object's name when spec.secretRef is absent.
const DefaultSecretNameSuffix = "-oauth-client"

// SecretName is the name of the Secret the operator writes the client credentials into.
func (o *OAuthClient) SecretName() string {
	if o.Spec.SecretRef != nil && o.Spec.SecretRef.Name != "" {
		return o.Spec.SecretRef.Name
	}
	return o.Name + DefaultSecretNameSuffix
}

// CredentialsSecretName is the Secret named by spec.credentialsRef, or "" when the
// operator-wide default credentials apply.
func (o *OAuthClient) CredentialsSecretName() string {
	if o.Spec.CredentialsRef == nil {
		return ""
	}
	return o.Spec.CredentialsRef.Name
}

// Observing reports whether the operator may only read the remote client.
func (o *OAuthClient) Observing() bool {
	return o.Spec.ManagementPolicy == ManagementPolicyObserve
}

// EffectiveDeletionPolicy is spec.deletionPolicy or, when absent, the one that
// follows the management policy: Delete for Manage, Orphan for Observe.
func (o *OAuthClient) EffectiveDeletionPolicy() DeletionPolicy {
	switch {
	case o.Spec.DeletionPolicy != "":
		return o.Spec.DeletionPolicy
	case o.Observing():
		return DeletionPolicyOrphan
	default:
		return DeletionPolicyDelete
	}
}

// OrphanOnDelete reports whether deleting the object leaves the remote client in place.
func (o *OAuthClient) OrphanOnDelete() bool {
	return o.EffectiveDeletionPolicy() == DeletionPolicyOrphan
}

// PublishMode is spec.verification.publish, Manual when absent.
func (o *OAuthClient) PublishMode() PublishMode {
	if v := o.Spec.Verification; v != nil && v.Publish != "" {
		return v.Publish
	}
	return PublishManual
}

// BoundAccountID is the Cloudflare account of the object's client: the one the
// operator resolved (status.accountID), else spec.accountID. It is "" for an object
// with an accountRef that was never reconciled.
func (o *OAuthClient) BoundAccountID() string {
	if o.Status.AccountID != "" {
		return o.Status.AccountID
	}
	return o.Spec.AccountID
}

// AdoptedClientID is spec.clientID, or "" when the operator creates the client.
func (o *OAuthClient) AdoptedClientID() string {
	if o.Spec.ClientID == nil {
		return ""
	}
	return *o.Spec.ClientID
}

// PublicClient reports whether the client is a PKCE client with no secret.
func (o *OAuthClient) PublicClient() bool {
	return o.Spec.TokenEndpointAuthMethod != nil && *o.Spec.TokenEndpointAuthMethod == AuthMethodNone
}
