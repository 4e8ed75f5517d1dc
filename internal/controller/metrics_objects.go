package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// Descriptions of the OAuthClient gauges, computed from the objects at scrape time, so
// they can never drift from them.
var (
	objectsDesc = prometheus.NewDesc("oauthclients",
		"OAuthClient objects by verification status, visibility and readiness.",
		[]string{"verification_status", "visibility", "ready"}, nil)
	readyDesc = prometheus.NewDesc("oauthclients_ready",
		"OAuthClient objects by namespace and the status and reason of their Ready condition.",
		[]string{labelNamespace, labelStatus, labelReason}, nil)
	stalledDesc = prometheus.NewDesc("oauthclients_stalled",
		"OAuthClient objects with Stalled=True (a person must act), by namespace and reason.",
		[]string{labelNamespace, labelReason}, nil)
	stalledSinceDesc = prometheus.NewDesc("oauthclients_stalled_since_timestamp_seconds",
		"When the longest-stalled object of each namespace and reason became Stalled (Unix seconds).",
		[]string{labelNamespace, labelReason}, nil)
	verificationDesc = prometheus.NewDesc("oauthclients_verification",
		"OAuthClient objects by namespace and client URI verification status (pending, in_progress, verified, failed, none).",
		[]string{labelNamespace, labelStatus}, nil)
	previousSecretDesc = prometheus.NewDesc("oauthclients_previous_secret_valid",
		"OAuthClient objects whose previous client secret is still valid after a rotation, by namespace.",
		[]string{labelNamespace}, nil)
	// The per-object exception: an alert on one client's old secret must name that
	// client. The series set follows the objects (it changes when an object is created
	// or deleted, not on every pass) and each value changes only when a secret is issued,
	// so the cost is one or two series per confidential client, as for kube-state-metrics'
	// per-object series.
	secretIssuedDesc = prometheus.NewDesc("oauthclient_secret_issued_timestamp_seconds",
		"When the current client secret of each managed confidential OAuthClient was issued (Unix seconds): "+
			"status.secretRotation.lastRotatedAt, else status.createdAt.",
		[]string{labelNamespace, labelName}, nil)
	nextRotationDesc = prometheus.NewDesc("oauthclient_secret_next_rotation_timestamp_seconds",
		"When the next periodic rotation (spec.secretRotation.every) of each OAuthClient is due (Unix seconds); "+
			"after the previous secret's overlap ends when that is later.",
		[]string{labelNamespace, labelName}, nil)
)

// objectsCollector reports the OAuthClient gauges from the informer cache at scrape
// time.
type objectsCollector struct {
	reader client.Reader
	// leader reports whether this replica is the elected leader; nil means always.
	leader func() bool
}

func newObjectsCollector(reader client.Reader) *objectsCollector {
	return &objectsCollector{reader: reader}
}

func (c *objectsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{objectsDesc, readyDesc, stalledDesc, stalledSinceDesc, verificationDesc,
		previousSecretDesc, secretIssuedDesc, nextRotationDesc} {
		ch <- d
	}
}

func (c *objectsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.leader != nil && !c.leader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	list := &v1alpha1.OAuthClientList{}
	if err := c.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil { // read only
		return
	}
	var s objectStats
	for i := range list.Items {
		s.add(&list.Items[i])
	}
	s.emit(ch)
}

type (
	stateKey   struct{ verification, visibility, ready string }
	readyKey   struct{ namespace, status, reason string }
	nsReason   struct{ namespace, reason string }
	nsStatus   struct{ namespace, status string }
	secretTime struct {
		namespace, name string
		issued          time.Time
		next            *time.Time
	}
)

// objectStats accumulates the gauges over the objects of one scrape.
type objectStats struct {
	states       map[stateKey]int
	ready        map[readyKey]int
	stalled      map[nsReason]int
	stalledSince map[nsReason]time.Time
	verification map[nsStatus]int
	previous     map[string]int
	secrets      []secretTime
}

