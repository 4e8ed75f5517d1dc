package controller_test

import (
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

// platformAccount creates a namespace holding a token Secret (the platform team's) and
// a CloudflareAccount of the account with that token, allowing the given namespaces.
func platformAccount(account, token string, allowed ...string) *v1alpha1.CloudflareAccount {
	platform := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "platform-"}}
	Expect(k8sClient.Create(ctx(), platform)).To(Succeed())
	credentialsSecret(platform.Name, "cloudflare", token)
	acct := &v1alpha1.CloudflareAccount{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "shared-"},
		Spec: v1alpha1.CloudflareAccountSpec{
			AccountID:         account,
			CredentialsRef:    v1alpha1.SecretReference{Namespace: platform.Name, Name: "cloudflare"},
			AllowedNamespaces: &v1alpha1.AllowedNamespaces{Names: allowed},
		},
	}
	Expect(k8sClient.Create(ctx(), acct)).To(Succeed())
	return acct
}

func getAccount(name string) *v1alpha1.CloudflareAccount {
	a := &v1alpha1.CloudflareAccount{}
	ExpectWithOffset(1, k8sClient.Get(ctx(), client.ObjectKey{Name: name}, a)).To(Succeed())
	return a
}

func accountReady(name string) func() string {
	return func() string {
		a := &v1alpha1.CloudflareAccount{}
		if err := k8sClient.Get(ctx(), client.ObjectKey{Name: name}, a); err != nil {
			return err.Error()
		}
		for _, c := range a.Status.Conditions {
			if c.Type == v1alpha1.ConditionReady {
				return string(c.Status) + "/" + c.Reason
			}
		}
		return "no Ready condition"
	}
}

// viaAccount turns an object into one that names a CloudflareAccount.
func viaAccount(o *v1alpha1.OAuthClient, name string) *v1alpha1.OAuthClient {
	o.Spec.AccountID, o.Spec.CredentialsRef = "", nil
	o.Spec.AccountRef = &v1alpha1.AccountReference{Name: name}
	return o
}

