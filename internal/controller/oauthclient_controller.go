// Package controller reconciles OAuthClient objects with Cloudflare OAuth clients.
//
// # Binding and crash safety
//
// An object is bound to exactly one remote client, found in this order:
//
//  1. spec.clientID: an adopted client. If it does not exist the object is Stalled
//     (ClientNotFound); the operator never creates a client for it.
//  2. the cloudflare.oauth-operator.dev/client-id annotation, or status.clientID: a client
//     the operator created. The annotation survives the loss of status (a backup restore,
//     a status wipe). If the client vanished out of band it is re-created, with a Warning
//     Event and a new secret.
//  3. nothing: the operator creates the client.
//
// Cloudflare offers no idempotency key and no field we could stamp with a marker, so a
// crash, a lost response or a failed apiserver write between Create and the ID write
// could otherwise leave a client nobody knows about, and the next pass would create a
// second one. To prevent that, the operator first writes a create-intent annotation
// holding the time the Create is about to happen, then calls Create, then writes the
// Secret (the secret is returned only once), then records the ID and removes the intent
// in one metadata patch. Finding an intent without an ID means that sequence was
// interrupted: instead of creating, the operator lists the account (a List that started
// after the intent) and looks for the client the interrupted Create made: same
// clientName, same redirectURIs, created at or after the intent, and not bound to any
// other OAuthClient. One match is adopted as ours and, since its secret may have been
// lost, its secret is recovered by rotation; no match means the Create never happened
// and it is safe to create; several matches stall the object for a human to decide.
//
// # Observing at scale
//
// Remote state comes from a shared per-account snapshot (see Snapshots): one List call
// per account per --remote-sync-period serves every object, instead of one GET per
// object, which would exhaust Cloudflare's 1,200 requests per 5 minutes at a few
// hundred objects.
package controller

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// OAuthClientReconciler reconciles OAuthClient objects.
type OAuthClientReconciler struct {
	client.Client
	// APIReader reads from the API server directly (Secrets are not cached).
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	// NewAPI builds the Cloudflare client for a set of credentials.
	NewAPI             APIFactory
	DefaultCredentials DefaultCredentials
	// SyncPeriod is how often each object is re-checked for drift, and how old an
	// account snapshot may get (--remote-sync-period).
	SyncPeriod time.Duration
	// VerificationPollInterval is how often an object whose client URI verification is
	// pending or in progress is re-read (from the snapshot).
	VerificationPollInterval time.Duration
	// Issuer, when set, is written to the client Secret under "issuer".
	Issuer string
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// RequestBudget paces Cloudflare calls per set of credentials; zero disables pacing.
	RequestBudget RequestBudget
	// PerObjectGET replaces the shared List snapshot with one GET per object per pass.
	// It exists only as the benchmark's baseline (the way most controllers observe) and
	// is not meant for production.
	PerObjectGET bool

	snapshots *Snapshots
	scopes    *scopeCatalogs
	lastCreds sync.Map // types.UID -> cfapi.Credentials
	apis      *apiClients
	secrets   *secretStore
	now       func() time.Time
}

const (
	// freshWindow is how recent a List must be before a client missing from it is
	// believed gone (and re-created, or reported ClientNotFound).
	freshWindow = 5 * time.Second
	// slowRetry paces objects stalled on credentials Cloudflare refused: tokens get
	// fixed, but not within seconds.
	slowRetry = 5 * time.Minute
	// defaultRetryAfter is used when Cloudflare answers 429 without retry-after.
	defaultRetryAfter = time.Minute
	// intentSkew tolerates clock skew between us and Cloudflare when matching the
	// created_at of a client made by an interrupted Create.
	intentSkew = 2 * time.Minute
)

// pass is the working state of one reconcile.
type pass struct {
	obj      *v1alpha1.OAuthClient
	api      CloudflareAPI
	credsKey string
	account  accountKey

	// remote is the bound client as last seen; nil when there is none.
	remote *cfapi.OAuthClient
	// boundID is the ID of the client the object is bound to, if any.
	boundID string
	// createdByUs is true when the operator created the bound client (its secret is
	// ours to recover), false for an adopted client.
	createdByUs bool
	// secret is the client Secret as last read or written in this pass.
	secret *corev1.Secret
	// wakeAt, when set, is a moment the object must be looked at again (the end of a
	// rotation overlap, the next periodic rotation).
	wakeAt time.Time
	// rotationPending explains a requested rotation that has to wait.
	rotationPending string
	// prevVerification is the verification status before this pass.
	prevVerification v1alpha1.ClientURIVerification
	// secretUnknown means the Secret carries no client_secret and we cannot get one
	// without a rotation the user has not asked for (an adopted client).
	secretUnknown bool
	// observedDrift lists drifted fields in Observe mode.
	observedDrift []string
	// promotionGaps lists what blocks a requested promotion to public.
	promotionGaps        []string
	awaitingVerification bool
}

