package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// CloudflareAccountReconciler keeps each CloudflareAccount's status true: whether its
// token works (Cloudflare's verify-token endpoints), when it expires, how many
// OAuthClients use the account and how much of the rate-limit budget is left. It holds
// the account with a finalizer while OAuthClients name it, since without it they
// could not even delete their clients.
//
// It shares the OAuthClient reconciler's Cloudflare clients, budgets, snapshots and
// Secret reads: an account's calls spend the same per-user budget as its objects'.
type CloudflareAccountReconciler struct {
	// OAuth is the OAuthClient reconciler, set up first.
	OAuth *OAuthClientReconciler
	// VerifyInterval is how often the token is verified again (default 5m).
	VerifyInterval time.Duration

	// verified remembers, per account, the credentials and generation last verified,
	// so that a changed token or spec is verified at once.
	verified map[string]string
}

// tokenVerifier is the verify-token part of the Cloudflare client.
type tokenVerifier interface {
	VerifyUserToken(ctx context.Context) (cfapi.TokenVerification, error)
	VerifyAccountToken(ctx context.Context, accountID string) (cfapi.TokenVerification, error)
}

// Reconcile verifies the account's token and writes its status once.
func (r *CloudflareAccountReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	acct := &v1alpha1.CloudflareAccount{}
	if err := r.OAuth.Get(ctx, req.NamespacedName, acct); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := acct.DeepCopy()
	users, err := r.users(ctx, acct.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	acct.Status.BoundClients = int32(min(len(users), 1<<30)) //nolint:gosec // bounded above
	if !acct.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, before, acct, users)
	}
	if !controllerutil.ContainsFinalizer(acct, v1alpha1.FinalizerAccountInUse) {
		patch := client.MergeFrom(acct.DeepCopy())
		controllerutil.AddFinalizer(acct, v1alpha1.FinalizerAccountInUse)
		if err := r.OAuth.Patch(ctx, acct, patch); err != nil {
			return ctrl.Result{}, err
		}
		before.Finalizers, before.ResourceVersion = acct.Finalizers, acct.ResourceVersion
	}
	res := r.verify(ctx, acct)
	return res, r.writeStatus(ctx, before, acct)
}

// verify checks the credentials and the token, and records what it found.
func (r *CloudflareAccountReconciler) verify(ctx context.Context, acct *v1alpha1.CloudflareAccount) ctrl.Result {
	ref := acct.Spec.CredentialsRef
	res, err := r.OAuth.credentialsFromSecret(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name})
	if err != nil {
		var f *failure
		if !errors.As(err, &f) {
			r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, "reading the credentials Secret: "+err.Error(), false)
			return ctrl.Result{RequeueAfter: wait.Jitter(r.OAuth.SyncPeriod, 0.1)}
		}
		r.markAccount(acct, metav1.ConditionFalse, f.reason, f.message, true)
		return ctrl.Result{RequeueAfter: wait.Jitter(credentialsRetry, 0.1)}
	}
	limits, err := accountLimits(acct)
	if err != nil {
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonInvalidSpec, err.Error(), true)
		return ctrl.Result{}
	}
	r.OAuth.apis.setLimits(res, limits)
	res.budget = limits
	api, key, err := r.OAuth.apis.get(res)
	if err != nil {
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonInvalidCredentials, "the credentials are unusable: "+err.Error(), true)
		return ctrl.Result{RequeueAfter: wait.Jitter(credentialsRetry, 0.1)}
	}
	defer r.recordBudget(acct, api)

	stamp := fmt.Sprintf("%s/%d", key, acct.Generation)
	last := acct.Status.LastSyncTime
	if r.verified[acct.Name] == stamp && last != nil && r.OAuth.now().Sub(last.Time) < r.VerifyInterval {
		return ctrl.Result{RequeueAfter: wait.Jitter(r.VerifyInterval-r.OAuth.now().Sub(last.Time), 0.1)}
	}
	if pause := r.OAuth.apis.blockedFor(key); pause > 0 {
		return ctrl.Result{RequeueAfter: jitterUp(pause)}
	}
	if retry, done := r.checkToken(ctx, acct, res, api); done {
		r.verified[acct.Name] = stamp
		return retry
	}
	r.checkPermissions(ctx, acct, api, key)
	r.verified[acct.Name] = stamp
	return ctrl.Result{RequeueAfter: wait.Jitter(r.VerifyInterval, 0.1)}
}

