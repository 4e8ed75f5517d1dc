package controller

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
)

// A Cloudflare client may be bound by one OAuthClient only. Otherwise two objects naming
// it (a cloned manifest, a restore into another namespace, or a namespace editor
// pointing spec.clientID at another team's client) would PATCH-fight, both rotate, and
// deleting either would delete the other's client, all with the operator's credentials.
//
// The binding is recorded where only the operator can write it: the holder's
// status.clientID (namespace editors may read status, never write it). A claim is
// decided here, under one lock, from the informer cache's index of every object naming
// the client, so two objects claiming at the same moment cannot both win:
//
//   - an object whose status already records the client holds it (the oldest, should a
//     restore have produced two);
//   - otherwise the first object to claim it holds it, and this process remembers the
//     decision until the holder's status records it or the holder goes;
//   - a holder that is gone, or no longer names the client, holds nothing.
//
// The decision survives a restart because it lives in status, which the new leader's
// cache holds before its first reconcile. It costs no apiserver write of its own: the
// status write of the pass that bound the client records it. Claims are per install:
// objects outside --watch-namespaces or --label-selector are not seen.
type claimStore struct {
	reader client.Reader // the informer cache, with the indexClientID index

	mu sync.Mutex
	// decided holds the claims this process granted whose holder's status may not show
	// them yet: "<account>/<client>" -> holder UID.
	decided map[string]types.UID
}

func newClaimStore(reader client.Reader) *claimStore {
	return &claimStore{reader: reader, decided: map[string]types.UID{}}
}

// claim makes obj the holder of the client, or fails with ClientAlreadyBound naming
// the holder.
func (s *claimStore) claim(ctx context.Context, obj *v1alpha1.OAuthClient, account, clientID string) error {
	key := account + "/" + clientID
	s.mu.Lock()
	defer s.mu.Unlock()
	holder, recorded, err := s.holderLocked(ctx, obj, key, clientID)
	if err != nil {
		return err
	}
	if holder != nil {
		return newFailure(kindConflict, v1alpha1.ReasonClientAlreadyBound,
			"Cloudflare client %s is already bound by OAuthClient %s/%s; a Cloudflare client can be bound by one OAuthClient only. "+
				"Delete this object (deleting it leaves the client alone), or remove the %s annotation if it was copied, to get a client of its own",
			clientID, holder.Namespace, holder.Name, v1alpha1.AnnotationClientID)
	}
	if recorded {
		delete(s.decided, key) // the cluster's copy of obj records it: nothing to remember
	} else {
		s.decided[key] = obj.UID
	}
	return nil
}

// heldByOther reports whether a live object other than obj holds the client.
func (s *claimStore) heldByOther(ctx context.Context, obj *v1alpha1.OAuthClient, account, clientID string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	holder, _, err := s.holderLocked(ctx, obj, account+"/"+clientID, clientID)
	return holder != nil, err
}

// release drops a decision this process made for obj, if any: the object no longer
// names the client, or is going away.
func (s *claimStore) release(obj *v1alpha1.OAuthClient, account, clientID string) {
	key := account + "/" + clientID
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.decided[key] == obj.UID {
		delete(s.decided, key)
	}
}

// holderLocked returns the object other than obj that holds the client, or nil; and
// whether the cached copy of obj is the holder of record.
func (s *claimStore) holderLocked(ctx context.Context, obj *v1alpha1.OAuthClient, key, clientID string) (*v1alpha1.OAuthClient, bool, error) {
	list := &v1alpha1.OAuthClientList{}
	if err := s.reader.List(ctx, list, client.MatchingFields{indexClientID: key}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, false, fmt.Errorf("reading the objects that name Cloudflare client %s: %w", clientID, err)
	}
	var recorded, decided *v1alpha1.OAuthClient
	for i := range list.Items {
		o := &list.Items[i]
		if o.Status.ClientID == clientID && (recorded == nil || older(o, recorded)) {
			recorded = o
		}
		if o.UID == s.decided[key] {
			decided = o
		}
	}
	if decided == nil {
		delete(s.decided, key) // its holder is gone or names another client
	}
	switch {
	case recorded != nil && recorded.UID == obj.UID:
		return nil, true, nil
	case recorded != nil:
		return recorded, false, nil
	case decided != nil && decided.UID != obj.UID:
		return decided, false, nil
	}
	// No holder of record, and any decision names obj or an object that is gone or no
	// longer names the client (the index lists only objects that name it).
	return nil, false, nil
}

// older orders objects by age, then UID, so that every pass picks the same one.
func older(a, b *v1alpha1.OAuthClient) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}
