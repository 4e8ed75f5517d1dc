package controller

import (
	"context"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/dns"
)

// Field indexes on OAuthClient.
const (
	// indexCredentials maps an object to the credentials Secret it uses: its
	// credentialsRef name, or "" for the operator-wide default.
	indexCredentials = "spec.credentialsRef.name"
	// indexClientID maps an object to "<accountID>/<clientID>" of every client ID it
	// claims (spec, annotation, status), to find clients bound to another object.
	indexClientID = "cloudflare.clientID"
	// indexAccountRef maps an object to the CloudflareAccount it names; objects naming
	// none are not indexed.
	indexAccountRef = "spec.accountRef.name"
)

// SetupWithManager registers the controller, its field indexes and its watches.
//
// OAuthClients are watched with GenerationChangedPredicate, so our own status and
// metadata writes never echo back; drift is found by the jittered periodic requeue.
// Secrets are watched metadata-only (their data is never cached) and mapped back to
// the objects that use them through the credentials index and the owner label.
func (r *OAuthClientReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.init(mgr.GetClient())
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClient{}, indexCredentials, func(o client.Object) []string {
		return []string{o.(*v1alpha1.OAuthClient).CredentialsSecretName()}
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClient{}, indexClientID, claimedClientIDs); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.OAuthClient{}, indexAccountRef, func(o client.Object) []string {
		if ref := accountRefOf(o); ref != "" {
			return []string{ref}
		}
		return nil // not queried: an entry per object would cost memory for nothing
	}); err != nil {
		return err
	}

	if err := setupCredentialsUsage(mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Watches(&v1alpha1.OAuthClient{}, userChangesFirst(), builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{},
			annotationChanged(v1alpha1.AnnotationRestartVerification),
		))).
		WatchesRawSource(source.Channel(r.remoteChanges, userChangesFirst())).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.objectsForSecret)).
		Watches(&v1alpha1.CloudflareAccount{}, handler.EnqueueRequestsFromMapFunc(r.objectsForAccount)).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.objectsInNamespace),
			builder.WithPredicates(labelsChanged())).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Named("oauthclient").
		Complete(r)
}

// init fills in defaults and the state shared by all reconciles. metaReader serves
// metadata-only reads of Secrets (the manager's cache).
func (r *OAuthClientReconciler) init(metaReader client.Reader) {
	if r.SyncPeriod <= 0 {
		r.SyncPeriod = time.Minute
	}
	if r.VerificationPollInterval <= 0 {
		r.VerificationPollInterval = 15 * time.Second
	}
	if r.MaxConcurrentReconciles <= 0 {
		r.MaxConcurrentReconciles = 4
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.RequestTimeout <= 0 {
		r.RequestTimeout = 30 * time.Second
	}
	if r.CreateSettle <= 0 {
		r.CreateSettle = r.RequestTimeout
	}
	now := func() time.Time { return r.now() } // tests replace r.now after init
	r.snapshots = NewSnapshots(r.SyncPeriod)
	r.snapshots.now = now
	r.remoteChanges = make(chan event.GenericEvent, 1024)
	r.snapshots.OnChange = r.remoteChanged
	r.scopes = newScopeCatalogs()
	r.apis = newAPIClients(r.NewAPI, r.RequestBudget, now)
	r.secrets = newSecretStore(metaReader, r.APIReader)
	r.claims = newClaimStore(r.Client)
	r.zones = dns.NewZones(now)
	r.records = dns.NewRecords(now)
	r.usage = newUsageTracker()
}

// Work queue priorities (controller-runtime's priority queue). A person's change to an
// object (a spec edit, a restart-verification request, a deletion) goes ahead of
// everything else; new objects come next; the objects of the initial list at startup,
// and every periodic drift check, come last. So an edit is never queued behind a mass
// import of a thousand objects, nor behind the startup resync of ten thousand.
const priorityUserChange = 10

// userChangesFirst enqueues an OAuthClient event with the priority of its kind.
func userChangesFirst() handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], o client.Object, priority *int) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
		if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
			pq.AddWithOpts(priorityqueue.AddOpts{Priority: priority}, req)
			return
		}
		q.Add(req)
	}
	// TypedFuncs gives initial-list creates and resyncs handler.LowPriority through the
	// queue it passes in; an explicit priority overrides that.
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc: func(_ context.Context, e event.TypedCreateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, nil)
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectNew, new(priorityUserChange))
		},
		DeleteFunc: func(_ context.Context, e event.TypedDeleteEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, new(priorityUserChange))
		},
		GenericFunc: func(_ context.Context, e event.TypedGenericEvent[client.Object], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, nil)
		},
	}
}

