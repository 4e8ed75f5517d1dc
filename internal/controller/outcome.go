package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// outcome maps every failure of a pass to conditions and to what happens next, in one
// place. The kind of a failure (failure.go) decides; rate limiting has its own path:
//
//	rate limited (429, an empty budget, our pacing) -> Reconciling/RateLimited; every
//	                                                  object on that user waits, no error
//	a failure of a stalled kind                     -> Stalled with its reason; re-checked
//	                                                  on the kind's slow period
//	remote state                                    -> snapshot refreshed, backoff
//	anything else (5xx, timeout, ...)               -> Reconciling; workqueue backoff
func (r *OAuthClientReconciler) outcome(ctx context.Context, p *pass, err error) (ctrl.Result, error) {
	obj := p.obj
	defer countFailure(obj) // by the Ready reason set below
	var limited *rateLimitedError
	if pause, ok := rateLimitWait(err); ok && settled(obj) {
		// A periodic look at a converged object could not be made now: its status
		// stays as it is, so that Ready does not flap on every object of a user while
		// the budget is spent or another tool's calls fill the window. The metrics
		// (cloudflare_budget_*) say so, and objects with work to do show RateLimited.
		return ctrl.Result{RequeueAfter: jitterUp(pause)}, nil
	}
	if errors.As(err, &limited) && limited.paced {
		// No durations in messages: a message that changes every pass is a status write
		// every pass.
		markProgressing(obj, v1alpha1.ReasonRateLimited,
			"pacing Cloudflare calls to stay within the request budget of these credentials (--cloudflare-request-budget)")
		return ctrl.Result{RequeueAfter: jitterUp(limited.wait)}, nil
	}
	if errors.As(err, &limited) {
		return r.rateLimited(ctx, p, limited.wait)
	}
	if retryAfter, ok := cfapi.IsRateLimited(err); ok {
		// The budget recorded the block when the answer arrived (budget.observe); this
		// is only how long this object waits.
		return r.rateLimited(ctx, p, boundedWait(retryAfter, defaultRetryAfter))
	}
	var f *failure
	if !errors.As(err, &f) {
		markProgressing(obj, v1alpha1.ReasonCloudflareError, describe(err))
		return ctrl.Result{}, err
	}
	pol := policies[f.kind]
	if isScopeError(f.cause) {
		r.scopes.invalidate(p.credsKey) // the catalogue may be stale
	}
	if pol.refresh && p.credsKey != "" {
		r.snapshots.Invalidate(p.account)
	}
	if !pol.stalled {
		markProgressing(obj, f.reason, f.message)
		if !pol.backoff {
			return ctrl.Result{RequeueAfter: jitterUp(max(f.after, time.Second))}, nil
		}
		return ctrl.Result{}, err
	}
	markStalled(obj, f.reason, f.message)
	return ctrl.Result{RequeueAfter: wait.Jitter(pol.retry(r), 0.1)}, nil
}

// rateLimitWait reports whether err means the user's calls are paused (our pacing, a
// yield, a block, a 429), and for how long.
func rateLimitWait(err error) (time.Duration, bool) {
	var limited *rateLimitedError
	if errors.As(err, &limited) {
		return limited.wait, true
	}
	if retryAfter, ok := cfapi.IsRateLimited(err); ok {
		return boundedWait(retryAfter, defaultRetryAfter), true
	}
	return 0, false
}

// settled reports whether the object's last pass reached its goal for its current
// generation (Ready=True): a pass of it has no change of the user's to make.
func settled(obj *v1alpha1.OAuthClient) bool {
	ready := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady)
	return ready != nil && ready.Status == metav1.ConditionTrue && ready.ObservedGeneration == obj.Generation &&
		obj.Status.ObservedGeneration == obj.Generation
}

