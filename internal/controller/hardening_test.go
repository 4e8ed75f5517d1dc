package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Each spec here reproduces a failure an outside review found (issue 11): it failed
// before the fix and passes after, against the real apiserver and the strict emulator.
var _ = Describe("Hardening", func() {
	var ns, account string
	BeforeEach(func() { ns, account = newNamespace(), newAccount() })

	adopter := func(ns, name, id, account string) *v1alpha1.OAuthClient {
		return &v1alpha1.OAuthClient{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: v1alpha1.OAuthClientSpec{
				AccountID:      account,
				ClientID:       &id,
				CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "cf"},
				RedirectURIs:   &[]string{"https://attacker.example.net/cb"},
				SecretRotation: &v1alpha1.SecretRotation{RotationID: "steal"},
			},
		}
	}

	Describe("one Cloudflare client, one OAuthClient", func() {
		It("stalls a second namespace that names another team's client, and never touches that client", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "owner", account))).To(Succeed())
			id := waitReady(ns, "owner").Status.ClientID
			ownerSecret := string(secretOf(ns, "owner-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
			before := len(writes(account))

			other := newNamespace()
			Expect(k8sClient.Create(ctx(), adopter(other, "thief", id, account))).To(Succeed())
			Eventually(readyReason(other, "thief"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonClientAlreadyBound))
			thief := get(other, "thief")
			Expect(condition(thief, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
			Expect(condition(thief, v1alpha1.ConditionReady).Message).To(ContainSubstring(ns + "/owner"))
			Expect(kstatusOf(other, "thief")).To(Equal(status.FailedStatus))

			By("it never PATCHes, rotates or receives the secret")
			Consistently(func() int { return len(writes(account)) }, 3*syncPeriod).Should(Equal(before))
			By("it records one Warning Event for the stall, not one per retry")
			Expect(eventReasons(other, "thief")).To(HaveEach(Equal(v1alpha1.ReasonClientAlreadyBound)))
			Expect(eventReasons(other, "thief")).To(HaveLen(1))
			err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: other, Name: "thief-oauth-client"}, &corev1.Secret{})
			Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the second claimant got a Secret")
			Expect(emu.CheckSecret(account, id, ownerSecret).Current).To(BeTrue())
			c, _ := emu.GetClient(account, id)
			Expect(c.RedirectURIs).To(ConsistOf("https://owner.example.com/cb"))

			By("deleting it leaves the client alone")
			Expect(k8sClient.Delete(ctx(), thief)).To(Succeed())
			Eventually(func() bool {
				return apierrors.IsNotFound(k8sClient.Get(ctx(), client.ObjectKey{Namespace: other, Name: "thief"}, &v1alpha1.OAuthClient{}))
			}, 10*time.Second).Should(BeTrue())
			_, exists := emu.GetClient(account, id)
			Expect(exists).To(BeTrue())
			Expect(count(writes(account), routeDelete)).To(BeZero())
			waitReady(ns, "owner")
		})

		It("stalls a restored copy that carries another object's client-id annotation", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "orig", account))).To(Succeed())
			id := waitReady(ns, "orig").Status.ClientID
			before := len(writes(account))
			copyNS := newNamespace()
			clone := confidential(copyNS, "orig", account)
			clone.Annotations = map[string]string{v1alpha1.AnnotationClientID: id}
			Expect(k8sClient.Create(ctx(), clone)).To(Succeed())
			Eventually(readyReason(copyNS, "orig"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonClientAlreadyBound))
			Consistently(func() int { return len(writes(account)) }, 2*syncPeriod).Should(Equal(before))
		})

		It("lets exactly one of two objects that appear at once bind a client, durably", func() {
			seeded := seed(account, cfapi.OAuthClient{
				ClientName: "Shared", RedirectURIs: []string{"https://shared.example.com/cb"},
				GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"},
				Scopes: []string{"account.read"}, TokenEndpointAuthMethod: "client_secret_basic",
			})
			a, b := newNamespace(), newNamespace()
			Expect(k8sClient.Create(ctx(), adopter(a, "one", seeded.ClientID, account))).To(Succeed())
			Expect(k8sClient.Create(ctx(), adopter(b, "two", seeded.ClientID, account))).To(Succeed())
			outcomes := func() []string { return []string{readyReason(a, "one")(), readyReason(b, "two")()} }
			Eventually(outcomes, 15*time.Second).Should(ConsistOf(
				"True/"+v1alpha1.ReasonReconciled, "False/"+v1alpha1.ReasonClientAlreadyBound))
			Consistently(outcomes, 2*syncPeriod).Should(ConsistOf(
				"True/"+v1alpha1.ReasonReconciled, "False/"+v1alpha1.ReasonClientAlreadyBound))
			Expect(count(writes(account), routeRotate)).To(Equal(1), "only the winner rotates")

			By("the binding is recorded in the winner's status, which only the operator writes, so it outlives a restart")
			winner, loser := get(a, "one"), get(b, "two")
			if readyReason(b, "two")() == "True/"+v1alpha1.ReasonReconciled {
				winner, loser = loser, winner
			}
			Expect(winner.Status.ClientID).To(Equal(seeded.ClientID))
			Expect(loser.Status.ClientID).To(BeEmpty())
			Expect(condition(loser, v1alpha1.ConditionReady).Message).To(ContainSubstring(winner.Namespace + "/" + winner.Name))
		})
	})

	Describe("an interrupted create is never repeated", func() {
		It("searches for a Create that failed ambiguously and committed later, instead of creating again", func() {
			// The connection is reset, and the client appears in Cloudflare 700ms later:
			// the operator waits for the Create to settle (--create-settle, 1s here),
			// then finds it with a List sent after that.
			emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{
				Route: cfemu.RouteCreateClient, Kind: cfemu.FaultReset, Count: 1, CommitAfter: 700 * time.Millisecond,
			}}})
			DeferCleanup(emu.ClearFaults)
			Expect(k8sClient.Create(ctx(), confidential(ns, "late", account))).To(Succeed())
			Eventually(readyReason(ns, "late"), 30*time.Second).Should(Equal("True/" + v1alpha1.ReasonReconciled))
			Expect(count(writes(account), routeCreate)).To(Equal(1), "the ambiguous Create was repeated")
			Expect(emu.Clients(account)).To(HaveLen(1))
			Eventually(func() []string { return eventReasons(ns, "late") }).Should(ContainElement("CreateResumed"))
			id := get(ns, "late").Status.ClientID
			Expect(emu.CheckSecret(account, id, string(secretOf(ns, "late-oauth-client").Data[v1alpha1.SecretKeyClientSecret])).Current).To(BeTrue())
		})
	})

	Describe("a rotation never loses the new secret", func() {
		It("retries a conflicting Secret write after the rotate, so the new secret lands once", func() {
			Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "cnf", account), "a", time.Hour))).To(Succeed())
			id := waitReady(ns, "cnf").Status.ClientID
			conflictNextSecretWrites.Store(2)
			setRotationID(ns, "cnf", "b")
			Eventually(func() string { return get(ns, "cnf").Status.SecretRotation.LastRotationID }, 10*time.Second).Should(Equal("b"))
			Expect(count(writes(account), routeRotate)).To(Equal(1))
			sec := secretOf(ns, "cnf-oauth-client")
			Expect(emu.CheckSecret(account, id, string(sec.Data[v1alpha1.SecretKeyClientSecret])).Current).To(BeTrue())
			Expect(emu.CheckSecret(account, id, string(sec.Data[v1alpha1.SecretKeyPreviousClientSecret])).Previous).To(BeTrue())
			Expect(count(writes(account), routeDeleteRotate)).To(BeZero(), "the secret in use was revoked")
		})
	})

	Describe("a rotation that commits after its answer was lost", func() {
		It("waits for it to settle instead of rotating again on top of it", func() {
			// Overlap 0: without the settle, the immediate second rotate would land first,
			// its old secret would be deleted at once, and then the first rotate would
			// land on top of it and demote the secret just handed out.
			Expect(k8sClient.Create(ctx(), withRotation(confidential(ns, "late-rot", account), "a", 0))).To(Succeed())
			id := waitReady(ns, "late-rot").Status.ClientID
			emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{
				Route: cfemu.RouteRotateSecret, Kind: cfemu.FaultReset, Count: 1, CommitAfter: 700 * time.Millisecond,
			}}})
			DeferCleanup(emu.ClearFaults)
			setRotationID(ns, "late-rot", "b")
			Eventually(func() string {
				st := get(ns, "late-rot").Status.SecretRotation
				if st == nil {
					return ""
				}
				return st.LastRotationID
			}, 20*time.Second).Should(Equal("b"))
			Eventually(readyReason(ns, "late-rot"), 10*time.Second).Should(Equal("True/" + v1alpha1.ReasonReconciled))
			Consistently(func() int { return count(writes(account), routeRotate) }, 2*syncPeriod).Should(Equal(2),
				"the lost rotate and the one that recovered its secret; a third means a rotation landed on top of another")
			sec := secretOf(ns, "late-rot-oauth-client")
			Expect(emu.CheckSecret(account, id, string(sec.Data[v1alpha1.SecretKeyClientSecret])).Current).To(BeTrue())
			Expect(sec.Annotations).NotTo(HaveKey(v1alpha1.AnnotationRotateSettledAt))
		})
	})

	Describe("a failed verification is a person's job", func() {
		It("stalls with the record and the restart annotation, restarts once, and never again after status is lost", func() {
			o := confidential(ns, "pub", account)
			o.Spec.LogoURI = ptr("https://pub.example.com/logo.png")
			o.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
			Expect(k8sClient.Create(ctx(), o)).To(Succeed())
			Eventually(readyReason(ns, "pub"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonAwaitingVerification))
			id := get(ns, "pub").Status.ClientID
			Expect(emu.SetVerification(account, id, cfapi.VerificationFailed)).To(Succeed())

			Eventually(readyReason(ns, "pub"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonVerificationFailed))
			Expect(kstatusOf(ns, "pub")).To(Equal(status.FailedStatus))
			msg := condition(get(ns, "pub"), v1alpha1.ConditionStalled).Message
			Expect(msg).To(ContainSubstring(v1alpha1.AnnotationRestartVerification))
			Expect(msg).To(ContainSubstring("cloudflare_oauth_client_publisher="))

			patches := func() int { return count(writes(account), routeUpdate) }
			before := patches()
			update(ns, "pub", func(o *v1alpha1.OAuthClient) {
				o.Annotations = map[string]string{v1alpha1.AnnotationRestartVerification: "try-1"}
			})
			Eventually(patches, 10*time.Second).Should(Equal(before + 1))
			Eventually(readyReason(ns, "pub"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonAwaitingVerification))
			Expect(get(ns, "pub").Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationVerificationRestarted, "try-1"))

			By("losing status does not fire the same value again")
			Expect(emu.SetVerification(account, id, cfapi.VerificationFailed)).To(Succeed())
			Eventually(readyReason(ns, "pub"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonVerificationFailed))
			wiped := get(ns, "pub")
			wiped.Status = v1alpha1.OAuthClientStatus{}
			Expect(k8sClient.Status().Update(ctx(), wiped)).To(Succeed())
			update(ns, "pub", func(o *v1alpha1.OAuthClient) { o.Labels = map[string]string{"touched": "yes"} })
			Consistently(patches, 3*syncPeriod).Should(Equal(before + 1))
		})

		It("ignores a restart while verification is in progress, and says so", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "busy", account))).To(Succeed())
			waitReady(ns, "busy")
			before := count(writes(account), routeUpdate)
			update(ns, "busy", func(o *v1alpha1.OAuthClient) {
				o.Annotations = map[string]string{v1alpha1.AnnotationRestartVerification: "now"}
			})
			Eventually(func() []string { return eventReasons(ns, "busy") }, 10*time.Second).Should(ContainElement("VerificationRestartSkipped"))
			Expect(count(writes(account), routeUpdate)).To(Equal(before))
		})
	})

	Describe("the strict emulator's other harsh answers", func() {
		It("stalls on its own when Cloudflare gives up verifying", func() {
			prev := emu.Strict()
			st := prev
			st.FailVerificationAfter = 1500 * time.Millisecond
			emu.SetStrict(st)
			DeferCleanup(func() { emu.SetStrict(prev) })
			o := confidential(ns, "giveup", account)
			o.Spec.LogoURI = ptr("https://giveup.example.com/logo.png")
			o.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
			Expect(k8sClient.Create(ctx(), o)).To(Succeed())
			Eventually(readyReason(ns, "giveup"), 15*time.Second).Should(Equal("False/" + v1alpha1.ReasonVerificationFailed))
			Expect(kstatusOf(ns, "giveup")).To(Equal(status.FailedStatus))
			Eventually(func() []string { return eventReasons(ns, "giveup") }).Should(ContainElement("VerificationFailed"))
		})

		It("stalls with Forbidden when the token may only read, and writes nothing", func() {
			Expect(k8sClient.Create(ctx(), &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ro"},
				StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: readOnlyToken},
			})).To(Succeed())
			o := confidential(ns, "ro", account)
			o.Spec.CredentialsRef = &v1alpha1.CredentialsSecretReference{Name: "ro"}
			Expect(k8sClient.Create(ctx(), o)).To(Succeed())
			Eventually(readyReason(ns, "ro"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonForbidden))
			Eventually(func() status.Status { return kstatusOf(ns, "ro") }).Should(Equal(status.FailedStatus))
			Expect(emu.Clients(account)).To(BeEmpty())
			Eventually(func() map[string]string { return get(ns, "ro").Annotations }).ShouldNot(HaveKey(v1alpha1.AnnotationCreateIntent), "a refused Create left an intent")
		})
	})

	Describe("the credentials usage finalizer", func() {
		It("keeps a credentials Secret until the last object that deletes with it is gone", func() {
			Expect(k8sClient.Create(ctx(), confidential(ns, "user", account))).To(Succeed())
			id := waitReady(ns, "user").Status.ClientID
			creds := func() *corev1.Secret {
				s := &corev1.Secret{}
				if err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "cf"}, s); err != nil {
					return nil
				}
				return s
			}
			Eventually(func() []string { return creds().Finalizers }).Should(ContainElement(v1alpha1.FinalizerCredentialsInUse))

			By("a namespace teardown deletes the Secret first: it stays while the object needs it")
			Expect(k8sClient.Delete(ctx(), creds())).To(Succeed())
			Expect(creds()).NotTo(BeNil())
			Expect(creds().DeletionTimestamp).NotTo(BeNil())
			Expect(k8sClient.Delete(ctx(), get(ns, "user"))).To(Succeed())
			Eventually(func() bool { _, ok := emu.GetClient(account, id); return ok }, 10*time.Second).Should(BeFalse())
			Eventually(creds, 10*time.Second).Should(BeNil())
		})

		It("does not hold credentials for objects that orphan their client", func() {
			o := confidential(ns, "orphan", account)
			o.Spec.DeletionPolicy = v1alpha1.DeletionPolicyOrphan
			Expect(k8sClient.Create(ctx(), o)).To(Succeed())
			waitReady(ns, "orphan")
			sec := &corev1.Secret{}
			Expect(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: "cf"}, sec)).To(Succeed())
			Expect(controllerutil.ContainsFinalizer(sec, v1alpha1.FinalizerCredentialsInUse)).To(BeFalse())
		})
	})
})
