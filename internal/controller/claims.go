package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// A Cloudflare client may be bound by one OAuthClient only, cluster-wide. Otherwise two
// objects naming it (a cloned manifest, a restore into another namespace, or a
// namespace editor pointing spec.clientID at another team's client) would PATCH-fight,
// both rotate, and deleting either would delete the other's client, all with the
// operator's credentials.
//
// The binding is a claim: a coordination.k8s.io Lease in the operator's namespace,
// named after the (account, client) pair and annotated with its holder. The apiserver
// creates a name once, so when two objects claim at the same moment exactly one wins;
// the claim outlives restarts; and only the operator can write that namespace. A claim
// whose holder is gone, or no longer names the client, is stale and is taken over.
// Claims this process has verified are remembered, so the steady state reads none.

// Annotations on a claim Lease.
const (
	claimAnnotationHolder    = "cloudflare.oauth-operator.dev/holder"     // namespace/name
	claimAnnotationHolderUID = "cloudflare.oauth-operator.dev/holder-uid" // the holder's UID
	claimAnnotationClient    = "cloudflare.oauth-operator.dev/client"     // account/clientID
	claimLabel               = "cloudflare.oauth-operator.dev/claim"
)

type claimStore struct {
	c      client.Client // writes
	reader client.Reader // the API server: claims are not cached
	ns     string

	mu   sync.Mutex
	held map[string]verifiedClaim // claim name -> holder, as verified by this process
	now  func() time.Time
}

// verifiedClaim is a claim this process read or wrote, and when.
type verifiedClaim struct {
	uid types.UID
	at  time.Time
}

// claimRecheck is how long a verified claim is trusted before it is read again: only
// the operator writes claims, but a person may delete one by hand.
const claimRecheck = 30 * time.Minute

func newClaimStore(c client.Client, reader client.Reader, ns string, now func() time.Time) *claimStore {
	return &claimStore{c: c, reader: reader, ns: ns, held: map[string]verifiedClaim{}, now: now}
}

// claimName is the Lease name of a client: a hash, since client IDs are opaque.
func claimName(account, clientID string) string {
	sum := sha256.Sum256([]byte(account + "/" + clientID))
	return "oauthclient-" + hex.EncodeToString(sum[:])[:40]
}

// claim makes obj the holder of the client, or fails with ClientAlreadyBound naming
// the holder.
func (s *claimStore) claim(ctx context.Context, obj *v1alpha1.OAuthClient, account, clientID string) error {
	name := claimName(account, clientID)
	if s.heldBy(name) == obj.UID {
		return nil
	}
	for range 3 {
		lease := &coordinationv1.Lease{}
		err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, lease)
		switch {
		case apierrors.IsNotFound(err):
			err = s.c.Create(ctx, s.newLease(name, obj, account, clientID))
			if apierrors.IsAlreadyExists(err) {
				continue // someone claimed it a moment ago: judge that claim
			}
			if err != nil {
				return fmt.Errorf("claiming Cloudflare client %s: %w", clientID, err)
			}
			s.remember(name, obj.UID)
			return nil
		case err != nil:
			return fmt.Errorf("reading the claim on Cloudflare client %s: %w", clientID, err)
		}
		if types.UID(lease.Annotations[claimAnnotationHolderUID]) == obj.UID {
			s.remember(name, obj.UID)
			return nil
		}
		stale, err := s.stale(ctx, lease)
		if err != nil {
			return err
		}
		if !stale {
			return newFailure(kindConflict, v1alpha1.ReasonClientAlreadyBound,
				"Cloudflare client %s is already bound by OAuthClient %s; a Cloudflare client can be bound by one OAuthClient only. "+
					"Delete this object (deleting it leaves the client alone), or remove the %s annotation if it was copied, to get a client of its own",
				clientID, lease.Annotations[claimAnnotationHolder], v1alpha1.AnnotationClientID)
		}
		err = s.c.Delete(ctx, lease, client.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("taking over the stale claim on Cloudflare client %s: %w", clientID, err)
		}
	}
	return fmt.Errorf("the claim on Cloudflare client %s keeps changing; retrying", clientID)
}

// heldByOther reports whether a live object other than obj holds the client.
func (s *claimStore) heldByOther(ctx context.Context, obj *v1alpha1.OAuthClient, account, clientID string) (bool, error) {
	lease := &coordinationv1.Lease{}
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: claimName(account, clientID)}, lease)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if types.UID(lease.Annotations[claimAnnotationHolderUID]) == obj.UID {
		return false, nil
	}
	stale, err := s.stale(ctx, lease)
	return !stale, err
}

// release drops obj's claim on the client, if it holds it.
func (s *claimStore) release(ctx context.Context, obj *v1alpha1.OAuthClient, account, clientID string) error {
	name := claimName(account, clientID)
	s.mu.Lock()
	delete(s.held, name)
	s.mu.Unlock()
	lease := &coordinationv1.Lease{}
	if err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.ns, Name: name}, lease); err != nil {
		return client.IgnoreNotFound(err)
	}
	if types.UID(lease.Annotations[claimAnnotationHolderUID]) != obj.UID {
		return nil
	}
	err := s.c.Delete(ctx, lease, client.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// stale reports whether a claim's holder is gone or no longer names the client.
func (s *claimStore) stale(ctx context.Context, lease *coordinationv1.Lease) (bool, error) {
	ns, name, ok := cutNamespacedName(lease.Annotations[claimAnnotationHolder])
	if !ok {
		return true, nil
	}
	holder := &v1alpha1.OAuthClient{}
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, holder)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if string(holder.UID) != lease.Annotations[claimAnnotationHolderUID] {
		return true, nil
	}
	return !slices.Contains(claimedClientIDs(holder), lease.Annotations[claimAnnotationClient]), nil
}

func (s *claimStore) newLease(name string, obj *v1alpha1.OAuthClient, account, clientID string) *coordinationv1.Lease {
	holder := obj.Namespace + "/" + obj.Name
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: s.ns, Name: name,
			Labels: map[string]string{claimLabel: "true", v1alpha1.LabelManagedBy: v1alpha1.ManagerName},
			Annotations: map[string]string{
				claimAnnotationHolder:    holder,
				claimAnnotationHolderUID: string(obj.UID),
				claimAnnotationClient:    account + "/" + clientID,
			},
		},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder},
	}
}

// heldBy is the holder this process verified less than claimRecheck ago, if any.
func (s *claimStore) heldBy(name string) types.UID {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.held[name]
	if !ok || s.now().Sub(v.at) >= claimRecheck {
		return ""
	}
	return v.uid
}

func (s *claimStore) remember(name string, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[name] = verifiedClaim{uid: uid, at: s.now()}
}

func cutNamespacedName(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '/' {
			return s[:i], s[i+1:], i > 0 && i < len(s)-1
		}
	}
	return "", "", false
}
