package controller_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/common/expfmt"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// The hygiene scenario runs create, rotation, Cloudflare errors and a rejected token
// with distinctive credentials, then searches everything the operator exposes (logs at
// every level, Events, status and conditions, metrics) for the token and for every
// client secret it handled.
var _ = Describe("Secret hygiene", Ordered, func() {
	var ns, account string
	var secrets []string
	const badToken = "HYGIENE-rejected-token-77c1e0"

	BeforeAll(func() {
		ns, account = newNamespace(), newAccount()
		Expect(k8sClient.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "hygiene-creds"},
			StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: hygieneToken},
		})).To(Succeed())
		Expect(k8sClient.Create(ctx(), &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "rejected-creds"},
			StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: badToken},
		})).To(Succeed())
	})

	It("runs a scenario touching every secret-bearing path", func() {
		obj := withRotation(confidential(ns, "clean", account), "one", time.Second)
		obj.Spec.CredentialsRef.Name = "hygiene-creds"
		Expect(k8sClient.Create(ctx(), obj)).To(Succeed())
		waitReady(ns, "clean")
		secrets = append(secrets, string(secretOf(ns, "clean-oauth-client").Data[v1alpha1.SecretKeyClientSecret]))

		By("a rotation")
		setRotationID(ns, "clean", "two")
		Eventually(func() string {
			return string(secretOf(ns, "clean-oauth-client").Data[v1alpha1.SecretKeyClientSecret])
		}, 10*time.Second).ShouldNot(Equal(secrets[0]))
		secrets = append(secrets, string(secretOf(ns, "clean-oauth-client").Data[v1alpha1.SecretKeyClientSecret]))

		By("Cloudflare errors on the next drift correction")
		emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: routeUpdate, Kind: "500", Count: 2}}})
		DeferCleanup(emu.ClearFaults)
		update(ns, "clean", func(o *v1alpha1.OAuthClient) { o.Spec.ClientName = ptr("Clean renamed") })
		Eventually(func() []string { return writes(account) }, 15*time.Second).Should(ContainElement(routeUpdate))
		waitReady(ns, "clean")

		By("a rejected token")
		bad := confidential(ns, "rejected", account)
		bad.Spec.CredentialsRef.Name = "rejected-creds"
		Expect(k8sClient.Create(ctx(), bad)).To(Succeed())
		Eventually(readyReason(ns, "rejected")).Should(Equal("False/" + v1alpha1.ReasonUnauthorized))
	})

	It("finds no token or client secret in logs, Events, status or metrics", func() {
		Expect(secrets).To(HaveLen(2))
		needles := append([]string{hygieneToken, badToken}, secrets...)

		haystacks := make([]string, 0, 4)
		haystacks = append(haystacks, capturedLogs.String())
		Expect(capturedLogs.String()).To(ContainSubstring("clean"), "the log capture is working")

		events := &eventsv1.EventList{}
		Expect(k8sClient.List(ctx(), events, client.InNamespace(ns))).To(Succeed())
		Expect(events.Items).NotTo(BeEmpty())
		raw, err := json.Marshal(events)
		Expect(err).NotTo(HaveOccurred())
		haystacks = append(haystacks, string(raw))

		objs := &v1alpha1.OAuthClientList{}
		Expect(k8sClient.List(ctx(), objs, client.InNamespace(ns))).To(Succeed())
		raw, err = json.Marshal(objs)
		Expect(err).NotTo(HaveOccurred())
		haystacks = append(haystacks, string(raw))

		families, err := metrics.Registry.Gather()
		Expect(err).NotTo(HaveOccurred())
		var buf bytes.Buffer
		for _, mf := range families {
			_, err := expfmt.MetricFamilyToText(&buf, mf)
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(buf.String()).To(ContainSubstring("cloudflare_api_requests_total"))
		haystacks = append(haystacks, buf.String())

		for _, h := range haystacks {
			for _, n := range needles {
				Expect(n).NotTo(BeEmpty())
				Expect(strings.Contains(h, n)).To(BeFalse(), "a credential or client secret leaked: %.12s...", n)
			}
		}
	})
})
