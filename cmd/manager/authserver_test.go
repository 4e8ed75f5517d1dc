package main

import (
	"strings"
	"testing"
)

// TestAuthorizationServerFlag: --authorization-server defaults to Cloudflare's;
// --oauth-issuer is its deprecated alias; the issuer key of template-less Secrets is
// written exactly when the server was named, as --oauth-issuer always did.
func TestAuthorizationServerFlag(t *testing.T) {
	for _, env := range []string{"CLOUDFLARE_AUTHORIZATION_SERVER", "CLOUDFLARE_OAUTH_ISSUER"} {
		t.Setenv(env, "")
	}
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantServer string
		wantIssuer string
		wantErr    string
	}{
		{name: "default", wantServer: "https://dash.cloudflare.com"},
		{name: "named", args: []string{"--authorization-server=https://dash.staging.cloudflare.com/"},
			wantServer: "https://dash.staging.cloudflare.com", wantIssuer: "https://dash.staging.cloudflare.com"},
		{name: "from the environment", env: map[string]string{"CLOUDFLARE_AUTHORIZATION_SERVER": "http://127.0.0.1:8787"},
			wantServer: "http://127.0.0.1:8787", wantIssuer: "http://127.0.0.1:8787"},
		{name: "the deprecated alias", args: []string{"--oauth-issuer=https://dash.cloudflare.com"},
			wantServer: "https://dash.cloudflare.com", wantIssuer: "https://dash.cloudflare.com"},
		{name: "both, agreeing", args: []string{"--oauth-issuer=https://a.example.com", "--authorization-server=https://a.example.com/"},
			wantServer: "https://a.example.com", wantIssuer: "https://a.example.com"},
		{name: "both, disagreeing", args: []string{"--oauth-issuer=https://a.example.com", "--authorization-server=https://b.example.com"},
			wantErr: "--oauth-issuer is a deprecated alias of --authorization-server"},
		{name: "not a URL", args: []string{"--authorization-server=dash.cloudflare.com"}, wantErr: "must be an absolute http(s) URL"},
		{name: "a query", args: []string{"--authorization-server=https://dash.cloudflare.com/?x=1"}, wantErr: "without a query or fragment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			o, err := parseFlags(t, append([]string{"--operator-namespace=x"}, tc.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			err = o.validate()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("validate = %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			server, issuer, _ := o.authorizationServers()
			if server != tc.wantServer || issuer != tc.wantIssuer {
				t.Errorf("server %q issuer %q, want %q and %q", server, issuer, tc.wantServer, tc.wantIssuer)
			}
		})
	}
}