// rateLimited pauses the object until the credentials may call again, spreading the
// wake-ups so the objects sharing a token do not return as a herd.
func (r *OAuthClientReconciler) rateLimited(ctx context.Context, p *pass, pause time.Duration) (ctrl.Result, error) {
	obj := p.obj
	if settled(obj) {
		return ctrl.Result{RequeueAfter: jitterUp(pause)}, nil // see outcome
	}
	if ready := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Reason != v1alpha1.ReasonRateLimited {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventRateLimited, "Reconcile",
			"Cloudflare's rate limit is exhausted for these credentials; retrying in %s", pause.Round(time.Second))
		logf.FromContext(ctx).V(1).Info("rate limited", "credentials", p.credsKey, "wait", pause)
	}
	markProgressing(obj, v1alpha1.ReasonRateLimited, "Cloudflare's rate limit is exhausted for these credentials; waiting for its Retry-After")
	return ctrl.Result{RequeueAfter: jitterUp(pause)}, nil
}

// jitterUp adds up to 20% (at most a minute) to d, after bounding d to
// [0, maxRateLimitWait]: the result is never negative, infinite or overflowing.
func jitterUp(d time.Duration) time.Duration {
	d = min(max(d, 0), maxRateLimitWait)
	spread := min(d/5, time.Minute)
	return d + time.Duration(float64(spread)*rand.Float64())
}

// describe renders an error for a condition message: Cloudflare's own messages and
// field pointers when there are some. It leaves out what changes on every attempt (ray
// ids, local ports), so a repeating failure does not rewrite status on every retry.
func describe(err error) string {
	apiErr, ok := asAPIError(err)
	switch {
	case !ok:
		return err.Error()
	case apiErr.StatusCode == 0:
		return fmt.Sprintf("Cloudflare did not answer %s %s (timeout or connection failure)", apiErr.Method, apiErr.Path)
	case len(apiErr.Errors) == 0 && apiErr.StatusCode < 300:
		return fmt.Sprintf("Cloudflare sent an unusable response to %s %s (HTTP %d)", apiErr.Method, apiErr.Path, apiErr.StatusCode)
	case len(apiErr.Errors) == 0:
		return fmt.Sprintf("Cloudflare answered %s %s with HTTP %d %s", apiErr.Method, apiErr.Path, apiErr.StatusCode, http.StatusText(apiErr.StatusCode))
	}
	parts := make([]string, 0, len(apiErr.Errors))
	for _, e := range apiErr.Errors {
		s := fmt.Sprintf("%s (code %d", e.Message, e.Code)
		if e.Source != nil && e.Source.Pointer != "" {
			s += ", field " + e.Source.Pointer
		}
		parts = append(parts, s+")")
	}
	return fmt.Sprintf("HTTP %d: %s", apiErr.StatusCode, strings.Join(parts, "; "))
}

// markReady records a pass that reached the spec.
func markReady(obj *v1alpha1.OAuthClient, reason, message string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionTrue, reason, message)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionReconciling)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionStalled)
	obj.Status.ObservedGeneration = obj.Generation
}

// markStalled records a pass that concluded it cannot progress without a human.
func markStalled(obj *v1alpha1.OAuthClient, reason, message string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
	setCondition(obj, v1alpha1.ConditionStalled, metav1.ConditionTrue, reason, message)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionReconciling)
	obj.Status.ObservedGeneration = obj.Generation
}

// markProgressing records a pass that is still working; observedGeneration stays where
// the last conclusion left it.
func markProgressing(obj *v1alpha1.OAuthClient, reason, message string) {
	setCondition(obj, v1alpha1.ConditionReady, metav1.ConditionFalse, reason, message)
	setCondition(obj, v1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, message)
	meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionStalled)
}

func setCondition(obj *v1alpha1.OAuthClient, typ string, status metav1.ConditionStatus, reason, message string) {
	meta.SetStatusCondition(&obj.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(message, 1024), ObservedGeneration: obj.Generation,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func asAPIError(err error) (*cfapi.APIError, bool) {
	var apiErr *cfapi.APIError
	ok := errors.As(err, &apiErr)
	return apiErr, ok
}