// Reconcile moves one OAuthClient towards its spec: load it, handle deletion, read the
// credentials, observe the remote client, create or update it, store its secret, and
// write status once.
func (r *OAuthClientReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &v1alpha1.OAuthClient{}
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopy()
	p := &pass{obj: obj}
	if v := obj.Status.ClientURIVerification; v != nil {
		p.prevVerification = *v
	}

	var res ctrl.Result
	var err error
	if !obj.DeletionTimestamp.IsZero() {
		res, err = r.reconcileDelete(ctx, p)
	} else {
		res, err = r.reconcileNormal(ctx, p)
	}
	return r.writeStatus(ctx, before, obj, res, err)
}

// reconcileNormal drives a live object to its spec.
func (r *OAuthClientReconciler) reconcileNormal(ctx context.Context, p *pass) (ctrl.Result, error) {
	if err := r.connect(ctx, p); err != nil {
		return r.outcome(ctx, p, err)
	}
	if pause := r.snapshots.BlockedFor(p.credsKey); pause > 0 {
		return r.rateLimited(ctx, p, pause)
	}
	if !p.obj.Observing() {
		if err := r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) { controllerutil.AddFinalizer(o, v1alpha1.Finalizer) }); err != nil {
			return r.outcome(ctx, p, err)
		}
	}
	if err := r.observe(ctx, p); err != nil {
		return r.outcome(ctx, p, err)
	}

	var err error
	switch {
	case p.remote == nil && !p.createdByUs:
		err = &stalledError{reason: v1alpha1.ReasonClientNotFound,
			message: fmt.Sprintf("Cloudflare client %q does not exist in account %s", p.boundID, p.obj.Spec.AccountID), retry: r.SyncPeriod}
	case p.remote == nil:
		if err = r.create(ctx, p); err == nil {
			err = r.update(ctx, p) // promotion, which Create cannot do
		}
	case p.obj.Observing():
		p.observedDrift = computeDrift(&p.obj.Spec, p.remote).fields
	default:
		err = r.update(ctx, p)
	}
	if err == nil && !p.obj.Observing() {
		err = r.ensureSecret(ctx, p)
	}
	if err == nil && !p.obj.Observing() {
		err = r.reconcileRotation(ctx, p)
	}
	if err != nil {
		return r.outcome(ctx, p, err)
	}
	return r.conclude(p), nil
}

// connect resolves credentials and the Cloudflare client for the object's account.
//
// The last credentials that worked for each object are remembered, so that deleting a
// namespace, which removes the credentials Secret and the object together, can still
// delete the remote client instead of leaving the object stuck on its finalizer.
func (r *OAuthClientReconciler) connect(ctx context.Context, p *pass) error {
	creds, err := r.credentials(ctx, p.obj)
	var credErr *credentialsError
	if errors.As(err, &credErr) && !p.obj.DeletionTimestamp.IsZero() {
		if last, ok := r.lastCreds.Load(p.obj.UID); ok {
			creds, err = last.(cfapi.Credentials), nil
		}
	}
	if err != nil {
		return err
	}
	r.lastCreds.Store(p.obj.UID, creds)
	api, key, err := r.apis.get(creds)
	if err != nil {
		return &stalledError{reason: v1alpha1.ReasonInvalidCredentials, message: "the Cloudflare credentials are unusable: " + err.Error()}
	}
	p.api, p.credsKey = api, key
	p.account = accountKey{creds: key, account: p.obj.Spec.AccountID}
	return nil
}

