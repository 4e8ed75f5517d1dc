package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GrantType is an OAuth 2.0 grant type Cloudflare accepts.
// +kubebuilder:validation:Enum=authorization_code;refresh_token
type GrantType string

// Grant types.
const (
	// GrantTypeAuthorizationCode: the authorization code flow, the only flow Cloudflare
	// supports; required in spec.grantTypes.
	GrantTypeAuthorizationCode GrantType = "authorization_code"
	// GrantTypeRefreshToken: the client may exchange a refresh token for new tokens;
	// Cloudflare then adds the offline_access scope.
	GrantTypeRefreshToken GrantType = "refresh_token"
)

// ResponseType is an OAuth 2.0 response type Cloudflare accepts.
// +kubebuilder:validation:Enum=token;id_token;code
type ResponseType string

// Response types.
const (
	// ResponseTypeToken: an access token.
	ResponseTypeToken ResponseType = "token"
	// ResponseTypeIDToken: an OpenID Connect ID token; Cloudflare then adds the openid
	// scope.
	ResponseTypeIDToken ResponseType = "id_token"
	// ResponseTypeCode: an authorization code, for the authorization code flow.
	ResponseTypeCode ResponseType = "code"
)

// TokenEndpointAuthMethod is how the client authenticates at the token endpoint.
// +kubebuilder:validation:Enum=none;client_secret_basic;client_secret_post
type TokenEndpointAuthMethod string

// Token endpoint authentication methods.
const (
	// AuthMethodNone: a public (PKCE) client, which has no client secret.
	AuthMethodNone TokenEndpointAuthMethod = "none"
	// AuthMethodClientSecretBasic: a confidential client that sends its secret in an
	// HTTP Basic Authorization header.
	AuthMethodClientSecretBasic TokenEndpointAuthMethod = "client_secret_basic"
	// AuthMethodClientSecretPost: a confidential client that sends its secret in the
	// form body.
	AuthMethodClientSecretPost TokenEndpointAuthMethod = "client_secret_post"
)

// Visibility says who may authorize the client.
// +kubebuilder:validation:Enum=private;public
type Visibility string

// Visibilities.
const (
	// VisibilityPrivate: only members of the account may authorize the client. New
	// clients are private.
	VisibilityPrivate Visibility = "private"
	// VisibilityPublic: any Cloudflare user may authorize the client. Promotion is
	// permanent.
	VisibilityPublic Visibility = "public"
)

// DeletionPolicy says what happens to the Cloudflare client when the object is deleted.
// When absent it follows the management policy: Delete for Manage, Orphan for Observe.
// +kubebuilder:validation:Enum=Delete;Orphan
type DeletionPolicy string

// Deletion policies.
const (
	// DeletionPolicyDelete: the operator deletes the Cloudflare client, revoking every
	// authorization granted to it.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyOrphan: the Cloudflare client stays in Cloudflare.
	DeletionPolicyOrphan DeletionPolicy = "Orphan"
)

// ManagementPolicy says whether the operator may write to Cloudflare.
// +kubebuilder:validation:Enum=Manage;Observe
type ManagementPolicy string

// Management policies.
const (
	// ManagementPolicyManage: the operator creates, updates and deletes the client.
	ManagementPolicyManage ManagementPolicy = "Manage"
	// ManagementPolicyObserve: the operator only reads the client and reports drift; it
	// never writes to Cloudflare.
	ManagementPolicyObserve ManagementPolicy = "Observe"
)

// PublishMode says who publishes the DNS TXT record that verifies the client URI host.
// +kubebuilder:validation:Enum=Manual;CloudflareDNS;ExternalDNS
type PublishMode string

// Publish modes.
const (
	// PublishManual: a person publishes status.verificationRecord.
	PublishManual PublishMode = "Manual"
	// PublishCloudflareDNS: the operator creates the record through Cloudflare's DNS API.
	PublishCloudflareDNS PublishMode = "CloudflareDNS"
	// PublishExternalDNS: the operator writes a DNSEndpoint for external-dns.
	PublishExternalDNS PublishMode = "ExternalDNS"
)

