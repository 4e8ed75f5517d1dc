package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// CloudflareAPI is the handful of Cloudflare calls the reconciler makes. main supplies
// the real client (internal/cfapi); tests may hand in anything that behaves like it.
type CloudflareAPI interface {
	ListOAuthClients(ctx context.Context, accountID string) ([]cfapi.OAuthClient, error)
	// GetOAuthClient serves only the benchmark's per-object baseline (PerObjectGET).
	GetOAuthClient(ctx context.Context, accountID, clientID string) (*cfapi.OAuthClient, error)
	CreateOAuthClient(ctx context.Context, accountID string, p cfapi.CreateOAuthClientParams) (*cfapi.CreatedOAuthClient, error)
	UpdateOAuthClient(ctx context.Context, accountID, clientID string, p cfapi.UpdateOAuthClientParams) (*cfapi.OAuthClient, error)
	DeleteOAuthClient(ctx context.Context, accountID, clientID string) error
	RotateOAuthClientSecret(ctx context.Context, accountID, clientID string) (string, error)
	DeleteRotatedOAuthClientSecret(ctx context.Context, accountID, clientID string) error
	ListOAuthScopes(ctx context.Context) ([]cfapi.OAuthScope, error)
}

// APIFactory builds a Cloudflare client for one set of credentials.
type APIFactory func(cfapi.Credentials) (CloudflareAPI, error)

// credentialsKey identifies a set of credentials without holding them: a truncated
// SHA-256, safe to use as a map key, in snapshot keys and in debug logs.
func credentialsKey(c cfapi.Credentials) string {
	h := sha256.New()
	for _, part := range []string{c.APIToken, c.Email, c.APIKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// apiClients keeps one Cloudflare client per set of credentials, so connections are
// shared by every object that uses the same token, and one budget per Cloudflare user,
// shared by every token of that user.
type apiClients struct {
	factory APIFactory
	limits  RequestBudget
	now     func() time.Time

	mu      sync.Mutex
	byKey   map[string]*pacedAPI
	budgets map[string]*budget
	// limitsOf holds the limits of users whose budget a CloudflareAccount sets
	// (spec.requestBudget) instead of the manager.
	limitsOf map[string]RequestBudget
}

func newAPIClients(f APIFactory, limits RequestBudget, now func() time.Time) *apiClients {
	return &apiClients{factory: f, limits: limits, now: now, byKey: map[string]*pacedAPI{}, budgets: map[string]*budget{}, limitsOf: map[string]RequestBudget{}}
}

// get returns the client for a set of credentials, building it on first use, and the
// credentials' key.
func (a *apiClients) get(res resolved) (CloudflareAPI, string, error) {
	key := credentialsKey(res.creds)
	user := budgetUser(res, key)
	a.mu.Lock()
	defer a.mu.Unlock()
	if res.budget != nil {
		a.setLimitsLocked(user, res.budget)
	}
	if c, ok := a.byKey[key]; ok {
		c.current.Store(a.budgetLocked(user)) // the Secret's user annotation may have changed
		return c, key, nil
	}
	c, err := a.factory(res.creds)
	if err != nil {
		return nil, "", err
	}
	p := newPaced(c, a.budgetLocked(user), a.now)
	a.byKey[key] = p
	return p, key, nil
}

func (a *apiClients) budgetLocked(user string) *budget {
	b, ok := a.budgets[user]
	if !ok {
		limits, own := a.limitsOf[user]
		if !own {
			limits = a.limits
		}
		b = newBudget(limits, a.now)
		a.budgets[user] = b
	}
	return b
}

// setLimits records the limits a CloudflareAccount sets for the user of its
// credentials (nil: back to the manager's).
func (a *apiClients) setLimits(res resolved, limits *RequestBudget) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.setLimitsLocked(budgetUser(res, credentialsKey(res.creds)), limits)
}

// setLimitsLocked records the limits a CloudflareAccount sets for its user (nil: the
// manager's), and starts that user's budget afresh when they change. The clients of
// that user pick the new budget up on their next get.
func (a *apiClients) setLimitsLocked(user string, limits *RequestBudget) {
	prev, had := a.limitsOf[user]
	switch {
	case limits == nil && !had, limits != nil && had && prev == *limits:
		return
	case limits == nil:
		delete(a.limitsOf, user)
	default:
		a.limitsOf[user] = *limits
	}
	if b, ok := a.budgets[user]; ok && b.blockedFor() == 0 {
		delete(a.budgets, user) // rebuilt with the new limits; a block in force is kept
	}
}

// blockedFor is how long calls with these credentials must still wait.
func (a *apiClients) blockedFor(key string) time.Duration {
	a.mu.Lock()
	c, ok := a.byKey[key]
	a.mu.Unlock()
	if !ok {
		return 0
	}
	return c.budget().blockedFor()
}

// forget drops the client of credentials no object uses any more, and the budgets no
// client uses.
func (a *apiClients) forget(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.byKey, key)
	inUse := map[*budget]bool{}
	for _, c := range a.byKey {
		inUse[c.budget()] = true
	}
	for user, b := range a.budgets {
		if !inUse[b] && b.blockedFor() == 0 {
			delete(a.budgets, user)
		}
	}
}
