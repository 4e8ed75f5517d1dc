package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const account = "023e105f4ecef8ad9ca31a8372d0c353"

// validSpec is a complete spec for a client the operator creates. Each invalid case
// starts from it and breaks exactly one thing, so the rejection is attributable.
func validSpec() map[string]any {
	return map[string]any{
		"accountID":               account,
		"clientName":              "Example",
		"clientURI":               "https://app.example.com",
		"logoURI":                 "https://app.example.com/logo.png",
		"redirectURIs":            []any{"https://app.example.com/cb"},
		"grantTypes":              []any{"authorization_code", "refresh_token"},
		"responseTypes":           []any{"code"},
		"scopes":                  []any{"account.read", "user-details.read"},
		"optionalScopes":          []any{"user-details.read"},
		"tokenEndpointAuthMethod": "client_secret_basic",
	}
}

func object(ns, name string, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": v1alpha1.GroupVersion.String(),
		"kind":       "OAuthClient",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
	return u
}

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-"}}
	Expect(k8sClient.Create(ctx(), ns)).To(Succeed())
	return ns.Name
}

func strings64(n int, f func(int) string) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

type mutation func(spec map[string]any)

func set(field string, v any) mutation { return func(s map[string]any) { s[field] = v } }
func drop(fields ...string) mutation {
	return func(s map[string]any) {
		for _, f := range fields {
			delete(s, f)
		}
	}
}
func all(ms ...mutation) mutation {
	return func(s map[string]any) {
		for _, m := range ms {
			m(s)
		}
	}
}