// Verification says how the DNS TXT record that lets Cloudflare verify the client URI
// host gets published.
// +kubebuilder:validation:XValidation:rule="!has(self.cloudflareDNS) || (has(self.publish) && self.publish == 'CloudflareDNS')",message="cloudflareDNS applies only with publish: CloudflareDNS",fieldPath=".cloudflareDNS",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.externalDNS) || (has(self.publish) && self.publish == 'ExternalDNS')",message="externalDNS applies only with publish: ExternalDNS",fieldPath=".externalDNS",reason=FieldValueForbidden
type Verification struct {
	// publish is who publishes the record in status.verificationRecord: Manual (a
	// person; the default), CloudflareDNS (the operator, through Cloudflare's DNS API,
	// in the zone that holds the client URI host) or ExternalDNS (the operator writes a
	// DNSEndpoint, and external-dns publishes it). The record is kept while the client
	// lives, and removed with the object when deletionPolicy is Delete.
	// +optional
	// +kubebuilder:default=Manual
	Publish PublishMode `json:"publish,omitempty"`

	// cloudflareDNS configures publish: CloudflareDNS.
	// +optional
	CloudflareDNS *CloudflareDNSPublishing `json:"cloudflareDNS,omitempty"`

	// externalDNS configures publish: ExternalDNS.
	// +optional
	ExternalDNS *ExternalDNSPublishing `json:"externalDNS,omitempty"`
}

