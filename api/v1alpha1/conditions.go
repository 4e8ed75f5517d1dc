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
	// ConditionVerificationRecordPublished is present when the operator publishes the
	// verification record (spec.verification.publish CloudflareDNS or ExternalDNS):
	// True with the record's ID or the DNSEndpoint's name, False with what stops it.
	ConditionVerificationRecordPublished = "VerificationRecordPublished"
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
	// ReasonClientAlreadyBound: another OAuthClient (named in the message) is bound to
	// the Cloudflare client this one names. The first binding wins, cluster-wide.
	ReasonClientAlreadyBound = "ClientAlreadyBound"
	// ReasonVerificationFailed (on Ready and Stalled): promotion to public needs a
	// verified client URI host and Cloudflare's verification failed or timed out. A
	// person must publish the record and restart verification.
	ReasonVerificationFailed = "VerificationFailed"
	// ReasonResumingCreate: a Create ended without a clear answer (timeout, reset, 5xx);
	// the operator waits for it to settle and searches the account for the client
	// instead of creating another.
	ReasonResumingCreate = "ResumingCreate"
	// ReasonRotationSettling: a rotate ended without a clear answer; the operator waits
	// for it to settle and looks at the client again before deciding anything about its
	// secrets, instead of rotating a second time on top of it.
	ReasonRotationSettling = "RotationSettling"
	// ReasonInvalidSecretTemplate (on Ready and Stalled): spec.secretTemplate cannot be
	// rendered (a template that does not parse, an unknown variable or function, data
	// over the 1 MiB a Secret holds, a key that would be empty). The message names the
	// key and the parser's message, never a value; nothing is written until it is fixed.
	ReasonInvalidSecretTemplate = "InvalidSecretTemplate"

	// ReasonNamespaceNotAllowed: the CloudflareAccount named in spec.accountRef does not
	// allow this namespace; the account is never called for the object.
	ReasonNamespaceNotAllowed = "NamespaceNotAllowed"
	// ReasonAccountNotFound: spec.accountRef names no CloudflareAccount.
	ReasonAccountNotFound = "AccountNotFound"
	// ReasonAccountNotReady: the CloudflareAccount's token does not work; its Ready
	// condition says why.
	ReasonAccountNotReady = "AccountNotReady"
	// ReasonAccountMismatch: the object is bound to a client in one account and its
	// accountRef names another; a client cannot move between accounts.
	ReasonAccountMismatch = "AccountMismatch"
	// ReasonDefaultCredentialsNotAllowed: the object names no credentials, and the
	// operator-wide default credentials are not allowed in its namespace.
	ReasonDefaultCredentialsNotAllowed = "DefaultCredentialsNotAllowed"

	// Reasons of a CloudflareAccount's Ready condition, besides CredentialsNotFound and
	// InvalidCredentials.
	//
	// ReasonTokenVerified: Cloudflare says the token is active.
	ReasonTokenVerified = "TokenVerified"
	// ReasonTokenInvalid: Cloudflare does not know the token (revoked, or mistyped).
	ReasonTokenInvalid = "TokenInvalid"
	// ReasonTokenExpired: the token expired (or is not valid yet).
	ReasonTokenExpired = "TokenExpired"
	// ReasonTokenDisabled: the token was disabled in Cloudflare.
	ReasonTokenDisabled = "TokenDisabled"
	// ReasonMissingPermissions: the token works but cannot read the account's OAuth
	// clients.
	ReasonMissingPermissions = "MissingPermissions"

	// Reasons of VerificationRecordPublished, also on Ready and Stalled when publishing
	// fails for a reason a person must fix.
	//
	// ReasonRecordPublished: the record holds Cloudflare's verification text.
	ReasonRecordPublished = "RecordPublished"
	// ReasonNoVerificationRecord: Cloudflare has given no verification text yet.
	ReasonNoVerificationRecord = "NoVerificationRecord"
	// ReasonZoneNotFound: no zone the DNS credentials can see holds the client URI host
	// (or spec.verification.cloudflareDNS.zoneID names one they cannot see).
	ReasonZoneNotFound = "ZoneNotFound"
	// ReasonDNSForbidden: Cloudflare refused a DNS call; the message names the missing
	// permission.
	ReasonDNSForbidden = "DNSForbidden"
	// ReasonDNSEndpointCRDMissing: publish ExternalDNS, but external-dns's DNSEndpoint
	// CRD is not installed.
	ReasonDNSEndpointCRDMissing = "DNSEndpointCRDMissing"
	// ReasonDNSEndpointConflict: a DNSEndpoint of the name this object would use exists
	// and is not owned by it.
	ReasonDNSEndpointConflict = "DNSEndpointConflict"

	// Reasons of ClientURIVerified: the verification status in CamelCase, plus NoClientURI.
	ReasonVerificationPending      = "Pending"
	ReasonVerificationInProgress   = "InProgress"
	ReasonVerificationVerified     = "Verified"
	ReasonVerificationStatusFailed = "Failed"
	ReasonNoClientURI              = "NoClientURI"
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
	// AnnotationRotateSettledAt is written on the client Secret after a rotate that ended
	// without a clear answer (timeout, reset, 5xx): the moment after which it cannot
	// still commit. Nothing is decided about the secrets before a List sent after it.
	AnnotationRotateSettledAt = "cloudflare.oauth-operator.dev/rotate-settled-at"
	// AnnotationPreviousSecretExpiresAt records, on the client Secret, when the previous
	// secret is deleted.
	AnnotationPreviousSecretExpiresAt = "cloudflare.oauth-operator.dev/previous-secret-expires-at"
	// AnnotationCreateSettledAt is written after a Create that ended without a clear
	// answer (timeout, reset, 5xx): the moment after which that Create cannot still
	// commit. The search for its client uses a List that starts after it.
	AnnotationCreateSettledAt = "cloudflare.oauth-operator.dev/create-settled-at"
	// AnnotationRestartVerification, set on an OAuthClient to a new value (any token,
	// e.g. a timestamp), restarts Cloudflare's DNS verification of the client URI once,
	// while the verification is failed or pending.
	AnnotationRestartVerification = "cloudflare.oauth-operator.dev/restart-verification"
	// AnnotationVerificationRestarted durably records the restart-verification value the
	// operator has acted on, so a value never fires twice, even after status is lost.
	AnnotationVerificationRestarted = "cloudflare.oauth-operator.dev/verification-restarted"
	// AnnotationCloudflareUser, on a credentials Secret, names the Cloudflare user its
	// token belongs to (any stable string, e.g. the user's e-mail). Cloudflare's rate
	// limit is per user: credentials naming the same user share one request budget.
	// Without it a token is a user of its own; legacy e-mail + key credentials are
	// grouped by their e-mail automatically.
	AnnotationCloudflareUser = "cloudflare.oauth-operator.dev/cloudflare-user"
	// AnnotationDataHash is set on the client Secret to a hash of its data
	// ("sha256:<hex>"), which changes exactly when the data does: after a rotation, at the
	// end of an overlap, after a template edit. Reloader-style tools and pod-template
	// checksums roll workloads on it.
	AnnotationDataHash = "cloudflare.oauth-operator.dev/data-hash"
	// AnnotationTemplateLabels and AnnotationTemplateAnnotations list, comma-separated,
	// the labels and annotations the client Secret got from spec.secretTemplate.metadata,
	// so that an entry removed from the template is removed from the Secret, and nobody
	// else's is.
	AnnotationTemplateLabels      = "cloudflare.oauth-operator.dev/template-labels"
	AnnotationTemplateAnnotations = "cloudflare.oauth-operator.dev/template-annotations"
	// LabelManagedBy marks Secrets written by the operator.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelOAuthClient names the OAuthClient a Secret belongs to.
	LabelOAuthClient = "cloudflare.oauth-operator.dev/oauthclient"
	// ManagerName is the value of LabelManagedBy and the field manager of our writes.
	ManagerName = "cloudflare-oauth-operator"
	// Finalizer guards remote deletion.
	Finalizer = "cloudflare.oauth-operator.dev/finalizer"
	// FinalizerCredentialsInUse is set on a credentials Secret while an OAuthClient with
	// deletionPolicy Delete uses it, so that deleting a namespace (which deletes the
	// Secret and the objects together) cannot leave the operator without the credentials
	// it needs to delete the remote clients. It is removed with the last such object.
	FinalizerCredentialsInUse = "cloudflare.oauth-operator.dev/credentials-in-use"
	// FinalizerAccountInUse holds a CloudflareAccount while OAuthClients name it in
	// spec.accountRef: deleting it would leave them without credentials, unable even to
	// delete their Cloudflare clients. It is removed once none does.
	FinalizerAccountInUse = "cloudflare.oauth-operator.dev/account-in-use"
	// LabelDefaultCredentials, set to "true" on a namespace, opts it in to the
	// operator-wide default credentials (the manager's default
	// --default-credentials-namespace-selector).
	LabelDefaultCredentials = "cloudflare.oauth-operator.dev/default-credentials"
)

// Keys of the client Secret.
const (
	SecretKeyClientID             = "client_id"
	SecretKeyClientSecret         = "client_secret"
	SecretKeyPreviousClientSecret = "previous_client_secret"
	SecretKeyAccountID            = "account_id"
	SecretKeyIssuer               = "issuer"
	// SecretKeyStableRandomPrefix, followed by its name, is where a value of the
	// template function stableRandom is kept, so that it survives re-renders.
	SecretKeyStableRandomPrefix = "stable-random."
)

// Keys of a credentials Secret.
const (
	CredentialsKeyAPIToken = "apiToken"
	CredentialsKeyEmail    = "email"
	CredentialsKeyAPIKey   = "apiKey"
)
