package secretrender

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testSecret   = "cfoauth_current-9f2c71d0e4b8a6f3"
	testPrevious = "cfoauth_previous-5e1a93c7b2d04f68"
)

func testValues() Values {
	v := Values{
		ClientID:     "0f6e2c",
		ClientSecret: testSecret,
		AccountID:    "023e105f4ecef8ad9ca31a8372d0c353",
		Scopes:       []string{"account.read", "user-details.read"},
		RedirectURIs: []string{"https://app.example.com/cb", "https://app.example.com/cb2"},
		ClientName:   "Example",
	}
	v.SetAuthorizationServer("https://dash.cloudflare.com/")
	return v
}

// entropy is a deterministic randomness source: 0x01, 0x02, ...
type entropy struct{ n byte }

func (e *entropy) Read(p []byte) (int, error) {
	for i := range p {
		e.n++
		p[i] = e.n
	}
	return len(p), nil
}

func render(t *testing.T, in Input) (Output, error) {
	t.Helper()
	if in.Entropy == nil {
		in.Entropy = &entropy{}
	}
	return Render(in)
}

func strs(m map[string][]byte) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

var firstRandom = func() string {
	b := make([]byte, 32)
	_, _ = (&entropy{}).Read(b)
	return base64.URLEncoding.EncodeToString(b)
}()

func TestSetAuthorizationServer(t *testing.T) {
	v := testValues()
	got := []string{v.Issuer, v.AuthorizationEndpoint, v.TokenEndpoint, v.RevocationEndpoint, v.UserinfoEndpoint, v.EndSessionEndpoint, v.JWKSURI, v.DiscoveryURL}
	want := []string{
		"https://dash.cloudflare.com",
		"https://dash.cloudflare.com/oauth2/auth",
		"https://dash.cloudflare.com/oauth2/token",
		"https://dash.cloudflare.com/oauth2/revoke",
		"https://dash.cloudflare.com/oauth2/userinfo",
		"https://dash.cloudflare.com/oauth2/logout",
		"https://dash.cloudflare.com/.well-known/jwks.json",
		"https://dash.cloudflare.com/.well-known/openid-configuration",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
}

func TestProfiles(t *testing.T) {
	const (
		auth     = "https://dash.cloudflare.com/oauth2/auth"
		token    = "https://dash.cloudflare.com/oauth2/token"
		userinfo = "https://dash.cloudflare.com/oauth2/userinfo"
		scopes   = "account.read user-details.read"
	)
	tests := []struct {
		profile string
		public  bool
		want    map[string]string
	}{
		{profile: ProfileOAuth2Proxy, want: map[string]string{
			"client-id": "0f6e2c", "client-secret": testSecret, "cookie-secret": firstRandom,
			"oidc-issuer-url": "https://dash.cloudflare.com", "login-url": auth, "redeem-url": token,
			"profile-url": userinfo, "oidc-jwks-url": "https://dash.cloudflare.com/.well-known/jwks.json", "scope": scopes,
		}},
		{profile: ProfileOAuth2Proxy, public: true, want: map[string]string{
			"client-id": "0f6e2c", "cookie-secret": firstRandom,
			"oidc-issuer-url": "https://dash.cloudflare.com", "login-url": auth, "redeem-url": token,
			"profile-url": userinfo, "oidc-jwks-url": "https://dash.cloudflare.com/.well-known/jwks.json", "scope": scopes,
		}},
		{profile: ProfileGrafana, want: map[string]string{
			"GF_AUTH_GENERIC_OAUTH_ENABLED": "true", "GF_AUTH_GENERIC_OAUTH_NAME": "Cloudflare",
			"GF_AUTH_GENERIC_OAUTH_CLIENT_ID": "0f6e2c", "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET": testSecret,
			"GF_AUTH_GENERIC_OAUTH_SCOPES": scopes, "GF_AUTH_GENERIC_OAUTH_AUTH_URL": auth,
			"GF_AUTH_GENERIC_OAUTH_TOKEN_URL": token, "GF_AUTH_GENERIC_OAUTH_API_URL": userinfo,
			"GF_AUTH_GENERIC_OAUTH_USE_PKCE": "true",
		}},
		{profile: ProfileGrafana, public: true, want: map[string]string{
			"GF_AUTH_GENERIC_OAUTH_ENABLED": "true", "GF_AUTH_GENERIC_OAUTH_NAME": "Cloudflare",
			"GF_AUTH_GENERIC_OAUTH_CLIENT_ID": "0f6e2c",
			"GF_AUTH_GENERIC_OAUTH_SCOPES":    scopes, "GF_AUTH_GENERIC_OAUTH_AUTH_URL": auth,
			"GF_AUTH_GENERIC_OAUTH_TOKEN_URL": token, "GF_AUTH_GENERIC_OAUTH_API_URL": userinfo,
			"GF_AUTH_GENERIC_OAUTH_USE_PKCE": "true",
		}},
		{profile: ProfileEnvoyGateway, want: map[string]string{"client-id": "0f6e2c", "client-secret": testSecret}},
		{profile: ProfileEnv, want: map[string]string{
			"OAUTH_CLIENT_ID": "0f6e2c", "OAUTH_CLIENT_SECRET": testSecret,
			"OAUTH_ISSUER": "https://dash.cloudflare.com", "OAUTH_AUTHORIZATION_ENDPOINT": auth, "OAUTH_TOKEN_ENDPOINT": token,
			"OAUTH_REVOCATION_ENDPOINT": "https://dash.cloudflare.com/oauth2/revoke", "OAUTH_USERINFO_ENDPOINT": userinfo,
			"OAUTH_END_SESSION_ENDPOINT": "https://dash.cloudflare.com/oauth2/logout",
			"OAUTH_JWKS_URI":             "https://dash.cloudflare.com/.well-known/jwks.json",
			"OAUTH_DISCOVERY_URL":        "https://dash.cloudflare.com/.well-known/openid-configuration",
			"OAUTH_SCOPES":               scopes, "OAUTH_REDIRECT_URIS": "https://app.example.com/cb https://app.example.com/cb2",
			"CLOUDFLARE_ACCOUNT_ID": "023e105f4ecef8ad9ca31a8372d0c353",
		}},
	}
	for _, tc := range tests {
		name := tc.profile
		if tc.public {
			name += "/public"
		}
		t.Run(name, func(t *testing.T) {
			v := testValues()
			state := SecretKnown
			if tc.public {
				v.ClientSecret, state = "", SecretNone
			}
			out, err := render(t, Input{Template: Template{Profile: tc.profile}, Values: v, Secret: state})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, strs(out.Data)); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(mapsKeys(tc.want), ProfileKeys(tc.profile, tc.public)); diff != "" {
				t.Errorf("ProfileKeys (-want +got):\n%s", diff)
			}
		})
	}
}

func mapsKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return sortedCopy(out)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestOAuth2ProxyCookieSecret: oauth2-proxy wants a cookie secret of 16, 24 or 32 bytes,
// either raw or base64url-encoded; the profile's decodes to 32.
func TestOAuth2ProxyCookieSecret(t *testing.T) {
	out, err := Render(Input{Template: Template{Profile: ProfileOAuth2Proxy}, Values: testValues()})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.URLEncoding.DecodeString(string(out.Data["cookie-secret"]))
	if err != nil || len(raw) != 32 {
		t.Fatalf("cookie-secret decodes to %d bytes (%v), want 32", len(raw), err)
	}
	if diff := cmp.Diff(map[string][]byte{CookieSecretName: out.Data["cookie-secret"]}, out.Random); diff != "" {
		t.Errorf("Random (-want +got):\n%s", diff)
	}
}

func TestCustomTemplate(t *testing.T) {
	v := testValues()
	v.PreviousClientSecret = testPrevious
	out, err := render(t, Input{Values: v, Template: Template{Profile: ProfileEnvoyGateway, Data: map[string]string{
		"client-secret": "{{ .ClientSecret | upper }}", // data wins over the profile
		"config.json":   `{"client_id":{{ toJson .ClientID }},"scopes":{{ toJson .Scopes }},"issuer":{{ .Issuer | quote }}}`,
		"basic":         `{{ printf "%s:%s" .ClientID .ClientSecret | b64enc }}`,
		"secrets":       "{{ .ClientSecret }}{{ with .PreviousClientSecret }},{{ . }}{{ end }}",
		"redirects":     "{{ range $i, $u := .RedirectURIs }}{{ if $i }};{{ end }}{{ $u | trimPrefix \"https://\" }}{{ end }}",
		"yaml":          "scopes:{{ range .Scopes }}\n- {{ . | squote }}{{ end }}\nname: {{ .ClientName | default \"none\" | lower }}{{ \"a\\nb\" | nindent 2 }}",
		"cookie":        `{{ stableRandom "session" }}`,
		"replaced":      `{{ .Issuer | replace "https://" "" | hasPrefix "dash" }}`,
		"literal":       "no actions at all",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"client-id":     "0f6e2c",
		"client-secret": strings.ToUpper(testSecret),
		"config.json":   `{"client_id":"0f6e2c","scopes":["account.read","user-details.read"],"issuer":"https://dash.cloudflare.com"}`,
		"basic":         base64.StdEncoding.EncodeToString([]byte("0f6e2c:" + testSecret)),
		"secrets":       testSecret + "," + testPrevious,
		"redirects":     "app.example.com/cb;app.example.com/cb2",
		"yaml":          "scopes:\n- 'account.read'\n- 'user-details.read'\nname: example\n  a\n  b",
		"cookie":        firstRandom,
		"replaced":      "true",
		"literal":       "no actions at all",
	}
	if diff := cmp.Diff(want, strs(out.Data)); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
}

func TestStableRandom(t *testing.T) {
	tmpl := Template{Data: map[string]string{"a": `{{ stableRandom "one" }}`, "b": `{{ stableRandom "one" }}-{{ stableRandom "two" }}`}}
	first, err := Render(Input{Template: tmpl, Values: testValues()})
	if err != nil {
		t.Fatal(err)
	}
	one, two := string(first.Random["one"]), string(first.Random["two"])
	if one == "" || two == "" || one == two || string(first.Data["a"]) != one || string(first.Data["b"]) != one+"-"+two {
		t.Fatalf("first render: data %q random %q", first.Data, first.Random)
	}

	// Handed back, the values are kept, whatever else changes.
	v := testValues()
	v.ClientSecret = "cfoauth_rotated-0000000000000000"
	again, err := Render(Input{Template: tmpl, Values: v, Random: first.Random, Entropy: &entropy{n: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first.Data, again.Data); diff != "" {
		t.Errorf("a re-render changed the stable values (-first +again):\n%s", diff)
	}

	// A value no longer used is not kept; a value that is not one stableRandom made
	// (a hand edit) is replaced.
	tmpl = Template{Data: map[string]string{"a": `{{ stableRandom "one" }}`}}
	edited := map[string][]byte{"one": []byte("short"), "two": first.Random["two"]}
	out, err := render(t, Input{Template: tmpl, Values: testValues(), Random: edited})
	if err != nil {
		t.Fatal(err)
	}
	if _, kept := out.Random["two"]; kept || string(out.Random["one"]) == "short" || string(out.Data["a"]) != string(out.Random["one"]) {
		t.Errorf("random %q data %q", out.Random, out.Data)
	}
}

func TestPendingWhileSecretUnknown(t *testing.T) {
	v := testValues()
	v.ClientSecret = ""
	out, err := render(t, Input{Template: Template{Profile: ProfileOAuth2Proxy, Data: map[string]string{"both": "{{ .ClientID }}:{{ .ClientSecret }}"}}, Values: v, Secret: SecretUnknown})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"both", "client-secret"}, out.Pending); diff != "" {
		t.Errorf("Pending (-want +got):\n%s", diff)
	}
	if _, ok := out.Data["client-secret"]; ok || string(out.Data["client-id"]) != "0f6e2c" {
		t.Errorf("data %q", out.Data)
	}
}

func TestPublicClient(t *testing.T) {
	v := testValues()
	v.ClientSecret = ""
	// A key that uses .ClientSecret is fine while it renders something.
	out, err := render(t, Input{Values: v, Secret: SecretNone, Template: Template{Data: map[string]string{
		"secret": `{{ .ClientSecret | default "none" }}`,
		"id":     "{{ .ClientID }}{{ .ClientSecret }}",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"secret": "none", "id": "0f6e2c"}, strs(out.Data)); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	// Empty because of it: an error that says which key.
	_, err = render(t, Input{Values: v, Secret: SecretNone, Template: Template{Profile: ProfileEnvoyGateway}})
	wantError(t, err, "client-secret", "renders empty: it uses .ClientSecret, and a public client (tokenEndpointAuthMethod none) has no secret")
	// An empty key that does not use it is not an error.
	out, err = render(t, Input{Values: v, Secret: SecretNone, Template: Template{Data: map[string]string{"previous": "{{ .PreviousClientSecret }}"}}})
	if err != nil || string(out.Data["previous"]) != "" {
		t.Errorf("empty previous: %q, %v", out.Data, err)
	}
}

func wantError(t *testing.T, err error, key, reason string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want an *Error", err, err)
	}
	if e.Key != key || !strings.Contains(e.Reason, reason) {
		t.Errorf("error key %q reason %q, want key %q and a reason containing %q", e.Key, e.Reason, key, reason)
	}
	for _, s := range []string{testSecret, testPrevious} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
}

func TestErrors(t *testing.T) {
	big := strings.Repeat("x", 200_000)
	tests := []struct {
		name   string
		tmpl   Template
		budget int
		key    string
		reason string
	}{
		{name: "unparsable", tmpl: Template{Data: map[string]string{"k": "{{ .ClientID "}}, key: "k", reason: "k:1: unclosed action"},
		{name: "unknown variable", tmpl: Template{Data: map[string]string{"k": "{{ .Password }}"}}, key: "k", reason: "unknown variable .Password; the variables are .ClientID, .ClientSecret"},
		{name: "unknown variable in a branch not taken", tmpl: Template{Data: map[string]string{"k": "{{ if false }}{{ .Nope }}{{ end }}"}}, key: "k", reason: "unknown variable .Nope"},
		{name: "unknown variable through $", tmpl: Template{Data: map[string]string{"k": "{{ range .Scopes }}{{ $.Nope }}{{ end }}"}}, key: "k", reason: "unknown variable .Nope"},
		{name: "unknown function", tmpl: Template{Data: map[string]string{"k": `{{ env "HOME" }}`}}, key: "k", reason: `function "env" not defined`},
		{name: "no file access", tmpl: Template{Data: map[string]string{"k": `{{ readFile "/etc/passwd" }}`}}, key: "k", reason: `function "readFile" not defined`},
		{name: "define", tmpl: Template{Data: map[string]string{"k": `{{ define "x" }}a{{ end }}b`}}, key: "k", reason: "define, block and template are not supported"},
		{name: "template call", tmpl: Template{Data: map[string]string{"k": `{{ template "k" }}`}}, key: "k", reason: "define, block and template are not supported"},
		{name: "range over a number", tmpl: Template{Data: map[string]string{"k": `{{ range 1000000000 }}{{ end }}`}}, key: "k", reason: "range is allowed only over .Scopes or .RedirectURIs"},
		{name: "nested range", tmpl: Template{Data: map[string]string{"k": `{{ range .Scopes }}{{ range $.Scopes }}x{{ end }}{{ end }}`}}, key: "k", reason: "range inside range is not supported"},
		{name: "stableRandom with a computed name", tmpl: Template{Data: map[string]string{"k": `{{ stableRandom .ClientID }}`}}, key: "k", reason: "stableRandom takes one literal name"},
		{name: "stableRandom piped", tmpl: Template{Data: map[string]string{"k": `{{ "a" | stableRandom }}`}}, key: "k", reason: "stableRandom takes one literal name"},
		{name: "stableRandom bad name", tmpl: Template{Data: map[string]string{"k": `{{ stableRandom "A_B" }}`}}, key: "k", reason: `stableRandom name "A_B"`},
		{name: "printf width", tmpl: Template{Data: map[string]string{"k": `{{ printf "%01000000d" 1 }}`}}, key: "k", reason: "printf takes widths and precisions up to 256"},
		{name: "printf argument index", tmpl: Template{Data: map[string]string{"k": `{{ printf "%[1]s%[1]s" .ClientID }}`}}, key: "k", reason: "no explicit argument index"},
		{name: "indent too deep", tmpl: Template{Data: map[string]string{"k": `{{ indent 1000 .ClientID }}`}}, key: "k", reason: "indent takes 0 to 64 spaces"},
		{name: "a key over the size limit", tmpl: Template{Data: map[string]string{"a": "small", "k": big}}, budget: 100_000, key: "k", reason: "over the 1048576 bytes (1 MiB) a Secret holds"},
		{name: "doubling until the functions run dry", tmpl: Template{Data: map[string]string{"k": "{{ $x := printf \"%256s\" .ClientID }}" + strings.Repeat("{{ $x = printf \"%s%s\" $x $x }}", 20) + "{{ len $x }}"}}, key: "k", reason: "the template's functions produced more than"},
		{name: "unknown profile", tmpl: Template{Profile: "nginx"}, reason: `unknown profile "nginx"; the profiles are env, envoy-gateway, grafana, oauth2-proxy`},
		{name: "nothing to render", tmpl: Template{}, reason: "the template renders no key"},
		{name: "comparison of a list", tmpl: Template{Data: map[string]string{"k": `{{ if eq .Scopes "a" }}x{{ end }}`}}, key: "k", reason: "incompatible types for comparison"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := render(t, Input{Template: tc.tmpl, Values: testValues(), Budget: tc.budget})
			wantError(t, err, tc.key, tc.reason)
			if out.Data != nil || out.Random != nil {
				t.Errorf("a failed render returned data: %q", out.Data)
			}
		})
	}
}

// TestTheFirstErrorInKeyOrder: with several broken keys, the message is stable.
func TestTheFirstErrorInKeyOrder(t *testing.T) {
	_, err := render(t, Input{Values: testValues(), Template: Template{Data: map[string]string{"z": "{{ .Z }}", "b": "{{ .B }}", "m": "{{ .M }}"}}})
	wantError(t, err, "b", "unknown variable .B")
}

func TestRedact(t *testing.T) {
	r := &renderer{in: Input{Values: Values{ClientSecret: testSecret, PreviousClientSecret: testPrevious}, Random: map[string][]byte{"c": []byte("random-value-1")}}, random: map[string][]byte{"d": []byte("random-value-2")}}
	err := r.redact(&Error{Key: "k", Reason: "a " + testSecret + " b " + testPrevious + " c random-value-1 d random-value-2"})
	if got, want := err.Error(), `key "k": a [redacted] b [redacted] c [redacted] d [redacted]`; got != want {
		t.Errorf("redact: %q, want %q", got, want)
	}
}

func TestHash(t *testing.T) {
	a := map[string][]byte{"client_id": []byte("x"), "client_secret": []byte("y")}
	b := map[string][]byte{"client_secret": []byte("y"), "client_id": []byte("x")}
	if Hash(a) != Hash(b) || !strings.HasPrefix(Hash(a), "sha256:") || len(Hash(a)) != len("sha256:")+64 {
		t.Errorf("Hash(a) %s, Hash(b) %s", Hash(a), Hash(b))
	}
	for _, changed := range []map[string][]byte{
		{"client_id": []byte("x"), "client_secret": []byte("z")},
		{"client_id": []byte("x")},
		{"client_id": []byte("xc"), "lient_secret": []byte("y")},
	} {
		if Hash(changed) == Hash(a) {
			t.Errorf("Hash(%q) equals Hash(%q)", changed, a)
		}
	}
}

// TestOutputIsBounded: a template cannot make a render use much more memory than a
// Secret holds, whatever it combines.
func TestOutputIsBounded(t *testing.T) {
	bombs := []string{
		"{{ range .Scopes }}" + strings.Repeat(`{{ printf "%256s%256s%256s" $.ClientSecret $.ClientSecret $.ClientSecret }}`, 64) + "{{ end }}",
		`{{ $x := printf "%256s" "a" }}` + strings.Repeat(`{{ $x = replace " " $x $x }}`, 8) + "{{ len $x }}",
		`{{ $x := printf "%256s" "a" }}` + strings.Repeat(`{{ $x = print $x $x $x $x }}`, 16) + "{{ len $x }}",
		`{{ $x := printf "%256s" "<" }}` + strings.Repeat(`{{ $x = html $x $x | js | urlquery }}`, 16) + "{{ len $x }}",
	}
	v := testValues()
	v.Scopes = make([]string, 128)
	for i, bomb := range bombs {
		_, err := render(t, Input{Values: v, Template: Template{Data: map[string]string{"k": bomb}}})
		var e *Error
		budgetError := errors.As(err, &e) && (strings.Contains(e.Reason, "functions produced more than") || strings.Contains(e.Reason, "over the 1048576 bytes"))
		if !budgetError {
			t.Errorf("bomb %d: %v, want a budget error", i, err)
		}
	}
}

func TestNoRandomnessIsAnError(t *testing.T) {
	_, err := Render(Input{Values: testValues(), Entropy: bytes.NewReader(nil), Template: Template{Data: map[string]string{"k": `{{ stableRandom "c" }}`}}})
	wantError(t, err, "k", "no randomness available")
}
