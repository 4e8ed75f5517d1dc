package controller

// RBAC of the manager. `make manifests` turns these markers into config/rbac/role.yaml.
//
// Secrets are cluster-wide because OAuthClients live in any namespace and the operator
// must (a) read the credentials Secret each object names in its own namespace and
// (b) create and update the client Secret it owns next to each object. The manager
// watches Secrets metadata-only (names, labels, resource versions; never data), scoped to
// --watch-namespaces when set; "list"/"watch" serve that informer. Secret data is read
// with "get", only for the Secrets objects reference.
// Client Secrets are garbage-collected with their object through owner references;
// "delete" serves one case: after spec.secretRef.name changes, the credentials move to
// the new Secret and the old one, which the object owns, is deleted (by UID).
// CloudflareAccounts (cluster-scoped) are read to resolve spec.accountRef, and their
// status and usage finalizer written; namespaces are watched metadata-only for the
// labels that allow-lists and the default credentials' selector match.
// DNSEndpoints (external-dns) are written for spec.verification.publish ExternalDNS and
// read without a cache, so the CRD may be absent; they are owned by their object.
// The OAuthClient CRD is read (get, by name only) before a remote client is deleted: while
// it is being deleted, an uninstall, no client is deleted (crdguard.go).

// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=externaldns.k8s.io,resources=dnsendpoints,verbs=get;create;update;delete
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=cloudflareaccounts,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=cloudflareaccounts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=cloudflareaccounts/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,resourceNames=oauthclients.cloudflare.oauth-operator.dev,verbs=get