func (s *objectStats) add(o *v1alpha1.OAuthClient) {
	if s.states == nil {
		*s = objectStats{states: map[stateKey]int{}, ready: map[readyKey]int{}, stalled: map[nsReason]int{},
			stalledSince: map[nsReason]time.Time{}, verification: map[nsStatus]int{}, previous: map[string]int{}}
	}
	verification := "none"
	if v := o.Status.ClientURIVerification; v != nil && v.Status != "" {
		verification = v.Status
	}
	rk := readyKey{namespace: o.Namespace, status: string(metav1.ConditionUnknown), reason: "Unknown"}
	if cond := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
		rk.status, rk.reason = string(cond.Status), cond.Reason
	}
	s.states[stateKey{verification: verification, visibility: o.Status.Visibility, ready: rk.status}]++
	s.ready[rk]++
	s.verification[nsStatus{namespace: o.Namespace, status: verification}]++
	if cond := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionStalled); cond != nil && cond.Status == metav1.ConditionTrue {
		k := nsReason{namespace: o.Namespace, reason: cond.Reason}
		s.stalled[k]++
		if since, ok := s.stalledSince[k]; !ok || cond.LastTransitionTime.Time.Before(since) {
			s.stalledSince[k] = cond.LastTransitionTime.Time
		}
	}
	if o.Status.HasRotatedSecret {
		s.previous[o.Namespace]++
	}
	if st, ok := secretTimes(o); ok {
		s.secrets = append(s.secrets, st)
	}
}

// secretTimes says when the current secret of a managed confidential client was issued,
// and when its next periodic rotation is due. Public clients have no secret, and the
// operator neither holds nor rotates the secret of an observed client.
func secretTimes(o *v1alpha1.OAuthClient) (secretTime, bool) {
	if o.PublicClient() || o.Observing() || o.Status.ClientID == "" {
		return secretTime{}, false
	}
	st := secretTime{namespace: o.Namespace, name: o.Name}
	rot := o.Status.SecretRotation
	switch {
	case rot != nil && rot.LastRotatedAt != nil:
		st.issued = rot.LastRotatedAt.Time
	case o.Status.CreatedAt != nil:
		st.issued = o.Status.CreatedAt.Time
	default:
		return secretTime{}, false
	}
	if sr := o.Spec.SecretRotation; sr != nil && sr.Every != nil {
		// A rotation that falls due during an overlap waits for it to end (rotation.go).
		next := st.issued.Add(sr.Every.Duration)
		if rot != nil && rot.PreviousSecretExpiresAt != nil && rot.PreviousSecretExpiresAt.After(next) {
			next = rot.PreviousSecretExpiresAt.Time
		}
		st.next = &next
	}
	return st, true
}

func (s *objectStats) emit(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for k, n := range s.states {
		gauge(objectsDesc, float64(n), k.verification, k.visibility, k.ready)
	}
	for k, n := range s.ready {
		gauge(readyDesc, float64(n), k.namespace, k.status, k.reason)
	}
	for k, n := range s.stalled {
		gauge(stalledDesc, float64(n), k.namespace, k.reason)
		gauge(stalledSinceDesc, unixSeconds(s.stalledSince[k]), k.namespace, k.reason)
	}
	for k, n := range s.verification {
		gauge(verificationDesc, float64(n), k.namespace, k.status)
	}
	for ns, n := range s.previous {
		gauge(previousSecretDesc, float64(n), ns)
	}
	for _, st := range s.secrets {
		gauge(secretIssuedDesc, unixSeconds(st.issued), st.namespace, st.name)
		if st.next != nil {
			gauge(nextRotationDesc, unixSeconds(*st.next), st.namespace, st.name)
		}
	}
}

// unixSeconds is t as a Prometheus timestamp gauge: Unix seconds, with fractions.
func unixSeconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}
