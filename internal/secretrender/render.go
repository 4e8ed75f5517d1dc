// Package secretrender renders the data of an OAuthClient's output Secret from a
// template, so that applications consume the Secret as it is: Go text/template per key,
// a profile that fills the template for a common consumer, and a small function set.
//
// It is pure: values and the template in, map[string][]byte out. It reads no
// environment, file, network or other Secret; the only state it keeps across renders
// is what the caller hands back in Input.Random (the stable random values).
//
// A template is user input from a namespace, and namespaces are trust boundaries, so
// the language is bounded: no define/template/block, range only over .Scopes and
// .RedirectURIs and never nested, and every function result and every key's output is
// counted against fixed budgets. A template therefore renders in time and memory
// bounded by its own size.
package secretrender

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/template"
)

// MaxSecretBytes is how much data a Secret holds (the apiserver's limit on the sum of
// its keys' values; corev1.MaxSecretSize).
const MaxSecretBytes = 1 << 20

// funcBudget bounds the bytes all template functions of one render may produce, so a
// template that builds ever larger strings in variables stops long before memory does.
const funcBudget = 4 * MaxSecretBytes

// Values are the template variables. A template sees them as .ClientID and so on.
type Values struct {
	// ClientID is the Cloudflare client ID.
	ClientID string
	// ClientSecret is the current client secret; "" for a public (PKCE) client.
	ClientSecret string
	// PreviousClientSecret is the secret still valid during a rotation overlap; "" at
	// any other time.
	PreviousClientSecret string
	// AccountID is the Cloudflare account of the client.
	AccountID string
	// Issuer and the endpoints are those of the authorization server.
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	RevocationEndpoint    string
	UserinfoEndpoint      string
	EndSessionEndpoint    string
	JWKSURI               string
	DiscoveryURL          string
	// Scopes and RedirectURIs are the client's; ClientName its consent-screen name.
	Scopes       []string
	RedirectURIs []string
	ClientName   string
}

// SetAuthorizationServer fills Issuer and the endpoints from the authorization server's
// base URL, with Cloudflare's paths (developers.cloudflare.com, "Integrate with
// Cloudflare"): https://dash.cloudflare.com gives .../oauth2/auth, .../oauth2/token, ...
func (v *Values) SetAuthorizationServer(base string) {
	base = strings.TrimRight(base, "/")
	v.Issuer = base
	v.AuthorizationEndpoint = base + "/oauth2/auth"
	v.TokenEndpoint = base + "/oauth2/token"
	v.RevocationEndpoint = base + "/oauth2/revoke"
	v.UserinfoEndpoint = base + "/oauth2/userinfo"
	v.EndSessionEndpoint = base + "/oauth2/logout"
	v.JWKSURI = base + "/.well-known/jwks.json"
	v.DiscoveryURL = base + "/.well-known/openid-configuration"
}

// SecretState says what is known of the client secret.
type SecretState int

const (
	// SecretKnown: Values.ClientSecret holds the secret.
	SecretKnown SecretState = iota
	// SecretNone: a public (PKCE) client, which has no secret. A key built on
	// .ClientSecret that renders empty is an error: the consumer would get nothing.
	SecretNone
	// SecretUnknown: the client has a secret the caller does not hold (an adopted
	// client before its first rotation). Keys built on .ClientSecret are left out and
	// listed in Output.Pending.
	SecretUnknown
)

// Template is what the user asked for: a profile, keys of their own, or both; data wins
// over the profile key by key.
type Template struct {
	// Profile names one of Profiles(); "" for none.
	Profile string
	// Data maps Secret keys to Go templates.
	Data map[string]string
}

// Input is everything a render reads.
type Input struct {
	Template Template
	Values   Values
	Secret   SecretState
	// Random holds the stable random values of earlier renders, by name.
	Random map[string][]byte
	// Entropy is where new random values come from; crypto/rand when nil.
	Entropy io.Reader
	// Budget is how many bytes the rendered keys may take together (names and values);
	// MaxSecretBytes when 0. The caller subtracts what it stores next to them.
	Budget int
}

// Output is a rendered Secret.
type Output struct {
	// Data is the rendered keys.
	Data map[string][]byte
	// Random is every stable random value the template used, new or kept: the caller
	// stores these and hands them back next time. Values no longer used are not here.
	Random map[string][]byte
	// Pending lists the keys left out because they need .ClientSecret, which the
	// caller does not hold (SecretUnknown), sorted.
	Pending []string
}

