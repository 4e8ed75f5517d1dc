package controller

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// applyPatch merges a PATCH body into a client the way Cloudflare does, including its
// own handling of the protocol scopes.
func applyPatch(c cfapi.OAuthClient, p cfapi.UpdateOAuthClientParams) cfapi.OAuthClient {
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setL := func(dst *[]string, v *[]string) {
		if v != nil {
			*dst = slices.Clone(*v)
		}
	}
	setS(&c.ClientName, p.ClientName)
	setS(&c.ClientURI, p.ClientURI)
	setS(&c.LogoURI, p.LogoURI)
	setS(&c.PolicyURI, p.PolicyURI)
	setS(&c.TosURI, p.TosURI)
	setS(&c.TokenEndpointAuthMethod, p.TokenEndpointAuthMethod)
	setL(&c.RedirectURIs, p.RedirectURIs)
	setL(&c.PostLogoutRedirectURIs, p.PostLogoutRedirectURIs)
	setL(&c.AllowedCORSOrigins, p.AllowedCORSOrigins)
	setL(&c.GrantTypes, p.GrantTypes)
	setL(&c.ResponseTypes, p.ResponseTypes)
	setL(&c.Scopes, p.Scopes)
	setL(&c.OptionalScopes, p.OptionalScopes)
	scopes := slices.DeleteFunc(slices.Clone(c.Scopes), func(s string) bool { return slices.Contains(protocolScopes, s) })
	if slices.Contains(c.ResponseTypes, "id_token") {
		scopes = append(scopes, "openid")
	}
	if slices.Contains(c.GrantTypes, "refresh_token") {
		scopes = append(scopes, "offline_access")
	}
	c.Scopes = scopes
	return c
}

// FuzzDriftFixedPoint checks that the drift comparison reaches a fixed point: once the
// computed PATCH is applied to the remote client, comparing again finds nothing, so no
// field can make the operator PATCH forever.
func FuzzDriftFixedPoint(f *testing.F) {
	f.Add(uint16(0xffff), "App", "https://a.example.com", "https://a.example.com/cb,https://a.example.com/cb2",
		"authorization_code,refresh_token", "code", "account.read,openid", "Other", "https://b.example.com/cb",
		"authorization_code", "code,id_token", "offline_access,account.read")
	f.Add(uint16(0x0001), "", "", "", "", "", "", "x", "", "", "", "")
	f.Add(uint16(0x0f0f), "n", "https://x", "", "refresh_token,authorization_code", "id_token", "offline_access",
		"n", "https://y/cb,https://y/cb", "authorization_code,authorization_code", "code", "")
	f.Fuzz(func(t *testing.T, managed uint16, name, uri, redirects, grants, responses, scopes,
		rName, rRedirects, rGrants, rResponses, rScopes string) {
		spec := v1alpha1.OAuthClientSpec{}
		on := func(bit int) bool { return managed&(1<<bit) != 0 }
		if on(0) {
			spec.ClientName = &name
		}
		if on(1) {
			spec.ClientURI = &uri
		}
		if on(2) {
			l := splitList(redirects)
			spec.RedirectURIs = &l
		}
		if on(3) {
			l := make([]v1alpha1.GrantType, 0, len(grants))
			for _, g := range splitList(grants) {
				l = append(l, v1alpha1.GrantType(g))
			}
			spec.GrantTypes = &l
		}
		if on(4) {
			l := make([]v1alpha1.ResponseType, 0, len(responses))
			for _, r := range splitList(responses) {
				l = append(l, v1alpha1.ResponseType(r))
			}
			spec.ResponseTypes = &l
		}
		if on(5) {
			l := splitList(scopes)
			spec.Scopes = &l
		}
		if on(6) {
			l := splitList(rScopes)
			spec.OptionalScopes = &l
		}
		if on(7) {
			l := splitList(redirects)
			spec.AllowedCORSOrigins = &l
		}
		if on(8) {
			spec.LogoURI = &uri
		}
		remote := cfapi.OAuthClient{
			ClientID: "c", ClientName: rName, RedirectURIs: splitList(rRedirects), GrantTypes: splitList(rGrants),
			ResponseTypes: splitList(rResponses), Scopes: splitList(rScopes), AllowedCORSOrigins: splitList(rRedirects),
		}
		first := computeDrift(&spec, &remote)
		patched := applyPatch(remote, first.params)
		if second := computeDrift(&spec, &patched); !second.empty() {
			t.Fatalf("no fixed point: after PATCHing %v, still drifted: %v\nspec=%+v\nremote=%+v", first.fields, second.fields, spec, patched)
		}
		if first.empty() != first.params.IsEmpty() {
			t.Fatalf("fields %v disagree with params emptiness %v", first.fields, first.params.IsEmpty())
		}
	})
}

// secretOnly serves one Secret to credentialsFromSecret.
type secretOnly struct {
	client.Reader
	sec *corev1.Secret
}

func (s secretOnly) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	if s.sec == nil || key.Name != s.sec.Name {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
	}
	switch o := obj.(type) {
	case *corev1.Secret:
		s.sec.DeepCopyInto(o)
	case *metav1.PartialObjectMetadata:
		o.ObjectMeta = *s.sec.ObjectMeta.DeepCopy()
	default:
		return errors.New("unexpected type")
	}
	return nil
}

// FuzzCredentialsFromSecret feeds arbitrary Secret contents to the credentials parser:
// it must never panic, must accept only usable credentials, and its errors must never
// contain a value from the Secret.
func FuzzCredentialsFromSecret(f *testing.F) {
	f.Add("tok-123", "", "", true, false, false)
	f.Add("", "me@example.com", "key-456", false, true, true)
	f.Add("bad token\n", "", "", true, false, false)
	f.Add("", "me@example.com", "", false, true, false)
	f.Add("t\x00k", "e", "k", true, true, true)
	f.Add("", "", "", false, false, false)
	f.Fuzz(func(t *testing.T, token, email, key string, hasToken, hasEmail, hasKey bool) {
		data := map[string][]byte{}
		if hasToken {
			data[v1alpha1.CredentialsKeyAPIToken] = []byte(token)
		}
		if hasEmail {
			data[v1alpha1.CredentialsKeyEmail] = []byte(email)
		}
		if hasKey {
			data[v1alpha1.CredentialsKeyAPIKey] = []byte(key)
		}
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "creds", ResourceVersion: "1"}, Data: data}
		reader := secretOnly{sec: sec}
		r := &OAuthClientReconciler{secrets: newSecretStore(reader, reader)}
		creds, err := r.credentialsFromSecret(t.Context(), types.NamespacedName{Namespace: "ns", Name: "creds"})
		if err == nil {
			if verr := creds.creds.Validate(); verr != nil {
				t.Fatalf("accepted unusable credentials: %v", verr)
			}
			return
		}
		var ce *failure
		if !errors.As(err, &ce) || ce.kind != kindCredentials {
			t.Fatalf("error is not a credentials failure: %T %v", err, err)
		}
		// The messages' own words (key names, the Secret's name) are not leaks.
		vocabulary := "credentials Secret ns/creds has no key apiToken email apiKey (or and) legacy credentials need both" +
			" key is malformed (empty, or contains whitespace or control characters) email/apiKey \""
		for _, v := range []string{token, email, key} {
			if len(v) >= 6 && strings.Contains(err.Error(), v) && !strings.Contains(vocabulary, v) {
				t.Fatalf("error %q contains a credential value %q", err, v)
			}
		}
	})
}
