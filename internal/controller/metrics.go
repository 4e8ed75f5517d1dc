package controller

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// The metrics are documented in docs/observability.md, one row each; a test scrapes
// the real manager and fails when the dashboard or an alert names a metric it does not
// expose.
//
// Label cardinality is bounded by design: operation, code and reason come from fixed
// sets, user and account name the few Cloudflare users and accounts an install talks to,
// and namespace the namespaces holding OAuthClients. The one per-object family, the
// secret timestamps (metrics_objects.go), is a documented exception.

// Label names shared by several metrics.
const (
	labelNamespace = "namespace"
	labelName      = "name"
	labelReason    = "reason"
	labelStatus    = "status"
	labelUser      = "user"
	labelAccount   = "account"
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
	reconcileFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "oauthclient_reconcile_failures_total",
		Help: "Reconciles that ended without reaching the spec, by the Ready condition reason they recorded.",
	}, []string{labelReason})
)

func init() {
	metrics.Registry.MustRegister(apiRequests, apiDuration, rateLimitRemaining, driftCorrections, reconcileFailures)
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

// countFailure counts a reconcile that ended in outcome, by the Ready reason outcome
// recorded: the label set is the fixed set of condition reasons.
func countFailure(obj *v1alpha1.OAuthClient) {
	reason := v1alpha1.ReasonCloudflareError
	if c := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason != "" {
		reason = c.Reason
	}
	reconcileFailures.WithLabelValues(reason).Inc()
}

// RegisterMetrics registers the scrape-time collectors: the OAuthClient gauges, read
// from the manager's cache, and the request budgets and account snapshots of this
// reconciler. Call it after SetupWithManager. Only the elected leader reports them:
// standby replicas share the cache but reconcile nothing, and two replicas reporting
// the same objects would double every sum.
func (r *OAuthClientReconciler) RegisterMetrics(mgr ctrl.Manager) error {
	elected := mgr.Elected()
	leader := func() bool {
		select {
		case <-elected:
			return true
		default:
			return false
		}
	}
	objects := newObjectsCollector(mgr.GetCache())
	objects.leader = leader
	state := &stateCollector{apis: r.apis, snapshots: r.snapshots, now: func() time.Time { return r.now() }, leader: leader}
	if err := metrics.Registry.Register(objects); err != nil {
		return err
	}
	return metrics.Registry.Register(state)
}
