package controller

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// secretStore reads Secrets without caching the cluster's Secret data. The manager
// watches Secrets metadata-only (names, labels, resourceVersions); data is fetched from
// the API server only when a Secret's resourceVersion differs from the copy we hold, and
// we hold copies only of the Secrets objects reference (credentials and the client
// Secrets we write). In the steady state a reconcile reads no Secret from the API server.
type secretStore struct {
	meta   client.Reader // cached, metadata-only
	direct client.Reader // the API server

	mu   sync.Mutex
	memo map[types.NamespacedName]encodedSecret
	// gone keeps the last data of client Secrets deleted from the cluster, so that a
	// secret recovered after a user deleted the Secret can hand the old value out as
	// previous_client_secret. Dropped with forget, when the object goes.
	gone map[types.NamespacedName]map[string][]byte
	// writing counts our writes in flight per Secret: their watch events may arrive
	// before the write returns and its resourceVersion is known.
	writing map[types.NamespacedName]int
}

// encodedSecret is a Secret as last read or written, kept as its protobuf encoding: at
// thousands of client Secrets, a decoded copy each (maps, strings, byte slices) costs
// about three times as much memory. A pass decodes the one it needs.
type encodedSecret struct {
	resourceVersion string
	raw             []byte
}

func (h encodedSecret) decode() *corev1.Secret {
	sec := &corev1.Secret{}
	if h.raw == nil || sec.Unmarshal(h.raw) != nil {
		return nil
	}
	return sec
}

func newSecretStore(meta, direct client.Reader) *secretStore {
	return &secretStore{meta: meta, direct: direct, memo: map[types.NamespacedName]encodedSecret{}, gone: map[types.NamespacedName]map[string][]byte{}, writing: map[types.NamespacedName]int{}}
}

var secretGVK = corev1.SchemeGroupVersion.WithKind("Secret")

// get returns the Secret, or a NotFound error.
func (s *secretStore) get(ctx context.Context, key types.NamespacedName) (*corev1.Secret, error) {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(secretGVK)
	err := s.meta.Get(ctx, key, m)
	switch {
	case apierrors.IsNotFound(err):
		// The cache may lag behind a Secret created a moment ago: ask the API server.
	case err != nil:
		return nil, err
	default:
		if held := s.heldAt(key, m.ResourceVersion); held != nil {
			return held, nil
		}
	}
	sec := &corev1.Secret{}
	if err := s.direct.Get(ctx, key, sec); err != nil {
		if apierrors.IsNotFound(err) {
			s.vanished(key)
		}
		return nil, err
	}
	s.remember(sec) // an encoded copy: sec stays the caller's
	return sec, nil
}

// latest returns the held copy of the Secret, whatever its version; nil when none.
func (s *secretStore) latest(key types.NamespacedName) *corev1.Secret {
	s.mu.Lock()
	h, ok := s.memo[key]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	return h.decode()
}

// heldAt returns the held copy of the Secret if it is at resourceVersion.
func (s *secretStore) heldAt(key types.NamespacedName, resourceVersion string) *corev1.Secret {
	s.mu.Lock()
	h, ok := s.memo[key]
	s.mu.Unlock()
	if !ok || h.resourceVersion != resourceVersion {
		return nil
	}
	return h.decode()
}

// remember records a Secret as read or as written by us (without its managed fields,
// which nothing here reads). A Secret that cannot be encoded is not held: it is read
// again next time.
func (s *secretStore) remember(sec *corev1.Secret) {
	key := client.ObjectKeyFromObject(sec)
	managed := sec.ManagedFields
	sec.ManagedFields = nil
	raw, err := sec.Marshal()
	sec.ManagedFields = managed
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		delete(s.memo, key)
		return
	}
	s.memo[key] = encodedSecret{resourceVersion: sec.ResourceVersion, raw: raw}
}

// forget drops everything held for the Secret.
func (s *secretStore) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.memo, key)
	delete(s.gone, key)
}

// vanished records that the Secret no longer exists, keeping its last data.
func (s *secretStore) vanished(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.memo[key]; ok {
		if sec := held.decode(); sec != nil {
			s.gone[key] = sec.Data
		}
	}
	delete(s.memo, key)
}

// lastKnown returns the client_secret the Secret last held for clientID, even if the
// Secret was deleted since; "" when unknown.
func (s *secretStore) lastKnown(key types.NamespacedName, clientID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := s.gone[key]
	if held, ok := s.memo[key]; ok {
		if sec := held.decode(); sec != nil {
			data = sec.Data
		}
	}
	if string(data["client_id"]) != clientID {
		return ""
	}
	return string(data["client_secret"])
}

// size is how many Secrets are held (for tests of forgetting).
func (s *secretStore) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.memo) + len(s.gone)
}

// isOwnWrite reports whether a watch event shows exactly the version we wrote, or comes
// while one of our writes to that Secret is in flight, so our own Secret writes do not
// echo back as reconciles.
func (s *secretStore) isOwnWrite(obj client.Object) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := client.ObjectKeyFromObject(obj)
	if s.writing[key] > 0 {
		return true
	}
	held, ok := s.memo[key]
	return ok && held.resourceVersion == obj.GetResourceVersion()
}

// writing marks a write to the Secret in flight; call the returned func once its
// result is remembered.
func (s *secretStore) beginWrite(key types.NamespacedName) (done func()) {
	s.mu.Lock()
	s.writing[key]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.writing[key]--; s.writing[key] <= 0 {
			delete(s.writing, key)
		}
	}
}