// checkToken asks Cloudflare about the token: first as a user token, then as an
// account-owned one. done is true when the token is not usable (the condition says
// why) or the answer was inconclusive.
func (r *CloudflareAccountReconciler) checkToken(ctx context.Context, acct *v1alpha1.CloudflareAccount, res resolved, api CloudflareAPI) (ctrl.Result, bool) {
	now := metav1.NewTime(r.OAuth.now().UTC().Truncate(time.Second))
	if res.creds.APIToken == "" {
		acct.Status.Token = &v1alpha1.TokenStatus{Kind: "GlobalAPIKey"}
		acct.Status.LastSyncTime = &now
		return ctrl.Result{}, false
	}
	verifier, ok := api.(tokenVerifier)
	if !ok {
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, "this Cloudflare client cannot verify tokens", false)
		return ctrl.Result{RequeueAfter: wait.Jitter(r.VerifyInterval, 0.1)}, true
	}
	// A user token verifies at /user/tokens/verify, an account-owned one only at its
	// account's endpoint; at the other one Cloudflare answers as for an unknown token
	// (401 1000), or 403/404: try both before calling the token invalid.
	kind := "User"
	v, err := verifier.VerifyUserToken(ctx)
	if refusedToken(err) {
		kind = "Account"
		v, err = verifier.VerifyAccountToken(ctx, acct.Spec.AccountID)
	}
	switch {
	case refusedToken(err):
		acct.Status.Token, acct.Status.LastSyncTime = nil, &now
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonTokenInvalid,
			"Cloudflare does not know this token (revoked, deleted or mistyped): "+describe(err), true)
		return ctrl.Result{RequeueAfter: wait.Jitter(credentialsRetry, 0.1)}, true
	case err != nil:
		if _, limited := cfapi.IsRateLimited(err); !limited {
			r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, "verifying the token failed; retrying: "+describe(err), false)
		}
		return ctrl.Result{RequeueAfter: wait.Jitter(time.Minute, 0.2)}, true
	}
	acct.Status.Token = &v1alpha1.TokenStatus{ID: v.ID, Status: v.Status, Kind: kind, ExpiresOn: metaTime(v.ExpiresOn), NotBefore: metaTime(v.NotBefore)}
	acct.Status.LastSyncTime = &now
	switch {
	case v.Status == cfapi.TokenExpired || (v.ExpiresOn != nil && !v.ExpiresOn.After(now.Time)):
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired, fmt.Sprintf("the token expired (%s); roll it in the account's credentials Secret", expiry(v)), true)
	case v.NotBefore != nil && v.NotBefore.After(now.Time):
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonTokenExpired, "the token is not valid before "+v.NotBefore.UTC().Format(time.RFC3339), true)
	case v.Status == cfapi.TokenDisabled:
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonTokenDisabled, "the token is disabled in Cloudflare", true)
	default:
		return ctrl.Result{}, false
	}
	return ctrl.Result{RequeueAfter: wait.Jitter(credentialsRetry, 0.1)}, true
}

// refusedToken reports a verify answer that says the endpoint does not know the token.
func refusedToken(err error) bool {
	return cfapi.IsInvalidToken(err) || cfapi.IsUnauthorized(err) || cfapi.IsForbidden(err) || cfapi.IsNotFound(err)
}

func expiry(v cfapi.TokenVerification) string {
	if v.ExpiresOn == nil {
		return "status " + v.Status
	}
	return "on " + v.ExpiresOn.UTC().Format(time.RFC3339)
}