// annotationChanged passes updates that change one annotation: a user asking for an
// action on an object without changing its spec.
func annotationChanged(key string) predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return e.ObjectOld.GetAnnotations()[key] != e.ObjectNew.GetAnnotations()[key]
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// claimedClientIDs lists the "<account>/<client>" IDs an object is bound to.
func claimedClientIDs(o client.Object) []string {
	obj := o.(*v1alpha1.OAuthClient)
	var out []string
	for _, id := range []string{obj.AdoptedClientID(), obj.Annotations[v1alpha1.AnnotationClientID], obj.Status.ClientID} {
		if id != "" {
			out = append(out, accountIDOf(obj)+"/"+id)
		}
	}
	return out
}

// objectsForSecret maps a Secret event to the objects that must look again: the owner
// of a client Secret (unless the event is our own write), and every object using a
// credentials Secret.
func (r *OAuthClientReconciler) objectsForSecret(ctx context.Context, sec client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	if r.secrets.isOwnWrite(sec) {
		return nil // our own write (a client Secret, a credentials-in-use finalizer)
	}
	if owner := sec.GetLabels()[v1alpha1.LabelOAuthClient]; owner != "" && sec.GetLabels()[v1alpha1.LabelManagedBy] == v1alpha1.ManagerName {
		return append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: sec.GetNamespace(), Name: owner}})
	}
	// The objects of the namespace that use it as credentials, or whose client Secret
	// it is (a Secret that blocked them, SecretConflict, may have gone). No index: one
	// per object would cost more memory than this scan of one namespace costs time.
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(sec.GetNamespace()), client.UnsafeDisableDeepCopy); err == nil {
		for i := range list.Items {
			o := &list.Items[i]
			if o.CredentialsSecretName() == sec.GetName() || o.SecretName() == sec.GetName() {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
			}
		}
	}
	def := r.DefaultCredentials.Secret
	if def.Name != "" && sec.GetNamespace() == def.Namespace && sec.GetName() == def.Name {
		list := &v1alpha1.OAuthClientList{}
		if err := r.List(ctx, list, client.MatchingFields{indexCredentials: ""}, client.UnsafeDisableDeepCopy); err == nil {
			for _, o := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&o)})
			}
		}
	}
	return reqs
}

// objectsForAccount maps a CloudflareAccount event (its allow-list, its credentials,
// its readiness) to the objects that name it.
func (r *OAuthClientReconciler) objectsForAccount(ctx context.Context, acct client.Object) []reconcile.Request {
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.MatchingFields{indexAccountRef: acct.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	return requestsFor(list)
}

// objectsInNamespace maps a change of a namespace's labels (which allow-lists and the
// default credentials' selector read) to the objects in it.
func (r *OAuthClientReconciler) objectsInNamespace(ctx context.Context, ns client.Object) []reconcile.Request {
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(ns.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		return nil
	}
	return requestsFor(list)
}

func requestsFor(list *v1alpha1.OAuthClientList) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// labelsChanged passes updates that change an object's labels, and nothing else.
func labelsChanged() predicate.Predicate {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels())
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// remoteChanged wakes the objects bound to clients a List found changed, added or gone
// since the previous List: out-of-band drift is corrected as soon as a List shows it,
// not at the bound objects' next periodic pass (up to a sync period later). It runs in
// its own goroutine: the List that found the change must not wait for the queue.
func (r *OAuthClientReconciler) remoteChanged(key accountKey, clientIDs []string) {
	go func() {
		for _, id := range clientIDs {
			list := &v1alpha1.OAuthClientList{}
			if err := r.List(context.Background(), list, client.MatchingFields{indexClientID: key.account + "/" + id},
				client.UnsafeDisableDeepCopy); err != nil {
				continue
			}
			for i := range list.Items {
				obj := list.Items[i].DeepCopy()
				select {
				case r.remoteChanges <- event.GenericEvent{Object: obj}:
				case <-time.After(time.Minute):
					return // nobody reads: the periodic passes will find it
				}
			}
		}
	}()
}
