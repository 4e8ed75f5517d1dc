package controller_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/dns"
)

// withPublication asks the operator to publish the verification record.
func withPublication(o *v1alpha1.OAuthClient, v v1alpha1.Verification) *v1alpha1.OAuthClient {
	o.Spec.Verification = &v
	return o
}

// dnsEndpoint returns the object's DNSEndpoint, or nil when there is none.
func dnsEndpoint(ns, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(dns.DNSEndpointGVK)
	err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: dns.EndpointName(name)}, u)
	if apierrors.IsNotFound(err) {
		return nil
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return u
}

func endpoints(u *unstructured.Unstructured) []any {
	if u == nil {
		return nil
	}
	eps, _, _ := unstructured.NestedSlice(u.Object, "spec", "endpoints")
	return eps
}

// installDNSEndpointCRD installs the stand-in of external-dns's CRD and waits until it
// is served.
func installDNSEndpointCRD() {
	data, err := os.ReadFile("testdata/externaldns/dnsendpoints.yaml")
	Expect(err).NotTo(HaveOccurred())
	crd := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal(data, &crd.Object)).To(Succeed())
	Expect(k8sClient.Create(ctx(), crd)).To(Succeed())
	Eventually(func() error {
		return k8sClient.List(ctx(), &unstructured.UnstructuredList{Object: map[string]any{
			"apiVersion": dns.DNSEndpointGVK.GroupVersion().String(), "kind": dns.DNSEndpointGVK.Kind + "List"}})
	}, 20*time.Second).Should(Succeed())
}

var _ = Describe("Publishing the verification record through external-dns", func() {
	var ns, account string
	BeforeEach(func() { ns, account = newNamespace(), newAccount() })

	It("reports a missing CRD, then writes, updates and deletes the DNSEndpoint", func() {
		ttl := int64(300)
		Expect(k8sClient.Create(ctx(), withPublication(confidential(ns, "ext", account), v1alpha1.Verification{
			Publish: v1alpha1.PublishExternalDNS, ExternalDNS: &v1alpha1.ExternalDNSPublishing{RecordTTL: &ttl},
		}))).To(Succeed())

		By("without the DNSEndpoint CRD: a clear condition, the client and its Secret all the same")
		Eventually(readyReason(ns, "ext"), 20*time.Second).Should(Equal("False/" + v1alpha1.ReasonDNSEndpointCRDMissing))
		got := get(ns, "ext")
		Expect(condition(got, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		published := condition(got, v1alpha1.ConditionVerificationRecordPublished)
		Expect(published.Status).To(Equal(metav1.ConditionFalse))
		Expect(published.Message).To(ContainSubstring("DNSEndpoint CRD (externaldns.k8s.io/v1alpha1) is not installed"))
		Expect(secretOf(ns, "ext-oauth-client").Data).To(HaveKey(v1alpha1.SecretKeyClientSecret))
		before := len(calls(account))
		Consistently(func() int { return len(calls(account)) }, 3*syncPeriod).Should(BeNumerically("<=", before+3), "no hot loop")

		By("the CRD is installed; any spec change (or the slow re-check) picks it up")
		installDNSEndpointCRD()
		ttl = 301
		update(ns, "ext", func(o *v1alpha1.OAuthClient) { o.Spec.Verification.ExternalDNS.RecordTTL = &ttl })
		got = waitReady(ns, "ext")
		id := got.Status.ClientID
		remote, _ := emu.GetClient(account, id)
		text := remote.ClientURIVerification.Text
		ep := dnsEndpoint(ns, "ext")
		Expect(ep).NotTo(BeNil())
		Expect(endpoints(ep)).To(Equal([]any{map[string]any{
			"dnsName": "ext.example.com", "recordType": "TXT", "recordTTL": int64(301), "targets": []any{text},
		}}))
		Expect(metav1.IsControlledBy(ep, got)).To(BeTrue())
		Expect(got.Status.VerificationRecord.Publication).To(Equal(&v1alpha1.RecordPublication{
			Publish: v1alpha1.PublishExternalDNS, DNSEndpoint: dns.EndpointName("ext"),
		}))
		Expect(condition(got, v1alpha1.ConditionVerificationRecordPublished).Reason).To(Equal(v1alpha1.ReasonRecordPublished))
		Eventually(func() []string { return eventReasons(ns, "ext") }).Should(ContainElement(v1alpha1.EventVerificationRecordPublished))

		By("a restarted verification: the DNSEndpoint follows the new text")
		Expect(emu.SetVerification(account, id, cfapi.VerificationFailed)).To(Succeed())
		Eventually(verificationOf(ns, "ext"), 10*time.Second).Should(Equal(cfapi.VerificationFailed))
		update(ns, "ext", func(o *v1alpha1.OAuthClient) { o.Annotations[v1alpha1.AnnotationRestartVerification] = "again" })
		Eventually(func() string {
			now := currentText(account, id)
			eps := endpoints(dnsEndpoint(ns, "ext"))
			switch {
			case now == text:
				return "the text has not changed yet"
			case len(eps) != 1:
				return fmt.Sprintf("endpoints %v", eps)
			}
			ep := eps[0].(map[string]any)
			if got, want := fmt.Sprint(ep["targets"], " ", ep["recordTTL"]), fmt.Sprint([]any{now}, " ", 301); got != want {
				return got + " want " + want
			}
			return "follows"
		}, 10*time.Second).Should(Equal("follows"))

		By("deleting the object deletes its DNSEndpoint")
		Expect(k8sClient.Delete(ctx(), got)).To(Succeed())
		Eventually(func() *unstructured.Unstructured { return dnsEndpoint(ns, "ext") }, 10*time.Second).Should(BeNil())
		_, exists := emu.GetClient(account, id)
		Expect(exists).To(BeFalse())
	})
})

// currentText is the client's verification text in the emulator now.
func currentText(account, id string) string {
	c, _ := emu.GetClient(account, id)
	if c.ClientURIVerification == nil {
		return ""
	}
	return c.ClientURIVerification.Text
}

// inZone points an object's URIs at a host of zone.
func inZone(o *v1alpha1.OAuthClient, host string) *v1alpha1.OAuthClient {
	o.Spec.ClientURI = ptr("https://" + host)
	o.Spec.RedirectURIs = &[]string{"https://" + host + "/cb"}
	return o
}

// dnsCalls counts the emulator's requests of a DNS route on one zone.
func dnsCalls(route, zoneID string) int {
	n := 0
	for _, r := range emu.Requests() {
		if r.Route == route && strings.Contains(r.Path, "/zones/"+zoneID) {
			n++
		}
	}
	return n
}

// txtAt lists the TXT contents at name in a zone, sorted.
func txtAt(zoneID, name string) []string {
	var out []string
	for _, r := range emu.DNSRecords(zoneID) {
		if r.Type == "TXT" && strings.EqualFold(r.Name, name) {
			out = append(out, r.Content)
		}
	}
	slices.Sort(out)
	return out
}

func credentialsSecret(ns, name, token string) {
	ExpectWithOffset(1, k8sClient.Create(ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: token},
	})).To(Succeed())
}