// checkPermissions lists the account's OAuth clients, through the snapshot the
// account's objects share: a token that works but cannot read them is of no use.
func (r *CloudflareAccountReconciler) checkPermissions(ctx context.Context, acct *v1alpha1.CloudflareAccount, api CloudflareAPI, key string) {
	_, err := r.OAuth.snapshots.Ensure(ctx, accountKey{creds: key, account: acct.Spec.AccountID}, r.OAuth.now().Add(-r.OAuth.SyncPeriod), api)
	switch {
	case err == nil:
		msg := "the token works and can read the account's OAuth clients"
		if t := acct.Status.Token; t != nil && t.ExpiresOn != nil {
			msg += "; it expires on " + t.ExpiresOn.UTC().Format(time.RFC3339)
		}
		r.markAccount(acct, metav1.ConditionTrue, v1alpha1.ReasonTokenVerified, msg, false)
	case cfapi.IsForbidden(err):
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonMissingPermissions,
			"the token cannot read the account's OAuth clients: it needs OAuth Client Read and Write on account "+acct.Spec.AccountID+": "+describe(err), true)
	case cfapi.IsUnauthorized(err):
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonTokenInvalid, "Cloudflare rejected the token: "+describe(err), true)
	default:
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonCloudflareError, "listing the account's OAuth clients failed; retrying: "+describe(err), false)
	}
}

// recordBudget copies the last Ratelimit header's remaining requests into status.
func (r *CloudflareAccountReconciler) recordBudget(acct *v1alpha1.CloudflareAccount, api CloudflareAPI) {
	p, ok := api.(*pacedAPI)
	if !ok {
		return
	}
	src, ok := p.api.(rateLimitSource)
	if !ok {
		return
	}
	if rl, ok := src.LastRateLimit(); ok {
		remaining := int64(rl.Remaining)
		prev := acct.Status.RequestBudget
		if prev != nil && prev.Remaining != nil && *prev.Remaining == remaining {
			return // unchanged: no status write for the time alone
		}
		now := metav1.NewTime(r.OAuth.now().UTC().Truncate(time.Second))
		acct.Status.RequestBudget = &v1alpha1.RequestBudgetStatus{Remaining: &remaining, ObservedAt: &now}
	}
}

func accountLimits(acct *v1alpha1.CloudflareAccount) (*RequestBudget, error) {
	if acct.Spec.RequestBudget == "" {
		return nil, nil
	}
	b, err := ParseRequestBudget(acct.Spec.RequestBudget)
	if err != nil {
		return nil, fmt.Errorf("spec.requestBudget: %w", err)
	}
	return &b, nil
}

// markAccount sets Ready (and Stalled when a person must act, Reconciling when the
// operator retries by itself).
func (r *CloudflareAccountReconciler) markAccount(acct *v1alpha1.CloudflareAccount, status metav1.ConditionStatus, reason, message string, stalled bool) {
	set := func(typ string, st metav1.ConditionStatus) {
		meta.SetStatusCondition(&acct.Status.Conditions, metav1.Condition{Type: typ, Status: st, Reason: reason,
			Message: truncate(message, 1024), ObservedGeneration: acct.Generation})
	}
	set(v1alpha1.ConditionReady, status)
	switch {
	case status == metav1.ConditionTrue:
		meta.RemoveStatusCondition(&acct.Status.Conditions, v1alpha1.ConditionStalled)
		meta.RemoveStatusCondition(&acct.Status.Conditions, v1alpha1.ConditionReconciling)
	case stalled:
		set(v1alpha1.ConditionStalled, metav1.ConditionTrue)
		meta.RemoveStatusCondition(&acct.Status.Conditions, v1alpha1.ConditionReconciling)
	default:
		set(v1alpha1.ConditionReconciling, metav1.ConditionTrue)
		meta.RemoveStatusCondition(&acct.Status.Conditions, v1alpha1.ConditionStalled)
	}
	acct.Status.ObservedGeneration = acct.Generation
}

