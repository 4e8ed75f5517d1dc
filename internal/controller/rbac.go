package controller

// RBAC of the manager. `make manifests` turns these markers into config/rbac/role.yaml.
//
// Secrets are cluster-wide because OAuthClients live in any namespace and the operator
// must (a) read the credentials Secret each object names in its own namespace and
// (b) create and update the client Secret it owns next to each object. The manager only
// watches Secrets through a label-selected, metadata-scoped cache (see cmd/manager), so it
// never holds every Secret of the cluster in memory; "list"/"watch" serve that cache.
// There is no "delete": client Secrets are garbage-collected through owner references.

// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=cloudflare.oauth-operator.dev,resources=oauthclients/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
