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

// stalledError is a failure only a human can fix (a bad spec, missing credentials, a
// client that does not exist). retry, when set, re-checks on that slow period.
type stalledError struct {
	reason  string
	message string
	retry   time.Duration
}

func (e *stalledError) Error() string { return e.message }

// rateLimitedError says calls with these credentials are paused: by Cloudflare (429),
// or by our own pacing (paced) when the request budget is spent.
type rateLimitedError struct {
	wait  time.Duration
	paced bool
}

func (e *rateLimitedError) Error() string { return fmt.Sprintf("rate limited for %s", e.wait) }

// deletionBlockedError is a deletion Cloudflare refused for lack of permission.
type deletionBlockedError struct{ cause error }

func (e *deletionBlockedError) Error() string { return e.cause.Error() }
func (e *deletionBlockedError) Unwrap() error { return e.cause }

// outcome maps every failure of a pass to conditions and to what happens next, in one
// place:
//
//	credentials, spec, missing client -> Stalled; no retry until something changes
//	401 / 403                         -> Stalled (Unauthorized / Forbidden); slow retry
//	400 / 422                         -> Stalled (InvalidSpec) with Cloudflare's message
//	429                               -> RateLimited; every object on that token waits
//	                                     for Retry-After (jittered), no error
//	anything else (5xx, timeout, ...) -> Reconciling; the error goes to the workqueue's
//	                                     exponential backoff
func (r *OAuthClientReconciler) outcome(ctx context.Context, p *pass, err error) (ctrl.Result, error) {
	obj := p.obj
	var stalled *stalledError
	var credErr *credentialsError
	var limited *rateLimitedError
	var blocked *deletionBlockedError
	retryAfter, isRateLimited := cfapi.IsRateLimited(err)
	switch {
	case errors.As(err, &blocked):
		markStalled(obj, v1alpha1.ReasonDeletionBlocked, "cannot delete the Cloudflare client ("+describe(blocked.cause)+
			"); fix the credentials, or set spec.deletionPolicy: Orphan to release this object and keep the client")
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.ReasonDeletionBlocked, "Delete", "cannot delete the Cloudflare client: %s", describe(blocked.cause))
		return ctrl.Result{RequeueAfter: wait.Jitter(slowRetry, 0.1)}, nil
	case errors.As(err, &credErr):
		markStalled(obj, credErr.reason, credErr.message)
		return ctrl.Result{}, nil
	case errors.As(err, &stalled):
		markStalled(obj, stalled.reason, stalled.message)
		if stalled.retry > 0 {
			return ctrl.Result{RequeueAfter: wait.Jitter(stalled.retry, 0.1)}, nil
		}
		return ctrl.Result{}, nil
	case errors.As(err, &limited) && limited.paced:
		// No durations in messages: a message that changes every pass is a status write
		// every pass.
		markProgressing(obj, v1alpha1.ReasonRateLimited,
			"pacing Cloudflare calls to stay within the request budget of these credentials (--cloudflare-request-budget)")
		return ctrl.Result{RequeueAfter: jitterUp(limited.wait)}, nil
	case errors.As(err, &limited):
		return r.rateLimited(ctx, p, limited.wait)
	case isRateLimited:
		if retryAfter <= 0 {
			retryAfter = defaultRetryAfter
		}
		r.snapshots.Block(p.credsKey, r.now().Add(retryAfter))
		return r.rateLimited(ctx, p, retryAfter)
	case cfapi.IsUnauthorized(err):
		markStalled(obj, v1alpha1.ReasonUnauthorized, "Cloudflare rejected the credentials: "+describe(err))
		return ctrl.Result{RequeueAfter: wait.Jitter(slowRetry, 0.1)}, nil
	case cfapi.IsForbidden(err):
		markStalled(obj, v1alpha1.ReasonForbidden, "the credentials lack OAuth Client permissions on account "+obj.Spec.AccountID+": "+describe(err))
		return ctrl.Result{RequeueAfter: wait.Jitter(slowRetry, 0.1)}, nil
	case cfapi.IsValidation(err):
		if isScopeError(err) {
			r.scopes.invalidate(p.credsKey) // the catalogue may be stale
		}
		markStalled(obj, v1alpha1.ReasonInvalidSpec, "Cloudflare rejected the request: "+describe(err))
		return ctrl.Result{}, nil
	default:
		markProgressing(obj, v1alpha1.ReasonCloudflareError, describe(err))
		return ctrl.Result{}, err
	}
}

// rateLimited pauses the object until the credentials may call again, spreading the
// wake-ups so the objects sharing a token do not return as a herd.
func (r *OAuthClientReconciler) rateLimited(ctx context.Context, p *pass, pause time.Duration) (ctrl.Result, error) {
	obj := p.obj
	if ready := meta.FindStatusCondition(obj.Status.Conditions, v1alpha1.ConditionReady); ready == nil || ready.Reason != v1alpha1.ReasonRateLimited {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.ReasonRateLimited, "Reconcile",
			"Cloudflare's rate limit is exhausted for these credentials; retrying in %s", pause.Round(time.Second))
		logf.FromContext(ctx).V(1).Info("rate limited", "credentials", p.credsKey, "wait", pause)
	}
	markProgressing(obj, v1alpha1.ReasonRateLimited, "Cloudflare's rate limit is exhausted for these credentials; waiting for its Retry-After")
	return ctrl.Result{RequeueAfter: jitterUp(pause)}, nil
}

// jitterUp adds up to 20% (at most a minute) to d.
func jitterUp(d time.Duration) time.Duration {
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