// observe finds the remote client the object is bound to (see the package comment),
// from the account snapshot. It leaves p.remote nil when there is none.
func (r *OAuthClientReconciler) observe(ctx context.Context, p *pass) error {
	if r.PerObjectGET && boundIDOf(p.obj) != "" {
		return r.observeByGET(ctx, p)
	}
	// While verification is pending, a snapshot older than the poll interval is not
	// trusted: verification progress must show without waiting a full sync period. The
	// List stays shared, so this costs at most one List per poll interval per account.
	var notBefore time.Time
	if v := p.obj.Status.ClientURIVerification; v != nil && (v.Status == cfapi.VerificationPending || v.Status == cfapi.VerificationInProgress) {
		notBefore = r.now().Add(-r.VerificationPollInterval)
	}
	if _, err := r.snapshots.Ensure(ctx, p.account, notBefore, p.api); err != nil {
		return err
	}
	obj := p.obj
	switch {
	case obj.AdoptedClientID() != "":
		p.boundID = obj.AdoptedClientID()
	case obj.Annotations[v1alpha1.AnnotationCreateIntent] != "":
		return r.resumeInterruptedCreate(ctx, p)
	default:
		p.createdByUs = true
		p.boundID = obj.Annotations[v1alpha1.AnnotationClientID]
		if p.boundID == "" {
			p.boundID = obj.Status.ClientID
		}
		if p.boundID == "" {
			return nil
		}
	}
	c, ok := r.snapshots.Get(p.account, p.boundID)
	if !ok {
		// Missing from the snapshot: believe it only from a List that is fresh.
		if _, err := r.snapshots.Ensure(ctx, p.account, r.now().Add(-freshWindow), p.api); err != nil {
			return err
		}
		c, ok = r.snapshots.Get(p.account, p.boundID)
	}
	if !ok {
		return nil
	}
	p.remote = &c
	if !p.createdByUs && obj.Status.ClientID != c.ClientID {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Adopted", "Adopt", "adopted Cloudflare client %s", c.ClientID)
	}
	return nil
}

// boundIDOf returns the ID of the client an object is bound to, if it is known without
// a search: spec.clientID, or the recorded ID of a client we created.
func boundIDOf(obj *v1alpha1.OAuthClient) string {
	if id := obj.AdoptedClientID(); id != "" {
		return id
	}
	if obj.Annotations[v1alpha1.AnnotationCreateIntent] != "" {
		return ""
	}
	if id := obj.Annotations[v1alpha1.AnnotationClientID]; id != "" {
		return id
	}
	return obj.Status.ClientID
}

// observeByGET is the benchmark baseline: one GET per object per pass.
func (r *OAuthClientReconciler) observeByGET(ctx context.Context, p *pass) error {
	p.boundID = boundIDOf(p.obj)
	p.createdByUs = p.obj.AdoptedClientID() == ""
	c, err := p.api.GetOAuthClient(ctx, p.obj.Spec.AccountID, p.boundID)
	if cfapi.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	p.remote = c
	return nil
}

// resumeInterruptedCreate handles an object whose create intent was written but whose
// new client ID was not: it adopts the client that Create made, if it exists.
func (r *OAuthClientReconciler) resumeInterruptedCreate(ctx context.Context, p *pass) error {
	obj := p.obj
	p.createdByUs = true
	intent, err := time.Parse(time.RFC3339Nano, obj.Annotations[v1alpha1.AnnotationCreateIntent])
	if err != nil {
		intent = obj.CreationTimestamp.Time
	}
	// A client made by that Create is in any List that started after the intent.
	if _, err := r.snapshots.Ensure(ctx, p.account, intent, p.api); err != nil {
		return err
	}
	var candidates []cfapi.OAuthClient
	for _, c := range r.snapshots.Find(p.account, func(c *cfapi.OAuthClient) bool { return madeByCreate(&obj.Spec, c, intent) }) {
		claimed, err := r.claimedByOther(ctx, obj, c.ClientID)
		if err != nil {
			return err
		}
		if !claimed {
			candidates = append(candidates, c)
		}
	}
	switch len(candidates) {
	case 0:
		return nil // the interrupted Create never reached Cloudflare: create now
	case 1:
		c := candidates[0]
		p.remote, p.boundID = &c, c.ClientID
		if err := r.recordBinding(ctx, p); err != nil {
			return err
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "CreateResumed", "Bind",
			"an interrupted create had made client %s; bound it instead of creating another", c.ClientID)
		return nil
	default:
		ids := make([]string, len(candidates))
		for i, c := range candidates {
			ids[i] = c.ClientID
		}
		return &stalledError{reason: v1alpha1.ReasonClientNotFound, message: fmt.Sprintf(
			"an interrupted create left several matching clients %v; set spec.clientID to the one to keep and delete the others", ids)}
	}
}