// CloudflareDNSPublishing configures publication through Cloudflare's DNS API.
type CloudflareDNSPublishing struct {
	// zoneID is the 32-character hexadecimal ID of the zone that holds the client URI
	// host. When absent, the operator looks the zone up by name, walking up from the host
	// (that needs Zone → Zone → Read on the zone; a token limited to one zone usually
	// cannot look zones up by name, so give it the zone ID).
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{32}$`
	ZoneID string `json:"zoneID,omitempty"`

	// credentialsRef names a Secret in this namespace with the Cloudflare credentials
	// for DNS (keys as for spec.credentialsRef): a token with Zone → DNS → Edit (and
	// Zone → Zone → Read unless zoneID is set). When absent, the client's own
	// credentials (spec.credentialsRef or the default credentials) are used; with
	// spec.accountRef it is required, as a CloudflareAccount's token is shared for OAuth
	// clients only. Its calls share the per-user request budget.
	// +optional
	CredentialsRef *CredentialsSecretReference `json:"credentialsRef,omitempty"`
}

// ExternalDNSPublishing configures publication through an external-dns DNSEndpoint.
type ExternalDNSPublishing struct {
	// recordTTL is the record's TTL in seconds, from 1 to 86400. When absent,
	// external-dns decides.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	RecordTTL *int64 `json:"recordTTL,omitempty"`
}

// CredentialsSecretReference names the Secret, in the namespace of the OAuthClient,
// that holds the Cloudflare credentials the operator reads.
type CredentialsSecretReference struct {
	// name of the Secret, in the same namespace as the OAuthClient.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// OutputSecretReference names the Secret, in the namespace of the OAuthClient, that
// the operator writes and owns.
type OutputSecretReference struct {
	// name of the Secret, in the same namespace as the OAuthClient. Renaming it moves
	// the credentials to the new Secret, without a rotation, and deletes the old one.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// OAuthClientSpec is the desired state of a Cloudflare OAuth client.
//
// List and string bounds (maxItems, maxLength) keep objects small and bound the cost of
// the CEL rules, which the apiserver estimates from them.
//
// Every Cloudflare field below is optional in the schema and follows one rule: a field
// that is absent is unmanaged (the operator never sends it to Cloudflare), and a field
// that is present, including an explicitly empty list, is managed and kept equal to the
// spec (except redirectURIs, which may never be empty). When clientID is empty the
// operator creates the client, so the fields Cloudflare requires on create become
// required.
//
// +kubebuilder:validation:XValidation:rule="has(self.accountID) != has(self.accountRef)",message="set exactly one of accountID (with credentialsRef or the default credentials) and accountRef (a CloudflareAccount)",fieldPath=".accountRef",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!has(self.accountRef) || !has(self.credentialsRef)",message="credentialsRef applies only with accountID: an accountRef brings its account's credentials",fieldPath=".credentialsRef",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.clientName)",message="clientName is required when clientID is not set (the operator creates the client)",fieldPath=".clientName",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.redirectURIs)",message="redirectURIs is required when clientID is not set (the operator creates the client)",fieldPath=".redirectURIs",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.grantTypes)",message="grantTypes is required when clientID is not set (the operator creates the client)",fieldPath=".grantTypes",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.responseTypes)",message="responseTypes is required when clientID is not set (the operator creates the client)",fieldPath=".responseTypes",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.scopes)",message="scopes is required when clientID is not set (the operator creates the client)",fieldPath=".scopes",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="has(self.clientID) || has(self.tokenEndpointAuthMethod)",message="tokenEndpointAuthMethod is required when clientID is not set (the operator creates the client)",fieldPath=".tokenEndpointAuthMethod",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.clientID) || (has(self.clientID) && self.clientID == oldSelf.clientID)",message="clientID cannot be changed or removed once set; create a new OAuthClient to bind another client",fieldPath=".clientID",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.managementPolicy) || self.managementPolicy != 'Observe' || has(self.clientID)",message="managementPolicy Observe requires clientID: the operator only reads an existing client",fieldPath=".managementPolicy",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.tokenEndpointAuthMethod) || !has(self.tokenEndpointAuthMethod) || (oldSelf.tokenEndpointAuthMethod == 'none') == (self.tokenEndpointAuthMethod == 'none')",message="tokenEndpointAuthMethod cannot switch between none and a secret method (Cloudflare refuses it); create a new OAuthClient instead",fieldPath=".tokenEndpointAuthMethod",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.secretRotation) || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'",message="secretRotation is not available with tokenEndpointAuthMethod none: public PKCE clients have no secret",fieldPath=".secretRotation",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.optionalScopes) || (has(self.scopes) && self.optionalScopes.all(s, s in self.scopes))",message="every optionalScopes entry must also be listed in scopes",fieldPath=".optionalScopes",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!has(self.verification) || !has(self.verification.publish) || self.verification.publish == 'Manual' || has(self.clientURI)",message="verification.publish needs clientURI: the record verifies the client URI host",fieldPath=".verification.publish",reason=FieldValueInvalid
// +kubebuilder:validation:XValidation:rule="!has(self.verification) || !has(self.verification.publish) || self.verification.publish == 'Manual' || !has(self.managementPolicy) || self.managementPolicy != 'Observe'",message="verification.publish other than Manual needs managementPolicy Manage: an observed client is never written to",fieldPath=".verification.publish",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.managementPolicy) || self.managementPolicy != 'Observe' || !has(self.deletionPolicy) || self.deletionPolicy != 'Delete'",message="deletionPolicy Delete needs managementPolicy Manage: the operator never writes to an observed client, so it never deletes one",fieldPath=".deletionPolicy",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="!has(self.secretTemplate) || !has(self.secretTemplate.profile) || self.secretTemplate.profile != 'envoy-gateway' || !has(self.tokenEndpointAuthMethod) || self.tokenEndpointAuthMethod != 'none'",message="secretTemplate profile envoy-gateway needs a client secret, and a public client (tokenEndpointAuthMethod none) has none: Envoy's OAuth2 filter requires one",fieldPath=".secretTemplate.profile",reason=FieldValueForbidden
// +kubebuilder:validation:XValidation:rule="(has(self.secretTemplate) && has(self.secretTemplate.type) ? self.secretTemplate.type : 'Opaque') == (has(oldSelf.secretTemplate) && has(oldSelf.secretTemplate.type) ? oldSelf.secretTemplate.type : 'Opaque') || has(self.secretRef) != has(oldSelf.secretRef) || (has(self.secretRef) && self.secretRef.name != oldSelf.secretRef.name)",message="secretTemplate.type can change only together with spec.secretRef.name: Kubernetes never changes a Secret's type",fieldPath=".secretTemplate",reason=FieldValueForbidden
type OAuthClientSpec struct {
	// accountID is the 32-character hexadecimal ID of the Cloudflare account that owns the
	// client, reached with credentialsRef (or the operator-wide default credentials).
	// Exactly one of accountID and accountRef is set. It cannot be changed: a client
	// cannot move between accounts (it may be replaced by an accountRef naming the same
	// account).
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{32}$`
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="accountID is immutable"
	AccountID string `json:"accountID,omitempty"`

	// accountRef names a CloudflareAccount: the account and the token the platform team
	// shares with this namespace. Exactly one of accountID and accountRef is set; with
	// accountRef there is no credentialsRef. The account must allow this namespace.
	// +optional
	AccountRef *AccountReference `json:"accountRef,omitempty"`

	// credentialsRef names a Secret in this namespace holding the Cloudflare credentials:
	// either the key `apiToken` (an API token with OAuth Client Write), or the keys
	// `email` and `apiKey` (a legacy global API key). When absent, the operator-wide
	// default credentials apply, in namespaces the operator allows them for. Only with
	// accountID.
	// +optional
	CredentialsRef *CredentialsSecretReference `json:"credentialsRef,omitempty"`

	// clientID adopts an existing Cloudflare OAuth client instead of creating one. It may
	// be added to an object that had none, but once set it cannot change. Cloudflare
	// returns a client's secret only when it is created, so an adopted confidential client
	// gets its secret written only after a rotation.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_-]+$`
	ClientID *string `json:"clientID,omitempty"`

	// clientName is the name shown to people on Cloudflare's consent screen.
	// Required when clientID is not set.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	ClientName *string `json:"clientName,omitempty"`

	// clientURI is the client's home page, an absolute https URL. Cloudflare verifies the
	// URL's host through a DNS TXT record (see status.verificationRecord); a verified host
	// is required to promote the client to public, and cannot change afterwards.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="clientURI must be an absolute https URL, e.g. https://app.example.com"
	ClientURI *string `json:"clientURI,omitempty"`

	// logoURI is the URL of the client's logo, an absolute https URL. Required before
	// promotion to public.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="logoURI must be an absolute https URL"
	LogoURI *string `json:"logoURI,omitempty"`

	// policyURI is the URL of the client's privacy policy, an absolute https URL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="policyURI must be an absolute https URL"
	PolicyURI *string `json:"policyURI,omitempty"`

	// tosURI is the URL of the client's terms of service, an absolute https URL.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="tosURI must be an absolute https URL"
	TosURI *string `json:"tosURI,omitempty"`

	// redirectURIs are the URIs Cloudflare may redirect to after authorization. Each is
	// an absolute https URL, or http on localhost or 127.0.0.1 for local development,
	// without a fragment (OAuth 2.0, RFC 6749 section 3.1.2), so any '#' is refused: in a
	// URI it can only start a fragment (RFC 3986). A query string is allowed.
	// Required when clientID is not set. When present the list holds at least one URI,
	// also when adopting: Cloudflare refuses a client without a redirect URI, so an
	// empty list could neither create a client nor be PATCHed onto an adopted one. To
	// leave an adopted client's redirect URIs alone, omit the field.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(u, isURL(u) && url(u).getHostname() != '' && (url(u).getScheme() == 'https' || (url(u).getScheme() == 'http' && url(u).getHostname() in ['localhost', '127.0.0.1'])))",message="redirectURIs must be absolute https URLs (http is allowed only for localhost and 127.0.0.1)"
	// +kubebuilder:validation:XValidation:rule="self.all(u, !u.contains('#'))",message="redirectURIs must not contain a fragment (#...): OAuth 2.0 forbids fragments in redirect URIs (RFC 6749 section 3.1.2)"
	RedirectURIs *[]string `json:"redirectURIs,omitempty"`

	// postLogoutRedirectURIs are the URIs Cloudflare may redirect to after logout, with
	// the same rules as redirectURIs (OIDC RP-initiated logout also forbids fragments),
	// except that an empty list is allowed: it removes every post-logout URI.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(u, isURL(u) && url(u).getHostname() != '' && (url(u).getScheme() == 'https' || (url(u).getScheme() == 'http' && url(u).getHostname() in ['localhost', '127.0.0.1'])))",message="postLogoutRedirectURIs must be absolute https URLs (http is allowed only for localhost and 127.0.0.1)"
	// +kubebuilder:validation:XValidation:rule="self.all(u, !u.contains('#'))",message="postLogoutRedirectURIs must not contain a fragment (#...): OpenID Connect RP-Initiated Logout forbids fragments in post-logout redirect URIs"
	PostLogoutRedirectURIs *[]string `json:"postLogoutRedirectURIs,omitempty"`

	// allowedCORSOrigins are the browser origins allowed to call Cloudflare's token
	// endpoint, as scheme://host[:port] with no path: https, or http on localhost or
	// 127.0.0.1. Compared as a set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.all(u, isURL(u) && url(u).getHostname() != '' && url(u).getEscapedPath() == '' && (url(u).getScheme() == 'https' || (url(u).getScheme() == 'http' && url(u).getHostname() in ['localhost', '127.0.0.1'])))",message="allowedCORSOrigins must be origins such as https://app.example.com, with no path (http is allowed only for localhost and 127.0.0.1)"
	AllowedCORSOrigins *[]string `json:"allowedCORSOrigins,omitempty"`

	// grantTypes are the OAuth grants the client may use. Cloudflare supports only the
	// authorization code flow, so authorization_code must be present; refresh_token is
	// optional (and makes Cloudflare add the offline_access scope). Compared as a set.
	// Required when clientID is not set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:XValidation:rule="'authorization_code' in self",message="grantTypes must contain authorization_code: Cloudflare supports only the authorization code flow"
	GrantTypes *[]GrantType `json:"grantTypes,omitempty"`

	// responseTypes are the OAuth response types the client may request. Compared as a
	// set. Required when clientID is not set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	ResponseTypes *[]ResponseType `json:"responseTypes,omitempty"`

	// scopes are the permissions the client asks for: Cloudflare API scopes such as
	// account.read or workers-scripts.write (see GET /oauth/scopes), or simple identity
	// scopes. Colon-delimited scopes are rejected by Cloudflare. The protocol scopes
	// openid and offline_access are added and removed by Cloudflare itself from
	// grantTypes and responseTypes; listing or omitting them never causes an update.
	// Compared as a set. Required when clientID is not set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.all(s, !s.contains(':'))",message="scopes must not contain ':'; Cloudflare scopes are dot-delimited, e.g. account.read"
	// +kubebuilder:validation:XValidation:rule="self.all(s, s.matches('^[a-z0-9][a-z0-9._-]*$'))",message="scopes must be lowercase identifiers such as account.read or user-details.read"
	Scopes *[]string `json:"scopes,omitempty"`

	// optionalScopes are scopes a user may decline on the consent screen. Each must also
	// be listed in scopes; the protocol scopes openid, offline and offline_access can
	// never be optional. Compared as a set.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=128
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.all(s, !(s in ['openid', 'offline', 'offline_access']))",message="optionalScopes may not contain openid, offline or offline_access"
	OptionalScopes *[]string `json:"optionalScopes,omitempty"`

	// tokenEndpointAuthMethod is how the client authenticates to the token endpoint:
	// client_secret_basic or client_secret_post for a confidential client with a secret,
	// or none for a public PKCE client (no secret is issued).
	// Required when clientID is not set.
	// +optional
	TokenEndpointAuthMethod *TokenEndpointAuthMethod `json:"tokenEndpointAuthMethod,omitempty"`

	// visibility is private (only members of the account may authorize the client) or
	// public (any Cloudflare user may). Promotion to public is permanent, so the value
	// cannot go back to private; the operator promotes only once Cloudflare's
	// preconditions hold (a name, a logo, a verified clientURI host and at least one
	// non-identity scope). When absent, visibility is unmanaged (new clients are private).
	// +optional
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'public' || self == 'public'",message="visibility cannot change from public back to private: promotion to public is permanent in Cloudflare"
	Visibility *Visibility `json:"visibility,omitempty"`

	// verification says how the DNS TXT record that verifies the client URI host is
	// published: by a person (the default), through Cloudflare DNS, or by external-dns.
	// +optional
	Verification *Verification `json:"verification,omitempty"`

	// secretRotation rotates the client secret declaratively, keeping the previous
	// secret valid for an overlap window so consumers can switch without an outage.
	// Not available for tokenEndpointAuthMethod none (public clients have no secret).
	// +optional
	SecretRotation *SecretRotation `json:"secretRotation,omitempty"`

	// secretRef names the Secret, in this namespace, that the operator writes the client
	// credentials into (its keys: see secretTemplate). When absent, the Secret is
	// named `<metadata.name>-oauth-client`. The operator owns that Secret. Renaming
	// it moves the credentials to the new Secret without a rotation (the secret in use
	// stays valid) and then deletes the old Secret.
	// +optional
	SecretRef *OutputSecretReference `json:"secretRef,omitempty"`

	// secretTemplate shapes the Secret for the application that reads it, as it is: its
	// keys rendered from Go templates, or a profile for a common consumer, and its type,
	// labels and annotations. Without it the Secret holds the default keys (client_id,
	// client_secret, previous_client_secret during a rotation overlap, account_id and,
	// when the operator is told its issuer, issuer). With it the Secret holds the
	// rendered keys and still client_id, client_secret and previous_client_secret: the
	// operator's only record of secrets Cloudflare returns once. A rotation re-renders
	// every key; editing the template re-renders without a Cloudflare call.
	// +optional
	SecretTemplate *SecretTemplate `json:"secretTemplate,omitempty"`

	// deletionPolicy says what happens to the Cloudflare client when this object is
	// deleted: Delete removes it (revoking every authorization granted to it), Orphan
	// leaves it in Cloudflare. When absent it follows managementPolicy: Delete for
	// Manage, Orphan for Observe (an observed client is never written to, so never
	// deleted). Switching to Orphan is also how to release an object whose credentials
	// no longer allow the deletion.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// managementPolicy is Manage (create, update and delete the client) or Observe (only
	// read it: the operator never writes to Cloudflare, reports drift in conditions, and
	// is Ready when the client exists). Observe requires clientID. When absent, Manage.
	// +optional
	// +kubebuilder:default=Manage
	ManagementPolicy ManagementPolicy `json:"managementPolicy,omitempty"`
}

