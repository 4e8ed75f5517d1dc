package cfemu_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// TestUsersShareOneRateLimit: Cloudflare's limit is per user, so two tokens of one user
// (and that user's legacy e-mail + key) share one window and one block.
func TestUsersShareOneRateLimit(t *testing.T) {
	const alice = "alice@example.com"
	e := newEnv(t, func(o *cfemu.Options) {
		o.RateLimit, o.RateWindow = 3, time.Minute
		o.Tokens["alice-a"], o.Tokens["alice-b"], o.Tokens["bob"] = nil, nil, nil
		o.Users = map[string]string{"alice-a": alice, "alice-b": alice}
		o.Email, o.APIKey = alice, "global-key"
	})
	legacy := []string{"Authorization", "", "X-Auth-Email", alice, "X-Auth-Key", "global-key"}
	type step struct {
		advance    time.Duration
		who        string
		status     int
		ratelimit  string
		retryAfter string
	}
	steps := []step{
		{0, "alice-a", 200, `"default";r=2;t=60`, ""},
		{0, "alice-b", 200, `"default";r=1;t=60`, ""}, // A's request already counted against B
		{0, "bob", 200, `"default";r=2;t=60`, ""},     // a token of its own is a user of its own
		{0, "legacy", 200, `"default";r=0;t=60`, ""},  // the e-mail's user is alice too
		{0, "alice-a", 429, `"default";r=0;t=60`, "60"},
		{30 * time.Second, "alice-b", 429, `"default";r=0;t=30`, "30"}, // A's excess blocks B
		{0, "legacy", 429, `"default";r=0;t=30`, "30"},
		{0, "bob", 200, `"default";r=1;t=30`, ""},
		{30 * time.Second, "alice-b", 200, `"default";r=2;t=60`, ""},
	}
	for i, s := range steps {
		e.clock.Advance(s.advance)
		headers := []string{"Authorization", "Bearer " + s.who}
		if s.who == "legacy" {
			headers = legacy
		}
		r := e.call(t, http.MethodGet, "/client/v4/oauth/scopes", "", headers...)
		got := step{s.advance, s.who, r.status, r.header.Get("Ratelimit"), r.header.Get("Retry-After")}
		if diff := cmp.Diff(s, got, cmp.AllowUnexported(step{})); diff != "" {
			t.Errorf("step %d (-want +got):\n%s", i, diff)
		}
	}
	if got := e.emu.Stats().RateLimited; got != 3 {
		t.Errorf("RateLimited = %d, want 3", got)
	}
}

func TestReadOnlyTokens(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) {
		o.Tokens["ro-narrow"] = []string{otherAcct}
		o.ReadOnlyTokens = []string{"ro", "ro-narrow"} // "ro" is not in Tokens: accepted everywhere
	})
	c := e.create(t, validBody)
	one := clients + "/" + c.ClientID
	tests := []struct {
		auth, method, path, body string
		want                     string
	}{
		{"ro", http.MethodGet, clients, "", "200"},
		{"ro", http.MethodGet, one, "", "200"},
		{"ro", http.MethodGet, "/client/v4/oauth/scopes", "", "200"},
		{"ro", http.MethodGet, clients + "/" + acct, "", "404 12019"},
		{"ro", http.MethodPost, clients, validBody, "403 9109"},
		{"ro", http.MethodPatch, one, `{"client_name":"Changed"}`, "403 9109"},
		{"ro", http.MethodDelete, one, "", "403 9109"},
		{"ro", http.MethodPost, one + "/rotate_secret", "", "403 9109"},
		{"ro", http.MethodDelete, one + "/rotate_secret", "", "403 9109"},
		{"ro", http.MethodPut, one, "", "405 7001"}, // routing comes first
		// A read-only token keeps the accounts Tokens gives it.
		{"ro-narrow", http.MethodGet, clients, "", "403 9109"},
		{"ro-narrow", http.MethodGet, "/client/v4/accounts/" + otherAcct + "/oauth_clients", "", "200"},
		{"ro-narrow", http.MethodPost, "/client/v4/accounts/" + otherAcct + "/oauth_clients", validBody, "403 9109"},
		// A full token still writes.
		{token, http.MethodPatch, one, `{"client_name":"Renamed"}`, "200"},
	}
	for _, tt := range tests {
		t.Run(tt.auth+" "+tt.method+" "+strings.TrimPrefix(tt.path, clients), func(t *testing.T) {
			r := e.call(t, tt.method, tt.path, tt.body, "Authorization", "Bearer "+tt.auth)
			if got := r.codes(); got != tt.want {
				t.Errorf("got %q, want %q: %s", got, tt.want, r.raw)
			}
		})
	}
	// None of the refused writes changed anything.
	got, ok := e.emu.GetClient(acct, c.ClientID)
	if !ok || got.ClientName != "Renamed" || got.HasRotatedSecret || len(e.emu.Clients(acct)) != 1 || len(e.emu.Clients(otherAcct)) != 0 {
		t.Errorf("state after refused writes: %+v (%d clients)", got, len(e.emu.Clients(acct)))
	}
	if !e.emu.CheckSecret(acct, c.ClientID, c.ClientSecret).Current {
		t.Error("a read-only token rotated the secret")
	}
}
