package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// account is the Cloudflare account an object's client lives in and the credentials
// that reach it. No call site reads the account from the spec: resolveAccount is the
// one place that knows the spec's forms of naming an account: spec.accountID with
// spec.credentialsRef or the default credentials, or spec.accountRef (a
// CloudflareAccount the platform team shares).
type account struct {
	id string
	resolved
}

// resolveAccount resolves the account and credentials of obj. The error, if any, is a
// failure whose message names what is wrong, never a credential. Namespaces are trust
// boundaries: a CloudflareAccount that does not allow the object's namespace, or
// default credentials the namespace has not opted in to, are never used for it.
func (r *OAuthClientReconciler) resolveAccount(ctx context.Context, obj *v1alpha1.OAuthClient) (account, error) {
	if ref := obj.Spec.AccountRef; ref != nil {
		return r.accountFromRef(ctx, obj, ref.Name)
	}
	if obj.CredentialsSecretName() == "" {
		if err := r.defaultCredentialsAllowed(ctx, obj.Namespace); err != nil {
			return account{}, err
		}
	}
	res, err := r.credentials(ctx, obj)
	if err != nil {
		return account{}, err
	}
	return account{id: obj.Spec.AccountID, resolved: res}, nil
}

// accountFromRef resolves a CloudflareAccount for obj: it must exist, allow obj's
// namespace, hold the account obj is bound in, and have working credentials.
func (r *OAuthClientReconciler) accountFromRef(ctx context.Context, obj *v1alpha1.OAuthClient, name string) (account, error) {
	acct := &v1alpha1.CloudflareAccount{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, acct); apierrors.IsNotFound(err) {
		return account{}, newFailure(kindConflict, v1alpha1.ReasonAccountNotFound,
			"CloudflareAccount %q (spec.accountRef) does not exist", name)
	} else if err != nil {
		return account{}, err
	}
	allowed, err := r.namespaceAllowed(ctx, obj.Namespace, acct.Spec.AllowedNamespaces)
	if err != nil {
		return account{}, err
	}
	if !allowed {
		return account{}, newFailure(kindSpec, v1alpha1.ReasonNamespaceNotAllowed,
			"CloudflareAccount %q does not allow namespace %s (its spec.allowedNamespaces); ask the platform team to allow it", name, obj.Namespace)
	}
	if bound := obj.Status.AccountID; bound != "" && bound != acct.Spec.AccountID {
		return account{}, newFailure(kindSpec, v1alpha1.ReasonAccountMismatch,
			"this object's client lives in account %s, and CloudflareAccount %q is account %s: a client cannot move between accounts", bound, name, acct.Spec.AccountID)
	}
	// An account being deleted is not ready by design (it waits for its objects), and
	// its objects must still be able to delete their clients with its token.
	if ready := meta.FindStatusCondition(acct.Status.Conditions, v1alpha1.ConditionReady); ready != nil &&
		ready.Status == metav1.ConditionFalse && ready.ObservedGeneration == acct.Generation && acct.DeletionTimestamp.IsZero() {
		return account{}, credentialsError(v1alpha1.ReasonAccountNotReady,
			fmt.Sprintf("CloudflareAccount %q is not ready (%s): %s", name, ready.Reason, ready.Message))
	}
	ref := acct.Spec.CredentialsRef
	res, err := r.credentialsFromSecret(ctx, types.NamespacedName{Namespace: ref.Namespace, Name: ref.Name})
	if err != nil {
		// The Secret is the platform team's: its name and keys are for the account's
		// condition, not for the application team's object.
		return account{}, credentialsError(v1alpha1.ReasonAccountNotReady,
			fmt.Sprintf("CloudflareAccount %q has no usable credentials; its Ready condition says why", name))
	}
	if acct.Spec.RequestBudget != "" {
		b, err := ParseRequestBudget(acct.Spec.RequestBudget)
		if err != nil {
			return account{}, newFailure(kindSpec, v1alpha1.ReasonAccountNotReady, "CloudflareAccount %q: %v", name, err)
		}
		res.budget = &b
	}
	return account{id: acct.Spec.AccountID, resolved: res}, nil
}

// namespaceAllowed reports whether the allow-list admits ns: by name, or by its labels
// matching the selector. An absent or empty list admits none.
func (r *OAuthClientReconciler) namespaceAllowed(ctx context.Context, ns string, allow *v1alpha1.AllowedNamespaces) (bool, error) {
	if allow == nil {
		return false, nil
	}
	for _, name := range allow.Names {
		if name == ns {
			return true, nil
		}
	}
	if allow.Selector == nil {
		return false, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(allow.Selector)
	if err != nil {
		return false, newFailure(kindSpec, v1alpha1.ReasonNamespaceNotAllowed, "the account's namespace selector is invalid: %v", err)
	}
	return r.namespaceMatches(ctx, ns, sel)
}

// namespaceMatches reads the namespace's labels (metadata only, from the cache).
func (r *OAuthClientReconciler) namespaceMatches(ctx context.Context, ns string, sel labels.Selector) (bool, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(namespaceGVK)
	if err := r.Get(ctx, client.ObjectKey{Name: ns}, m); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	return sel.Matches(labels.Set(m.GetLabels())), nil
}

// defaultCredentialsAllowed checks that ns opted in to the operator-wide default
// credentials (DefaultCredentialsNamespaces); nil allows every namespace.
func (r *OAuthClientReconciler) defaultCredentialsAllowed(ctx context.Context, ns string) error {
	sel := r.DefaultCredentialsNamespaces
	if sel == nil {
		return nil
	}
	ok, err := r.namespaceMatches(ctx, ns, sel)
	if err != nil {
		return err
	}
	if !ok {
		return newFailure(kindSpec, v1alpha1.ReasonDefaultCredentialsNotAllowed,
			"the object names no credentials, and namespace %s may not use the operator's default credentials (it does not match %q): name a CloudflareAccount in spec.accountRef, or credentials in spec.credentialsRef",
			ns, sel.String())
	}
	return nil
}

var namespaceGVK = corev1.SchemeGroupVersion.WithKind("Namespace")

// accountIDOf is the account obj is bound in, without a lookup: the one the operator
// recorded in status, else the one the spec names. Index functions and the claims'
// staleness check use it, since they cannot resolve anything.
func accountIDOf(obj *v1alpha1.OAuthClient) string { return obj.BoundAccountID() }

// accountID is the account of the object being reconciled, as connect resolved it.
func (p *pass) accountID() string { return p.account.account }
