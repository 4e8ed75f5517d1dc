package controller

import (
	"context"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// account is the Cloudflare account an object's client lives in and the credentials
// that reach it. No call site reads the account from the spec: resolveAccount is the
// one place that knows the spec's forms of naming an account (today spec.accountID
// with spec.credentialsRef or the default credentials).
type account struct {
	id string
	resolved
}

// resolveAccount resolves the account and credentials of obj. The error, if any, is a
// credentials failure whose message names the Secret and key, never a value.
func (r *OAuthClientReconciler) resolveAccount(ctx context.Context, obj *v1alpha1.OAuthClient) (account, error) {
	res, err := r.credentials(ctx, obj)
	if err != nil {
		return account{}, err
	}
	return account{id: obj.Spec.AccountID, resolved: res}, nil
}

// accountIDOf is the account obj is bound in, without a lookup: the one the operator
// recorded in status, else the one the spec names. Index functions and the claims'
// staleness check use it, since they cannot resolve anything.
func accountIDOf(obj *v1alpha1.OAuthClient) string {
	if obj.Status.AccountID != "" {
		return obj.Status.AccountID
	}
	return obj.Spec.AccountID
}

// accountID is the account of the object being reconciled, as connect resolved it.
func (p *pass) accountID() string { return p.account.account }