// Error is a template that cannot be rendered. It names the key and what is wrong,
// never a value: secret values in a message are replaced by [redacted].
type Error struct {
	// Key is the Secret key whose template failed; "" when the template as a whole is
	// wrong (an unknown profile).
	Key    string
	Reason string
}

func (e *Error) Error() string {
	if e.Key == "" {
		return e.Reason
	}
	return fmt.Sprintf("key %q: %s", e.Key, e.Reason)
}

// Render renders every key of the template, in key order, and returns the first
// failure. It never returns a partial result.
func Render(in Input) (Output, error) {
	sources, err := Sources(in.Template, in.Secret == SecretNone)
	if err != nil {
		return Output{}, err
	}
	budget := in.Budget
	if budget <= 0 {
		budget = MaxSecretBytes
	}
	r := &renderer{in: in, random: map[string][]byte{}, names: map[string]bool{}, fuel: funcBudget}
	if r.in.Entropy == nil {
		r.in.Entropy = rand.Reader
	}
	out := Output{Data: map[string][]byte{}}
	for _, key := range slices.Sorted(maps.Keys(sources)) {
		value, pending, err := r.renderKey(key, sources[key], budget)
		if err != nil {
			return Output{}, r.redact(err)
		}
		if pending {
			out.Pending = append(out.Pending, key)
			continue
		}
		out.Data[key] = value
		budget -= len(key) + len(value)
	}
	out.Random = r.random
	return out, nil
}

// renderKey parses, checks and executes one key's template within budget bytes.
func (r *renderer) renderKey(key, text string, budget int) ([]byte, bool, error) {
	fail := func(format string, args ...any) error {
		return &Error{Key: key, Reason: fmt.Sprintf(format, args...)}
	}
	tmpl, err := template.New(key).Option("missingkey=error").Funcs(r.funcs()).Parse(text)
	if err != nil {
		return nil, false, fail("%s", strings.TrimPrefix(err.Error(), "template: "))
	}
	if len(tmpl.Templates()) > 1 {
		return nil, false, fail("define, block and template are not supported")
	}
	use, err := check(tmpl.Root)
	if err != nil {
		return nil, false, fail("%s", err.Error())
	}
	for _, name := range use.randoms {
		r.names[name] = true
	}
	if len(r.names) > maxRandomNames {
		return nil, false, fail("the template uses more than %d stableRandom names", maxRandomNames)
	}
	if use.clientSecret && r.in.Secret == SecretUnknown {
		return nil, true, nil
	}
	w := &limitedWriter{limit: budget - len(key)}
	if err := tmpl.Execute(w, r.in.Values); err != nil {
		var full *fullError
		if errors.As(err, &full) || w.full {
			return nil, false, fail("the rendered data is over the %d bytes (1 MiB) a Secret holds, with the keys the operator keeps next to it", MaxSecretBytes)
		}
		return nil, false, fail("%s", strings.TrimPrefix(err.Error(), "template: "))
	}
	if w.buf.Len() == 0 && use.clientSecret && r.in.Secret == SecretNone {
		return nil, false, fail("renders empty: it uses .ClientSecret, and a public client (tokenEndpointAuthMethod none) has no secret; drop the key or give it a value without .ClientSecret")
	}
	return slices.Clone(w.buf.Bytes()), false, nil
}

// redact replaces every secret value in an error's text. Template and parser messages
// quote template source, not values, but a function's error could one day carry its
// argument: this is the last line of defence.
func (r *renderer) redact(err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	secrets := []string{r.in.Values.ClientSecret, r.in.Values.PreviousClientSecret}
	for _, v := range r.in.Random {
		secrets = append(secrets, string(v))
	}
	for _, v := range r.random {
		secrets = append(secrets, string(v))
	}
	reason := e.Reason
	for _, s := range secrets {
		if len(s) >= 4 {
			reason = strings.ReplaceAll(reason, s, "[redacted]")
		}
	}
	return &Error{Key: e.Key, Reason: reason}
}

// renderer is the state of one Render.
type renderer struct {
	in     Input
	random map[string][]byte
	// names are the stableRandom names seen so far.
	names map[string]bool
	// fuel is what the template functions may still produce, in bytes.
	fuel int
}

// fullError stops a template whose output would not fit.
type fullError struct{}

func (fullError) Error() string { return "output over budget" }

// limitedWriter keeps at most limit bytes and fails the write that would exceed it,
// which stops the template's execution.
type limitedWriter struct {
	buf   bytes.Buffer
	limit int
	full  bool
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.limit {
		w.full = true
		return 0, &fullError{}
	}
	return w.buf.Write(p)
}
