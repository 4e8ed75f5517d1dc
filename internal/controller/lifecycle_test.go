package controller_test

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

func withRotation(o *v1alpha1.OAuthClient, id string, overlap time.Duration) *v1alpha1.OAuthClient {
	o.Spec.SecretRotation = &v1alpha1.SecretRotation{RotationID: id, Overlap: &metav1.Duration{Duration: overlap}}
	return o
}

func setRotationID(ns, name, id string) {
	update(ns, name, func(o *v1alpha1.OAuthClient) { o.Spec.SecretRotation.RotationID = id })
}

// no409 asserts Cloudflare never had to refuse a second rotate.
func no409(account string) {
	for _, r := range requestsFor(account, http.MethodPost) {
		ExpectWithOffset(1, r.Status).NotTo(Equal(http.StatusConflict), "a rotate was refused: %s", r.Path)
	}
}

var _ = Describe("Client lifecycle", func() {
	var ns, account string
	BeforeEach(func() { ns, account = newNamespace(), newAccount() })

	Describe("declarative secret rotation", func() {
		It("rotates on a new rotationID, keeps the previous secret for the overlap, then deletes it", func() {
			Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "rot", account), "2026-q3", 3*time.Second))).To(Succeed())
			id := waitReady(ns, "rot").Status.ClientID
			Expect(count(writes(account), routeRotate)).To(BeZero(), "a fresh client already satisfies its rotationID")
			oldSecret := string(secretOf(ns, "rot-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
			oldRotatedAt := secretOf(ns, "rot-oauth-client").Annotations[v1alpha1.AnnotationRotatedAt]
			Expect(oldRotatedAt).NotTo(BeEmpty())

			setRotationID(ns, "rot", "2026-q4")
			Eventually(func() int { return count(writes(account), routeRotate) }, 10*time.Second).Should(Equal(1))
			Eventually(func() string { return get(ns, "rot").Status.SecretRotation.LastRotationID }).Should(Equal("2026-q4"))
			sec := secretOf(ns, "rot-oauth-client")
			newSecret := string(sec.Data[v1alpha1.SecretKeyClientSecret])
			Expect(newSecret).NotTo(Equal(oldSecret))
			Expect(emu.CheckSecret(account, id, newSecret).Current).To(BeTrue())
			Expect(string(sec.Data[v1alpha1.SecretKeyPreviousClientSecret])).To(Equal(oldSecret))
			Expect(emu.CheckSecret(account, id, oldSecret).Previous).To(BeTrue(), "the old secret stays valid during the overlap")
			st := get(ns, "rot").Status.SecretRotation
			Expect(st.PreviousSecretExpiresAt).NotTo(BeNil())
			Expect(st.LastRotatedAt).NotTo(BeNil())
			Eventually(func() []string { return eventReasons(ns, "rot") }).Should(ContainElement("SecretRotated"))

			By("the overlap ends: the old secret is deleted in Cloudflare and removed from the Secret")
			Eventually(func() map[string][]byte { return secretOf(ns, "rot-oauth-client").Data }, 15*time.Second).
				ShouldNot(HaveKey(v1alpha1.SecretKeyPreviousClientSecret))
			Expect(count(writes(account), routeDeleteRotate)).To(Equal(1))
			Expect(emu.CheckSecret(account, id, oldSecret).Previous).To(BeFalse())
			Expect(emu.CheckSecret(account, id, newSecret).Current).To(BeTrue())
			c, _ := emu.GetClient(account, id)
			Expect(c.HasRotatedSecret).To(BeFalse())
			Eventually(func() *metav1.Time { return get(ns, "rot").Status.SecretRotation.PreviousSecretExpiresAt }).Should(BeNil())
			Eventually(func() []string { return eventReasons(ns, "rot") }).Should(ContainElement("RotatedSecretDeleted"))
			Expect(count(writes(account), routeRotate)).To(Equal(1), "no extra rotation")
		})

		It("queues a second rotation until the first overlap ends instead of hitting Cloudflare's refusal", func() {
			Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "seq", account), "a", 4*time.Second))).To(Succeed())
			waitReady(ns, "seq")
			setRotationID(ns, "seq", "b")
			Eventually(func() int { return count(writes(account), routeRotate) }, 10*time.Second).Should(Equal(1))
			setRotationID(ns, "seq", "c")
			Eventually(readyReason(ns, "seq")).Should(Equal("True/" + v1alpha1.ReasonRotationPending))
			Expect(condition(get(ns, "seq"), v1alpha1.ConditionReady).Message).To(ContainSubstring(`rotationID "c"`))
			Expect(count(writes(account), routeRotate)).To(Equal(1), "the second rotation must wait for the overlap")

			Eventually(func() int { return count(writes(account), routeRotate) }, 20*time.Second).Should(Equal(2))
			Eventually(func() string { return get(ns, "seq").Status.SecretRotation.LastRotationID }).Should(Equal("c"))
			Expect(count(writes(account), routeDeleteRotate)).To(BeNumerically(">=", 1))
			no409(account)
			secretIsLive(ns, "seq-oauth-client", account)
		})

		It("never leaves an unusable Secret when the write after a rotate fails", func() {
			Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "rotcrash", account), "1", time.Hour))).To(Succeed())
			id := waitReady(ns, "rotcrash").Status.ClientID
			failNextSecretWrites.Store(1)
			setRotationID(ns, "rotcrash", "2")
			Eventually(func() int { return count(writes(account), routeRotate) }, 10*time.Second).Should(BeNumerically(">=", 2))
			Eventually(func() string { return liveClientID(ns, "rotcrash-oauth-client", account) }, 10*time.Second).Should(Equal(id))
			Eventually(func() []string { return eventReasons(ns, "rotcrash") }).Should(ContainElement("SecretRecovered"))
			Expect(emu.Clients(account)).To(HaveLen(1))
			no409(account)
			waitReady(ns, "rotcrash")
		})
	})

	Describe("renaming the output Secret", func() {
		It("moves the working secret to the new Secret without a rotation, then deletes the old Secret", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "mv", account))).To(Succeed())
			id := waitReady(ns, "mv").Status.ClientID
			old := secretOf(ns, "mv-oauth-client")
			secret := string(old.Data[v1alpha1.SecretKeyClientSecret])
			Expect(secret).NotTo(BeEmpty())
			before := len(writes(account))

			update(ns, "mv", func(o *v1alpha1.OAuthClient) { o.Spec.SecretRef = &v1alpha1.OutputSecretReference{Name: "mv-renamed"} })
			Eventually(func() string { return get(ns, "mv").Status.SecretName }, 10*time.Second).Should(Equal("mv-renamed"))
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "mv-oauth-client"}, &corev1.Secret{}))
			}, 10*time.Second).Should(BeTrue(), "the old Secret is deleted")
			moved := secretOf(ns, "mv-renamed")
			Expect(string(moved.Data[v1alpha1.SecretKeyClientSecret])).To(Equal(secret), "the new Secret holds the secret in use")
			Expect(string(moved.Data[v1alpha1.SecretKeyClientID])).To(Equal(id))
			Expect(moved.Annotations[v1alpha1.AnnotationRotatedAt]).To(Equal(old.Annotations[v1alpha1.AnnotationRotatedAt]), "the secret was moved, not issued")
			Expect(emu.CheckSecret(account, id, secret).Current).To(BeTrue(), "the secret in use still works")
			Expect(writes(account)[before:]).To(BeEmpty(), "a rename makes no Cloudflare write: no rotation")
			Expect(waitReady(ns, "mv").Status.SecretName).To(Equal("mv-renamed"))
			Eventually(func() []string { return eventReasons(ns, "mv") }).Should(ContainElement(v1alpha1.EventSecretMoved))
			Expect(eventReasons(ns, "mv")).NotTo(ContainElement(v1alpha1.EventSecretRecovered))
		})

		It("keeps the old Secret when the new name belongs to someone else", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "taken", account))).To(Succeed())
			waitReady(ns, "taken")
			secret := string(secretOf(ns, "taken-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
			Expect(k8sClient.Create(ctx(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "someone-elses"},
				StringData: map[string]string{"client_secret": "not ours"}})).To(Succeed())
			before := len(writes(account))

			update(ns, "taken", func(o *v1alpha1.OAuthClient) {
				o.Spec.SecretRef = &v1alpha1.OutputSecretReference{Name: "someone-elses"}
			})
			Eventually(readyReason(ns, "taken"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonSecretConflict))
			Expect(string(secretOf(ns, "taken-oauth-client").Data[v1alpha1.SecretKeyClientSecret])).To(Equal(secret), "the old Secret is kept")
			Expect(string(secretOf(ns, "someone-elses").Data["client_secret"])).To(Equal("not ours"))
			Expect(writes(account)[before:]).To(BeEmpty())
		})
	})

	Describe("gated promotion to public", func() {
		It("waits for verification with precise reasons, then promotes by itself", func() {
			obj := confidential(ns, "pub", account)
			obj.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
			obj.Spec.LogoURI = ptr("https://pub.example.com/logo.png")
			Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
			Eventually(readyReason(ns, "pub")).Should(Equal("False/" + v1alpha1.ReasonAwaitingVerification))
			got := get(ns, "pub")
			promoted := condition(got, v1alpha1.ConditionPromoted)
			Expect(promoted.Status).To(Equal(metav1.ConditionFalse))
			Expect(promoted.Reason).To(Equal(v1alpha1.ReasonAwaitingVerification))
			Expect(promoted.Message).To(ContainSubstring("the clientURI host is not verified yet"))
			Expect(requestsFor(account, http.MethodPatch)).To(BeEmpty(), "no promotion attempt before verification")

			Expect(emu.SetVerification(account, got.Status.ClientID, cfapi.VerificationVerified)).To(Succeed())
			Eventually(readyReason(ns, "pub"), 10*time.Second).Should(Equal("True/Reconciled"))
			got = get(ns, "pub")
			Expect(got.Status.Visibility).To(Equal("public"))
			Expect(got.Status.PromotedAt).NotTo(BeNil())
			Expect(condition(got, v1alpha1.ConditionPromoted).Status).To(Equal(metav1.ConditionTrue))
			patches := requestsFor(account, http.MethodPatch)
			Expect(patches).To(HaveLen(1))
			Expect(string(patches[0].Body)).To(MatchJSON(`{"visibility":"public"}`))
			Eventually(func() []string { return eventReasons(ns, "pub") }).Should(ContainElements("VerificationRecordRequired", "ClientURIVerified"))
		})

		It("stalls with the list of missing prerequisites", func() {
			obj := confidential(ns, "nologo", account)
			obj.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
			obj.Spec.Scopes = &[]string{"openid", "profile"}
			Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
			Eventually(readyReason(ns, "nologo")).Should(Equal("False/" + v1alpha1.ReasonMissingPrerequisites))
			msg := condition(get(ns, "nologo"), v1alpha1.ConditionPromoted).Message
			Expect(msg).To(ContainSubstring("logoURI is not set"))
			Expect(msg).To(ContainSubstring("no non-identity scope"))
			Expect(condition(get(ns, "nologo"), v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
			Expect(requestsFor(account, http.MethodPatch)).To(BeEmpty())
		})
	})

	It("records the TXT record once and restarts verification on request with exactly one PATCH", func() {
		Expect(k8sClient.Create(ctx(), confidential(ns, "verify", account))).To(Succeed())
		got := waitReady(ns, "verify")
		Expect(emu.SetVerification(account, got.Status.ClientID, cfapi.VerificationFailed)).To(Succeed())
		Eventually(func() string { return condition(get(ns, "verify"), v1alpha1.ConditionClientURIVerified).Reason }, 10*time.Second).
			Should(Equal(v1alpha1.ReasonVerificationStatusFailed))
		Expect(condition(get(ns, "verify"), v1alpha1.ConditionClientURIVerified).Message).To(ContainSubstring(v1alpha1.AnnotationRestartVerification))
		Eventually(func() []string { return eventReasons(ns, "verify") }).Should(ContainElement("VerificationFailed"))

		update(ns, "verify", func(o *v1alpha1.OAuthClient) { o.Annotations[v1alpha1.AnnotationRestartVerification] = "attempt-1" })
		Eventually(func() []cfemu.RecordedRequest { return requestsFor(account, http.MethodPatch) }, 10*time.Second).Should(HaveLen(1))
		Expect(string(requestsFor(account, http.MethodPatch)[0].Body)).To(MatchJSON(`{"client_uri":"https://verify.example.com"}`))
		Eventually(func() string { return get(ns, "verify").Status.LastVerificationRestart }).Should(Equal("attempt-1"))
		Eventually(func() string { return get(ns, "verify").Status.ClientURIVerification.Status }, 10*time.Second).Should(Equal("in_progress"))

		By("further passes do not restart it again")
		start := len(calls(account))
		Eventually(func() int { return len(calls(account)) - start }, 10*time.Second).Should(BeNumerically(">=", 2))
		Expect(requestsFor(account, http.MethodPatch)).To(HaveLen(1))
		reasons := eventReasons(ns, "verify")
		n := 0
		for _, r := range reasons {
			if r == "VerificationRecordRequired" {
				n++
			}
		}
		Expect(n).To(Equal(2), "one per verification attempt, not one per pass: %v", reasons)
	})
})