// madeByCreate reports whether c looks like the client a Create of spec made after the
// intent was written.
func madeByCreate(spec *v1alpha1.OAuthClientSpec, c *cfapi.OAuthClient, intent time.Time) bool {
	if spec.ClientName == nil || c.ClientName != *spec.ClientName || c.CreatedAt == nil || c.CreatedAt.Before(intent.Add(-intentSkew)) {
		return false
	}
	return spec.RedirectURIs == nil || sameSet(*spec.RedirectURIs, c.RedirectURIs)
}

// claimedByOther reports whether another OAuthClient is bound to the client ID.
func (r *OAuthClientReconciler) claimedByOther(ctx context.Context, obj *v1alpha1.OAuthClient, id string) (bool, error) {
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.MatchingFields{indexClientID: obj.Spec.AccountID + "/" + id}); err != nil {
		return false, err
	}
	for i := range list.Items {
		if list.Items[i].UID != obj.UID {
			return true, nil
		}
	}
	return false, nil
}

// create creates the remote client. The intent annotation goes first and the secret is
// stored before anything else can fail (see the package comment).
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
	previousID := p.boundID
	if err := r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.AnnotationCreateIntent] = r.now().UTC().Format(time.RFC3339Nano)
		delete(o.Annotations, v1alpha1.AnnotationClientID)
	}); err != nil {
		return err
	}
	created, err := p.api.CreateOAuthClient(ctx, obj.Spec.AccountID, params)
	if err != nil {
		if definitelyNotCreated(err) {
			_ = r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) { delete(o.Annotations, v1alpha1.AnnotationCreateIntent) })
		}
		return err
	}
	r.snapshots.Put(p.account, created.OAuthClient)
	p.remote, p.boundID = &created.OAuthClient, created.ClientID
	obj.Status.ClientID = created.ClientID

	// The secret exists only in this response: store it before anything else can fail.
	secretErr := r.storeCreatedSecret(ctx, p, created.ClientSecret)
	bindErr := r.recordBinding(ctx, p)
	if previousID != "" {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "Recreated", "Create",
			"client %s was deleted outside the operator; created %s and wrote its new secret", previousID, created.ClientID)
	} else {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Created", "Create", "created Cloudflare client %s", created.ClientID)
	}
	return errors.Join(secretErr, bindErr)
}

// definitelyNotCreated reports whether a Create error proves no client was made.
func definitelyNotCreated(err error) bool {
	_, limited := cfapi.IsRateLimited(err)
	return limited || cfapi.IsValidation(err) || cfapi.IsUnauthorized(err) || cfapi.IsForbidden(err) || cfapi.IsNotFound(err)
}

// recordBinding durably records the bound client ID and clears the create intent.
func (r *OAuthClientReconciler) recordBinding(ctx context.Context, p *pass) error {
	p.obj.Status.ClientID = p.boundID
	return r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.AnnotationClientID] = p.boundID
		delete(o.Annotations, v1alpha1.AnnotationCreateIntent)
	})
}

