package controller_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

func eventReasons(ns, name string) []string {
	list := &eventsv1.EventList{}
	Expect(k8sClient.List(ctx(), list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

func kstatusOf(ns, name string) status.Status {
	o := get(ns, name)
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	Expect(err).NotTo(HaveOccurred())
	res, err := status.Compute(&unstructured.Unstructured{Object: raw})
	Expect(err).NotTo(HaveOccurred())
	return res.Status
}

// secretIsLive asserts the Secret holds a client_secret Cloudflare accepts for the client.
func secretIsLive(ns, secretName, account string) string {
	sec := secretOf(ns, secretName)
	id := string(sec.Data[v1alpha1.SecretKeyClientID])
	secret := string(sec.Data[v1alpha1.SecretKeyClientSecret])
	ExpectWithOffset(1, secret).NotTo(BeEmpty(), "Secret %s has no client_secret", secretName)
	ExpectWithOffset(1, emu.CheckSecret(account, id, secret).Current).To(BeTrue(), "Secret %s holds a secret Cloudflare does not accept", secretName)
	return id
}

// liveClientID returns the client_id of a Secret whose client_secret Cloudflare accepts
// as current, or "" (for use in Eventually).
func liveClientID(ns, secretName, account string) string {
	sec := &corev1.Secret{}
	if err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: secretName}, sec); err != nil {
		return ""
	}
	id := string(sec.Data[v1alpha1.SecretKeyClientID])
	if secret := string(sec.Data[v1alpha1.SecretKeyClientSecret]); secret == "" || !emu.CheckSecret(account, id, secret).Current {
		return ""
	}
	return id
}

func seed(account string, c cfapi.OAuthClient) cfapi.OAuthClient {
	seeded, err := emu.SeedClient(account, c, "")
	Expect(err).NotTo(HaveOccurred())
	return seeded
}

var _ = Describe("OAuthClient controller", func() {
	var ns, account string
	BeforeEach(func() {
		ns, account = newNamespace(), newAccount()
	})

	It("creates the client, stores its secret and reports the TXT record to publish", func() {
		obj := confidential(ns, "web", account)
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		got := waitReady(ns, "web")

		Expect(got.Status.ClientID).NotTo(BeEmpty())
		Expect(got.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationClientID, got.Status.ClientID))
		Expect(got.Annotations).NotTo(HaveKey(v1alpha1.AnnotationCreateIntent))
		Expect(got.Finalizers).To(ContainElement(v1alpha1.Finalizer))
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(got.Status.Visibility).To(Equal("private"))
		Expect(got.Status.CreatedAt).NotTo(BeNil())
		Expect(got.Status.SecretName).To(Equal("web-oauth-client"))
		Expect(count(writes(account), routeCreate)).To(Equal(1))
		Expect(writes(account)).To(ConsistOf(routeCreate))

		By("the Secret holds the live credentials, owned by the object")
		Expect(secretIsLive(ns, "web-oauth-client", account)).To(Equal(got.Status.ClientID))
		sec := secretOf(ns, "web-oauth-client")
		Expect(string(sec.Data[v1alpha1.SecretKeyAccountID])).To(Equal(account))
		Expect(string(sec.Data[v1alpha1.SecretKeyIssuer])).To(Equal("https://dash.cloudflare.com"))
		Expect(sec.Labels).To(HaveKeyWithValue(v1alpha1.LabelOAuthClient, "web"))
		Expect(metav1.IsControlledBy(sec, got)).To(BeTrue())

		By("status carries the verification state and the exact TXT record")
		Expect(got.Status.ClientURIVerification).NotTo(BeNil())
		Expect(got.Status.ClientURIVerification.Status).To(Equal("in_progress"))
		remote, _ := emu.GetClient(account, got.Status.ClientID)
		Expect(remote.ClientURIVerification.Text).To(HavePrefix("cloudflare_oauth_client_publisher="))
		Expect(got.Status.VerificationRecord).To(Equal(&v1alpha1.DNSRecord{
			Type: "TXT", Name: "web.example.com", Content: remote.ClientURIVerification.Text,
		}))
		verified := condition(got, v1alpha1.ConditionClientURIVerified)
		Expect(verified.Status).To(Equal(metav1.ConditionUnknown))
		Expect(verified.Reason).To(Equal(v1alpha1.ReasonVerificationInProgress))
		Expect(kstatusOf(ns, "web")).To(Equal(status.CurrentStatus))
		Eventually(func() []string { return eventReasons(ns, "web") }).Should(ContainElements("Created", "SecretWritten"))

		By("verification completing in Cloudflare reaches status with no spec change")
		Expect(emu.SetVerification(account, got.Status.ClientID, cfapi.VerificationVerified)).To(Succeed())
		Eventually(func() string {
			c := condition(get(ns, "web"), v1alpha1.ConditionClientURIVerified)
			return string(c.Status) + "/" + c.Reason
		}, 10*time.Second).Should(Equal("True/Verified"))
		Expect(get(ns, "web").Status.ClientURIVerification.Status).To(Equal("verified"))
		Expect(writes(account)).To(ConsistOf(routeCreate), "observing verification must not write")
	})

	It("writes client_id only for a PKCE client", func() {
		obj := confidential(ns, "cli", account)
		obj.Spec.TokenEndpointAuthMethod = ptr(v1alpha1.AuthMethodNone)
		obj.Spec.ClientURI = nil
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		got := waitReady(ns, "cli")
		sec := secretOf(ns, "cli-oauth-client")
		Expect(sec.Data).To(HaveKeyWithValue(v1alpha1.SecretKeyClientID, []byte(got.Status.ClientID)))
		Expect(sec.Data).NotTo(HaveKey(v1alpha1.SecretKeyClientSecret))
		Expect(condition(got, v1alpha1.ConditionClientURIVerified).Reason).To(Equal(v1alpha1.ReasonNoClientURI))
	})

	It("adopts an existing client and PATCHes only the managed fields that differ", func() {
		existing := seed(account, cfapi.OAuthClient{
			ClientName: "Dashboard app", RedirectURIs: []string{"https://old.example.com/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
			Scopes: []string{"account.read"}, TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretPost,
		})
		obj := &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted"},
			Spec: v1alpha1.OAuthClientSpec{
				AccountID: account, CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "cf"},
				ClientID:     ptr(existing.ClientID),
				RedirectURIs: &[]string{"https://new.example.com/cb"},
				Scopes:       &[]string{"account.read", "offline_access"}, // protocol scope: never drift
			},
		}
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		got := waitReady(ns, "adopted")
		Expect(got.Status.ClientID).To(Equal(existing.ClientID))
		Expect(count(writes(account), routeCreate)).To(BeZero())
		patches := requestsFor(account, "PATCH")
		Expect(patches).To(HaveLen(1))
		Expect(string(patches[0].Body)).To(MatchJSON(`{"redirect_uris":["https://new.example.com/cb"]}`))
		Expect(condition(got, v1alpha1.ConditionReady).Message).To(ContainSubstring("holds no client_secret until a rotation"))
		sec := secretOf(ns, "adopted-oauth-client")
		Expect(sec.Data).To(HaveKeyWithValue(v1alpha1.SecretKeyClientID, []byte(existing.ClientID)))
		Expect(sec.Data).NotTo(HaveKey(v1alpha1.SecretKeyClientSecret))
		Expect(emu.Clients(account)).To(HaveLen(1))
	})

	It("corrects out-of-band drift with one minimal PATCH, and a spec edit with exactly one PATCH", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "drift", account))).To(Succeed())
		id := waitReady(ns, "drift").Status.ClientID

		By("someone renames the client and reorders its scopes in the dashboard")
		Expect(emu.MutateClient(account, id, func(c *cfapi.OAuthClient) {
			c.ClientName = "Renamed by hand"
			c.Scopes = []string{"user-details.read", "offline_access", "account.read"}
		})).To(Succeed())
		Eventually(func() []cfemu.RecordedRequest { return requestsFor(account, "PATCH") }, 15*time.Second).Should(HaveLen(1))
		Expect(string(requestsFor(account, "PATCH")[0].Body)).To(MatchJSON(`{"client_name":"App drift"}`))
		Eventually(func() string { c, _ := emu.GetClient(account, id); return c.ClientName }).Should(Equal("App drift"))
		Eventually(func() []string { return eventReasons(ns, "drift") }).Should(ContainElement("DriftCorrected"))

		By("the user edits the spec")
		update(ns, "drift", func(o *v1alpha1.OAuthClient) { o.Spec.LogoURI = ptr("https://drift.example.com/logo.png") })
		Eventually(func() []cfemu.RecordedRequest { return requestsFor(account, "PATCH") }, 10*time.Second).Should(HaveLen(2))
		Expect(string(requestsFor(account, "PATCH")[1].Body)).To(MatchJSON(`{"logo_uri":"https://drift.example.com/logo.png"}`))
		Eventually(func() int64 { o := get(ns, "drift"); return o.Generation - o.Status.ObservedGeneration }).Should(BeZero())
		Eventually(readyReason(ns, "drift")).Should(Equal("True/Reconciled"))
		Eventually(func() []string { return eventReasons(ns, "drift") }).Should(ContainElement("Updated"))
	})

	It("serves 100 objects of one account with about one List per sync period and no GETs", func() {
		const n = 100
		for i := range n {
			obj := confidential(ns, fmt.Sprintf("bulk-%03d", i), account)
			obj.Spec.ClientURI = nil // no verification polling: pure steady state
			Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		}
		Eventually(func() int {
			list := &v1alpha1.OAuthClientList{}
			Expect(k8sClient.List(ctx(), list, client.InNamespace(ns))).To(Succeed())
			ready := 0
			for i := range list.Items {
				if c := condition(&list.Items[i], v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionTrue {
					ready++
				}
			}
			return ready
		}, 60*time.Second, 200*time.Millisecond).Should(Equal(n))
		Expect(count(writes(account), routeCreate)).To(Equal(n))
		Expect(emu.Clients(account)).To(HaveLen(n))

		By("in the steady state, every object is re-checked each period from one shared List")
		start := time.Now()
		before := len(calls(account))
		// Each object requeues every ~syncPeriod; wait for three periods' worth of passes.
		Eventually(func() bool { return time.Since(start) > 3*syncPeriod }, 10*time.Second, 100*time.Millisecond).Should(BeTrue())
		steady := calls(account)[before:]
		periods := int(time.Since(start)/syncPeriod) + 1
		Expect(count(steady, routeList)).To(BeNumerically("<=", periods+1), "Lists: %v", steady)
		Expect(count(steady, routeList)).To(BeNumerically(">=", 1))
		Expect(steady).To(HaveEach(routeList), "the steady state must make no GETs and no writes")
	})

	It("stalls on missing or rejected credentials, naming the Secret but never the token", func() {
		obj := confidential(ns, "nocreds", account)
		obj.Spec.CredentialsRef.Name = "missing"
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		Eventually(readyReason(ns, "nocreds")).Should(Equal("False/" + v1alpha1.ReasonCredentialsNotFound))
		got := get(ns, "nocreds")
		Expect(condition(got, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(got, v1alpha1.ConditionReady).Message).To(ContainSubstring(ns + "/missing"))
		Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
		Expect(kstatusOf(ns, "nocreds")).To(Equal(status.FailedStatus))

		By("creating the Secret with a wrong token re-triggers the object through the Secret watch")
		bad := "wrong-token-5a8e1f"
		Expect(k8sClient.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "missing"},
			StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: bad},
		})).To(Succeed())
		Eventually(readyReason(ns, "nocreds")).Should(Equal("False/" + v1alpha1.ReasonUnauthorized))
		for _, c := range get(ns, "nocreds").Status.Conditions {
			Expect(c.Message).NotTo(ContainSubstring(bad))
		}

		By("a malformed token is refused before any request")
		sec := secretOf(ns, "missing")
		sec.Data[v1alpha1.CredentialsKeyAPIToken] = []byte("bad token\n")
		Expect(k8sClient.Update(ctx(), sec)).To(Succeed())
		Eventually(readyReason(ns, "nocreds")).Should(Equal("False/" + v1alpha1.ReasonInvalidCredentials))
		Expect(condition(get(ns, "nocreds"), v1alpha1.ConditionReady).Message).To(ContainSubstring("key apiToken is malformed"))

		By("fixing the token lets the object converge")
		sec = secretOf(ns, "missing")
		sec.Data[v1alpha1.CredentialsKeyAPIToken] = []byte(testToken)
		Expect(k8sClient.Update(ctx(), sec)).To(Succeed())
		waitReady(ns, "nocreds")
	})

	It("backs off on 429 with Retry-After and recovers", func() {
		// Every List is refused until the fault is cleared (objects of other specs list
		// too, and Cloudflare's limit is per user, so a single 429 may land elsewhere).
		emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: routeList, Kind: "429", RetryAfter: 1}}})
		DeferCleanup(emu.ClearFaults)
		// A new account starts with no snapshot, so its first call is the List.
		Expect(k8sClient.Create(ctx(), confidential(ns, "limited", account))).To(Succeed())
		Eventually(readyReason(ns, "limited"), 5*time.Second).Should(Equal("False/" + v1alpha1.ReasonRateLimited))
		Expect(kstatusOf(ns, "limited")).To(Equal(status.InProgressStatus))
		emu.ClearFaults()
		waitReady(ns, "limited")
		Expect(count(writes(account), routeCreate)).To(Equal(1))
		Eventually(func() []string { return eventReasons(ns, "limited") }).Should(ContainElement(v1alpha1.ReasonRateLimited))
	})

	It("keeps a converged object Ready, without Events, while its periodic List is refused with 429", func() {
		// Ready must not flap on every object of a user whenever its budget is spent or
		// another tool fills Cloudflare's window: the object has nothing to change.
		Expect(k8sClient.Create(ctx(), confidential(ns, "steady", account))).To(Succeed())
		waitReady(ns, "steady")
		// Every List of the suite's user is refused, so the user stays blocked: this
		// object's periodic passes meet either a 429 or the block it left.
		refused := func() int {
			n := 0
			for _, r := range emu.Requests() {
				if r.Route == routeList && r.Status == http.StatusTooManyRequests {
					n++
				}
			}
			return n
		}
		before := refused()
		emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: routeList, Kind: "429", RetryAfter: 2}}})
		DeferCleanup(emu.ClearFaults)
		Eventually(refused, 3*syncPeriod).Should(BeNumerically(">", before), "no List was refused")
		Consistently(readyReason(ns, "steady"), 2*syncPeriod).Should(Equal("True/" + v1alpha1.ReasonReconciled))
		Expect(eventReasons(ns, "steady")).NotTo(ContainElement(v1alpha1.ReasonRateLimited))

		By("an edit made while the calls are refused shows RateLimited, then lands")
		o := get(ns, "steady")
		o.Spec.RedirectURIs = &[]string{"https://steady.example.com/cb2"}
		Expect(k8sClient.Update(ctx(), o)).To(Succeed())
		Eventually(readyReason(ns, "steady"), 3*syncPeriod).Should(Equal("False/" + v1alpha1.ReasonRateLimited))
		emu.ClearFaults()
		Eventually(readyReason(ns, "steady"), 10*time.Second).Should(Equal("True/" + v1alpha1.ReasonReconciled))
		Expect(count(writes(account), routeUpdate)).To(Equal(1))
	})

	It("surfaces Cloudflare's 400 in the condition and does not retry until the spec changes", func() {
		obj := confidential(ns, "badscope", account)
		// Passes admission and the catalogue check (no dot), but is no identity scope.
		obj.Spec.Scopes = &[]string{"account.read", "user-profile"}
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		Eventually(readyReason(ns, "badscope")).Should(Equal("False/" + v1alpha1.ReasonInvalidSpec))
		msg := condition(get(ns, "badscope"), v1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring("HTTP 400"))
		Expect(msg).To(ContainSubstring("/scopes/1"))
		// A refused Create leaves no intent behind. The first pass can race with the
		// credentials Secret's own creation event (one more attempt); beyond that, nothing
		// is retried until the spec changes: no retry every sync period, no hot loop.
		Eventually(func() map[string]string { return get(ns, "badscope").Annotations }).ShouldNot(HaveKey(v1alpha1.AnnotationCreateIntent))
		Consistently(func() int { return count(writes(account), routeCreate) }, 3*syncPeriod).Should(BeNumerically("<=", 2))
		creates := count(writes(account), routeCreate)

		By("fixing the spec retries once and converges")
		update(ns, "badscope", func(o *v1alpha1.OAuthClient) { o.Spec.Scopes = &[]string{"account.read"} })
		waitReady(ns, "badscope")
		Expect(count(writes(account), routeCreate)).To(Equal(creates + 1))
		Expect(emu.Clients(account)).To(HaveLen(1))
	})

	It("rejects a scope missing from Cloudflare's catalogue before any write, with a suggestion", func() {
		obj := confidential(ns, "typo", account)
		obj.Spec.Scopes = &[]string{"account.read", "workers-script.write"}
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		Eventually(readyReason(ns, "typo")).Should(Equal("False/" + v1alpha1.ReasonUnknownScope))
		got := get(ns, "typo")
		Expect(condition(got, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		msg := condition(got, v1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring(`scope "workers-script.write" is not in Cloudflare's catalogue`))
		Expect(msg).To(ContainSubstring("did you mean workers-scripts.write"))
		Expect(writes(account)).To(BeEmpty())
		Expect(count(calls(account), routeList)).To(Equal(1))
	})

	It("re-creates a created client deleted out of band, and stalls an adopted one", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "gone", account))).To(Succeed())
		oldID := waitReady(ns, "gone").Status.ClientID
		Expect(emu.DeleteClient(account, oldID)).To(Succeed())
		Eventually(func() string { return get(ns, "gone").Status.ClientID }, 15*time.Second).ShouldNot(Equal(oldID))
		waitReady(ns, "gone")
		Expect(emu.Clients(account)).To(HaveLen(1))
		Expect(secretIsLive(ns, "gone-oauth-client", account)).To(Equal(get(ns, "gone").Status.ClientID))
		Eventually(func() []string { return eventReasons(ns, "gone") }).Should(ContainElement("Recreated"))

		existing := seed(account, cfapi.OAuthClient{ClientName: "Adopted", RedirectURIs: []string{"https://a.example.com/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"account.read"},
			TokenEndpointAuthMethod: cfapi.AuthMethodNone})
		Expect(k8sClient.Create(ctx(), &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "adopted-gone"},
			Spec: v1alpha1.OAuthClientSpec{AccountID: account, CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "cf"},
				ClientID: ptr(existing.ClientID)},
		})).To(Succeed())
		waitReady(ns, "adopted-gone")
		Expect(emu.DeleteClient(account, existing.ClientID)).To(Succeed())
		Eventually(readyReason(ns, "adopted-gone"), 15*time.Second).Should(Equal("False/" + v1alpha1.ReasonClientNotFound))
		Expect(emu.Clients(account)).To(HaveLen(1), "an adopted client is never re-created")
	})

	It("recovers a client secret deleted by hand by rotation, keeping the old one valid for the overlap", func() {
		Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "lost", account), "r1", 3*time.Second))).To(Succeed())
		id := waitReady(ns, "lost").Status.ClientID
		oldSecret := string(secretOf(ns, "lost-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
		Expect(k8sClient.Delete(ctx(), secretOf(ns, "lost-oauth-client"))).To(Succeed())
		// Consumers still hold the old secret: it comes back as previous_client_secret
		// and stays valid in Cloudflare until the overlap ends.
		Eventually(func() string {
			s := &corev1.Secret{}
			if err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "lost-oauth-client"}, s); err != nil {
				return ""
			}
			return string(s.Data[v1alpha1.SecretKeyPreviousClientSecret])
		}, 10*time.Second).Should(Equal(oldSecret))
		Expect(liveClientID(ns, "lost-oauth-client", account)).To(Equal(id))
		Expect(emu.CheckSecret(account, id, oldSecret).Previous).To(BeTrue(), "the old secret was revoked at once")
		Expect(count(writes(account), routeRotate)).To(Equal(1))
		Eventually(func() []string { return eventReasons(ns, "lost") }).Should(ContainElement("SecretRecovered"))
		// Then the overlap ends: the old secret goes, in Cloudflare and in the Secret.
		Eventually(func() int { return count(writes(account), routeDeleteRotate) }, 10*time.Second).Should(Equal(1))
		Eventually(func() []byte { return secretOf(ns, "lost-oauth-client").Data[v1alpha1.SecretKeyPreviousClientSecret] }).Should(BeNil())
		Expect(emu.CheckSecret(account, id, oldSecret)).To(Equal(cfemu.SecretState{}))
		c, _ := emu.GetClient(account, id)
		Expect(c.HasRotatedSecret).To(BeFalse())
	})

	It("refuses to overwrite a Secret it does not own", func() {
		Expect(k8sClient.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken-oauth-client"},
			StringData: map[string]string{"password": "hunter2"},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx(), confidential(ns, "taken", account))).To(Succeed())
		Eventually(readyReason(ns, "taken")).Should(Equal("False/" + v1alpha1.ReasonSecretConflict))
		Expect(secretOf(ns, "taken-oauth-client").Data).To(Equal(map[string][]byte{"password": []byte("hunter2")}))
		Expect(writes(account)).To(BeEmpty(), "no client is created while its secret could not be stored")

		By("deleting the conflicting Secret lets the object converge without a spec change")
		Expect(k8sClient.Delete(ctx(), secretOf(ns, "taken-oauth-client"))).To(Succeed())
		waitReady(ns, "taken")
		Expect(emu.Clients(account)).To(HaveLen(1))
		Expect(writes(account)).To(ConsistOf(routeCreate))
		secretIsLive(ns, "taken-oauth-client", account)
	})

	It("deletes the remote client under Delete and keeps it under Orphan", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "del", account))).To(Succeed())
		delID := waitReady(ns, "del").Status.ClientID
		orphan := confidential(ns, "keep", account)
		orphan.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
		Expect(k8sClient.Create(ctx(), orphan)).To(Succeed())
		keepID := waitReady(ns, "keep").Status.ClientID

		Expect(k8sClient.Delete(ctx(), get(ns, "del"))).To(Succeed())
		Expect(k8sClient.Delete(ctx(), get(ns, "keep"))).To(Succeed())
		for _, name := range []string{"del", "keep"} {
			Eventually(func() bool {
				err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.OAuthClient{})
				return apierrors.IsNotFound(err)
			}, 10*time.Second).Should(BeTrue(), name)
		}
		_, exists := emu.GetClient(account, delID)
		Expect(exists).To(BeFalse())
		_, exists = emu.GetClient(account, keepID)
		Expect(exists).To(BeTrue())
		Expect(count(writes(account), routeDelete)).To(Equal(1))
	})

	It("still deletes the remote client when the credentials Secret went first (namespace deletion)", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "teardown", account))).To(Succeed())
		id := waitReady(ns, "teardown").Status.ClientID
		Expect(k8sClient.Delete(ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cf"}})).To(Succeed())
		Expect(k8sClient.Delete(ctx(), get(ns, "teardown"))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "teardown"}, &v1alpha1.OAuthClient{}))
		}, 10*time.Second).Should(BeTrue())
		_, exists := emu.GetClient(account, id)
		Expect(exists).To(BeFalse())
	})

	It("keeps the finalizer when Cloudflare refuses the deletion, until the policy becomes Orphan", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "stuck", account))).To(Succeed())
		id := waitReady(ns, "stuck").Status.ClientID
		emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: routeDelete, Kind: "401"}}})
		DeferCleanup(emu.ClearFaults)
		Expect(k8sClient.Delete(ctx(), get(ns, "stuck"))).To(Succeed())
		Eventually(readyReason(ns, "stuck")).Should(Equal("False/" + v1alpha1.ReasonDeletionBlocked))
		Expect(condition(get(ns, "stuck"), v1alpha1.ConditionReady).Message).To(ContainSubstring("deletionPolicy: Orphan"))

		update(ns, "stuck", func(o *v1alpha1.OAuthClient) { o.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan })
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "stuck"}, &v1alpha1.OAuthClient{}))
		}, 10*time.Second).Should(BeTrue())
		_, exists := emu.GetClient(account, id)
		Expect(exists).To(BeTrue())
	})

	It("only reads and reports under managementPolicy Observe", func() {
		existing := seed(account, cfapi.OAuthClient{ClientName: "Observed", RedirectURIs: []string{"https://o.example.com/cb"},
			GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"account.read"},
			TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic})
		Expect(k8sClient.Create(ctx(), &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "watcher"},
			Spec: v1alpha1.OAuthClientSpec{AccountID: account, CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "cf"},
				ClientID: ptr(existing.ClientID), ClientName: ptr("Something else"),
				ManagementPolicy: v1alpha1.ManagementPolicyObserve},
		})).To(Succeed())
		Eventually(readyReason(ns, "watcher")).Should(Equal("True/" + v1alpha1.ReasonDriftDetected))
		got := get(ns, "watcher")
		Expect(condition(got, v1alpha1.ConditionReady).Message).To(ContainSubstring("clientName"))
		Expect(got.Status.ClientID).To(Equal(existing.ClientID))
		Expect(got.Finalizers).To(BeEmpty())
		Expect(writes(account)).To(BeEmpty())
		Expect(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "watcher-oauth-client"}, &corev1.Secret{})).To(
			Satisfy(apierrors.IsNotFound))
	})

	Describe("crash safety between Create and recording the ID", func() {
		It("binds the created client when the ID write fails, without a second Create", func() {
			failNextBindings.Store(1)
			Expect(k8sClient.Create(ctx(), confidential(ns, "crash1", account))).To(Succeed())
			got := waitReady(ns, "crash1")
			Expect(failNextBindings.Load()).To(BeZero(), "the fault was injected")
			Expect(emu.Clients(account)).To(HaveLen(1))
			Expect(count(writes(account), routeCreate)).To(Equal(1))
			Expect(secretIsLive(ns, "crash1-oauth-client", account)).To(Equal(got.Status.ClientID))
			Expect(count(writes(account), routeRotate)).To(BeZero(), "the secret was stored before the failure")
			Eventually(func() []string { return eventReasons(ns, "crash1") }).Should(ContainElement("CreateResumed"))
		})

		It("recovers the secret by rotation when both the Secret and the ID writes fail", func() {
			failNextBindings.Store(1)
			failNextSecretWrites.Store(1)
			Expect(k8sClient.Create(ctx(), confidential(ns, "crash2", account))).To(Succeed())
			got := waitReady(ns, "crash2")
			Expect(emu.Clients(account)).To(HaveLen(1))
			Expect(count(writes(account), routeCreate)).To(Equal(1))
			Expect(secretIsLive(ns, "crash2-oauth-client", account)).To(Equal(got.Status.ClientID))
			Expect(count(writes(account), routeRotate)).To(Equal(1))
		})

		It("finds the client when Cloudflare created it but the response was lost", func() {
			emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: routeCreate, Kind: "502", Count: 1, AfterApply: true}}})
			DeferCleanup(emu.ClearFaults)
			Expect(k8sClient.Create(ctx(), confidential(ns, "crash3", account))).To(Succeed())
			got := waitReady(ns, "crash3")
			Expect(emu.Clients(account)).To(HaveLen(1))
			Expect(count(writes(account), routeCreate)).To(Equal(1))
			Expect(secretIsLive(ns, "crash3-oauth-client", account)).To(Equal(got.Status.ClientID))
		})
	})

	It("never writes a token into status, Events or logs-facing messages", func() {
		obj := confidential(ns, "hygiene", account)
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		waitReady(ns, "hygiene")
		raw, err := json.Marshal(get(ns, "hygiene"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(raw)).NotTo(ContainSubstring(testToken))
		list := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx(), list, client.InNamespace(ns))).To(Succeed())
		for _, e := range list.Items {
			Expect(e.Note).NotTo(ContainSubstring(testToken))
			Expect(strings.Contains(e.Note, string(secretOf(ns, "hygiene-oauth-client").Data[v1alpha1.SecretKeyClientSecret]))).To(BeFalse())
		}
	})
})
