package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// usage is what one object uses: its credentials (by key), the credentials Secret they
// came from, and its client Secret.
type usage struct {
	creds        string
	credsSecret  types.NamespacedName
	clientSecret types.NamespacedName
}

// usageTracker remembers what each live object uses, so that per-credentials state
// (Cloudflare clients, budgets, snapshots, scope catalogues) and held Secret data are
// dropped once nothing uses them, instead of growing for the life of the process.
type usageTracker struct {
	mu    sync.Mutex
	byObj map[types.NamespacedName]usage
}

func newUsageTracker() *usageTracker {
	return &usageTracker{byObj: map[types.NamespacedName]usage{}}
}

// use records what obj uses now. When obj switched credentials, it returns what it
// used before, and whether any object still uses those credentials.
func (t *usageTracker) use(obj types.NamespacedName, u usage) (prev usage, credsUnused, switched bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev, had := t.byObj[obj]
	t.byObj[obj] = u
	if !had || prev.creds == u.creds {
		return usage{}, false, false
	}
	credsUnused = true
	for _, other := range t.byObj {
		if other.creds == prev.creds {
			credsUnused = false
		}
	}
	return prev, credsUnused, true
}

// release forgets obj and reports what it used, whether any other object still uses
// the same credentials, and the same credentials Secret.
func (t *usageTracker) release(obj types.NamespacedName) (u usage, credsUnused, secretUnused bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	u, ok := t.byObj[obj]
	if !ok {
		return usage{clientSecret: types.NamespacedName{}}, false, false
	}
	delete(t.byObj, obj)
	credsUnused, secretUnused = true, true
	for _, other := range t.byObj {
		if other.creds == u.creds {
			credsUnused = false
		}
		if other.credsSecret == u.credsSecret {
			secretUnused = false
		}
	}
	return u, credsUnused, secretUnused
}

// objects is how many live objects are tracked.
func (t *usageTracker) objects() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byObj)
}