// reconcileDelete holds the account while OAuthClients name it.
func (r *CloudflareAccountReconciler) reconcileDelete(ctx context.Context, before, acct *v1alpha1.CloudflareAccount, users []string) (ctrl.Result, error) {
	if len(users) > 0 {
		shown := users[:min(len(users), 5)]
		r.markAccount(acct, metav1.ConditionFalse, v1alpha1.ReasonDeletionBlocked, fmt.Sprintf(
			"deletion waits for the %d OAuthClients that use this account (%s) to be deleted or moved to other credentials", len(users), strings.Join(shown, ", ")), true)
		return ctrl.Result{}, r.writeStatus(ctx, before, acct)
	}
	if controllerutil.ContainsFinalizer(acct, v1alpha1.FinalizerAccountInUse) {
		patch := client.MergeFrom(acct.DeepCopy())
		controllerutil.RemoveFinalizer(acct, v1alpha1.FinalizerAccountInUse)
		if err := r.OAuth.Patch(ctx, acct, patch); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	delete(r.verified, acct.Name)
	return ctrl.Result{}, nil
}

// users lists the OAuthClients (namespace/name) that name the account.
func (r *CloudflareAccountReconciler) users(ctx context.Context, name string) ([]string, error) {
	list := &v1alpha1.OAuthClientList{}
	if err := r.OAuth.List(ctx, list, client.MatchingFields{indexAccountRef: name}); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, list.Items[i].Namespace+"/"+list.Items[i].Name)
	}
	slices.Sort(out)
	return out, nil
}

// writeStatus patches status when it changed.
func (r *CloudflareAccountReconciler) writeStatus(ctx context.Context, before, acct *v1alpha1.CloudflareAccount) error {
	if equality.Semantic.DeepEqual(before.Status, acct.Status) {
		return nil
	}
	base := acct.DeepCopy()
	base.Status = before.Status
	if err := r.OAuth.Status().Patch(ctx, acct, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("writing status: %w", err)
	}
	return nil
}

// SetupWithManager registers the controller. The OAuthClient reconciler must be set up
// first: this one uses its index of spec.accountRef and its shared state.
func (r *CloudflareAccountReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.VerifyInterval <= 0 {
		r.VerifyInterval = 5 * time.Minute
	}
	r.verified = map[string]string{}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.CloudflareAccount{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.OAuthClient{}, accountsOfClients()).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.accountsOfSecret)).
		Named("cloudflareaccount").
		Complete(r)
}

// accountsOfSecret maps a credentials Secret event (a token rolled, fixed or deleted)
// to the accounts that name it, so they are verified again at once. Secrets are
// watched metadata-only, through the informer the OAuthClient controller already has.
func (r *CloudflareAccountReconciler) accountsOfSecret(ctx context.Context, sec client.Object) []reconcile.Request {
	list := &v1alpha1.CloudflareAccountList{}
	if err := r.OAuth.List(ctx, list); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if ref := list.Items[i].Spec.CredentialsRef; ref.Namespace == sec.GetNamespace() && ref.Name == sec.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: list.Items[i].Name}})
		}
	}
	return reqs
}

// accountsOfClients enqueues the account an OAuthClient names, before and after a
// change, so that boundClients and the deletion guard follow objects that come, go or
// move.
func accountsOfClients() handler.EventHandler {
	enqueue := func(q interface {
		Add(reconcile.Request)
	}, objs ...client.Object) {
		for _, o := range objs {
			if ref := o.(*v1alpha1.OAuthClient).Spec.AccountRef; ref != nil {
				q.Add(reconcile.Request{NamespacedName: types.NamespacedName{Name: ref.Name}})
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueueOf) { enqueue(q, e.Object) },
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueueOf) {
			if accountRefOf(e.ObjectOld) != accountRefOf(e.ObjectNew) {
				enqueue(q, e.ObjectOld, e.ObjectNew)
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueueOf) { enqueue(q, e.Object) },
	}
}

type workqueueOf = workqueue.TypedRateLimitingInterface[reconcile.Request]

func accountRefOf(o client.Object) string {
	if ref := o.(*v1alpha1.OAuthClient).Spec.AccountRef; ref != nil {
		return ref.Name
	}
	return ""
}