// createParams builds the Create body from a spec. The CRD requires the Create fields
// when clientID is absent; the check here only guards against a schema bypass.
func createParams(spec *v1alpha1.OAuthClientSpec) (cfapi.CreateOAuthClientParams, error) {
	if spec.ClientName == nil || spec.RedirectURIs == nil || spec.GrantTypes == nil ||
		spec.ResponseTypes == nil || spec.Scopes == nil || spec.TokenEndpointAuthMethod == nil {
		return cfapi.CreateOAuthClientParams{}, &stalledError{reason: v1alpha1.ReasonInvalidSpec,
			message: "creating a client needs clientName, redirectURIs, grantTypes, responseTypes, scopes and tokenEndpointAuthMethod"}
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

// update PATCHes the fields that drifted, in one request, and promotes the client to
// public once Cloudflare's preconditions hold.
func (r *OAuthClientReconciler) update(ctx context.Context, p *pass) error {
	obj, remote := p.obj, p.remote
	d := computeDrift(&obj.Spec, remote)
	if obj.Spec.Visibility != nil {
		switch want := *obj.Spec.Visibility; {
		case want == v1alpha1.VisibilityPrivate && remote.Visibility == cfapi.VisibilityPublic:
			return &stalledError{reason: v1alpha1.ReasonInvalidSpec,
				message: "the client is public in Cloudflare and promotion cannot be undone; set visibility: public or remove the field"}
		case want == v1alpha1.VisibilityPublic && remote.Visibility != cfapi.VisibilityPublic:
			p.promotionGaps, p.awaitingVerification = promotionGaps(&obj.Spec, remote)
			if len(p.promotionGaps) == 0 {
				public := cfapi.VisibilityPublic
				d.params.Visibility = &public
				d.fields = append(d.fields, "visibility")
			}
		}
	}
	restart := obj.Annotations[v1alpha1.AnnotationRestartVerification]
	restarting := restart != "" && restart != obj.Status.LastVerificationRestart && remote.ClientURI != ""
	if restarting && d.params.ClientURI == nil {
		// Cloudflare restarts verification when client_uri is sent unchanged.
		uri := remote.ClientURI
		d.params.ClientURI = &uri
		d.fields = append(d.fields, "clientURI (restart verification)")
	}
	if d.empty() {
		obj.Status.LastVerificationRestart = restart
		return nil
	}
	if d.params.Scopes != nil || d.params.OptionalScopes != nil {
		if err := r.checkScopes(ctx, p); err != nil {
			return err
		}
	}
	updated, err := p.api.UpdateOAuthClient(ctx, obj.Spec.AccountID, remote.ClientID, d.params)
	if err != nil {
		return err
	}
	if restarting {
		obj.Status.LastVerificationRestart = restart
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "VerificationRestarted", "Verify", "asked Cloudflare to verify the client URI host again")
	}
	r.snapshots.Put(p.account, *updated)
	p.remote = updated
	if obj.Generation == obj.Status.ObservedGeneration {
		driftCorrections.Inc()
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "DriftCorrected", "Update", "corrected drift in Cloudflare: %s", d)
	} else {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Updated", "Update", "updated %s", d)
	}
	return nil
}

// conclude records the remote client in status and sets the conditions of a pass that
// reached its goal, or that waits on the user or on DNS.
func (r *OAuthClientReconciler) conclude(p *pass) ctrl.Result {
	obj := p.obj
	setRemoteStatus(obj, p.remote)
	r.recordVerificationEvents(p)
	if !obj.Observing() {
		obj.Status.SecretName = obj.SecretName()
		mirrorRotationStatus(obj, p.secret)
	}
	setPromotedCondition(obj, p)

	requeue := wait.Jitter(r.SyncPeriod, 0.1)
	if v := obj.Status.ClientURIVerification; v != nil && (v.Status == cfapi.VerificationPending || v.Status == cfapi.VerificationInProgress) {
		requeue = wait.Jitter(r.VerificationPollInterval, 0.2)
	}
	if !p.wakeAt.IsZero() {
		requeue = min(requeue, max(p.wakeAt.Sub(r.now()), 0)+time.Second)
	}

	switch {
	case len(p.promotionGaps) > 0 && p.awaitingVerification && len(p.promotionGaps) == 1:
		markProgressing(obj, v1alpha1.ReasonAwaitingVerification, "waiting to promote to public: "+p.promotionGaps[0])
		return ctrl.Result{RequeueAfter: min(requeue, wait.Jitter(r.VerificationPollInterval, 0.2))}
	case len(p.promotionGaps) > 0:
		markStalled(obj, v1alpha1.ReasonMissingPrerequisites, "cannot promote to public: "+strings.Join(p.promotionGaps, "; "))
	case len(p.observedDrift) > 0:
		markReady(obj, v1alpha1.ReasonDriftDetected, fmt.Sprintf("Observe: client %s exists; these fields differ from the spec: %v", p.boundID, p.observedDrift))
	case obj.Observing():
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("Observe: client %s exists and matches the spec", p.boundID))
	case p.rotationPending != "":
		markReady(obj, v1alpha1.ReasonRotationPending, fmt.Sprintf("client %s matches the spec; %s", p.boundID, p.rotationPending))
	case p.secretUnknown:
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("client %s matches the spec; Cloudflare returns a secret only at creation, so Secret %s holds client_id only until a rotation (spec.secretRotation)", p.boundID, obj.SecretName()))
	default:
		markReady(obj, v1alpha1.ReasonReconciled, fmt.Sprintf("client %s matches the spec", p.boundID))
	}
	return ctrl.Result{RequeueAfter: requeue}
}