// SecretProfile fills spec.secretTemplate with the keys a common consumer reads.
// +kubebuilder:validation:Enum=oauth2-proxy;grafana;envoy-gateway;env
type SecretProfile string

// Secret profiles.
const (
	// SecretProfileOAuth2Proxy: client-id, client-secret and cookie-secret (32 random
	// bytes, generated once), as the oauth2-proxy Helm chart's existingSecret reads them,
	// plus oidc-issuer-url, login-url, redeem-url, profile-url, oidc-jwks-url and scope.
	SecretProfileOAuth2Proxy SecretProfile = "oauth2-proxy"
	// SecretProfileGrafana: Grafana's generic OAuth settings as GF_AUTH_GENERIC_OAUTH_*
	// environment variables, for envFrom.
	SecretProfileGrafana SecretProfile = "grafana"
	// SecretProfileEnvoyGateway: client-id and client-secret, the keys an Envoy Gateway
	// SecurityPolicy's oidc.clientIDRef and oidc.clientSecret read.
	SecretProfileEnvoyGateway SecretProfile = "envoy-gateway"
	// SecretProfileEnv: a dotenv-style key set (OAUTH_CLIENT_ID, OAUTH_TOKEN_ENDPOINT,
	// ...), for envFrom.
	SecretProfileEnv SecretProfile = "env"
)

