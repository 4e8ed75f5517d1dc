package controller

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// failureKind says what a failure needs. The retry policy lives with the kind (see
// policies), never at the site that builds the error, so every failure of one kind is
// retried the same way.
type failureKind int

const (
	// kindTransient: Cloudflare or the apiserver failed in a way that retrying fixes
	// (5xx, timeout, reset, an unreadable answer). The workqueue's exponential backoff
	// retries it.
	kindTransient failureKind = iota
	// kindRemoteState: Cloudflare refused a request because of remote state the snapshot
	// did not show (a rotated secret made elsewhere, a promotion precondition, a
	// verification lock, a client deleted out of band). The snapshot is refreshed and the
	// object retried with the workqueue's backoff, never stalled.
	kindRemoteState
	// kindSpec: the spec asks for something Cloudflare refuses (a 400 on a create or an
	// update, an unknown scope). Stalled until the spec changes, and re-checked slowly
	// because Cloudflare's rules and scope catalogue change.
	kindSpec
	// kindCredentials: credentials missing, malformed, refused (401) or without
	// permission (403). Stalled; re-checked slowly, and at once when the Secret changes.
	kindCredentials
	// kindConflict: another object holds what this one names (a bound Cloudflare client,
	// a Secret). Stalled; re-checked every sync period, so the object takes over once the
	// holder is gone.
	kindConflict
	// kindDeletionBlocked: the client cannot be deleted (credentials gone or refused).
	// Stalled with an Event that says how to release the object; re-checked slowly.
	kindDeletionBlocked
	// kindWaiting: not a failure but a wait the pass cannot shorten (a Create settling).
	// Reconciling; looked at again when the wait is over.
	kindWaiting
)

// Slow re-check periods of the kinds that need a person.
const (
	// credentialsRetry: tokens get fixed, but not within seconds.
	credentialsRetry = 5 * time.Minute
	// specRetry: Cloudflare's rules and scope catalogue change rarely.
	specRetry = 15 * time.Minute
)

// policy is what happens after a failure of one kind.
type policy struct {
	// stalled marks the object Stalled (kstatus Failed): a person must act.
	stalled bool
	// backoff returns the error to the workqueue for exponential backoff.
	backoff bool
	// refresh invalidates the account snapshot first: the failure proved it stale.
	refresh bool
	// retry is the jittered RequeueAfter of a stalled object (from the reconciler, for
	// the kinds that follow its sync period).
	retry func(r *OAuthClientReconciler) time.Duration
}

var policies = map[failureKind]policy{
	kindTransient:       {backoff: true},
	kindRemoteState:     {backoff: true, refresh: true},
	kindSpec:            {stalled: true, retry: func(*OAuthClientReconciler) time.Duration { return specRetry }},
	kindCredentials:     {stalled: true, retry: func(*OAuthClientReconciler) time.Duration { return credentialsRetry }},
	kindConflict:        {stalled: true, retry: func(r *OAuthClientReconciler) time.Duration { return r.SyncPeriod }},
	kindDeletionBlocked: {stalled: true, retry: func(*OAuthClientReconciler) time.Duration { return credentialsRetry }},
	kindWaiting:         {},
}

// failure is every classified failure of a pass: its kind, the condition reason and a
// message for people (never a token, never a changing ray id).
type failure struct {
	kind    failureKind
	reason  string
	message string
	cause   error
	// after is how long a kindWaiting failure waits.
	after time.Duration
}

func (f *failure) Error() string { return f.message }
func (f *failure) Unwrap() error { return f.cause }

func newFailure(kind failureKind, reason, format string, args ...any) *failure {
	return &failure{kind: kind, reason: reason, message: fmt.Sprintf(format, args...)}
}

// rateLimitedError says calls with these credentials are paused: by Cloudflare (429 or
// a Ratelimit header with nothing left), or by our own pacing (paced) when the request
// budget is spent. Such a call was never sent.
type rateLimitedError struct {
	wait  time.Duration
	paced bool
}

func (e *rateLimitedError) Error() string { return fmt.Sprintf("rate limited for %s", e.wait) }

// notSentError is a call the operator itself refused or abandoned before sending it
// (its context ended while it waited for the pacer): Cloudflare never saw it.
type notSentError struct{ cause error }

func (e *notSentError) Error() string { return "not sent: " + e.cause.Error() }
func (e *notSentError) Unwrap() error { return e.cause }

// operation names the Cloudflare call a failure came from: the same HTTP status means
// different things for different calls.
type operation int

const (
	opList operation = iota
	opCreate
	opUpdate
	opPromote
	opRestartVerification
	opRotate
	opDeleteRotated
	opDelete
)

// classify turns a Cloudflare error into a failure of the right kind, by cause:
//
//	401                      -> credentials (Unauthorized)
//	403                      -> credentials (Forbidden)
//	404 on a client call     -> remote state: the client is gone; refresh and look again
//	400/409/422 on rotate,   -> remote state: the refusal is about remote state the
//	  promote, restart          snapshot did not show (a rotated secret, a precondition,
//	                            a verification lock)
//	400/422 on create/update -> spec (InvalidSpec, with Cloudflare's message)
//	429 and our own pacing   -> left as is: rate limiting has its own path
//	anything else            -> transient
func classify(op operation, err error) error {
	if err == nil {
		return nil
	}
	var f *failure
	var limited *rateLimitedError
	var notSent *notSentError
	if errors.As(err, &f) || errors.As(err, &limited) || errors.As(err, &notSent) {
		return err
	}
	if _, ok := cfapi.IsRateLimited(err); ok {
		return err
	}
	apiErr, ok := asAPIError(err)
	if !ok {
		return err
	}
	wrap := func(kind failureKind, reason, message string) error {
		return &failure{kind: kind, reason: reason, message: message, cause: err}
	}
	switch status := apiErr.StatusCode; {
	case status == http.StatusUnauthorized:
		return wrap(kindCredentials, v1alpha1.ReasonUnauthorized, "Cloudflare rejected the credentials: "+describe(err))
	case status == http.StatusForbidden:
		return wrap(kindCredentials, v1alpha1.ReasonForbidden, "the credentials lack OAuth Client permissions on this account: "+describe(err))
	case status == http.StatusNotFound && op != opList:
		return wrap(kindRemoteState, v1alpha1.ReasonClientNotFound, "the Cloudflare client is gone: "+describe(err))
	case op == opRotate || op == opPromote || op == opRestartVerification || op == opDeleteRotated:
		if status == http.StatusBadRequest || status == http.StatusConflict || status == http.StatusUnprocessableEntity {
			return wrap(kindRemoteState, v1alpha1.ReasonCloudflareError, "Cloudflare refused the request because of the client's current state; looking again: "+describe(err))
		}
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return wrap(kindSpec, v1alpha1.ReasonInvalidSpec, "Cloudflare rejected the request: "+describe(err))
	}
	return err
}

// definitelyNotSent reports whether an error proves Cloudflare did not act on the call:
// refused by our pacer, or answered with a status that means "not done". Timeouts,
// resets, 5xx and unreadable answers prove nothing: the call may have committed.
func definitelyNotSent(err error) bool {
	var limited *rateLimitedError
	var notSent *notSentError
	if errors.As(err, &limited) || errors.As(err, &notSent) {
		return true
	}
	apiErr, ok := asAPIError(err)
	if !ok || apiErr.StatusCode == 0 {
		return false
	}
	switch apiErr.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
		http.StatusMethodNotAllowed, http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		return true
	}
	return false
}