// setPromotedCondition reports promotion when public visibility is wanted or reached.
func setPromotedCondition(obj *v1alpha1.OAuthClient, p *pass) {
	wantPublic := obj.Spec.Visibility != nil && *obj.Spec.Visibility == v1alpha1.VisibilityPublic
	switch {
	case p.remote.Visibility == cfapi.VisibilityPublic:
		setCondition(obj, v1alpha1.ConditionPromoted, metav1.ConditionTrue, v1alpha1.ReasonPromoted, "the client is public")
	case wantPublic && len(p.promotionGaps) > 0:
		reason := v1alpha1.ReasonMissingPrerequisites
		if p.awaitingVerification && len(p.promotionGaps) == 1 {
			reason = v1alpha1.ReasonAwaitingVerification
		}
		setCondition(obj, v1alpha1.ConditionPromoted, metav1.ConditionFalse, reason, "missing: "+strings.Join(p.promotionGaps, "; "))
	default:
		meta.RemoveStatusCondition(&obj.Status.Conditions, v1alpha1.ConditionPromoted)
	}
}

// recordVerificationEvents tells the user, once per transition, what to publish and
// when verification completes or fails.
func (r *OAuthClientReconciler) recordVerificationEvents(p *pass) {
	obj, prev := p.obj, p.prevVerification
	cur := obj.Status.ClientURIVerification
	if cur == nil || (cur.Status == prev.Status && cur.Text == prev.Text) {
		return
	}
	switch cur.Status {
	case cfapi.VerificationPending, cfapi.VerificationInProgress:
		if rec := obj.Status.VerificationRecord; rec != nil && (rec.Content != prev.Text || (prev.Status != cfapi.VerificationPending && prev.Status != cfapi.VerificationInProgress)) {
			r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "VerificationRecordRequired", "Verify",
				"publish DNS record: name=%s type=%s content=%s", rec.Name, rec.Type, rec.Content)
		}
	case cfapi.VerificationVerified:
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "ClientURIVerified", "Verify", "Cloudflare verified the client URI host")
	case cfapi.VerificationFailed:
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "VerificationFailed", "Verify",
			"Cloudflare could not verify the client URI host; publish status.verificationRecord, then set the annotation %s to a new value (or change clientURI) to restart", v1alpha1.AnnotationRestartVerification)
	}
}

// setRemoteStatus copies the remote facts users need into status.
func setRemoteStatus(obj *v1alpha1.OAuthClient, c *cfapi.OAuthClient) {
	st := &obj.Status
	st.ClientID = c.ClientID
	st.Visibility = c.Visibility
	st.HasRotatedSecret = c.HasRotatedSecret
	st.CreatedAt, st.UpdatedAt, st.PromotedAt = metaTime(c.CreatedAt), metaTime(c.UpdatedAt), metaTime(c.PromotedAt)
	st.ClientURIVerification, st.VerificationRecord = nil, nil
	if v := c.ClientURIVerification; v != nil && (v.Status != "" || v.Text != "") {
		st.ClientURIVerification = &v1alpha1.ClientURIVerification{Status: v.Status, Text: v.Text}
		if u, err := url.Parse(c.ClientURI); err == nil && u.Hostname() != "" && v.Text != "" {
			st.VerificationRecord = &v1alpha1.DNSRecord{Type: "TXT", Name: u.Hostname(), Content: v.Text}
		}
	}
	setVerificationCondition(obj)
}

func metaTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// setVerificationCondition mirrors Cloudflare's verification status in
// ClientURIVerified: True when verified, False when failed, Unknown otherwise.
func setVerificationCondition(obj *v1alpha1.OAuthClient) {
	cond := metav1.Condition{Type: v1alpha1.ConditionClientURIVerified, ObservedGeneration: obj.Generation}
	v := obj.Status.ClientURIVerification
	switch {
	case v == nil:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonNoClientURI, "the client has no client URI to verify"
	case v.Status == cfapi.VerificationVerified:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionTrue, v1alpha1.ReasonVerificationVerified, "Cloudflare verified the client URI host"
	case v.Status == cfapi.VerificationFailed:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, v1alpha1.ReasonVerificationFailed,
			"verification failed or timed out; publish status.verificationRecord, then set the annotation "+v1alpha1.AnnotationRestartVerification+" to a new value (or change clientURI) to restart it"
	case v.Status == cfapi.VerificationPending:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonVerificationPending, "verification is queued; publish status.verificationRecord"
	default:
		cond.Status, cond.Reason, cond.Message = metav1.ConditionUnknown, v1alpha1.ReasonVerificationInProgress, "Cloudflare is checking DNS for status.verificationRecord"
	}
	meta.SetStatusCondition(&obj.Status.Conditions, cond)
}

