package v1alpha1

// Condition types. Ready is the summary; Reconciling and Stalled follow kstatus
// ("abnormal-true") semantics so that kstatus, Flux, Argo CD and `kubectl wait` understand
// the object without custom health checks.
const (
	// ConditionReady is True when the remote client exists and matches the spec.
	ConditionReady = "Ready"
	// ConditionReconciling is True while the operator is still working towards the spec.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when progress needs a human: a bad spec, bad credentials,
	// a client that does not exist. It is never set together with Reconciling.
	ConditionStalled = "Stalled"
	// ConditionClientURIVerified mirrors Cloudflare's DNS verification of the client URI
	// host. Its reason is the verification status.
	ConditionClientURIVerified = "ClientURIVerified"
	// ConditionPromoted is present when spec.visibility is public: True once Cloudflare
	// made the client public, False with the reason it cannot be yet.
	ConditionPromoted = "Promoted"
)

// Condition reasons. They are CamelCase and stable: alerts and scripts may match on them.
const (
	ReasonReconciled          = "Reconciled"
	ReasonCredentialsNotFound = "CredentialsNotFound"
	ReasonInvalidCredentials  = "InvalidCredentials"
	ReasonUnauthorized        = "Unauthorized"
	ReasonForbidden           = "Forbidden"
	ReasonClientNotFound      = "ClientNotFound"
	ReasonInvalidSpec         = "InvalidSpec"
	ReasonRateLimited         = "RateLimited"
	ReasonCloudflareError     = "CloudflareError"
	ReasonDriftDetected       = "DriftDetected"
	ReasonSecretConflict      = "SecretConflict"
	ReasonDeletionBlocked     = "DeletionBlocked"
	// ReasonAwaitingVerification: promotion to public waits for Cloudflare to verify the
	// client URI host.
	ReasonAwaitingVerification = "AwaitingVerification"
	// ReasonMissingPrerequisites: promotion to public needs spec changes (a logo, a name,
	// a non-identity scope, a client URI).
	ReasonMissingPrerequisites = "MissingPrerequisites"
	// ReasonPromoted: the client is public.
	ReasonPromoted = "Promoted"
	// ReasonUnknownScope: a scope is not in Cloudflare's catalogue (GET /oauth/scopes).
	ReasonUnknownScope = "UnknownScope"
	// ReasonRotationPending: a requested rotation waits for the previous overlap to end.
	ReasonRotationPending = "RotationPending"

	// Reasons of ClientURIVerified: the verification status in CamelCase, plus NoClientURI.
	ReasonVerificationPending    = "Pending"
	ReasonVerificationInProgress = "InProgress"
	ReasonVerificationVerified   = "Verified"
	ReasonVerificationFailed     = "Failed"
	ReasonNoClientURI            = "NoClientURI"
)

// Annotations the operator writes on OAuthClient objects. They are metadata, never spec.
const (
	// AnnotationClientID durably records the ID of a client the operator created, so the
	// binding survives the loss of status (a restore from backup, a status wipe).
	AnnotationClientID = "cloudflare.oauth-operator.dev/client-id"
	// AnnotationCreateIntent is written before a Create call and removed once the new ID
	// is recorded. Finding it without an ID means a Create may have happened whose
	// response was lost; the controller then searches the account for that client
	// instead of creating another.
	AnnotationCreateIntent = "cloudflare.oauth-operator.dev/create-intent"
	// AnnotationRotatedAt is set on the client Secret each time its client_secret changes,
	// so workloads can roll on it (for example through a checksum annotation or Reloader).
	AnnotationRotatedAt = "cloudflare.oauth-operator.dev/rotated-at"
	// AnnotationRotationID records, on the client Secret, the rotationID whose rotation
	// produced its client_secret.
	AnnotationRotationID = "cloudflare.oauth-operator.dev/rotation-id"
	// AnnotationPreviousSecretExpiresAt records, on the client Secret, when the previous
	// secret is deleted.
	AnnotationPreviousSecretExpiresAt = "cloudflare.oauth-operator.dev/previous-secret-expires-at"
	// AnnotationRestartVerification, set on an OAuthClient to a new value (any token,
	// e.g. a timestamp), restarts Cloudflare's DNS verification of the client URI once.
	AnnotationRestartVerification = "cloudflare.oauth-operator.dev/restart-verification"
	// LabelManagedBy marks Secrets written by the operator.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelOAuthClient names the OAuthClient a Secret belongs to.
	LabelOAuthClient = "cloudflare.oauth-operator.dev/oauthclient"
	// ManagerName is the value of LabelManagedBy and the field manager of our writes.
	ManagerName = "cloudflare-oauth-operator"
	// Finalizer guards remote deletion.
	Finalizer = "cloudflare.oauth-operator.dev/finalizer"
)

// Keys of the client Secret.
const (
	SecretKeyClientID             = "client_id"
	SecretKeyClientSecret         = "client_secret"
	SecretKeyPreviousClientSecret = "previous_client_secret"
	SecretKeyAccountID            = "account_id"
	SecretKeyIssuer               = "issuer"
)

// Keys of a credentials Secret.
const (
	CredentialsKeyAPIToken = "apiToken"
	CredentialsKeyEmail    = "email"
	CredentialsKeyAPIKey   = "apiKey"
)