// SecretTemplate shapes the output Secret, after external-secrets' template (engine
// v2): a type, labels and annotations, and data whose values are Go text/template.
// See docs/secret-templates.md for the variables, the functions and the profiles.
// +kubebuilder:validation:XValidation:rule="has(self.profile) || has(self.data)",message="secretTemplate needs profile, data, or both"
type SecretTemplate struct {
	// profile fills data with the keys a common consumer reads: oauth2-proxy,
	// grafana, envoy-gateway or env. A key in data wins over the profile's key of the
	// same name.
	// +optional
	Profile SecretProfile `json:"profile,omitempty"`

	// type is the Secret's type; Opaque when absent. A type of Kubernetes' own must get
	// the keys it requires from data (kubernetes.io/basic-auth: username or password).
	// Kubernetes never changes a Secret's type, so a new type needs a new
	// spec.secretRef.name in the same edit.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == 'Opaque' || self in ['kubernetes.io/basic-auth', 'kubernetes.io/ssh-auth', 'kubernetes.io/tls', 'kubernetes.io/dockerconfigjson'] || !self.contains('kubernetes.io/')",message="secretTemplate.type must be Opaque, a kubernetes.io type with keys (basic-auth, ssh-auth, tls, dockerconfigjson) or your own"
	Type string `json:"type,omitempty"`

	// metadata holds labels and annotations for the Secret, for example the ones
	// Reloader or a backup tool looks for.
	// +optional
	Metadata *SecretTemplateMetadata `json:"metadata,omitempty"`

	// data maps each Secret key to a Go text/template rendered with the variables
	// .ClientID, .ClientSecret, .PreviousClientSecret (only during a rotation overlap),
	// .AccountID, .Issuer, .AuthorizationEndpoint, .TokenEndpoint, .RevocationEndpoint,
	// .UserinfoEndpoint, .EndSessionEndpoint, .JWKSURI, .DiscoveryURL, .Scopes,
	// .RedirectURIs and .ClientName, and the functions lower, upper, trim, trimPrefix,
	// trimSuffix, replace, contains, hasPrefix, hasSuffix, default, indent, nindent,
	// join, quote, squote, b64enc, toJson and stableRandom "name" (32 random bytes,
	// base64url, generated once and kept). There is no access to the environment,
	// files, the network or other Secrets. client_id, client_secret and
	// previous_client_secret are the operator's own keys.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$') && k != '.' && k != '..' && !k.startsWith('..'))",message="secretTemplate.data keys must be valid Secret keys: letters, digits, -, _ and . (not . or ..), at most 253"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !(k in ['client_id', 'client_secret', 'previous_client_secret']) && !k.startsWith('stable-random.'))",message="secretTemplate.data may not set client_id, client_secret, previous_client_secret or stable-random.* keys: the operator keeps its record of the secrets there"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(self[k]) <= 8192)",message="each secretTemplate.data template is at most 8192 characters"
	Data map[string]string `json:"data,omitempty"`
}

