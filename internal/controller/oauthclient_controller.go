// Package controller reconciles OAuthClient objects with Cloudflare OAuth clients.
//
// # Binding
//
// An object is bound to exactly one remote client, found in this order (binding.go):
//
//  1. spec.clientID: an adopted client. If it does not exist the object is Stalled
//     (ClientNotFound); the operator never creates a client for it.
//  2. the cloudflare.oauth-operator.dev/client-id annotation, or status.clientID: a client
//     the operator created. The annotation survives the loss of status (a backup restore,
//     a status wipe). If the client vanished out of band it is re-created, with a Warning
//     Event and a new secret.
//  3. nothing: the operator creates the client.
//
// A Cloudflare client is bound by one OAuthClient cluster-wide (claims.go): the first
// object to bind it holds a claim, a Lease in the operator's namespace, and any other
// object naming the same client is Stalled (ClientAlreadyBound) and never patches,
// rotates, deletes or receives the secret of that client.
//
// # Crash safety
//
// Cloudflare offers no idempotency key and no field we could stamp with a marker, so a
// crash, a lost response or a failed apiserver write between Create and the ID write
// could otherwise leave a client nobody knows about, and the next pass would create a
// second one. To prevent that, the operator first writes a create-intent annotation
// holding the time the Create is about to happen, then calls Create, then writes the
// Secret (the secret is returned only once), then records the ID and removes the intent
// in one metadata patch (create.go). Finding an intent without an ID means that
// sequence was interrupted: instead of creating, the operator waits until the
// interrupted Create cannot still commit, lists the account with a List sent after
// that, and looks for the client it made (binding.go).
//
// # Observing at scale
//
// Remote state comes from a shared per-account snapshot (see Snapshots): one List call
// per account per --remote-sync-period serves every object, instead of one GET per
// object, which would exhaust Cloudflare's 1,200 requests per 5 minutes per user at a
// few hundred objects. Calls are paced per Cloudflare user (budget.go).
package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/dns"
)

// OAuthClientReconciler reconciles OAuthClient objects.
type OAuthClientReconciler struct {
	client.Client
	// APIReader reads from the API server directly (Secrets and claims are not cached).
	APIReader client.Reader
	Recorder  recorder.EventRecorder
	// NewAPI builds the Cloudflare client for a set of credentials.
	NewAPI             APIFactory
	DefaultCredentials DefaultCredentials
	// DefaultCredentialsNamespaces selects the namespaces whose objects may use the
	// default credentials (by their labels); nil allows every namespace.
	DefaultCredentialsNamespaces labels.Selector
	// SyncPeriod is how often each object is re-checked for drift, and how old an
	// account snapshot may get (--remote-sync-period).
	SyncPeriod time.Duration
	// VerificationPollInterval is how often an object whose client URI verification is
	// pending or in progress is re-read (from the snapshot).
	VerificationPollInterval time.Duration
	// CreateSettle is how long after a Create ended without a clear answer (timeout,
	// reset, 5xx) the operator assumes it can no longer commit. The search for its
	// client waits until then. A crash mid-Create counts from the intent plus
	// RequestTimeout.
	CreateSettle time.Duration
	// RequestTimeout is the Cloudflare HTTP client's timeout: the longest a Create can
	// have been in flight.
	RequestTimeout time.Duration
	// Issuer, when set, is written under "issuer" to client Secrets without
	// spec.secretTemplate (set when the authorization server is named explicitly).
	Issuer string
	// AuthorizationServer is the base URL of the OAuth authorization server the clients
	// are used with (--authorization-server): the issuer, and the base of the endpoints
	// spec.secretTemplate renders. Empty means DefaultAuthorizationServer.
	AuthorizationServer string
	// MaxConcurrentReconciles bounds parallel reconciles.
	MaxConcurrentReconciles int
	// RequestBudget paces Cloudflare calls per Cloudflare user; zero disables pacing.
	RequestBudget RequestBudget

	// holdMu serializes the credentials-in-use finalizer writes (holdCredentials).
	holdMu sync.Mutex
	// remoteChanges carries the objects whose clients a List found changed.
	remoteChanges chan event.GenericEvent
	snapshots     *Snapshots
	scopes        *scopeCatalogs
	apis          *apiClients
	secrets       *secretStore
	claims        *claimStore
	usage         *usageTracker
	zones         *dns.Zones
	records       *dns.Records
	now           func() time.Time
}

const (
	// freshWindow is how recent a List must be before a client missing from it is
	// believed gone (and re-created, or reported ClientNotFound).
	freshWindow = 5 * time.Second
	// intentSkew tolerates clock skew between us and Cloudflare when matching the
	// created_at of a client made by an interrupted Create.
	intentSkew = 2 * time.Minute
	// sequenceTimeout bounds a remote write whose result must be stored even if the
	// reconcile is cancelled (a Create or a rotate and the Secret write after it).
	sequenceTimeout = 2 * time.Minute
)

