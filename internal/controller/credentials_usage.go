package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// Deleting a namespace deletes its credentials Secret and its OAuthClients together. If
// the Secret went first, the operator could no longer delete the remote clients. So,
// like Crossplane's ProviderConfigUsage, a credentials Secret carries the
// credentials-in-use finalizer while any OAuthClient with deletionPolicy Delete uses it:
// the OAuthClient reconciler adds it before it creates or adopts anything, and the
// credentials-usage controller below removes it once the last such object is gone. The
// record is in the apiserver, so it survives operator restarts.

// holdCredentials puts the credentials-in-use finalizer on the object's credentials
// Secret, when the object may have to delete its client with them.
func (r *OAuthClientReconciler) holdCredentials(ctx context.Context, p *pass) error {
	key := p.creds.secret
	// Only a credentialsRef is held: the default credentials Secret lives in the
	// operator's namespace, which a namespace teardown of the object's does not touch.
	sec := p.creds.held // read by credentials() in this pass
	if p.obj.CredentialsSecretName() == "" || sec == nil || !holdsCredentials(p.obj) {
		return nil
	}
	if controllerutil.ContainsFinalizer(sec, v1alpha1.FinalizerCredentialsInUse) {
		return nil
	}
	// The first objects of a credentials Secret reconcile at once: one of them writes
	// the finalizer, the others see it in the copy that write left (a conflicting
	// write each would be a wasted apiserver request and a retried pass).
	r.holdMu.Lock()
	defer r.holdMu.Unlock()
	if latest := r.secrets.latest(key); latest != nil {
		sec = latest
	}
	if controllerutil.ContainsFinalizer(sec, v1alpha1.FinalizerCredentialsInUse) {
		return nil
	}
	m := secretMeta(key)
	m.ResourceVersion = sec.ResourceVersion
	m.Finalizers = append(append([]string(nil), sec.Finalizers...), v1alpha1.FinalizerCredentialsInUse)
	base := secretMeta(key)
	base.ResourceVersion = sec.ResourceVersion
	base.Finalizers = sec.Finalizers
	defer r.secrets.beginWrite(key)()
	if err := r.Patch(ctx, m, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		return err
	}
	// Remember the version we wrote, so its watch event is not an echo to every user.
	held := sec.DeepCopy()
	held.ResourceVersion, held.Finalizers = m.ResourceVersion, m.Finalizers
	r.secrets.remember(held)
	return nil
}

// holdsCredentials reports whether obj may still need its credentials to delete its
// remote client.
func holdsCredentials(o *v1alpha1.OAuthClient) bool {
	if o.Observing() || o.OrphanOnDelete() {
		return false
	}
	return o.DeletionTimestamp.IsZero() || controllerutil.ContainsFinalizer(o, v1alpha1.Finalizer)
}

func secretMeta(key types.NamespacedName) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	m.SetGroupVersionKind(secretGVK)
	return m
}

// credentialsUsageReconciler removes the credentials-in-use finalizer from a Secret no
// OAuthClient needs any more.
type credentialsUsageReconciler struct {
	client.Client
}

// Reconcile keeps the finalizer while a user remains and removes it otherwise.
func (r *credentialsUsageReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	sec := secretMeta(req.NamespacedName)
	if err := r.Get(ctx, req.NamespacedName, sec); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !controllerutil.ContainsFinalizer(sec, v1alpha1.FinalizerCredentialsInUse) {
		return ctrl.Result{}, nil
	}
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.InNamespace(req.Namespace), client.MatchingFields{indexCredentials: req.Name}); err != nil {
		return ctrl.Result{}, err
	}
	for i := range list.Items {
		if holdsCredentials(&list.Items[i]) {
			return ctrl.Result{}, nil
		}
	}
	base := sec.DeepCopy()
	controllerutil.RemoveFinalizer(sec, v1alpha1.FinalizerCredentialsInUse)
	return ctrl.Result{}, client.IgnoreNotFound(r.Patch(ctx, sec, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})))
}

// usageChanged passes the OAuthClient events that can change who holds a credentials
// Secret: creations, deletions, and updates of the credentialsRef or of whether the
// object may still delete with it. Status writes, the bulk of the updates, pass not.
var usageChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		oldObj, newObj := e.ObjectOld.(*v1alpha1.OAuthClient), e.ObjectNew.(*v1alpha1.OAuthClient)
		return oldObj.CredentialsSecretName() != newObj.CredentialsSecretName() || holdsCredentials(oldObj) != holdsCredentials(newObj)
	},
}

// setupCredentialsUsage registers the credentials-usage controller: it looks at a
// Secret carrying the finalizer whenever the Secret or an OAuthClient naming it changes.
func setupCredentialsUsage(mgr ctrl.Manager) error {
	r := &credentialsUsageReconciler{Client: mgr.GetClient()}
	hasFinalizer := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return controllerutil.ContainsFinalizer(o, v1alpha1.FinalizerCredentialsInUse)
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("credentials-usage").
		WatchesMetadata(&corev1.Secret{}, &handler.EnqueueRequestForObject{}, builder.WithPredicates(hasFinalizer)).
		Watches(&v1alpha1.OAuthClient{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			name := o.(*v1alpha1.OAuthClient).CredentialsSecretName()
			if name == "" {
				return nil
			}
			return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
		}), builder.WithPredicates(usageChanged)).
		Complete(r)
}
