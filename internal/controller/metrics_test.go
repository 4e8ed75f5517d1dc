package controller

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func TestObserveRequests(t *testing.T) {
	creds := cfapi.Credentials{APIToken: "metrics-token-5e2"}
	before := testutil.ToFloat64(apiRequests.WithLabelValues("create", "429"))
	observe := ObserveRequests(creds)
	observe(cfapi.RequestInfo{Operation: "create", StatusCode: 429, Duration: 40 * time.Millisecond,
		RateLimit: &cfapi.RateLimit{Remaining: 17, Reset: time.Minute}})
	if got := testutil.ToFloat64(apiRequests.WithLabelValues("create", "429")) - before; got != 1 {
		t.Errorf("cloudflare_api_requests_total{create,429} grew by %v, want 1", got)
	}
	if got := testutil.ToFloat64(rateLimitRemaining.WithLabelValues(credentialsKey(creds))); got != 17 {
		t.Errorf("cloudflare_ratelimit_remaining = %v, want 17", got)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(rateLimitRemaining)
	if n, err := testutil.GatherAndCount(reg, "cloudflare_ratelimit_remaining"); err != nil || n == 0 {
		t.Fatalf("gather: %d series, %v", n, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), creds.APIToken) {
					t.Fatalf("the token is a label value: %s", l.GetValue())
				}
			}
		}
	}
}

func TestObjectsCollector(t *testing.T) {
	ready := func(name, verification, visibility string, status metav1.ConditionStatus) *v1alpha1.OAuthClient {
		o := unitObject(name)
		o.Status.Visibility = visibility
		if verification != "" {
			o.Status.ClientURIVerification = &v1alpha1.ClientURIVerification{Status: verification}
		}
		o.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: "X", LastTransitionTime: metav1.Now()}}
		return o
	}
	f := newFixture(t,
		ready("a", "verified", "public", metav1.ConditionTrue),
		ready("b", "verified", "public", metav1.ConditionTrue),
		ready("c", "", "private", metav1.ConditionFalse),
	)
	want := `
# HELP oauthclients OAuthClient objects by verification status, visibility and readiness.
# TYPE oauthclients gauge
oauthclients{ready="False",verification_status="none",visibility="private"} 1
oauthclients{ready="True",verification_status="verified",visibility="public"} 2
`
	if err := testutil.CollectAndCompare(newObjectsCollector(f.c), strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