// SecretTemplateMetadata is added to the output Secret's metadata. Removing an entry
// removes it from the Secret.
type SecretTemplateMetadata struct {
	// labels for the Secret. Keys under cloudflare.oauth-operator.dev/ and
	// app.kubernetes.io/managed-by are the operator's.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('cloudflare.oauth-operator.dev/') && k != 'app.kubernetes.io/managed-by')",message="secretTemplate.metadata.labels may not set cloudflare.oauth-operator.dev/* or app.kubernetes.io/managed-by: the operator sets them"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && size(self[k]) <= 63)",message="secretTemplate.metadata.labels must have valid label keys and values of at most 63 characters"
	Labels map[string]string `json:"labels,omitempty"`

	// annotations for the Secret. Keys under cloudflare.oauth-operator.dev/ are the
	// operator's.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('cloudflare.oauth-operator.dev/'))",message="secretTemplate.metadata.annotations may not set cloudflare.oauth-operator.dev/*: the operator sets them"
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 317 && k.matches('^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$') && size(self[k]) <= 4096)",message="secretTemplate.metadata.annotations must have valid annotation keys and values of at most 4096 characters"
	Annotations map[string]string `json:"annotations,omitempty"`
}

// SecretRotation declares when the client secret is rotated.
//
// A rotation calls Cloudflare's rotate_secret, writes the new secret to the Secret as
// client_secret and keeps the old one as previous_client_secret until the overlap ends;
// then the old secret is deleted in Cloudflare and removed from the Secret. The Secret's
// annotation cloudflare.oauth-operator.dev/rotated-at changes with every new secret, so
// workloads can roll on it.
// +kubebuilder:validation:XValidation:rule="has(self.rotationID) || has(self.every)",message="secretRotation needs rotationID, every, or both"
type SecretRotation struct {
	// rotationID triggers one rotation each time it changes, e.g. "2026-q4". Changing it
	// while a previous overlap is still running queues the rotation until it ends
	// (Cloudflare holds at most two secrets).
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	RotationID string `json:"rotationID,omitempty"`

	// every rotates periodically, measured from the time the current secret was issued
	// (status.secretRotation.lastRotatedAt). At least 1h, e.g. 2160h for 90 days. When
	// absent, the secret is rotated only when rotationID changes.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="secretRotation.every must be a duration such as 2160h or 90m: a number and a unit of h, m, s, ms, us or ns (there is no d; 90 days is 2160h)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || duration(self) >= duration('1h')",message="secretRotation.every must be at least 1h"
	Every *metav1.Duration `json:"every,omitempty"`

	// overlap is how long the previous secret stays valid after a rotation, between 0s
	// and 720h. Defaults to 24h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$')",message="secretRotation.overlap must be a duration such as 24h or 90m: a number and a unit of h, m, s, ms, us or ns (there is no d; 7 days is 168h)"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^([0-9]+([.][0-9]+)?(ns|us|µs|ms|s|m|h))+$') || (duration(self) >= duration('0s') && duration(self) <= duration('720h'))",message="secretRotation.overlap must be between 0s and 720h"
	Overlap *metav1.Duration `json:"overlap,omitempty"`
}

