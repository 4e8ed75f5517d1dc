package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// DefaultCredentials are the operator-wide credentials used by objects without
// spec.credentialsRef: from the environment (CLOUDFLARE_API_TOKEN, or CLOUDFLARE_EMAIL
// plus CLOUDFLARE_API_KEY), or else from a Secret in the operator's namespace.
type DefaultCredentials struct {
	// Env holds credentials from the environment; zero when none were set.
	Env cfapi.Credentials
	// EnvUser names the Cloudflare user of the environment token for the shared
	// per-user request budget; "" means the token is a user of its own.
	EnvUser string
	// Secret names a Secret with the same keys as a credentialsRef Secret; empty Name
	// when not configured.
	Secret types.NamespacedName
}

// credentialsError is a problem with credentials that only a human can fix.
func credentialsError(reason, message string) *failure {
	return &failure{kind: kindCredentials, reason: reason, message: message}
}

// resolved is a set of credentials and what the budget needs to know about them.
type resolved struct {
	creds cfapi.Credentials
	// user names the Cloudflare user the credentials act as, for the shared per-user
	// request budget (see budgetUser); "" lets the budget derive it.
	user string
	// secret is the credentials Secret; zero for credentials from the environment.
	secret types.NamespacedName
	// held is the credentials Secret as read for this pass (for its finalizers); nil for
	// credentials from the environment.
	held *corev1.Secret
	// budget, when set, is the request budget of the credentials' user, overriding the
	// manager's (a CloudflareAccount's spec.requestBudget).
	budget *RequestBudget
}

// credentials resolves the Cloudflare credentials of obj. The error, if any, is a
// credentials failure whose message names the Secret and key, never a value.
func (r *OAuthClientReconciler) credentials(ctx context.Context, obj *v1alpha1.OAuthClient) (resolved, error) {
	if name := obj.CredentialsSecretName(); name != "" {
		return r.credentialsFromSecret(ctx, types.NamespacedName{Namespace: obj.Namespace, Name: name})
	}
	if r.DefaultCredentials.Env != (cfapi.Credentials{}) {
		if err := r.DefaultCredentials.Env.Validate(); err != nil {
			return resolved{}, credentialsError(v1alpha1.ReasonInvalidCredentials,
				fmt.Sprintf("the operator's default credentials from the environment are invalid: %v", err))
		}
		return resolved{creds: r.DefaultCredentials.Env, user: r.DefaultCredentials.EnvUser}, nil
	}
	if r.DefaultCredentials.Secret.Name != "" {
		return r.credentialsFromSecret(ctx, r.DefaultCredentials.Secret)
	}
	return resolved{}, credentialsError(v1alpha1.ReasonCredentialsNotFound,
		"spec.credentialsRef is not set and the operator has no default credentials (CLOUDFLARE_API_TOKEN or --default-credentials-secret)")
}

func (r *OAuthClientReconciler) credentialsFromSecret(ctx context.Context, key types.NamespacedName) (resolved, error) {
	sec, err := r.secrets.get(ctx, key)
	if apierrors.IsNotFound(err) {
		return resolved{}, credentialsError(v1alpha1.ReasonCredentialsNotFound, fmt.Sprintf("credentials Secret %s not found", key))
	}
	if err != nil {
		return resolved{}, err
	}
	token, hasToken := sec.Data[v1alpha1.CredentialsKeyAPIToken]
	email, hasEmail := sec.Data[v1alpha1.CredentialsKeyEmail]
	apiKey, hasKey := sec.Data[v1alpha1.CredentialsKeyAPIKey]
	var creds cfapi.Credentials
	switch {
	case hasToken:
		creds = cfapi.Credentials{APIToken: string(token)}
	case hasEmail && hasKey:
		creds = cfapi.Credentials{Email: string(email), APIKey: string(apiKey)}
	case hasEmail || hasKey:
		missing := v1alpha1.CredentialsKeyAPIKey
		if hasKey {
			missing = v1alpha1.CredentialsKeyEmail
		}
		return resolved{}, credentialsError(v1alpha1.ReasonCredentialsNotFound,
			fmt.Sprintf("credentials Secret %s has no key %q (legacy credentials need both %q and %q)", key, missing, v1alpha1.CredentialsKeyEmail, v1alpha1.CredentialsKeyAPIKey))
	default:
		return resolved{}, credentialsError(v1alpha1.ReasonCredentialsNotFound,
			fmt.Sprintf("credentials Secret %s has no key %q (or %q and %q)", key, v1alpha1.CredentialsKeyAPIToken, v1alpha1.CredentialsKeyEmail, v1alpha1.CredentialsKeyAPIKey))
	}
	if err := creds.Validate(); err != nil {
		field := v1alpha1.CredentialsKeyAPIToken
		if creds.APIToken == "" {
			field = v1alpha1.CredentialsKeyEmail + "/" + v1alpha1.CredentialsKeyAPIKey
		}
		return resolved{}, credentialsError(v1alpha1.ReasonInvalidCredentials,
			fmt.Sprintf("credentials Secret %s key %s is malformed (empty, or contains whitespace or control characters)", key, field))
	}
	return resolved{creds: creds, user: sec.Annotations[v1alpha1.AnnotationCloudflareUser], secret: key, held: sec}, nil
}
