package controller

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

var (
	apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cloudflare_api_requests_total",
		Help: "Cloudflare API requests by operation and HTTP status code (0: no response).",
	}, []string{"operation", "code"})
	apiDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cloudflare_api_request_duration_seconds",
		Help:    "Latency of Cloudflare API requests by operation.",
		Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	}, []string{"operation"})
	rateLimitRemaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "cloudflare_ratelimit_remaining",
		Help: "Requests left in Cloudflare's rate-limit window, per credentials (a hash, never the token), from the Ratelimit header.",
	}, []string{"credentials"})
	driftCorrections = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "oauthclient_drift_corrections_total",
		Help: "PATCHes that corrected a change made in Cloudflare outside the operator.",
	})
)

func init() {
	metrics.Registry.MustRegister(apiRequests, apiDuration, rateLimitRemaining, driftCorrections)
}

// ObserveRequests returns a cfapi observer feeding the Cloudflare metrics for the
// credentials with the given key.
func ObserveRequests(creds cfapi.Credentials) func(cfapi.RequestInfo) {
	key := credentialsKey(creds)
	return func(info cfapi.RequestInfo) {
		apiRequests.WithLabelValues(info.Operation, strconv.Itoa(info.StatusCode)).Inc()
		apiDuration.WithLabelValues(info.Operation).Observe(info.Duration.Seconds())
		if info.RateLimit != nil {
			rateLimitRemaining.WithLabelValues(key).Set(float64(info.RateLimit.Remaining))
		}
	}
}

// objectsCollector reports oauthclients{verification_status,visibility,ready} from the
// informer cache at scrape time, so the gauge can never drift from the objects.
type objectsCollector struct {
	reader client.Reader
	desc   *prometheus.Desc
}

// RegisterObjectsCollector registers the oauthclients gauge, read from reader (the
// manager's cache).
func RegisterObjectsCollector(reader client.Reader) error {
	return metrics.Registry.Register(newObjectsCollector(reader))
}

func newObjectsCollector(reader client.Reader) *objectsCollector {
	return &objectsCollector{
		reader: reader,
		desc: prometheus.NewDesc("oauthclients", "OAuthClient objects by verification status, visibility and readiness.",
			[]string{"verification_status", "visibility", "ready"}, nil),
	}
}

func (c *objectsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *objectsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &v1alpha1.OAuthClientList{}
	if err := c.reader.List(ctx, list); err != nil {
		return
	}
	type key struct{ verification, visibility, ready string }
	counts := map[key]int{}
	for i := range list.Items {
		o := &list.Items[i]
		k := key{verification: "none", visibility: o.Status.Visibility, ready: "Unknown"}
		if v := o.Status.ClientURIVerification; v != nil && v.Status != "" {
			k.verification = v.Status
		}
		if cond := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
			k.ready = string(cond.Status)
		}
		counts[k]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k.verification, k.visibility, k.ready)
	}
}
