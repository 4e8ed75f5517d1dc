package controller

import (
	"context"
	"errors"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// create creates the remote client. The intent annotation goes first and the secret is
// stored before anything else can fail (see the package comment). The Create and the
// writes that record its result run detached from the reconcile's cancellation: a
// shutdown must not drop a secret Cloudflare returns only once.
func (r *OAuthClientReconciler) create(ctx context.Context, p *pass) error {
	obj := p.obj
	params, err := createParams(&obj.Spec)
	if err != nil {
		return err
	}
	if err := r.checkScopes(ctx, p); err != nil {
		return err
	}
	// The secret will exist only in Create's response: make sure it can be stored.
	if _, err := r.clientSecret(ctx, p); err != nil {
		return err
	}
	// Our own budget refuses before anything is written: no intent is written and then
	// removed for a Create that was never sent (two apiserver writes per deferral when
	// the budget is short).
	if pause := r.apis.blockedFor(p.credsKey); pause > 0 {
		return &rateLimitedError{wait: pause}
	}
	ctx, err = prepay(ctx, p.api)
	if err != nil {
		return err
	}
	previousID := p.boundID
	if err := r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.AnnotationCreateIntent] = r.now().UTC().Format(time.RFC3339Nano)
		delete(o.Annotations, v1alpha1.AnnotationCreateSettledAt)
		delete(o.Annotations, v1alpha1.AnnotationClientID)
	}); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sequenceTimeout)
	defer cancel()
	created, err := p.api.CreateOAuthClient(ctx, p.accountID(), params)
	if err != nil {
		return r.createFailed(ctx, p, err)
	}
	r.snapshots.Put(p.account, created.OAuthClient)
	p.remote, p.boundID = &created.OAuthClient, created.ClientID
	obj.Status.ClientID, obj.Status.AccountID = created.ClientID, p.accountID()

	// The secret exists only in this response: store it before anything else can fail.
	secretErr := r.storeCreatedSecret(ctx, p, created.ClientSecret)
	bindErr := r.recordBinding(ctx, p)
	if previousID != "" {
		r.claims.release(obj, p.accountID(), previousID)
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventRecreated, "Create",
			"client %s was deleted outside the operator; created %s and wrote its new secret", previousID, created.ClientID)
	} else {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, v1alpha1.EventCreated, "Create", "created Cloudflare client %s", created.ClientID)
	}
	return errors.Join(secretErr, bindErr)
}

// createFailed records what a failed Create proves. A refusal (our pacer, a 4xx)
// proves no client was made: the intent goes. Anything else (a timeout, a reset, a 5xx)
// proves nothing: the Create may still commit, so the intent stays and the moment it
// settles is recorded; the next pass searches for its client instead of creating again.
func (r *OAuthClientReconciler) createFailed(ctx context.Context, p *pass, err error) error {
	if definitelyNotSent(err) {
		if patchErr := r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) { delete(o.Annotations, v1alpha1.AnnotationCreateIntent) }); patchErr != nil {
			// The intent stays: the next pass searches once, finds nothing, and creates.
			logf.FromContext(ctx).Info("could not remove the create intent after a refused create", "error", patchErr.Error())
		}
		return classify(opCreate, err)
	}
	settled := r.now().Add(r.CreateSettle).UTC().Format(time.RFC3339Nano)
	if patchErr := r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) {
		o.Annotations[v1alpha1.AnnotationCreateSettledAt] = settled
	}); patchErr != nil {
		return errors.Join(err, patchErr) // the intent alone still forces a search
	}
	return classify(opCreate, err)
}

// createParams builds the Create body from a spec. The CRD requires the Create fields
// when clientID is absent; the check here only guards against a schema bypass.
func createParams(spec *v1alpha1.OAuthClientSpec) (cfapi.CreateOAuthClientParams, error) {
	if spec.ClientName == nil || spec.RedirectURIs == nil || spec.GrantTypes == nil ||
		spec.ResponseTypes == nil || spec.Scopes == nil || spec.TokenEndpointAuthMethod == nil {
		return cfapi.CreateOAuthClientParams{}, newFailure(kindSpec, v1alpha1.ReasonInvalidSpec,
			"creating a client needs clientName, redirectURIs, grantTypes, responseTypes, scopes and tokenEndpointAuthMethod")
	}
	return cfapi.CreateOAuthClientParams{
		ClientName:              *spec.ClientName,
		RedirectURIs:            slices.Clone(*spec.RedirectURIs),
		GrantTypes:              *stringsOf(spec.GrantTypes),
		ResponseTypes:           *stringsOf(spec.ResponseTypes),
		Scopes:                  slices.Clone(*spec.Scopes),
		TokenEndpointAuthMethod: string(*spec.TokenEndpointAuthMethod),
		ClientURI:               spec.ClientURI,
		LogoURI:                 spec.LogoURI,
		PolicyURI:               spec.PolicyURI,
		TosURI:                  spec.TosURI,
		PostLogoutRedirectURIs:  spec.PostLogoutRedirectURIs,
		AllowedCORSOrigins:      spec.AllowedCORSOrigins,
		OptionalScopes:          spec.OptionalScopes,
	}, nil
}
