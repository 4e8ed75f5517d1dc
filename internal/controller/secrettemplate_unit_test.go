package controller

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/secretrender"
)

func (f *fixture) secret(t *testing.T, name string) *corev1.Secret {
	t.Helper()
	sec := &corev1.Secret{}
	if err := f.c.Get(t.Context(), client.ObjectKey{Namespace: "team", Name: name}, sec); err != nil {
		t.Fatal(err)
	}
	return sec
}

// With the clock stopped the account snapshot never ages, so any Cloudflare call in
// the pass after a template edit would be the edit's: there is none, and the Secret is
// re-rendered.
func TestTemplateEditMakesNoCloudflareCall(t *testing.T) {
	obj := unitObject("web")
	obj.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileOAuth2Proxy}
	f := newFixture(t, obj)
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	before := f.secret(t, "web-oauth-client")

	o := f.get(t, "web")
	o.Spec.SecretTemplate.Data = map[string]string{"scope": `{{ .Scopes | join "," | upper }}`}
	o.Generation++
	if err := f.c.Update(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	f.emu.ResetStats()
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if got := f.emu.Requests(); len(got) != 0 {
		t.Errorf("the pass after a template edit called Cloudflare: %+v", got)
	}
	after := f.secret(t, "web-oauth-client")
	if string(after.Data["scope"]) != "ACCOUNT.READ" || string(after.Data["cookie-secret"]) != string(before.Data["cookie-secret"]) {
		t.Errorf("scope %q, cookie-secret kept %v", after.Data["scope"], string(after.Data["cookie-secret"]) == string(before.Data["cookie-secret"]))
	}
	if after.Annotations[v1alpha1.AnnotationDataHash] == before.Annotations[v1alpha1.AnnotationDataHash] {
		t.Error("the data hash did not change with the data")
	}

	// And a pass with nothing new writes nothing.
	if _, err := f.reconcile(t, "web"); err != nil {
		t.Fatal(err)
	}
	if again := f.secret(t, "web-oauth-client"); again.ResourceVersion != after.ResourceVersion {
		t.Error("a pass with nothing new rewrote the Secret")
	}
}

// A secret Cloudflare returned once lands even when the template cannot render it:
// the record is written with the presentation as it was (never half-rendered), and
// the failure is InvalidSecretTemplate.
func TestTemplateFailureStillStoresANewSecret(t *testing.T) {
	obj := unitObject("rot")
	obj.Spec.SecretTemplate = &v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileEnvoyGateway}
	f := newFixture(t, obj)
	if _, err := f.reconcile(t, "rot"); err != nil {
		t.Fatal(err)
	}
	before := f.secret(t, "rot-oauth-client")
	old := string(before.Data[v1alpha1.SecretKeyClientSecret])

	o := f.get(t, "rot")
	o.Spec.SecretTemplate.Data = map[string]string{"broken": "{{ .Nope }}"}
	remote, _ := f.r.snapshots.Get(accountKey{creds: credentialsKey(cfapi.Credentials{APIToken: unitToken}), account: unitAccount}, o.Status.ClientID)
	p := &pass{obj: o, boundID: o.Status.ClientID, remote: &remote, account: accountKey{account: unitAccount}}
	const rotated = "cfoauth_rotated-secret-4c1d9e0b7a26f583"
	err := f.r.updateSecret(t.Context(), p, secretChange{clientSecret: rotated, previous: &old})

	var fl *failure
	if !errors.As(err, &fl) || fl.reason != v1alpha1.ReasonInvalidSecretTemplate {
		t.Fatalf("err = %v, want InvalidSecretTemplate", err)
	}
	after := f.secret(t, "rot-oauth-client")
	if string(after.Data[v1alpha1.SecretKeyClientSecret]) != rotated || string(after.Data[v1alpha1.SecretKeyPreviousClientSecret]) != old {
		t.Errorf("the record was not written: client_secret new %v, previous kept %v",
			string(after.Data[v1alpha1.SecretKeyClientSecret]) == rotated, string(after.Data[v1alpha1.SecretKeyPreviousClientSecret]) == old)
	}
	if string(after.Data["client-secret"]) != old {
		t.Error("the presentation changed although the template failed")
	}
	if _, ok := after.Data["broken"]; ok {
		t.Error("a half-rendered Secret was written")
	}
	if after.Annotations[v1alpha1.AnnotationDataHash] != secretrender.Hash(after.Data) {
		t.Error("the data hash does not match the data written")
	}
}
