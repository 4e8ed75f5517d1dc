package cfemu

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
)

// The emulator also plays Cloudflare's authorization server, at its own base URL: an
// OpenID discovery document and a JWKS, so that a manager started with
// --authorization-server=<emulator URL> renders endpoints that point at the emulator
// and a consumer reading them finds a discovery document there. The OAuth endpoints
// it advertises (/oauth2/auth, /oauth2/token, ...) are not served. Discovery requests
// are not Cloudflare API calls: they are not counted, logged or subject to faults.

// Discovery paths, below the emulator's base URL (not BasePath).
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/.well-known/jwks.json"
)

// discoveryKey is the JWKS's one key: fixed, so that every run serves the same set.
// Nothing is ever signed with it.
var discoveryKey = ed25519.NewKeyFromSeed(func() []byte {
	seed := sha256.Sum256([]byte("cfemu authorization server"))
	return seed[:]
}()).Public().(ed25519.PublicKey)

// serveDiscovery answers the discovery routes and reports whether it did.
func serveDiscovery(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	if p != DiscoveryPath && p != JWKSPath {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return true
	}
	var doc any
	if p == JWKSPath {
		doc = map[string]any{"keys": []map[string]string{{
			"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "cfemu-1",
			"x": base64.RawURLEncoding.EncodeToString(discoveryKey),
		}}}
	} else {
		doc = discoveryDocument(issuerOf(r))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
	return true
}

// issuerOf is the emulator's base URL as the request reached it.
func issuerOf(r *http.Request) string {
	if r.TLS != nil {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// discoveryDocument is the OpenID Provider metadata of an authorization server laid
// out as Cloudflare's (developers.cloudflare.com, "Integrate with Cloudflare").
func discoveryDocument(issuer string) map[string]any {
	return map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + "/oauth2/auth",
		"token_endpoint":                        issuer + "/oauth2/token",
		"revocation_endpoint":                   issuer + "/oauth2/revoke",
		"userinfo_endpoint":                     issuer + "/oauth2/userinfo",
		"end_session_endpoint":                  issuer + "/oauth2/logout",
		"jwks_uri":                              issuer + JWKSPath,
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"EdDSA"},
	}
}