// pass is the working state of one reconcile.
type pass struct {
	obj      *v1alpha1.OAuthClient
	api      CloudflareAPI
	creds    resolved
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
	// rotation overlap, the next periodic rotation, a settling Create).
	wakeAt time.Time
	// rotationPending explains a requested rotation that has to wait.
	rotationPending string
	// prevVerification is the verification status before this pass.
	prevVerification v1alpha1.ClientURIVerification
	// prevRecord is the verification record's content before this pass.
	prevRecord string
	// prevRecordHost is the verification record's name before this pass, and
	// prevPublication where the operator had published it.
	prevRecordHost  string
	prevPublication *v1alpha1.RecordPublication
	// publication is where the record is published after this pass.
	publication *v1alpha1.RecordPublication
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
		if client.IgnoreNotFound(err) == nil {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopy()
	p := &pass{obj: obj}
	if v := obj.Status.ClientURIVerification; v != nil {
		p.prevVerification = *v
	}
	p.prevRecord = recordContent(obj)
	if rec := obj.Status.VerificationRecord; rec != nil {
		p.prevRecordHost, p.prevPublication = rec.Name, rec.Publication.DeepCopy()
	}

	var res ctrl.Result
	var err error
	if !obj.DeletionTimestamp.IsZero() {
		res, err = r.reconcileDelete(ctx, p)
	} else {
		res, err = r.reconcileNormal(ctx, p)
	}
	res, err = r.writeStatus(ctx, before, obj, res, err)
	if err == nil && res.RequeueAfter > 0 {
		// The next look is background work (a drift check, a poll, a timer): it must
		// not go ahead of a person's change (see userChangesFirst).
		res.Priority = new(handler.LowPriority)
	}
	return res, err
}

// reconcileNormal drives a live object to its spec.
func (r *OAuthClientReconciler) reconcileNormal(ctx context.Context, p *pass) (ctrl.Result, error) {
	if err := r.connect(ctx, p); err != nil {
		return r.outcome(ctx, p, err)
	}
	if pause := r.apis.blockedFor(p.credsKey); pause > 0 {
		return r.rateLimited(ctx, p, pause)
	}
	if !p.obj.Observing() {
		if err := r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) { controllerutil.AddFinalizer(o, v1alpha1.Finalizer) }); err != nil {
			return r.outcome(ctx, p, err)
		}
		if err := r.holdCredentials(ctx, p); err != nil {
			return r.outcome(ctx, p, err)
		}
	}
	if err := r.observe(ctx, p); err != nil {
		return r.outcome(ctx, p, err)
	}
	if err := r.checkSecretTemplate(ctx, p); err != nil {
		return r.outcome(ctx, p, err)
	}

	var err error
	switch {
	case p.remote == nil && !p.createdByUs:
		err = newFailure(kindConflict, v1alpha1.ReasonClientNotFound,
			"Cloudflare client %q does not exist in account %s", p.boundID, p.accountID())
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
	if err == nil && !p.obj.Observing() {
		err = r.publishVerificationRecord(ctx, p)
	}
	if err != nil {
		return r.outcome(ctx, p, err)
	}
	return r.conclude(p), nil
}

// connect resolves the object's account, its credentials and their Cloudflare client.
func (r *OAuthClientReconciler) connect(ctx context.Context, p *pass) error {
	acct, err := r.resolveAccount(ctx, p.obj)
	if err != nil {
		return err
	}
	res := acct.resolved
	api, key, err := r.apis.get(res)
	if err != nil {
		return credentialsError(v1alpha1.ReasonInvalidCredentials, "the Cloudflare credentials are unusable: "+err.Error())
	}
	p.api, p.creds, p.credsKey = api, res, key
	p.account = accountKey{creds: key, account: acct.id}
	prev, unused, switched := r.usage.use(client.ObjectKeyFromObject(p.obj), usage{creds: key, credsSecret: res.secret,
		clientSecret: types.NamespacedName{Namespace: p.obj.Namespace, Name: p.obj.SecretName()}})
	if switched && unused {
		r.forgetCredentials(prev.creds)
	}
	return nil
}

// forget drops what the operator held for an object that is gone: its client Secret's
// data and, when no other object uses them, its credentials, their Cloudflare client,
// budget, snapshots and scope catalogue.
func (r *OAuthClientReconciler) forget(key types.NamespacedName) {
	u, credsUnused, secretUnused := r.usage.release(key)
	r.secrets.forget(u.clientSecret)
	if secretUnused && u.credsSecret.Name != "" {
		r.secrets.forget(u.credsSecret)
	}
	if credsUnused && u.creds != "" {
		r.forgetCredentials(u.creds)
	}
}

// forgetCredentials drops the Cloudflare client, snapshots and scope catalogue of
// credentials no object uses any more.
func (r *OAuthClientReconciler) forgetCredentials(key string) {
	r.apis.forget(key)
	r.snapshots.Forget(key)
	r.scopes.invalidate(key)
}
