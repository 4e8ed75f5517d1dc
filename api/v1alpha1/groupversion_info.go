// Package v1alpha1 contains the API schema of the cloudflare.oauth-operator.dev group.
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
	s.AddKnownTypes(GroupVersion, &OAuthClient{}, &OAuthClientList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