var _ = Describe("OAuthClient admission", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	It("accepts every sample in config/samples", func() {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		kinds := map[string]int{}
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			raw, err := os.ReadFile(f)
			Expect(err).NotTo(HaveOccurred())
			u := &unstructured.Unstructured{}
			Expect(utilyaml.Unmarshal(raw, &u.Object)).To(Succeed(), f)
			u.SetNamespace(ns)
			Expect(k8sClient.Create(ctx(), u)).To(Succeed(), "sample %s must be accepted", filepath.Base(f))
			kinds[u.GetKind()]++
		}
		Expect(kinds).To(HaveKeyWithValue("OAuthClient", 4))
		Expect(kinds).To(HaveKeyWithValue("Secret", 1))
	})

	It("accepts a minimal adoption that manages no client field", func() {
		Expect(k8sClient.Create(ctx(), object(ns, "adopt", map[string]any{
			"accountID": account, "clientID": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4",
		}))).To(Succeed())
	})

	It("keeps an explicitly empty list distinct from an absent one", func() {
		spec := validSpec()
		spec["allowedCORSOrigins"] = []any{}
		Expect(k8sClient.Create(ctx(), object(ns, "empty-list", spec))).To(Succeed())
		got := &v1alpha1.OAuthClient{}
		Expect(k8sClient.Get(ctx(), key(ns, "empty-list"), got)).To(Succeed())
		Expect(got.Spec.AllowedCORSOrigins).NotTo(BeNil(), "an empty list is managed and must survive the round trip")
		Expect(*got.Spec.AllowedCORSOrigins).To(BeEmpty())
		Expect(got.Spec.PostLogoutRedirectURIs).To(BeNil(), "an absent list is unmanaged")
		Expect(got.Spec.DeletionPolicy).To(BeEmpty(), "deletionPolicy is not defaulted: it follows managementPolicy")
		Expect(got.Spec.ManagementPolicy).To(Equal(v1alpha1.ManagementPolicyManage))
	})

	It("accepts redirect URIs with a query string, and an empty postLogoutRedirectURIs", func() {
		spec := validSpec()
		spec["redirectURIs"] = []any{
			"https://app.example.com/cb?tenant=a&x=1",
			"https://app.example.com/cb?next=%2Fhome%23top", // an escaped '#' is query data, not a fragment
			"http://localhost:8080/cb?dev=1",
		}
		spec["postLogoutRedirectURIs"] = []any{"https://app.example.com/bye?from=logout"}
		Expect(k8sClient.Create(ctx(), object(ns, "query", spec))).To(Succeed())

		spec = validSpec()
		spec["postLogoutRedirectURIs"] = []any{}
		Expect(k8sClient.Create(ctx(), object(ns, "no-logout", spec))).To(Succeed(),
			"an empty postLogoutRedirectURIs is managed: it removes every post-logout URI")
	})

	DescribeTable("rejects invalid objects with a message naming the field",
		func(m mutation, wantMessage string) {
			spec := validSpec()
			m(spec)
			err := k8sClient.Create(ctx(), object(ns, "invalid", spec))
			Expect(err).To(HaveOccurred(), "the apiserver accepted an invalid object")
			Expect(onThisMinor(err.Error())).To(ContainSubstring(onThisMinor(wantMessage)))
		},
		Entry("missing accountID", drop("accountID"), "spec.accountRef: Invalid value: set exactly one of accountID (with credentialsRef or the default credentials) and accountRef"),
		Entry("accountID and accountRef", set("accountRef", map[string]any{"name": "shared"}), "set exactly one of accountID"),
		Entry("accountRef with credentialsRef", all(drop("accountID"), set("accountRef", map[string]any{"name": "shared"}), set("credentialsRef", map[string]any{"name": "cf"})),
			"spec.credentialsRef: Forbidden: credentialsRef applies only with accountID"),
		Entry("bad accountRef name", all(drop("accountID"), set("accountRef", map[string]any{"name": "Not_A_Name"})), "spec.accountRef.name: Invalid value"),
		Entry("uppercase accountID", set("accountID", strings.ToUpper(account)), "spec.accountID: Invalid value"),
		Entry("short accountID", set("accountID", "023e105f"), "spec.accountID: Invalid value"),
		Entry("accountID with non-hex", set("accountID", "023e105f4ecef8ad9ca31a8372d0c35z"), "spec.accountID: Invalid value"),
		Entry("create without clientName", drop("clientName"), "spec.clientName: Required value: clientName is required when clientID is not set"),
		Entry("create without redirectURIs", drop("redirectURIs"), "spec.redirectURIs: Required value: redirectURIs is required when clientID is not set"),
		Entry("create without grantTypes", drop("grantTypes"), "spec.grantTypes: Required value: grantTypes is required when clientID is not set"),
		Entry("create without responseTypes", drop("responseTypes"), "spec.responseTypes: Required value: responseTypes is required when clientID is not set"),
		Entry("create without scopes", all(drop("scopes", "optionalScopes")), "spec.scopes: Required value: scopes is required when clientID is not set"),
		Entry("create without tokenEndpointAuthMethod", drop("tokenEndpointAuthMethod"), "spec.tokenEndpointAuthMethod: Required value: tokenEndpointAuthMethod is required when clientID is not set"),
		Entry("grantTypes without authorization_code", set("grantTypes", []any{"refresh_token"}), "grantTypes must contain authorization_code"),
		Entry("unknown grant type", set("grantTypes", []any{"authorization_code", "client_credentials"}), `spec.grantTypes[1]: Unsupported value: "client_credentials"`),
		Entry("duplicate grant type", set("grantTypes", []any{"authorization_code", "authorization_code"}), "spec.grantTypes[1]: Duplicate value"),
		Entry("empty grantTypes", set("grantTypes", []any{}), "spec.grantTypes: Invalid value"),
		Entry("unknown response type", set("responseTypes", []any{"code", "device_code"}), `spec.responseTypes[1]: Unsupported value: "device_code"`),
		Entry("unknown auth method", set("tokenEndpointAuthMethod", "private_key_jwt"), `spec.tokenEndpointAuthMethod: Unsupported value: "private_key_jwt"`),
		Entry("unknown visibility", set("visibility", "internal"), `spec.visibility: Unsupported value: "internal"`),
		Entry("colon scope", set("scopes", []any{"account:read"}), "scopes must not contain ':'"),
		Entry("uppercase scope", set("scopes", []any{"Account.Read"}), "scopes must be lowercase identifiers"),
		Entry("duplicate scope", set("scopes", []any{"account.read", "account.read"}), "spec.scopes[1]: Duplicate value"),
		Entry("empty scope string", set("scopes", []any{""}), "spec.scopes[0]"),
		Entry("too many scopes", all(drop("optionalScopes"), set("scopes", strings64(129, func(i int) string { return fmt.Sprintf("scope%d.read", i) }))), "spec.scopes: Too many: 129: must have at most 128 items"),
		Entry("overlong scope", set("scopes", []any{strings.Repeat("a", 129)}), "spec.scopes[0]: Too long"),
		Entry("optionalScopes not a subset", set("optionalScopes", []any{"zone.read"}), "spec.optionalScopes: Invalid value"),
		Entry("optional openid", all(set("scopes", []any{"account.read", "openid"}), set("optionalScopes", []any{"openid"})), "optionalScopes may not contain openid, offline or offline_access"),
		Entry("optional offline_access", all(set("scopes", []any{"account.read", "offline_access"}), set("optionalScopes", []any{"offline_access"})), "optionalScopes may not contain openid, offline or offline_access"),
		Entry("http redirect URI", set("redirectURIs", []any{"http://app.example.com/cb"}), "redirectURIs must be absolute https URLs"),
		Entry("relative redirect URI", set("redirectURIs", []any{"/cb"}), "redirectURIs must be absolute https URLs"),
		Entry("redirect URI that is not a URL", set("redirectURIs", []any{"not a url"}), "redirectURIs must be absolute https URLs"),
		Entry("duplicate redirect URI", set("redirectURIs", []any{"https://a.example.com/cb", "https://a.example.com/cb"}), "spec.redirectURIs[1]: Duplicate value"),
		Entry("too many redirect URIs", set("redirectURIs", strings64(33, func(i int) string { return fmt.Sprintf("https://a.example.com/cb%d", i) })), "spec.redirectURIs: Too many: 33: must have at most 32 items"),
		Entry("overlong redirect URI", set("redirectURIs", []any{"https://a.example.com/" + strings.Repeat("x", 2048)}), "spec.redirectURIs[0]: Too long"),
		Entry("redirect URI with a fragment", set("redirectURIs", []any{"https://app.example.com/cb#x"}), "spec.redirectURIs: Invalid value: redirectURIs must not contain a fragment (#...)"),
		Entry("redirect URI with an empty fragment", set("redirectURIs", []any{"https://app.example.com/cb#"}), "spec.redirectURIs: Invalid value: redirectURIs must not contain a fragment (#...)"),
		Entry("loopback redirect URI with a fragment after a query", set("redirectURIs", []any{"https://app.example.com/cb", "http://localhost:8080/cb?a=1#top"}), "spec.redirectURIs: Invalid value: redirectURIs must not contain a fragment (#...)"),
		Entry("empty redirectURIs on create", set("redirectURIs", []any{}), "spec.redirectURIs in body should have at least 1 items"),
		Entry("empty redirectURIs when adopting", all(set("clientID", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"), set("redirectURIs", []any{})), "spec.redirectURIs in body should have at least 1 items"),
		Entry("http post-logout URI", set("postLogoutRedirectURIs", []any{"http://app.example.com/"}), "postLogoutRedirectURIs must be absolute https URLs"),
		Entry("post-logout URI with a fragment", set("postLogoutRedirectURIs", []any{"https://app.example.com/bye#x"}), "spec.postLogoutRedirectURIs: Invalid value: postLogoutRedirectURIs must not contain a fragment (#...)"),
		Entry("http clientURI", set("clientURI", "http://app.example.com"), "clientURI must be an absolute https URL"),
		Entry("clientURI without host", set("clientURI", "https://"), "clientURI must be an absolute https URL"),
		Entry("http logoURI", set("logoURI", "http://app.example.com/logo.png"), "logoURI must be an absolute https URL"),
		Entry("ftp policyURI", set("policyURI", "ftp://app.example.com/privacy"), "policyURI must be an absolute https URL"),
		Entry("http tosURI", set("tosURI", "http://app.example.com/terms"), "tosURI must be an absolute https URL"),
		Entry("CORS origin with a path", set("allowedCORSOrigins", []any{"https://app.example.com/path"}), "allowedCORSOrigins must be origins"),
		Entry("http CORS origin", set("allowedCORSOrigins", []any{"http://app.example.com"}), "allowedCORSOrigins must be origins"),
		Entry("grantTypes as a string", set("grantTypes", "authorization_code"), `spec.grantTypes: Invalid value: "string"`),
		Entry("clientName as a number", set("clientName", 42), `spec.clientName: Invalid value: "integer"`),
		Entry("empty clientName", set("clientName", ""), "spec.clientName: Invalid value"),
		Entry("bad clientID characters", set("clientID", "abc/def"), "spec.clientID: Invalid value"),
		Entry("unknown deletionPolicy", set("deletionPolicy", "Retain"), `spec.deletionPolicy: Unsupported value: "Retain"`),
		Entry("unknown managementPolicy", set("managementPolicy", "ReadOnly"), `spec.managementPolicy: Unsupported value: "ReadOnly"`),
		Entry("Observe without clientID", set("managementPolicy", "Observe"), "spec.managementPolicy: Invalid value: managementPolicy Observe requires clientID"),
		Entry("bad secretRef name", set("secretRef", map[string]any{"name": "Not_A_Name"}), "spec.secretRef.name: Invalid value"),
		Entry("empty credentialsRef name", set("credentialsRef", map[string]any{"name": ""}), "spec.credentialsRef.name"),
		Entry("rotation on a none client", all(set("tokenEndpointAuthMethod", "none"), set("secretRotation", map[string]any{"rotationID": "a"})),
			"spec.secretRotation: Forbidden: secretRotation is not available with tokenEndpointAuthMethod none"),
		Entry("empty secretRotation", set("secretRotation", map[string]any{}), "secretRotation needs rotationID, every, or both"),
		Entry("rotation every below 1h", set("secretRotation", map[string]any{"every": "30m"}), "secretRotation.every must be at least 1h"),
		Entry("rotation overlap above 720h", set("secretRotation", map[string]any{"rotationID": "a", "overlap": "721h"}), "secretRotation.overlap must be between 0s and 720h"),
		Entry("rotation overlap not a duration", set("secretRotation", map[string]any{"rotationID": "a", "overlap": "a day"}),
			"spec.secretRotation.overlap: Invalid value: \"a day\": secretRotation.overlap must be a duration such as 24h"),
		Entry("rotation every in days", set("secretRotation", map[string]any{"every": "90d"}),
			"spec.secretRotation.every: Invalid value: \"90d\": secretRotation.every must be a duration such as 2160h or 90m: a number and a unit of h, m, s, ms, us or ns (there is no d; 90 days is 2160h)"),
		Entry("Observe with deletionPolicy Delete", all(set("clientID", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"), set("managementPolicy", "Observe"), set("deletionPolicy", "Delete")),
			"spec.deletionPolicy: Forbidden: deletionPolicy Delete needs managementPolicy Manage"),
		Entry("publishing without a clientURI", all(drop("clientURI"), set("verification", map[string]any{"publish": "CloudflareDNS"})),
			"spec.verification.publish: Invalid value"),
		Entry("cloudflareDNS settings with another mode", set("verification", map[string]any{"publish": "ExternalDNS", "cloudflareDNS": map[string]any{}}),
			"spec.verification.cloudflareDNS: Forbidden: cloudflareDNS applies only with publish: CloudflareDNS"),
		Entry("externalDNS settings with the default mode", set("verification", map[string]any{"externalDNS": map[string]any{"recordTTL": 60}}),
			"spec.verification.externalDNS: Forbidden: externalDNS applies only with publish: ExternalDNS"),
		Entry("unknown publish mode", set("verification", map[string]any{"publish": "Route53"}), `spec.verification.publish: Unsupported value: "Route53"`),
		Entry("malformed zoneID", set("verification", map[string]any{"publish": "CloudflareDNS", "cloudflareDNS": map[string]any{"zoneID": "example.com"}}),
			"spec.verification.cloudflareDNS.zoneID: Invalid value"),
		Entry("recordTTL of 0", set("verification", map[string]any{"publish": "ExternalDNS", "externalDNS": map[string]any{"recordTTL": 0}}),
			"spec.verification.externalDNS.recordTTL: Invalid value"),
		Entry("publishing for an observed client", all(set("clientID", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"), set("managementPolicy", "Observe"),
			set("verification", map[string]any{"publish": "ExternalDNS"})), "spec.verification.publish: Forbidden"),
		Entry("overlong rotationID", set("secretRotation", map[string]any{"rotationID": strings.Repeat("r", 64)}), "spec.secretRotation.rotationID: Too long"),
		Entry("an empty secretTemplate", set("secretTemplate", map[string]any{}), "secretTemplate needs profile, data, or both"),
		Entry("an unknown profile", set("secretTemplate", map[string]any{"profile": "nginx"}), `spec.secretTemplate.profile: Unsupported value: "nginx"`),
		Entry("a key that is not a Secret key", set("secretTemplate", map[string]any{"data": map[string]any{"a/b": "x"}}), "secretTemplate.data keys must be valid Secret keys"),
		Entry("the key ..", set("secretTemplate", map[string]any{"data": map[string]any{"..": "x"}}), "secretTemplate.data keys must be valid Secret keys"),
		Entry("the operator's client_secret key", set("secretTemplate", map[string]any{"data": map[string]any{"client_secret": "{{ .ClientSecret }}"}}),
			"secretTemplate.data may not set client_id, client_secret, previous_client_secret or stable-random.* keys"),
		Entry("a stable-random key", set("secretTemplate", map[string]any{"data": map[string]any{"stable-random.cookie": "x"}}),
			"secretTemplate.data may not set client_id, client_secret, previous_client_secret or stable-random.* keys"),
		Entry("an overlong template", set("secretTemplate", map[string]any{"data": map[string]any{"k": strings.Repeat("x", 8193)}}), "each secretTemplate.data template is at most 8192 characters"),
		Entry("too many keys", set("secretTemplate", map[string]any{"data": func() map[string]any {
			m := map[string]any{}
			for i := range 33 {
				m[fmt.Sprintf("k%d", i)] = "x"
			}
			return m
		}()}), "spec.secretTemplate.data: Too many: 33: must have at most 32 items"),
		Entry("envoy-gateway for a public client", all(set("tokenEndpointAuthMethod", "none"), set("secretTemplate", map[string]any{"profile": "envoy-gateway"})),
			"spec.secretTemplate.profile: Forbidden: secretTemplate profile envoy-gateway needs a client secret"),
		Entry("a token Secret type", set("secretTemplate", map[string]any{"profile": "env", "type": "kubernetes.io/service-account-token"}), "secretTemplate.type must be Opaque"),
		Entry("a bootstrap token type", set("secretTemplate", map[string]any{"profile": "env", "type": "bootstrap.kubernetes.io/token"}), "secretTemplate.type must be Opaque"),
		Entry("an operator label", set("secretTemplate", map[string]any{"profile": "env", "metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/managed-by": "me"}}}),
			"secretTemplate.metadata.labels may not set cloudflare.oauth-operator.dev/* or app.kubernetes.io/managed-by"),
		Entry("an overlong label value", set("secretTemplate", map[string]any{"profile": "env", "metadata": map[string]any{"labels": map[string]any{"team": strings.Repeat("v", 64)}}}),
			"secretTemplate.metadata.labels must have valid label keys and values of at most 63 characters"),
		Entry("an invalid label key", set("secretTemplate", map[string]any{"profile": "env", "metadata": map[string]any{"labels": map[string]any{"a b": "x"}}}),
			"secretTemplate.metadata.labels must have valid label keys"),
		Entry("an operator annotation", set("secretTemplate", map[string]any{"profile": "env", "metadata": map[string]any{"annotations": map[string]any{"cloudflare.oauth-operator.dev/data-hash": "x"}}}),
			"secretTemplate.metadata.annotations may not set cloudflare.oauth-operator.dev/*"),
		Entry("an invalid annotation key", set("secretTemplate", map[string]any{"profile": "env", "metadata": map[string]any{"annotations": map[string]any{"-bad": "x"}}}),
			"secretTemplate.metadata.annotations must have valid annotation keys"),
	)

	It("accepts every profile, data of valid Secret keys, a type and metadata", func() {
		for i, profile := range []string{"oauth2-proxy", "grafana", "envoy-gateway", "env"} {
			spec := validSpec()
			spec["secretTemplate"] = map[string]any{"profile": profile}
			Expect(k8sClient.Create(ctx(), object(ns, fmt.Sprintf("profile-%d", i), spec))).To(Succeed(), profile)
		}
		spec := validSpec()
		spec["secretTemplate"] = map[string]any{
			"profile": "oauth2-proxy",
			"type":    "example.com/oauth-client",
			"data": map[string]any{
				"config.yaml": "client_id: {{ .ClientID }}\nscopes: {{ .Scopes | toJson }}",
				"OAUTH_URL":   "{{ .TokenEndpoint }}",
				"tls.key-1_x": "x",
			},
			"metadata": map[string]any{
				"labels":      map[string]any{"app.kubernetes.io/part-of": "shop", "team": ""},
				"annotations": map[string]any{"reloader.stakater.com/match": "true", "note": "any text: at all"},
			},
		}
		Expect(k8sClient.Create(ctx(), object(ns, "everything", spec))).To(Succeed())
		pkce := validSpec()
		pkce["tokenEndpointAuthMethod"] = "none"
		pkce["secretTemplate"] = map[string]any{"profile": "oauth2-proxy"}
		Expect(k8sClient.Create(ctx(), object(ns, "pkce-proxy", pkce))).To(Succeed())
	})

	It("gives each broken rule its own line, at its field, with no CEL type-conversion error", func() {
		spec := validSpec()
		for _, f := range []string{"clientName", "redirectURIs", "grantTypes", "responseTypes", "scopes", "optionalScopes", "tokenEndpointAuthMethod"} {
			delete(spec, f)
		}
		spec["secretRotation"] = map[string]any{"every": "90d", "overlap": "1 day"}
		err := k8sClient.Create(ctx(), object(ns, "many", spec))
		Expect(err).To(HaveOccurred())
		for _, f := range []string{"clientName", "redirectURIs", "grantTypes", "responseTypes", "scopes", "tokenEndpointAuthMethod"} {
			Expect(err.Error()).To(ContainSubstring("spec." + f + ": Required value"))
		}
		Expect(err.Error()).To(ContainSubstring("spec.secretRotation.every: Invalid value"))
		Expect(err.Error()).To(ContainSubstring("spec.secretRotation.overlap: Invalid value"))
		Expect(err.Error()).NotTo(ContainSubstring("spec: Invalid value"))
		Expect(err.Error()).NotTo(ContainSubstring("no such overload"))
		Expect(err.Error()).NotTo(ContainSubstring("evaluation error"))
		Expect(err.Error()).NotTo(ContainSubstring("must be at least 1h"), "the range rule must not judge a value that is not a duration")
	})

	It("leaves deletionPolicy absent, to follow managementPolicy", func() {
		spec := validSpec()
		Expect(k8sClient.Create(ctx(), object(ns, "managed", spec))).To(Succeed())
		observed := map[string]any{"accountID": account, "clientID": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4", "managementPolicy": "Observe"}
		Expect(k8sClient.Create(ctx(), object(ns, "observed", observed))).To(Succeed())
		for name, want := range map[string]v1alpha1.DeletionPolicy{"managed": v1alpha1.DeletionPolicyDelete, "observed": v1alpha1.DeletionPolicyOrphan} {
			o := &v1alpha1.OAuthClient{}
			Expect(k8sClient.Get(ctx(), key(ns, name), o)).To(Succeed())
			Expect(o.Spec.DeletionPolicy).To(BeEmpty(), "the apiserver defaulted deletionPolicy of %s", name)
			Expect(o.EffectiveDeletionPolicy()).To(Equal(want), name)
		}
		observed["deletionPolicy"] = "Orphan"
		Expect(k8sClient.Create(ctx(), object(ns, "observed-orphan", observed))).To(Succeed())
	})

	Describe("transition rules", func() {
		update := func(name string, m mutation) error {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(v1alpha1.GroupVersion.String())
			u.SetKind("OAuthClient")
			Expect(k8sClient.Get(ctx(), key(ns, name), u)).To(Succeed())
			spec := u.Object["spec"].(map[string]any)
			m(spec)
			return k8sClient.Update(ctx(), u)
		}

		It("refuses public back to private, and allows staying public", func() {
			spec := validSpec()
			spec["visibility"] = "public"
			Expect(k8sClient.Create(ctx(), object(ns, "pub", spec))).To(Succeed())
			err := update("pub", set("visibility", "private"))
			Expect(err).To(MatchError(ContainSubstring("visibility cannot change from public back to private")))
			Expect(update("pub", set("clientName", "Renamed"))).To(Succeed())
		})

		It("allows private to public", func() {
			spec := validSpec()
			spec["visibility"] = "private"
			Expect(k8sClient.Create(ctx(), object(ns, "priv", spec))).To(Succeed())
			Expect(update("priv", set("visibility", "public"))).To(Succeed())
		})

		It("keeps accountID immutable", func() {
			Expect(k8sClient.Create(ctx(), object(ns, "acct", validSpec()))).To(Succeed())
			err := update("acct", set("accountID", "11111111111111111111111111111111"))
			Expect(err).To(MatchError(ContainSubstring("accountID is immutable")))
		})

		It("refuses switching tokenEndpointAuthMethod between none and a secret method", func() {
			Expect(k8sClient.Create(ctx(), object(ns, "auth", validSpec()))).To(Succeed())
			Expect(update("auth", set("tokenEndpointAuthMethod", "client_secret_post"))).To(Succeed())
			err := update("auth", set("tokenEndpointAuthMethod", "none"))
			Expect(err).To(MatchError(ContainSubstring("tokenEndpointAuthMethod cannot switch between none and a secret method")))
		})

		It("changes secretTemplate.type only together with spec.secretRef.name", func() {
			Expect(k8sClient.Create(ctx(), object(ns, "typed", validSpec()))).To(Succeed())
			Expect(update("typed", set("secretTemplate", map[string]any{"profile": "env"}))).To(Succeed(), "a template of the default type")
			err := update("typed", set("secretTemplate", map[string]any{"profile": "env", "type": "example.com/env"}))
			Expect(err).To(MatchError(ContainSubstring("secretTemplate.type can change only together with spec.secretRef.name")))
			Expect(update("typed", all(set("secretTemplate", map[string]any{"profile": "env", "type": "example.com/env"}), set("secretRef", map[string]any{"name": "typed-env"})))).To(Succeed())
			err = update("typed", drop("secretTemplate"))
			Expect(err).To(MatchError(ContainSubstring("secretTemplate.type can change only together with spec.secretRef.name")), "removing the template means Opaque again")
			Expect(update("typed", set("secretTemplate", map[string]any{"data": map[string]any{"k": "v"}, "type": "example.com/env"}))).To(Succeed(), "the same type")
		})

		It("lets clientID be added once, then never changed or removed", func() {
			Expect(k8sClient.Create(ctx(), object(ns, "bind", validSpec()))).To(Succeed())
			Expect(update("bind", set("clientID", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"))).To(Succeed())
			err := update("bind", set("clientID", "ffffffffffffffffffffffffffffffff"))
			Expect(err).To(MatchError(ContainSubstring("clientID cannot be changed or removed once set")))
			err = update("bind", drop("clientID"))
			Expect(err).To(MatchError(ContainSubstring("clientID cannot be changed or removed once set")))
		})
	})
})

// The messages above are as kube-apiserver 1.35 and later render them: a failed CEL rule
// shows the value (`Invalid value: "90d": ...`), or nothing for a list or an object.
// Earlier minors show the schema type there (`Invalid value: "string": ...`, `"array"`).
// On those (make test-compat runs the oldest supported minor, see docs/compatibility.md)
// both sides are compared without the quoted value.
var (
	renderedValue = regexp.MustCompile(`Invalid value: "(?:[^"\\]|\\.)*"(?:: |$)`)
	serverMinor   = sync.OnceValue(func() int {
		v, err := discovery.NewDiscoveryClientForConfigOrDie(env.Config).ServerVersion()
		Expect(err).NotTo(HaveOccurred())
		minor, err := strconv.Atoi(strings.TrimSuffix(v.Minor, "+"))
		Expect(err).NotTo(HaveOccurred(), "the apiserver reports no minor version (%q): build it with hack/setup-envtest.sh", v.Minor)
		return minor
	})
)

func onThisMinor(msg string) string {
	if serverMinor() >= 35 {
		return msg
	}
	return renderedValue.ReplaceAllString(msg, "Invalid value: ")
}
