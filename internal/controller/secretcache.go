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
	memo map[types.NamespacedName]*corev1.Secret
	// gone keeps the last data of client Secrets deleted from the cluster, so that a
	// secret recovered after a user deleted the Secret can hand the old value out as
	// previous_client_secret. Dropped with forget, when the object goes.
	gone map[types.NamespacedName]map[string][]byte
	// writing counts our writes in flight per Secret: their watch events may arrive
	// before the write returns and its resourceVersion is known.
	writing map[types.NamespacedName]int
}

func newSecretStore(meta, direct client.Reader) *secretStore {
	return &secretStore{meta: meta, direct: direct, memo: map[types.NamespacedName]*corev1.Secret{}, gone: map[types.NamespacedName]map[string][]byte{}, writing: map[types.NamespacedName]int{}}
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
		if held := s.held(key); held != nil && held.ResourceVersion == m.ResourceVersion {
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
	s.remember(sec)
	return sec.DeepCopy(), nil
}

func (s *secretStore) held(key types.NamespacedName) *corev1.Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := s.memo[key]; sec != nil {
		return sec.DeepCopy()
	}
	return nil
}

// remember records a Secret as read or as written by us (without its managed fields,
// which nothing here reads).
func (s *secretStore) remember(sec *corev1.Secret) {
	held := sec.DeepCopy()
	held.ManagedFields = nil
	s.mu.Lock()
	defer s.mu.Unlock()
	s.memo[client.ObjectKeyFromObject(held)] = held
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
	if held := s.memo[key]; held != nil {
		s.gone[key] = held.Data
	}
	delete(s.memo, key)
}

// lastKnown returns the client_secret the Secret last held for clientID, even if the
// Secret was deleted since; "" when unknown.
func (s *secretStore) lastKnown(key types.NamespacedName, clientID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	data := s.gone[key]
	if held := s.memo[key]; held != nil {
		data = held.Data
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
	held := s.memo[key]
	return held != nil && held.ResourceVersion == obj.GetResourceVersion()
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
