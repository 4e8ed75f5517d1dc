package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// observe finds the remote client the object is bound to (see the package comment),
// from the account snapshot, and makes sure no other object holds it. It leaves
// p.remote nil when there is none.
func (r *OAuthClientReconciler) observe(ctx context.Context, p *pass) error {
	if handled, err := r.observeBaseline(ctx, p); handled {
		return err
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
	// Nothing is read, written or handed out for a client another object holds.
	if err := r.claims.claim(ctx, obj, p.accountID(), p.boundID); err != nil {
		return err
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
	// An adoption records no Event: status.clientID and Ready say it, and at thousands
	// of objects an Event each would double the apiserver writes of an import.
	p.remote = &c
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

// createSettledAt is the moment after which the object's last Create attempt can no
// longer commit: recorded after an ambiguous failure, or else, after a crash, the intent
// plus the longest the request could have been in flight plus the settle time.
func (r *OAuthClientReconciler) createSettledAt(obj *v1alpha1.OAuthClient) (intent, settled time.Time) {
	intent, err := time.Parse(time.RFC3339Nano, obj.Annotations[v1alpha1.AnnotationCreateIntent])
	if err != nil {
		intent = obj.CreationTimestamp.Time
	}
	if t, err := time.Parse(time.RFC3339Nano, obj.Annotations[v1alpha1.AnnotationCreateSettledAt]); err == nil {
		return intent, t
	}
	return intent, intent.Add(r.RequestTimeout + r.CreateSettle)
}

// resumeInterruptedCreate handles an object whose create intent was written but whose
// new client ID was not. A Create that timed out, was reset or got a 5xx may still
// commit, so it waits until the attempt has settled, then searches a List sent after
// that for the client the Create made: same clientName, same redirectURIs, created
// after the intent, and held by no other object. One match is adopted as ours (its
// secret is recovered by rotation, since it may have been lost); none means the Create
// never happened and it is safe to create; several stall the object for a human.
func (r *OAuthClientReconciler) resumeInterruptedCreate(ctx context.Context, p *pass) error {
	obj := p.obj
	p.createdByUs = true
	intent, settled := r.createSettledAt(obj)
	if wait := settled.Sub(r.now()); wait > 0 {
		wait = min(wait, r.RequestTimeout+r.CreateSettle) // a clock jump cannot stall it
		return &failure{kind: kindWaiting, reason: v1alpha1.ReasonResumingCreate, after: wait,
			message: "an earlier create ended without a clear answer from Cloudflare; waiting for it to settle before searching the account for its client instead of creating another"}
	}
	if _, err := r.snapshots.Ensure(ctx, p.account, settled, p.api); err != nil {
		return err
	}
	var candidates []cfapi.OAuthClient
	for _, c := range r.snapshots.Find(p.account, func(c *cfapi.OAuthClient) bool { return madeByCreate(&obj.Spec, c, intent) }) {
		held, err := r.claims.heldByOther(ctx, obj, p.accountID(), c.ClientID)
		if err != nil {
			return err
		}
		claimed, err := r.claimedByOther(ctx, obj, p.accountID(), c.ClientID)
		if err != nil {
			return err
		}
		if !held && !claimed {
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
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, v1alpha1.EventCreateResumed, "Bind",
			"an interrupted create had made client %s; bound it instead of creating another", c.ClientID)
		return nil
	default:
		ids := make([]string, len(candidates))
		for i, c := range candidates {
			ids[i] = c.ClientID
		}
		return newFailure(kindConflict, v1alpha1.ReasonClientNotFound,
			"an interrupted create left several matching clients %v; set spec.clientID to the one to keep and delete the others", ids)
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

// claimedByOther reports whether another OAuthClient names the client ID (it may not
// have claimed it yet: it could be the other half of a race).
func (r *OAuthClientReconciler) claimedByOther(ctx context.Context, obj *v1alpha1.OAuthClient, account, id string) (bool, error) {
	list := &v1alpha1.OAuthClientList{}
	if err := r.List(ctx, list, client.MatchingFields{indexClientID: account + "/" + id}, client.UnsafeDisableDeepCopy); err != nil {
		return false, err
	}
	for i := range list.Items {
		if list.Items[i].UID != obj.UID {
			return true, nil
		}
	}
	return false, nil
}

// recordBinding durably records the bound client ID and clears the create intent, then
// claims the client for this object.
func (r *OAuthClientReconciler) recordBinding(ctx context.Context, p *pass) error {
	p.obj.Status.ClientID, p.obj.Status.AccountID = p.boundID, p.accountID()
	if err := r.patchMeta(ctx, p.obj, func(o *v1alpha1.OAuthClient) {
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[v1alpha1.AnnotationClientID] = p.boundID
		delete(o.Annotations, v1alpha1.AnnotationCreateIntent)
		delete(o.Annotations, v1alpha1.AnnotationCreateSettledAt)
	}); err != nil {
		return err
	}
	if err := r.claims.claim(ctx, p.obj, p.accountID(), p.boundID); err != nil {
		return fmt.Errorf("recording the binding to client %s: %w", p.boundID, err)
	}
	return nil
}
