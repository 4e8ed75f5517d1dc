package cfemu

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDiscovery: the emulator serves a discovery document whose issuer and endpoints
// are its own base URL, and a JWKS at the jwks_uri it names; neither counts as an API
// call.
func TestDiscovery(t *testing.T) {
	s := New(Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	var doc map[string]any
	getJSON(t, srv.URL+DiscoveryPath, &doc)
	want := map[string]any{
		"issuer":                 srv.URL,
		"authorization_endpoint": srv.URL + "/oauth2/auth",
		"token_endpoint":         srv.URL + "/oauth2/token",
		"revocation_endpoint":    srv.URL + "/oauth2/revoke",
		"userinfo_endpoint":      srv.URL + "/oauth2/userinfo",
		"end_session_endpoint":   srv.URL + "/oauth2/logout",
		"jwks_uri":               srv.URL + "/.well-known/jwks.json",
	}
	for k, v := range want {
		if doc[k] != v {
			t.Errorf("%s = %v, want %v", k, doc[k], v)
		}
	}
	if diff := cmp.Diff([]any{"S256"}, doc["code_challenge_methods_supported"]); diff != "" {
		t.Errorf("code_challenge_methods_supported (-want +got):\n%s", diff)
	}

	var jwks struct {
		Keys []map[string]string `json:"keys"`
	}
	getJSON(t, doc["jwks_uri"].(string), &jwks)
	if len(jwks.Keys) != 1 || jwks.Keys[0]["kty"] != "OKP" || jwks.Keys[0]["x"] == "" || jwks.Keys[0]["kid"] == "" {
		t.Errorf("jwks %+v: want one Ed25519 key", jwks)
	}

	resp, err := http.Post(srv.URL+DiscoveryPath, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST discovery: %d, want 405", resp.StatusCode)
	}
	if got := s.Requests(); len(got) != 0 {
		t.Errorf("discovery requests were logged as API calls: %+v", got)
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}