// SecretRotationStatus records the rotations performed. It mirrors annotations on the
// client Secret, which are the durable record (they are written together with the
// secret itself).
type SecretRotationStatus struct {
	// lastRotationID is the rotationID of the last rotation performed.
	// +optional
	LastRotationID string `json:"lastRotationID,omitempty"`
	// lastRotatedAt is when the current secret was issued.
	// +optional
	LastRotatedAt *metav1.Time `json:"lastRotatedAt,omitempty"`
	// previousSecretExpiresAt is when the previous secret will be deleted; absent when
	// there is no previous secret.
	// +optional
	PreviousSecretExpiresAt *metav1.Time `json:"previousSecretExpiresAt,omitempty"`
}

// ClientURIVerification is Cloudflare's DNS verification state of the client URI host.
// The record to publish is in status.verificationRecord, not here: Cloudflare's
// verification text is its content.
type ClientURIVerification struct {
	// status is Cloudflare's verification status, in Cloudflare's spelling: pending,
	// in_progress, verified or failed. The ClientURIVerified condition says the same in
	// CamelCase (Pending, InProgress, Verified, Failed), which `kubectl get` shows.
	// +optional
	Status string `json:"status,omitempty"`
}

// DNSRecord is the DNS record that verifies the client URI host: what to publish and,
// once the operator publishes it, how that went.
type DNSRecord struct {
	// type is the record type, always TXT.
	// +optional
	Type string `json:"type,omitempty"`
	// name is the fully qualified record name: the host of spec.clientURI.
	// +optional
	Name string `json:"name,omitempty"`
	// content is the record value, to publish exactly as shown: Cloudflare's
	// verification text, prefix included.
	// +optional
	Content string `json:"content,omitempty"`
	// publication is where the operator published the record; absent when a person
	// publishes it (spec.verification.publish Manual).
	// +optional
	Publication *RecordPublication `json:"publication,omitempty"`
}

