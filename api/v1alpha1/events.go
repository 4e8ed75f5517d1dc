package v1alpha1

// Event reasons. Like condition reasons they are CamelCase and stable: alerts, scripts
// and `kubectl get events --field-selector reason=...` may match on them. Normal events
// record what the operator did; Warning events record what a person may need to act on.
//
// Besides these, an object that becomes Stalled (or stalls for another reason) gets one
// Warning Event whose reason is the Stalled condition's reason (InvalidSpec,
// ClientAlreadyBound, DeletionBlocked, ...), and none on the retries that follow.
const (
	// EventCreated: the operator created the Cloudflare client.
	EventCreated = "Created"
	// EventRecreated (Warning): the bound client vanished from Cloudflare and the
	// operator created a new one; its secret is new.
	EventRecreated = "Recreated"
	// EventCreateResumed (Warning): a Create that ended without an answer had in fact
	// succeeded; the operator bound the client it found instead of creating another.
	EventCreateResumed = "CreateResumed"
	// EventUpdated: the operator PATCHed fields the spec changed.
	EventUpdated = "Updated"
	// EventDriftCorrected: the operator PATCHed fields changed outside Kubernetes.
	EventDriftCorrected = "DriftCorrected"
	// EventPromoted: the client was promoted to public.
	EventPromoted = "Promoted"
	// EventSecretWritten: the client credentials were written to the output Secret.
	EventSecretWritten = "SecretWritten"
	// EventSecretMoved: the output Secret was renamed; the credentials moved to the new
	// Secret without a rotation and the old Secret was deleted.
	EventSecretMoved = "SecretMoved"
	// EventSecretRecovered (Warning): the client secret was lost and recovered by a
	// rotation.
	EventSecretRecovered = "SecretRecovered"
	// EventSecretRotated: a new client secret was issued.
	EventSecretRotated = "SecretRotated"
	// EventRotatedSecretDeleted: the previous client secret was deleted at the end of
	// the overlap.
	EventRotatedSecretDeleted = "RotatedSecretDeleted"
	// EventVerificationRecordRequired: publish the TXT record in status.verificationRecord.
	EventVerificationRecordRequired = "VerificationRecordRequired"
	// EventClientURIVerified: Cloudflare verified the client URI host.
	EventClientURIVerified = "ClientURIVerified"
	// EventVerificationFailed (Warning): Cloudflare's verification of the client URI
	// host failed.
	EventVerificationFailed = "VerificationFailed"
	// EventVerificationRestarted: the operator asked Cloudflare to verify again.
	EventVerificationRestarted = "VerificationRestarted"
	// EventVerificationRestartSkipped: a restart was asked for a host already verified.
	EventVerificationRestartSkipped = "VerificationRestartSkipped"
	// EventVerificationRecordPublished: the operator published the verification record
	// (a Cloudflare DNS record or a DNSEndpoint).
	EventVerificationRecordPublished = "VerificationRecordPublished"
	// EventVerificationRecordReplaced: the verification text changed (a restarted
	// verification, a new host); the operator published the new record and deleted its
	// old one.
	EventVerificationRecordReplaced = "VerificationRecordReplaced"
	// EventVerificationRecordDeleted: the operator deleted its verification record (the
	// object went away with deletionPolicy Delete, or publishing was switched off).
	EventVerificationRecordDeleted = "VerificationRecordDeleted"
	// EventVerificationRecordNotDeleted (Warning): the object went away but its
	// verification record could not be deleted; the message says why. A leftover TXT
	// record is harmless, so the deletion is not held for it.
	EventVerificationRecordNotDeleted = "VerificationRecordNotDeleted"
	// EventDeleted: the Cloudflare client was deleted with the object.
	EventDeleted = "Deleted"
	// EventClientNotDeleted (Warning): the object went away but the Cloudflare client was
	// left in place; the message says why.
	EventClientNotDeleted = "ClientNotDeleted"
	// EventDeletionBlocked (Warning): the object cannot be released; the message gives
	// the way out.
	EventDeletionBlocked = ReasonDeletionBlocked
	// EventRateLimited (Warning): Cloudflare refused calls for the rate limit.
	EventRateLimited = ReasonRateLimited
)
