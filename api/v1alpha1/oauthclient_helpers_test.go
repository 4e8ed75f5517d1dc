package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

func TestSecretName(t *testing.T) {
	tests := []struct {
		name string
		ref  *OutputSecretReference
		want string
	}{
		{"default when absent", nil, "web" + DefaultSecretNameSuffix},
		{"default when empty", &OutputSecretReference{}, "web" + DefaultSecretNameSuffix},
		{"explicit", &OutputSecretReference{Name: "web-creds"}, "web-creds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &OAuthClient{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: OAuthClientSpec{SecretRef: tt.ref}}
			if got := o.SecretName(); got != tt.want {
				t.Errorf("SecretName() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	o := &OAuthClient{}
	if o.Observing() || o.OrphanOnDelete() || o.PublicClient() || o.AdoptedClientID() != "" || o.CredentialsSecretName() != "" {
		t.Fatalf("zero object must manage, delete, be confidential, create and use default credentials")
	}
	o.Spec = OAuthClientSpec{
		ManagementPolicy:        ManagementPolicyObserve,
		DeletionPolicy:          DeletionPolicyOrphan,
		TokenEndpointAuthMethod: ptr(AuthMethodNone),
		ClientID:                ptr("abc"),
		CredentialsRef:          &CredentialsSecretReference{Name: "cf"},
	}
	if !o.Observing() || !o.OrphanOnDelete() || !o.PublicClient() || o.AdoptedClientID() != "abc" || o.CredentialsSecretName() != "cf" {
		t.Fatalf("helpers do not follow the spec: %+v", o.Spec)
	}
}