// RecordPublication is where the operator published the verification record.
type RecordPublication struct {
	// publish is the mode the record was published with: CloudflareDNS or ExternalDNS.
	// +optional
	Publish PublishMode `json:"publish,omitempty"`
	// zoneID is the Cloudflare zone that holds the record (CloudflareDNS).
	// +optional
	ZoneID string `json:"zoneID,omitempty"`
	// recordID is the Cloudflare DNS record's ID (CloudflareDNS).
	// +optional
	RecordID string `json:"recordID,omitempty"`
	// dnsEndpoint is the name of the DNSEndpoint in this namespace (ExternalDNS).
	// +optional
	DNSEndpoint string `json:"dnsEndpoint,omitempty"`
}

// OAuthClientStatus is the observed state of the Cloudflare OAuth client.
type OAuthClientStatus struct {
	// clientID is the ID of the Cloudflare client this object is bound to.
	// +optional
	ClientID string `json:"clientID,omitempty"`
	// accountID is the Cloudflare account the client lives in, as the operator resolved
	// it from the spec.
	// +optional
	AccountID string `json:"accountID,omitempty"`
	// visibility is the client's visibility in Cloudflare: private or public.
	// +optional
	Visibility string `json:"visibility,omitempty"`
	// clientURIVerification is the DNS verification state of the client URI host, as
	// Cloudflare reports it.
	// +optional
	ClientURIVerification *ClientURIVerification `json:"clientURIVerification,omitempty"`
	// verificationRecord is the DNS TXT record to publish so Cloudflare can verify the
	// client URI host. Absent when the client has no client URI. Whatever the operator
	// learns about publishing it goes here too.
	// +optional
	VerificationRecord *DNSRecord `json:"verificationRecord,omitempty"`
	// hasRotatedSecret is true while Cloudflare keeps a previous secret after a rotation.
	// +optional
	HasRotatedSecret bool `json:"hasRotatedSecret,omitempty"`
	// createdAt is when Cloudflare created the client.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// updatedAt is when Cloudflare last changed the client.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`
	// promotedAt is when the client was promoted to public.
	// +optional
	PromotedAt *metav1.Time `json:"promotedAt,omitempty"`
	// secretRotation records the secret rotations performed.
	// +optional
	SecretRotation *SecretRotationStatus `json:"secretRotation,omitempty"`
	// lastVerificationRestart is the value of the restart-verification annotation the
	// operator last acted upon.
	// +optional
	LastVerificationRestart string `json:"lastVerificationRestart,omitempty"`
	// secretName is the name of the Secret, in this namespace, that holds the client
	// credentials.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// observedGeneration is the spec generation the status describes. It is set only when
	// a reconcile reached a conclusion (Ready or Stalled) for that generation.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// conditions are Ready (the summary), Reconciling, Stalled, ClientURIVerified and,
	// when visibility public is requested, Promoted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// OAuthClient is a Cloudflare OAuth client, created or adopted and kept in sync by the
// cloudflare-oauth-operator. Its credentials are written to a Secret.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:metadata:annotations="helm.sh/resource-policy=keep"
// +kubebuilder:metadata:annotations="argocd.argoproj.io/sync-options=Prune=false,Delete=false"
// +kubebuilder:metadata:annotations="kustomize.toolkit.fluxcd.io/prune=disabled"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cfoauth,categories=cloudflare
// +kubebuilder:printcolumn:name="Client ID",type=string,JSONPath=`.status.clientID`
// +kubebuilder:printcolumn:name="Visibility",type=string,JSONPath=`.status.visibility`
// +kubebuilder:printcolumn:name="Verification",type=string,JSONPath=`.status.conditions[?(@.type=="ClientURIVerified")].reason`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:printcolumn:name="Account",type=string,JSONPath=`.status.accountID`,priority=1
// +kubebuilder:printcolumn:name="TXT Record",type=string,JSONPath=`.status.verificationRecord.content`,priority=1
type OAuthClient struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state of the Cloudflare OAuth client.
	// +required
	Spec OAuthClientSpec `json:"spec"`

	// status is the observed state, written by the operator.
	// +optional
	Status OAuthClientStatus `json:"status,omitempty"`
}

// OAuthClientList is a list of OAuthClient.
//
// +kubebuilder:object:root=true
type OAuthClientList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []OAuthClient `json:"items"`
}
