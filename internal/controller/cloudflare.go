package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"

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

// apiClients keeps one Cloudflare client per set of credentials, so connections and
// rate-limit accounting are shared by every object that uses the same token.
type apiClients struct {
	factory APIFactory
	budget  RequestBudget

	mu    sync.Mutex
	byKey map[string]CloudflareAPI
}

func newAPIClients(f APIFactory, budget RequestBudget) *apiClients {
	return &apiClients{factory: f, budget: budget, byKey: map[string]CloudflareAPI{}}
}

// get returns the client for creds, building it on first use.
func (a *apiClients) get(creds cfapi.Credentials) (CloudflareAPI, string, error) {
	key := credentialsKey(creds)
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.byKey[key]; ok {
		return c, key, nil
	}
	c, err := a.factory(creds)
	if err != nil {
		return nil, "", err
	}
	c = newPacedAPI(c, a.budget)
	a.byKey[key] = c
	return c, key, nil
}
