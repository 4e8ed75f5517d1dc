// Package v1alpha1 contains the API schema of the cloudflare.oauth-operator.dev group.
//
// Spelling: a field that carries a Cloudflare value keeps Cloudflare's spelling, so it
// can be compared with Cloudflare's API and dashboard as it is (visibility private and
// public, grant types such as authorization_code, tokenEndpointAuthMethod
// client_secret_post, verification status in_progress). The operator's own settings use
// Kubernetes CamelCase (managementPolicy Manage and Observe, deletionPolicy Delete and
// Orphan), as do condition and Event reasons.
//
// Durations (secretRotation.every and overlap) are duration strings, as in cert-manager
// and Flux: a number and a unit of h, m, s, ms, us or ns, e.g. 2160h for 90 days.
//
// +kubebuilder:object:generate=true
// +groupName=cloudflare.oauth-operator.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "cloudflare.oauth-operator.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the Go types to the GroupVersionKind scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &OAuthClient{}, &OAuthClientList{}, &CloudflareAccount{}, &CloudflareAccountList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