var _ = Describe("Publishing the verification record on Cloudflare DNS", func() {
	var ns, account, zone, zoneID string
	BeforeEach(func() {
		ns, account = newNamespace(), newAccount()
		zone = ns + ".test"
		zoneID = emu.AddZone(zone)
	})
	cloudflareDNS := v1alpha1.Verification{Publish: v1alpha1.PublishCloudflareDNS}

	It("goes public from one apply: record, verification, promotion", func() {
		o := inZone(withPublication(confidential(ns, "web", account), cloudflareDNS), "app."+zone)
		o.Spec.LogoURI = ptr("https://app." + zone + "/logo.png")
		o.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
		Expect(k8sClient.Create(ctx(), o)).To(Succeed())

		Eventually(func() string { return get(ns, "web").Status.Visibility }, 30*time.Second).Should(Equal("public"))
		got := waitReady(ns, "web")
		Expect(got.Status.ClientURIVerification.Status).To(Equal(cfapi.VerificationVerified))
		Expect(condition(got, v1alpha1.ConditionPromoted).Status).To(Equal(metav1.ConditionTrue))
		text := got.Status.VerificationRecord.Content
		Expect(txtAt(zoneID, "app."+zone)).To(Equal([]string{cfapi.QuoteTXT(text)}), "one record, quoted")
		pub := got.Status.VerificationRecord.Publication
		Expect(pub.Publish).To(Equal(v1alpha1.PublishCloudflareDNS))
		Expect(pub.ZoneID).To(Equal(zoneID))
		rec := emu.DNSRecords(zoneID)[0]
		Expect(pub.RecordID).To(Equal(rec.ID))
		Expect(rec.Comment).To(Equal(dns.Owner{Namespace: ns, Name: "web", ClientID: got.Status.ClientID}.Marker()))
		published := condition(got, v1alpha1.ConditionVerificationRecordPublished)
		Expect(published.Status).To(Equal(metav1.ConditionTrue))
		Expect(published.Message).To(ContainSubstring(rec.ID))
		Eventually(func() []string { return eventReasons(ns, "web") }).Should(ContainElement(v1alpha1.EventVerificationRecordPublished))
		Expect(dnsCalls(cfemu.RouteCreateDNSRecord, zoneID)).To(Equal(1))
	})

	It("never touches other TXT records at the host, and replaces only its own on a restart", func() {
		host := zone // the apex, where SPF lives
		spf := emu.AddDNSRecord(zoneID, cfapi.DNSRecord{Type: "TXT", Name: host, Content: `"v=spf1 include:_spf.example.net -all"`})
		other := emu.AddDNSRecord(zoneID, cfapi.DNSRecord{Type: "TXT", Name: host, Content: `"google-site-verification=abc"`, Comment: "someone else"})
		others := []string{`"google-site-verification=abc"`, `"v=spf1 include:_spf.example.net -all"`}
		Expect(k8sClient.Create(ctx(), inZone(withPublication(confidential(ns, "apex", account), cloudflareDNS), host))).To(Succeed())
		Eventually(verificationOf(ns, "apex"), 20*time.Second).Should(Equal(cfapi.VerificationVerified))
		got := waitReady(ns, "apex")
		id, first := got.Status.ClientID, got.Status.VerificationRecord.Content
		Expect(txtAt(zoneID, host)).To(ConsistOf(append([]string{cfapi.QuoteTXT(first)}, others...)))

		By("a restarted verification: exactly one create and one delete")
		creates, deletes := dnsCalls(cfemu.RouteCreateDNSRecord, zoneID), dnsCalls(cfemu.RouteDeleteDNSRecord, zoneID)
		Expect(emu.SetVerification(account, id, cfapi.VerificationFailed)).To(Succeed())
		Eventually(verificationOf(ns, "apex"), 10*time.Second).Should(Equal(cfapi.VerificationFailed))
		update(ns, "apex", func(o *v1alpha1.OAuthClient) { o.Annotations[v1alpha1.AnnotationRestartVerification] = "1" })
		Eventually(func() string { return currentText(account, id) }, 10*time.Second).ShouldNot(Equal(first))
		second := currentText(account, id)
		Eventually(func() []string { return txtAt(zoneID, host) }, 10*time.Second).Should(ConsistOf(append([]string{cfapi.QuoteTXT(second)}, others...)))
		Eventually(verificationOf(ns, "apex"), 20*time.Second).Should(Equal(cfapi.VerificationVerified))
		Expect(dnsCalls(cfemu.RouteCreateDNSRecord, zoneID) - creates).To(Equal(1))
		Expect(dnsCalls(cfemu.RouteDeleteDNSRecord, zoneID) - deletes).To(Equal(1))
		Eventually(func() []string { return eventReasons(ns, "apex") }).Should(ContainElement(v1alpha1.EventVerificationRecordReplaced))

		By("deleting the object deletes its record only")
		Expect(k8sClient.Delete(ctx(), get(ns, "apex"))).To(Succeed())
		Eventually(func() []string { return txtAt(zoneID, host) }, 10*time.Second).Should(ConsistOf(others))
		records := emu.DNSRecords(zoneID)
		ids := make([]string, 0, len(records))
		for _, r := range records {
			ids = append(ids, r.ID)
		}
		Expect(ids).To(ConsistOf(spf, other))
		Eventually(func() []string { return eventReasons(ns, "apex") }).Should(ContainElement(v1alpha1.EventVerificationRecordDeleted))
	})

	It("names the missing permission when the DNS token cannot write records", func() {
		const token = "dns-read-only-token"
		emu.SetTokenDNS(token, cfemu.DNSPermissions{ZoneRead: true, DNSRead: true})
		DeferCleanup(emu.ClearTokenDNS, token)
		credentialsSecret(ns, "dns", token)
		v := cloudflareDNS
		v.CloudflareDNS = &v1alpha1.CloudflareDNSPublishing{CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "dns"}}
		Expect(k8sClient.Create(ctx(), inZone(withPublication(confidential(ns, "ro", account), v), "app."+zone))).To(Succeed())

		Eventually(readyReason(ns, "ro"), 20*time.Second).Should(Equal("False/" + v1alpha1.ReasonDNSForbidden))
		got := get(ns, "ro")
		Expect(condition(got, v1alpha1.ConditionStalled).Status).To(Equal(metav1.ConditionTrue))
		Expect(condition(got, v1alpha1.ConditionVerificationRecordPublished).Message).To(ContainSubstring("DNS Write (Zone → DNS → Edit)"))
		Expect(emu.DNSRecords(zoneID)).To(BeEmpty())
		Expect(secretOf(ns, "ro-oauth-client").Data).To(HaveKey(v1alpha1.SecretKeyClientSecret), "the client and its Secret do not wait for DNS")
		Expect(string(mustMarshal(got.Status.Conditions))).NotTo(ContainSubstring(token))
	})

	It("works with a zone-scoped token given zoneID, and says what to do without it", func() {
		// A token limited to one zone finds nothing by name: the silent refusal, whatever
		// mode the suite runs in.
		prev := emu.Strict()
		st := prev
		st.ZoneScopedList = cfemu.ZoneListEmpty
		emu.SetStrict(st)
		DeferCleanup(func() { emu.SetStrict(prev) })
		const token = "dns-zone-scoped-token"
		emu.SetTokenDNS(token, cfemu.DNSEditor(zoneID))
		DeferCleanup(emu.ClearTokenDNS, token)
		credentialsSecret(ns, "dns", token)
		v := cloudflareDNS
		v.CloudflareDNS = &v1alpha1.CloudflareDNSPublishing{CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "dns"}}
		Expect(k8sClient.Create(ctx(), inZone(withPublication(confidential(ns, "scoped", account), v), "app."+zone))).To(Succeed())

		Eventually(readyReason(ns, "scoped"), 20*time.Second).Should(Equal("False/" + v1alpha1.ReasonZoneNotFound))
		Expect(condition(get(ns, "scoped"), v1alpha1.ConditionVerificationRecordPublished).Message).To(ContainSubstring("set spec.verification.cloudflareDNS.zoneID"))

		update(ns, "scoped", func(o *v1alpha1.OAuthClient) { o.Spec.Verification.CloudflareDNS.ZoneID = zoneID })
		got := waitReady(ns, "scoped")
		Expect(condition(got, v1alpha1.ConditionVerificationRecordPublished).Reason).To(Equal(v1alpha1.ReasonRecordPublished))
		Expect(txtAt(zoneID, "app."+zone)).To(HaveLen(1))
		Eventually(verificationOf(ns, "scoped"), 20*time.Second).Should(Equal(cfapi.VerificationVerified))
	})

	It("does not publish with a shared CloudflareAccount's token, only with the namespace's own DNS token", func() {
		acct := platformAccount(account, testToken, ns)
		o := inZone(withPublication(viaAccount(confidential(ns, "shared", account), acct.Name), cloudflareDNS), "app."+zone)
		Expect(k8sClient.Create(ctx(), o)).To(Succeed())
		Eventually(readyReason(ns, "shared"), 20*time.Second).Should(Equal("False/" + v1alpha1.ReasonDNSForbidden))
		Expect(condition(get(ns, "shared"), v1alpha1.ConditionVerificationRecordPublished).Message).To(ContainSubstring("cloudflareDNS.credentialsRef"))
		Expect(emu.DNSRecords(zoneID)).To(BeEmpty())
		Expect(dnsCalls(cfemu.RouteListDNSRecords, zoneID) + dnsCalls(cfemu.RouteCreateDNSRecord, zoneID)).To(BeZero())

		credentialsSecret(ns, "dns", testToken) // the team's own DNS token
		update(ns, "shared", func(o *v1alpha1.OAuthClient) {
			o.Spec.Verification.CloudflareDNS = &v1alpha1.CloudflareDNSPublishing{CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "dns"}}
		})
		waitReady(ns, "shared")
		Expect(txtAt(zoneID, "app."+zone)).To(HaveLen(1))
	})

	It("costs at most one record list per zone per sync period in steady state, whatever the number of objects", func() {
		const n = 8
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			Expect(k8sClient.Create(ctx(), inZone(withPublication(confidential(ns, name, account), cloudflareDNS), name+"."+zone))).To(Succeed())
		}
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			Eventually(verificationOf(ns, name), 30*time.Second).Should(Equal(cfapi.VerificationVerified))
			waitReady(ns, name)
		}
		Expect(txtAt(zoneID, "s0."+zone)).To(HaveLen(1))
		start, lists := time.Now(), dnsCalls(cfemu.RouteListDNSRecords, zoneID)
		writes := dnsCalls(cfemu.RouteCreateDNSRecord, zoneID) + dnsCalls(cfemu.RouteDeleteDNSRecord, zoneID)
		Consistently(func() int { return dnsCalls(cfemu.RouteListDNSRecords, zoneID) - lists }, 4*syncPeriod, 100*time.Millisecond).
			Should(BeNumerically("<=", 5), "at most one list per sync period (4 periods, one more for the boundary)")
		periods := float64(time.Since(start)) / float64(syncPeriod)
		GinkgoWriter.Printf("steady state: %d record lists for %d objects over %.1f sync periods\n", dnsCalls(cfemu.RouteListDNSRecords, zoneID)-lists, n, periods)
		Expect(dnsCalls(cfemu.RouteCreateDNSRecord, zoneID)+dnsCalls(cfemu.RouteDeleteDNSRecord, zoneID)).To(Equal(writes), "no DNS writes in steady state")
		Expect(dnsCalls(cfemu.RouteListDNSRecords, zoneID)-lists).To(BeNumerically(">=", 2), "the record is still checked every sync period")
	})
})

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return b
}

// verificationOf polls the object's verification status ("" before there is one).
func verificationOf(ns, name string) func() string {
	return func() string {
		if v := get(ns, name).Status.ClientURIVerification; v != nil {
			return v.Status
		}
		return ""
	}
}