// reconcileDelete removes the remote client (deletionPolicy Delete) and then the
// finalizer. Credentials Cloudflare refuses keep the finalizer, with a condition that
// says how to release the object without deleting the client (deletionPolicy: Orphan).
func (r *OAuthClientReconciler) reconcileDelete(ctx context.Context, p *pass) (ctrl.Result, error) {
	obj := p.obj
	if !controllerutil.ContainsFinalizer(obj, v1alpha1.Finalizer) {
		return ctrl.Result{}, nil
	}
	if !obj.OrphanOnDelete() && !obj.Observing() {
		err := r.deleteRemote(ctx, p)
		var credErr *credentialsError
		if errors.As(err, &credErr) {
			// Without credentials the client cannot be deleted: say so loudly, and how
			// to release the object, rather than block namespace deletion silently.
			err = &deletionBlockedError{cause: err}
		}
		if err != nil {
			return r.outcome(ctx, p, err)
		}
	}
	if err := r.patchMeta(ctx, obj, func(o *v1alpha1.OAuthClient) { controllerutil.RemoveFinalizer(o, v1alpha1.Finalizer) }); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	r.lastCreds.Delete(obj.UID)
	return ctrl.Result{}, nil
}

// deleteRemote deletes the bound client; a client that is already gone counts as done.
func (r *OAuthClientReconciler) deleteRemote(ctx context.Context, p *pass) error {
	if err := r.connect(ctx, p); err != nil {
		return err
	}
	if pause := r.snapshots.BlockedFor(p.credsKey); pause > 0 {
		return &rateLimitedError{wait: pause}
	}
	obj := p.obj
	if obj.Annotations[v1alpha1.AnnotationCreateIntent] != "" && obj.AdoptedClientID() == "" {
		// An interrupted create may have made a client: find it so it is not orphaned.
		if err := r.resumeInterruptedCreate(ctx, p); err != nil {
			return err
		}
	} else {
		p.boundID = boundIDOf(obj)
	}
	if p.boundID == "" {
		return nil
	}
	if err := p.api.DeleteOAuthClient(ctx, obj.Spec.AccountID, p.boundID); err != nil && !cfapi.IsNotFound(err) {
		if cfapi.IsUnauthorized(err) || cfapi.IsForbidden(err) {
			return &deletionBlockedError{cause: err}
		}
		return err
	}
	r.snapshots.Remove(p.account, p.boundID)
	r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Deleted", "Delete", "deleted Cloudflare client %s", p.boundID)
	return nil
}

// patchMeta applies mutate to the object's metadata and patches it when it changed. It
// leaves the in-memory status alone, so status is still written once, at the end.
func (r *OAuthClientReconciler) patchMeta(ctx context.Context, obj *v1alpha1.OAuthClient, mutate func(*v1alpha1.OAuthClient)) error {
	changed := obj.DeepCopy()
	mutate(changed)
	if equality.Semantic.DeepEqual(obj.ObjectMeta, changed.ObjectMeta) {
		return nil
	}
	if err := r.Patch(ctx, changed, client.MergeFromWithOptions(obj, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	obj.ObjectMeta = changed.ObjectMeta
	return nil
}

// writeStatus patches status when the pass changed it. A failed write is joined with the
// pass's error, never dropped.
func (r *OAuthClientReconciler) writeStatus(ctx context.Context, before, obj *v1alpha1.OAuthClient, res ctrl.Result, err error) (ctrl.Result, error) {
	if equality.Semantic.DeepEqual(before.Status, obj.Status) {
		return res, err
	}
	base := obj.DeepCopy()
	base.Status = before.Status
	if patchErr := r.Status().Patch(ctx, obj, client.MergeFrom(base)); patchErr != nil && !apierrors.IsNotFound(patchErr) {
		return ctrl.Result{}, errors.Join(err, fmt.Errorf("writing status: %w", patchErr))
	}
	return res, err
}
