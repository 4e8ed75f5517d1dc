package controller_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/secretrender"
)

// The output Secret, shaped by spec.secretTemplate: what each profile renders, a
// template of one's own, re-rendering on rotation and on a template edit (with no
// Cloudflare write), and every way a template can be wrong, none of which shows a
// secret or writes a half-rendered Secret.

func withTemplate(o *v1alpha1.OAuthClient, t v1alpha1.SecretTemplate) *v1alpha1.OAuthClient {
	o.Spec.SecretTemplate = &t
	return o
}

// emuBase is the emulator's base URL: the suite's --authorization-server.
func emuBase() string { return strings.TrimSuffix(emuURL, cfemu.BasePath) }

func keysOf(sec *corev1.Secret) []string { return slices.Sorted(maps.Keys(sec.Data)) }

// stalledWith returns "<reason>: <message>" of Stalled, for Eventually.
func stalledWith(ns, name string) func() string {
	return func() string {
		c := condition(get(ns, name), v1alpha1.ConditionStalled)
		if c == nil || c.Status != "True" {
			return "not stalled"
		}
		return c.Reason + ": " + c.Message
	}
}

// secretValues collects what is secret in the Secrets of a namespace: client secrets
// and stable random values.
func secretValues(ns string) []string {
	list := &corev1.SecretList{}
	Expect(k8sClient.List(ctx(), list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, s := range list.Items {
		for k, v := range s.Data {
			if k == v1alpha1.SecretKeyClientSecret || k == v1alpha1.SecretKeyPreviousClientSecret || strings.HasPrefix(k, v1alpha1.SecretKeyStableRandomPrefix) {
				out = append(out, string(v))
			}
		}
	}
	return out
}

var _ = Describe("Secret templates", Ordered, func() {
	var ns, account string
	var seen []string // every secret value handled, for the hygiene check at the end

	BeforeAll(func() { ns, account = newNamespace(), newAccount() })
	AfterEach(func() { seen = append(seen, secretValues(ns)...) })

	It("keeps today's keys without a template, and adds the data hash", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "plain", account))).To(Succeed())
		waitReady(ns, "plain")
		sec := secretOf(ns, "plain-oauth-client")
		Expect(keysOf(sec)).To(Equal([]string{"account_id", "client_id", "client_secret", "issuer"}))
		Expect(sec.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(sec.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationDataHash, secretrender.Hash(sec.Data)))
	})

	It("renders each profile's keys", func() {
		for _, p := range []v1alpha1.SecretProfile{v1alpha1.SecretProfileOAuth2Proxy, v1alpha1.SecretProfileGrafana, v1alpha1.SecretProfileEnvoyGateway, v1alpha1.SecretProfileEnv} {
			Expect(k8sClient.Create(ctx(), withTemplate(confidential(ns, "p-"+string(p), account), v1alpha1.SecretTemplate{Profile: p}))).To(Succeed())
		}
		pkce := withTemplate(confidential(ns, "p-pkce", account), v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileOAuth2Proxy})
		pkce.Spec.TokenEndpointAuthMethod = ptr(v1alpha1.AuthMethodNone)
		Expect(k8sClient.Create(ctx(), pkce)).To(Succeed())

		record := []string{"client_id", "client_secret"}
		cookie := v1alpha1.SecretKeyStableRandomPrefix + secretrender.CookieSecretName
		for name, want := range map[string][]string{
			"p-oauth2-proxy":  append(append(secretrender.ProfileKeys("oauth2-proxy", false), record...), cookie),
			"p-grafana":       append(secretrender.ProfileKeys("grafana", false), record...),
			"p-envoy-gateway": append(secretrender.ProfileKeys("envoy-gateway", false), record...),
			"p-env":           append(secretrender.ProfileKeys("env", false), record...),
			"p-pkce":          append(secretrender.ProfileKeys("oauth2-proxy", true), "client_id", cookie),
		} {
			waitReady(ns, name)
			sec := secretOf(ns, name+"-oauth-client")
			Expect(keysOf(sec)).To(ConsistOf(want), name)
			Expect(sec.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationDataHash, secretrender.Hash(sec.Data)), name)
		}

		proxy := secretOf(ns, "p-oauth2-proxy-oauth-client")
		Expect(string(proxy.Data["client-id"])).To(Equal(string(proxy.Data["client_id"])))
		Expect(string(proxy.Data["client-secret"])).To(Equal(string(proxy.Data["client_secret"])))
		Expect(proxy.Data["client-secret"]).NotTo(BeEmpty())
		Expect(string(proxy.Data["login-url"])).To(Equal(emuBase()+"/oauth2/auth"), "the endpoints are the --authorization-server's")
		Expect(string(proxy.Data["redeem-url"])).To(Equal(emuBase() + "/oauth2/token"))
		Expect(string(proxy.Data["scope"])).To(Equal("account.read user-details.read"))
		raw, err := base64.URLEncoding.DecodeString(string(proxy.Data["cookie-secret"]))
		Expect(err).NotTo(HaveOccurred())
		Expect(raw).To(HaveLen(32), "oauth2-proxy wants a 16, 24 or 32-byte cookie secret")
		Expect(proxy.Data[cookie]).To(Equal(proxy.Data["cookie-secret"]))

		grafana := secretOf(ns, "p-grafana-oauth-client")
		Expect(string(grafana.Data["GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET"])).To(Equal(string(grafana.Data["client_secret"])))
		Expect(string(grafana.Data["GF_AUTH_GENERIC_OAUTH_API_URL"])).To(Equal(emuBase() + "/oauth2/userinfo"))
		env := secretOf(ns, "p-env-oauth-client")
		Expect(string(env.Data["OAUTH_DISCOVERY_URL"])).To(Equal(emuBase() + "/.well-known/openid-configuration"))
		Expect(string(env.Data["CLOUDFLARE_ACCOUNT_ID"])).To(Equal(account))
	})

	It("renders a template of one's own: functions, a type, labels and annotations", func() {
		obj := withTemplate(confidential(ns, "custom", account), v1alpha1.SecretTemplate{
			Type: "example.com/oauth-client",
			Metadata: &v1alpha1.SecretTemplateMetadata{
				Labels:      map[string]string{"team": "payments", "tier": "web"},
				Annotations: map[string]string{"reloader.stakater.com/match": "true"},
			},
			Data: map[string]string{
				"config.json": `{"client_id":{{ toJson .ClientID }},"scopes":{{ toJson .Scopes }},"token_url":{{ .TokenEndpoint | quote }}}`,
				"basic":       `{{ printf "%s:%s" .ClientID .ClientSecret | b64enc }}`,
				"redirects":   `{{ .RedirectURIs | join "," }}`,
				"name":        `{{ .ClientName | upper }}`,
			},
		})
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		waitReady(ns, "custom")
		sec := secretOf(ns, "custom-oauth-client")
		id, secret := string(sec.Data["client_id"]), string(sec.Data["client_secret"])
		Expect(sec.Type).To(Equal(corev1.SecretType("example.com/oauth-client")))
		Expect(string(sec.Data["config.json"])).To(Equal(fmt.Sprintf(`{"client_id":%q,"scopes":["account.read","user-details.read"],"token_url":%q}`, id, emuBase()+"/oauth2/token")))
		Expect(string(sec.Data["basic"])).To(Equal(base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))))
		Expect(string(sec.Data["redirects"])).To(Equal("https://custom.example.com/cb"))
		Expect(string(sec.Data["name"])).To(Equal("APP CUSTOM"))
		Expect(sec.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(sec.Labels).To(HaveKeyWithValue(v1alpha1.LabelManagedBy, v1alpha1.ManagerName))
		Expect(sec.Annotations).To(HaveKeyWithValue("reloader.stakater.com/match", "true"))

		By("a label and an annotation leave the template: they leave the Secret; someone else's stay")
		sec.Labels["backup"] = "daily"
		Expect(k8sClient.Update(ctx(), sec)).To(Succeed())
		update(ns, "custom", func(o *v1alpha1.OAuthClient) {
			o.Spec.SecretTemplate.Metadata = &v1alpha1.SecretTemplateMetadata{Labels: map[string]string{"team": "payments"}}
		})
		Eventually(func() map[string]string { return secretOf(ns, "custom-oauth-client").Labels }).ShouldNot(HaveKey("tier"))
		sec = secretOf(ns, "custom-oauth-client")
		Expect(sec.Labels).To(HaveKeyWithValue("team", "payments"))
		Expect(sec.Labels).To(HaveKeyWithValue("backup", "daily"))
		Expect(sec.Annotations).NotTo(HaveKey("reloader.stakater.com/match"))
	})

	It("re-renders every key on rotation; .PreviousClientSecret is there during the overlap only", func() {
		obj := withRotation(withTemplate(confidential(ns, "rot", account), v1alpha1.SecretTemplate{
			Profile: v1alpha1.SecretProfileOAuth2Proxy,
			Data:    map[string]string{"secrets": "{{ .ClientSecret }}{{ with .PreviousClientSecret }} {{ . }}{{ end }}"},
		}), "one", 3*time.Second)
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		waitReady(ns, "rot")
		before := secretOf(ns, "rot-oauth-client")
		first := string(before.Data["client_secret"])
		Expect(string(before.Data["secrets"])).To(Equal(first))

		setRotationID(ns, "rot", "two")
		var during *corev1.Secret
		Eventually(func() string {
			during = secretOf(ns, "rot-oauth-client")
			return string(during.Data["secrets"])
		}, 10*time.Second, 50*time.Millisecond).Should(HaveSuffix(" " + first))
		second := string(during.Data["client_secret"])
		Expect(second).NotTo(Equal(first))
		Expect(string(during.Data["secrets"])).To(Equal(second + " " + first))
		Expect(string(during.Data["client-secret"])).To(Equal(second), "the profile's keys follow the rotation")
		Expect(during.Annotations[v1alpha1.AnnotationDataHash]).NotTo(Equal(before.Annotations[v1alpha1.AnnotationDataHash]))
		Expect(during.Data["cookie-secret"]).To(Equal(before.Data["cookie-secret"]), "the cookie secret is stable across rotations")
		seen = append(seen, secretValues(ns)...)

		Eventually(func() string { return string(secretOf(ns, "rot-oauth-client").Data["secrets"]) }, 15*time.Second, 50*time.Millisecond).Should(Equal(second))
		after := secretOf(ns, "rot-oauth-client")
		Expect(after.Annotations[v1alpha1.AnnotationDataHash]).NotTo(Equal(during.Annotations[v1alpha1.AnnotationDataHash]))
		Expect(after.Data).NotTo(HaveKey(v1alpha1.SecretKeyPreviousClientSecret))
		Expect(after.Annotations[v1alpha1.AnnotationDataHash]).To(Equal(secretrender.Hash(after.Data)))
	})

	It("re-renders a template edit without writing to Cloudflare, keeping the cookie secret", func() {
		Expect(k8sClient.Create(ctx(), withTemplate(confidential(ns, "edit", account), v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileOAuth2Proxy}))).To(Succeed())
		waitReady(ns, "edit")
		before := secretOf(ns, "edit-oauth-client")
		writesBefore := len(writes(account))

		update(ns, "edit", func(o *v1alpha1.OAuthClient) {
			o.Spec.SecretTemplate.Data = map[string]string{"scope": `{{ .Scopes | join "," }}`, "extra": "{{ .ClientID }}"}
		})
		Eventually(func() string { return string(secretOf(ns, "edit-oauth-client").Data["scope"]) }).Should(Equal("account.read,user-details.read"))
		after := secretOf(ns, "edit-oauth-client")
		Expect(string(after.Data["extra"])).To(Equal(string(after.Data["client_id"])))
		Expect(after.Data["client_secret"]).To(Equal(before.Data["client_secret"]))
		Expect(after.Data["cookie-secret"]).To(Equal(before.Data["cookie-secret"]))
		Expect(after.Annotations[v1alpha1.AnnotationDataHash]).NotTo(Equal(before.Annotations[v1alpha1.AnnotationDataHash]))
		Expect(writes(account)[writesBefore:]).To(BeEmpty(), "a template edit makes no Cloudflare write")
		Eventually(func() []string { return eventReasons(ns, "edit") }).Should(ContainElement(v1alpha1.EventSecretWritten))
		Eventually(readyReason(ns, "edit")).Should(Equal("True/Reconciled"))
		Expect(get(ns, "edit").Status.ObservedGeneration).To(Equal(get(ns, "edit").Generation))
	})

	It("moves the rendered Secret on a rename, with its cookie secret, and may change the type then", func() {
		Expect(k8sClient.Create(ctx(), withTemplate(confidential(ns, "mv", account), v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileOAuth2Proxy}))).To(Succeed())
		waitReady(ns, "mv")
		old := secretOf(ns, "mv-oauth-client")
		writesBefore := len(writes(account))
		update(ns, "mv", func(o *v1alpha1.OAuthClient) {
			o.Spec.SecretRef = &v1alpha1.OutputSecretReference{Name: "mv-proxy"}
			o.Spec.SecretTemplate.Type = "example.com/oauth2-proxy"
		})
		Eventually(func() error { return k8sClient.Get(ctx(), client.ObjectKeyFromObject(old), &corev1.Secret{}) }, 10*time.Second).Should(WithTransform(apierrors.IsNotFound, BeTrue()))
		moved := secretOf(ns, "mv-proxy")
		Expect(moved.Type).To(Equal(corev1.SecretType("example.com/oauth2-proxy")))
		Expect(moved.Data["client-secret"]).To(Equal(old.Data["client-secret"]))
		Expect(moved.Data["cookie-secret"]).To(Equal(old.Data["cookie-secret"]), "sessions survive the rename")
		Expect(writes(account)[writesBefore:]).To(BeEmpty(), "a rename makes no Cloudflare write")
	})

	DescribeTable("stalls on a template that cannot be rendered, before any Cloudflare or Secret write",
		func(name string, tmpl v1alpha1.SecretTemplate, public bool, want string) {
			obj := withTemplate(confidential(ns, name, account), tmpl)
			if public {
				obj.Spec.TokenEndpointAuthMethod = ptr(v1alpha1.AuthMethodNone)
			}
			Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
			Eventually(stalledWith(ns, name), 10*time.Second).Should(And(HavePrefix(v1alpha1.ReasonInvalidSecretTemplate+": spec.secretTemplate: "), ContainSubstring(want)))
			Expect(readyReason(ns, name)()).To(Equal("False/" + v1alpha1.ReasonInvalidSecretTemplate))
			for _, r := range requestsFor(account, "POST") {
				Expect(r.Body).NotTo(ContainSubstring(`"client_name":"App `+name+`"`), "a client was created for a broken template")
			}
			Expect(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name + "-oauth-client"}, &corev1.Secret{})).NotTo(Succeed(), "a Secret was written")
		},
		Entry("a template that does not parse", "e-parse", v1alpha1.SecretTemplate{Data: map[string]string{"url": "{{ .TokenEndpoint "}}, false,
			`key "url": url:1: unclosed action`),
		Entry("an unknown variable", "e-var", v1alpha1.SecretTemplate{Data: map[string]string{"pw": "{{ .Password }}"}}, false,
			`key "pw": unknown variable .Password`),
		Entry("an unknown function", "e-func", v1alpha1.SecretTemplate{Data: map[string]string{"home": `{{ env "HOME" }}`}}, false,
			`key "home": home:1: function "env" not defined`),
		Entry("data over the Secret size limit", "e-size", v1alpha1.SecretTemplate{Data: func() map[string]string {
			m := map[string]string{}
			for i := range 12 {
				m[fmt.Sprintf("k%02d", i)] = strings.Repeat(`{{ printf "%256s" "" }}`, 350)
			}
			return m
		}()}, false, "the rendered data is over the 1048576 bytes (1 MiB) a Secret holds"),
		Entry("a public client's key built on .ClientSecret", "e-pkce", v1alpha1.SecretTemplate{Data: map[string]string{"id": "{{ .ClientID }}", "secret": "{{ .ClientSecret }}"}}, true,
			`key "secret": renders empty: it uses .ClientSecret, and a public client (tokenEndpointAuthMethod none) has no secret`),
		Entry("a type whose required keys are missing", "e-type", v1alpha1.SecretTemplate{Type: "kubernetes.io/basic-auth", Data: map[string]string{"user": "{{ .ClientID }}"}}, false,
			"type kubernetes.io/basic-auth needs the key username or password"),
	)

	It("keeps a working Secret as it is while its edited template is broken, then renders the fix", func() {
		Expect(k8sClient.Create(ctx(), withTemplate(confidential(ns, "fix", account), v1alpha1.SecretTemplate{Profile: v1alpha1.SecretProfileEnvoyGateway}))).To(Succeed())
		waitReady(ns, "fix")
		before := secretOf(ns, "fix-oauth-client")
		update(ns, "fix", func(o *v1alpha1.OAuthClient) {
			o.Spec.SecretTemplate.Data = map[string]string{"client-secret": "{{ .ClientSecret | nope }}"}
		})
		Eventually(stalledWith(ns, "fix")).Should(ContainSubstring(`key "client-secret": client-secret:1: function "nope" not defined`))
		Consistently(func() string { return secretOf(ns, "fix-oauth-client").ResourceVersion }, 2*syncPeriod).Should(Equal(before.ResourceVersion))
		Expect(kstatusOf(ns, "fix").String()).To(Equal("Failed"))

		update(ns, "fix", func(o *v1alpha1.OAuthClient) {
			o.Spec.SecretTemplate.Data = map[string]string{"client-secret": "{{ .ClientSecret | upper }}"}
		})
		waitReady(ns, "fix")
		Expect(string(secretOf(ns, "fix-oauth-client").Data["client-secret"])).To(Equal(strings.ToUpper(string(before.Data["client_secret"]))))
	})

	It("shows no secret value in conditions, Events or logs", func() {
		seen = append(seen, secretValues(ns)...)
		Expect(seen).NotTo(BeEmpty())
		objs := &v1alpha1.OAuthClientList{}
		Expect(k8sClient.List(ctx(), objs, client.InNamespace(ns))).To(Succeed())
		events := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx(), events, client.InNamespace(ns))).To(Succeed())
		rawObjs, err := json.Marshal(objs)
		Expect(err).NotTo(HaveOccurred())
		rawEvents, err := json.Marshal(events)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(rawEvents)).To(ContainSubstring(v1alpha1.ReasonInvalidSecretTemplate), "the stalls were recorded")
		for _, haystack := range []string{string(rawObjs), string(rawEvents), capturedLogs.String()} {
			for _, v := range seen {
				if len(v) >= 8 {
					Expect(strings.Contains(haystack, v)).To(BeFalse(), "a secret value leaked: %.6s...", v)
				}
			}
		}
	})
})