var _ = Describe("Shared CloudflareAccounts", func() {
	var ns, account string
	BeforeEach(func() { ns, account = newNamespace(), newAccount() })

	It("serves an allowed namespace, and reports the token, the clients and the budget", func() {
		acct := platformAccount(account, testToken, ns)
		Expect(k8sClient.Create(ctx(), viaAccount(confidential(ns, "web", account), acct.Name))).To(Succeed())
		got := waitReady(ns, "web")
		Expect(got.Status.AccountID).To(Equal(account))
		Expect(secretOf(ns, "web-oauth-client").Data).To(HaveKeyWithValue(v1alpha1.SecretKeyAccountID, []byte(account)))

		Eventually(accountReady(acct.Name), 10*time.Second).Should(Equal("True/" + v1alpha1.ReasonTokenVerified))
		Eventually(func() int32 { return getAccount(acct.Name).Status.BoundClients }, 10*time.Second).Should(Equal(int32(1)))
		a := getAccount(acct.Name)
		Expect(a.Status.Token).NotTo(BeNil())
		Expect(a.Status.Token.Status).To(Equal("active"))
		Expect(a.Status.LastSyncTime).NotTo(BeNil())
		Expect(a.Status.RequestBudget).NotTo(BeNil())
		Expect(*a.Status.RequestBudget.Remaining).To(BeNumerically(">", 0))
		Expect(a.Finalizers).To(ContainElement(v1alpha1.FinalizerAccountInUse))
	})

	It("never calls the account for a namespace it does not allow, and picks up an allow-list change", func() {
		acct := platformAccount(account, testToken, "someone-else")
		Eventually(accountReady(acct.Name), 10*time.Second).Should(Equal("True/" + v1alpha1.ReasonTokenVerified))
		before := len(calls(account))

		Expect(k8sClient.Create(ctx(), viaAccount(confidential(ns, "web", account), acct.Name))).To(Succeed())
		Eventually(readyReason(ns, "web"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonNamespaceNotAllowed))
		got := get(ns, "web")
		Expect(condition(got, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(got, v1alpha1.ConditionReady).Message).To(ContainSubstring("does not allow namespace " + ns))
		Consistently(func() int { return len(calls(account)) - before }, 3*syncPeriod).Should(BeZero(), "no Cloudflare call for a disallowed namespace")
		Expect(got.Status.ClientID).To(BeEmpty())

		By("the platform team allows the namespace")
		Expect(k8sClient.Get(ctx(), client.ObjectKey{Name: acct.Name}, acct)).To(Succeed())
		acct.Spec.AllowedNamespaces.Names = append(acct.Spec.AllowedNamespaces.Names, ns)
		Expect(k8sClient.Update(ctx(), acct)).To(Succeed())
		waitReady(ns, "web")

		By("and by label selector, for another namespace")
		other := newNamespace()
		Expect(k8sClient.Create(ctx(), viaAccount(confidential(other, "api", account), acct.Name))).To(Succeed())
		Eventually(readyReason(other, "api"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonNamespaceNotAllowed))
		Expect(k8sClient.Get(ctx(), client.ObjectKey{Name: acct.Name}, acct)).To(Succeed())
		acct.Spec.AllowedNamespaces.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "api"}}
		Expect(k8sClient.Update(ctx(), acct)).To(Succeed())
		Consistently(readyReason(other, "api"), syncPeriod).Should(Equal("False/" + v1alpha1.ReasonNamespaceNotAllowed))
		n := &corev1.Namespace{}
		Expect(k8sClient.Get(ctx(), client.ObjectKey{Name: other}, n)).To(Succeed())
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		n.Labels["team"] = "api"
		Expect(k8sClient.Update(ctx(), n)).To(Succeed())
		waitReady(other, "api")
	})

	It("reports a token Cloudflare does not know on the account and on its objects", func() {
		acct := platformAccount(account, "not-a-known-token", ns)
		Eventually(accountReady(acct.Name), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonTokenInvalid))
		Expect(condition2(getAccount(acct.Name).Status.Conditions, v1alpha1.ConditionStalled)).To(Equal(metav1.ConditionTrue))

		Expect(k8sClient.Create(ctx(), viaAccount(confidential(ns, "web", account), acct.Name))).To(Succeed())
		Eventually(readyReason(ns, "web"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonAccountNotReady))
		msg := condition(get(ns, "web"), v1alpha1.ConditionReady).Message
		Expect(msg).To(ContainSubstring(v1alpha1.ReasonTokenInvalid))
		Expect(msg).NotTo(ContainSubstring("not-a-known-token"))
		Expect(msg).NotTo(ContainSubstring(acct.Spec.CredentialsRef.Namespace), "the platform Secret is not named to the team")
		Expect(writes(account)).To(BeEmpty())

		By("the platform team puts a valid token in the Secret: verified at once, the object follows")
		ref := acct.Spec.CredentialsRef
		sec := &corev1.Secret{}
		Expect(k8sClient.Get(ctx(), client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, sec)).To(Succeed())
		sec.Data = map[string][]byte{v1alpha1.CredentialsKeyAPIToken: []byte(testToken)}
		Expect(k8sClient.Update(ctx(), sec)).To(Succeed())
		Eventually(accountReady(acct.Name), 10*time.Second).Should(Equal("True/" + v1alpha1.ReasonTokenVerified))
		waitReady(ns, "web")
	})

	It("reports an expired token, with its expiry, and an account-owned token as working", func() {
		const expired = "expired-account-token"
		past := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		emu.SetTokenInfo(expired, cfemu.TokenInfo{Status: cfapi.TokenExpired, ExpiresOn: &past})
		DeferCleanup(emu.ClearTokenInfo, expired)
		acct := platformAccount(account, expired, ns)
		// The lenient emulator answers verify with status expired; the harsh one refuses
		// an inactive token like an unknown one.
		Eventually(accountReady(acct.Name), 10*time.Second).Should(Or(
			Equal("False/"+v1alpha1.ReasonTokenExpired), Equal("False/"+v1alpha1.ReasonTokenInvalid)))
		if a := getAccount(acct.Name); a.Status.Token != nil {
			Expect(a.Status.Token.Status).To(Equal(cfapi.TokenExpired))
			Expect(a.Status.Token.ExpiresOn.Time).To(BeTemporally("==", past))
		}
		Expect(k8sClient.Create(ctx(), viaAccount(confidential(ns, "web", account), acct.Name))).To(Succeed())
		Eventually(readyReason(ns, "web"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonAccountNotReady))
		Expect(writes(account)).To(BeEmpty())

		By("an account-owned token verifies at its account's endpoint")
		const owned = "account-owned-token"
		other := newAccount()
		emu.SetTokenInfo(owned, cfemu.TokenInfo{AccountID: other})
		DeferCleanup(emu.ClearTokenInfo, owned)
		ownedAcct := platformAccount(other, owned, ns)
		Eventually(func() string {
			if t := getAccount(ownedAcct.Name).Status.Token; t != nil {
				return t.Kind + "/" + t.Status
			}
			return ""
		}, 10*time.Second).Should(Equal("Account/" + cfapi.TokenActive))
	})

	It("holds an account that objects use until they are gone", func() {
		acct := platformAccount(account, testToken, ns)
		Expect(k8sClient.Create(ctx(), viaAccount(confidential(ns, "web", account), acct.Name))).To(Succeed())
		waitReady(ns, "web")
		Eventually(func() []string { return getAccount(acct.Name).Finalizers }, 10*time.Second).Should(ContainElement(v1alpha1.FinalizerAccountInUse))

		Expect(k8sClient.Delete(ctx(), getAccount(acct.Name))).To(Succeed())
		Eventually(accountReady(acct.Name), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonDeletionBlocked))
		Expect(condition2(getAccount(acct.Name).Status.Conditions, v1alpha1.ConditionReady)).To(Equal(metav1.ConditionFalse))
		Consistently(func() error {
			return k8sClient.Get(ctx(), client.ObjectKey{Name: acct.Name}, &v1alpha1.CloudflareAccount{})
		}, syncPeriod).Should(Succeed())

		Expect(k8sClient.Delete(ctx(), get(ns, "web"))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8sClient.Get(ctx(), client.ObjectKey{Name: acct.Name}, &v1alpha1.CloudflareAccount{}))
		}, 20*time.Second).Should(BeTrue(), "the account goes once no object uses it")
		Expect(count(writes(account), routeDelete)).To(Equal(1), "the object could still delete its client with the account's token")
	})

	It("migrates an object from credentialsRef to accountRef with zero Cloudflare writes", func() {
		acct := platformAccount(account, testToken, ns)
		Expect(k8sClient.Create(ctx(), confidential(ns, "web", account))).To(Succeed())
		id := waitReady(ns, "web").Status.ClientID
		secret := string(secretOf(ns, "web-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
		before := len(writes(account))

		update(ns, "web", func(o *v1alpha1.OAuthClient) { viaAccount(o, acct.Name) })
		Eventually(func() *v1alpha1.AccountReference { return get(ns, "web").Spec.AccountRef }).ShouldNot(BeNil())
		Eventually(func() int64 { o := get(ns, "web"); return o.Status.ObservedGeneration - o.Generation }, 10*time.Second).Should(BeZero())
		got := waitReady(ns, "web")
		Expect(got.Status.ClientID).To(Equal(id))
		Expect(got.Status.AccountID).To(Equal(account))
		Expect(string(secretOf(ns, "web-oauth-client").Data[v1alpha1.SecretKeyClientSecret])).To(Equal(secret))
		Consistently(func() []string { return writes(account)[before:] }, 2*syncPeriod).Should(BeEmpty())
		Eventually(func() int32 { return getAccount(acct.Name).Status.BoundClients }, 10*time.Second).Should(Equal(int32(1)))
	})

	It("refuses an accountRef of another account than the one the client lives in", func() {
		other := platformAccount(newAccount(), testToken, ns)
		Expect(k8sClient.Create(ctx(), confidential(ns, "web", account))).To(Succeed())
		waitReady(ns, "web")
		before := len(writes(account))
		update(ns, "web", func(o *v1alpha1.OAuthClient) { viaAccount(o, other.Name) })
		Eventually(readyReason(ns, "web"), 10*time.Second).Should(Equal("False/" + v1alpha1.ReasonAccountMismatch))
		Expect(writes(account)[before:]).To(BeEmpty())
	})
})

func condition2(conds []metav1.Condition, typ string) metav1.ConditionStatus {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}
