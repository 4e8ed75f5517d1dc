package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SecretReference names a Secret in a given namespace: the platform team's, which
// application teams need no access to.
type SecretReference struct {
	// namespace of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespace string `json:"namespace"`
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// AllowedNamespaces says which namespaces' OAuthClients may use an account. A namespace
// is allowed when it is named, or when its labels match the selector. Empty allows none.
type AllowedNamespaces struct {
	// names are the allowed namespaces, by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	Names []string `json:"names,omitempty"`
	// selector allows the namespaces whose labels match it. An empty selector ({})
	// matches every namespace; leave it out to allow only the named ones.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// CloudflareAccountSpec is a Cloudflare account and the token that reaches it, shared
// by the namespaces it allows.
type CloudflareAccountSpec struct {
	// accountID is the 32-character hexadecimal ID of the Cloudflare account.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{32}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="accountID is immutable: create another CloudflareAccount for another account"
	AccountID string `json:"accountID"`

	// credentialsRef names the Secret with the Cloudflare credentials (key apiToken, or
	// email and apiKey), in a namespace the platform team controls. Application teams
	// that use this account need no access to it.
	// +required
	CredentialsRef SecretReference `json:"credentialsRef"`

	// allowedNamespaces says which namespaces' OAuthClients may use this account (by
	// spec.accountRef). Absent or empty allows none: access is granted, never assumed.
	// +optional
	AllowedNamespaces *AllowedNamespaces `json:"allowedNamespaces,omitempty"`

	// requestBudget paces the Cloudflare calls of this account's token, overriding the
	// manager's --cloudflare-request-budget for its user, as N/DURATION (e.g. 600/5m),
	// or 0 for no pacing. Cloudflare allows 1,200 requests per 5 minutes per user. When
	// absent, the manager's --cloudflare-request-budget applies.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^(0|[1-9][0-9]*/([0-9]+(ns|us|µs|ms|s|m|h))+)$`
	RequestBudget string `json:"requestBudget,omitempty"`
}

// TokenStatus is what Cloudflare's verify-token endpoint says of the account's token.
type TokenStatus struct {
	// id is the token's ID (not the token).
	// +optional
	ID string `json:"id,omitempty"`
	// status is Cloudflare's token status: active, disabled or expired.
	// +optional
	Status string `json:"status,omitempty"`
	// expiresOn is when the token expires; absent when it does not.
	// +optional
	ExpiresOn *metav1.Time `json:"expiresOn,omitempty"`
	// notBefore is when the token starts to work; absent when it is not limited.
	// +optional
	NotBefore *metav1.Time `json:"notBefore,omitempty"`
	// kind is how the token was verified: User (GET /user/tokens/verify), Account (GET
	// /accounts/{id}/tokens/verify), or GlobalAPIKey (e-mail and key, which Cloudflare
	// cannot verify this way).
	// +optional
	Kind string `json:"kind,omitempty"`
}

// RequestBudgetStatus is what the last Cloudflare answer said of the rate limit.
type RequestBudgetStatus struct {
	// remaining is how many requests Cloudflare's window had left at the last answer
	// (its Ratelimit header).
	// +optional
	Remaining *int64 `json:"remaining,omitempty"`
	// observedAt is when that answer came.
	// +optional
	ObservedAt *metav1.Time `json:"observedAt,omitempty"`
}

// CloudflareAccountStatus is the observed state of the account and its token.
type CloudflareAccountStatus struct {
	// token is what Cloudflare says of the token.
	// +optional
	Token *TokenStatus `json:"token,omitempty"`
	// boundClients is the number of OAuthClients that use this account by
	// spec.accountRef.
	// +optional
	BoundClients int32 `json:"boundClients,omitempty"`
	// requestBudget is the rate-limit budget left, from the last Ratelimit header.
	// +optional
	RequestBudget *RequestBudgetStatus `json:"requestBudget,omitempty"`
	// lastSyncTime is when the token was last verified.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
	// observedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions are Ready (the token works) and, when a person must act, Stalled.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CloudflareAccount is a Cloudflare account and the token that reaches it, owned by the
// platform team and shared with the namespaces it allows: their OAuthClients name it in
// spec.accountRef instead of holding a copy of the token.
//
// +kubebuilder:object:root=true
// +kubebuilder:metadata:annotations="helm.sh/resource-policy=keep"
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-options=Prune=false,Delete=false"
// +kubebuilder:metadata:annotations="kustomize.toolkit.fluxcd.io/prune=disabled"
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cfaccount,categories=cloudflare
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.spec.accountID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Token",type=string,JSONPath=`.status.token.status`
// +kubebuilder:printcolumn:name="Expires",type=date,JSONPath=`.status.token.expiresOn`
// +kubebuilder:printcolumn:name="Clients",type=integer,JSONPath=`.status.boundClients`
// +kubebuilder:printcolumn:name="Budget",type=integer,JSONPath=`.status.requestBudget.remaining`
// +kubebuilder:printcolumn:name="Last Sync",type=date,JSONPath=`.status.lastSyncTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CloudflareAccount struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the account, its credentials and who may use them.
	// +required
	Spec CloudflareAccountSpec `json:"spec"`

	// status is the observed state, written by the operator.
	// +optional
	Status CloudflareAccountStatus `json:"status,omitempty"`
}

// CloudflareAccountList is a list of CloudflareAccount.
//
// +kubebuilder:object:root=true
type CloudflareAccountList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CloudflareAccount `json:"items"`
}

// AccountReference names a CloudflareAccount.
type AccountReference struct {
	// name of the CloudflareAccount (cluster-scoped).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}
