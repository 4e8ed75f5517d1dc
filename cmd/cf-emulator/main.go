// Command cf-emulator serves the in-memory Cloudflare OAuth clients API emulator
// (internal/cfapi/cfemu) over HTTP, for local development, demos and end-to-end tests.
// See docs/emulator.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "cf-emulator:", err)
		stop()
		os.Exit(2)
	}
}

// options are the parsed flags.
type options struct {
	addr        string
	tokens      tokenFlag
	users       userFlag
	readOnly    readOnlyFlag
	email       string
	apiKey      string
	verifyAfter time.Duration
	rateLimit   int
	rateWindow  time.Duration
	latency     time.Duration
	scopesFile  string
	noControl   bool
	// strict are the strict modes: --strict (every Harsh mode), --strict-seed and
	// --fail-verification-after.
	strict cfemu.Strict
}

// parseOptions reads flags; every flag defaults to its CF_EMULATOR_* variable.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("cf-emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &options{}
	var verifyAfter, latency, rateLimit, strictSeed, failVerificationAfter string
	noControlDefault, err := envBool(getenv, "CF_EMULATOR_NO_CONTROL")
	if err != nil {
		return nil, err
	}
	strictDefault, err := envBool(getenv, "CF_EMULATOR_STRICT")
	if err != nil {
		return nil, err
	}
	// Values of these flags hold tokens. The flag package quotes a rejected value in
	// its error, so their Set never fails; the first problem is kept here instead.
	var secretErr error
	secret := func(name string, v flag.Value) flag.Value { return secretValue{name: name, v: v, err: &secretErr} }
	fs.StringVar(&o.addr, "addr", env("CF_EMULATOR_ADDR", "127.0.0.1:8787"), "listen address; port 0 picks a free one (env CF_EMULATOR_ADDR)")
	fs.Var(secret("token", &o.tokens), "token", "accepted API token, TOKEN or TOKEN=ACCOUNT_ID,ACCOUNT_ID; repeatable (env CF_EMULATOR_TOKENS, space-separated)")
	fs.Var(secret("user", &o.users), "user", "TOKEN=USER: the token belongs to USER, whose tokens share one rate limit; repeatable (env CF_EMULATOR_USERS, space-separated)")
	fs.Var(secret("read-only-token", &o.readOnly), "read-only-token", "a token holding only OAuth Client Read (writes answer 403); accepted for every account unless --token restricts it; repeatable (env CF_EMULATOR_READ_ONLY_TOKENS, space-separated)")
	fs.StringVar(&o.email, "email", env("CF_EMULATOR_EMAIL", ""), "accepted legacy X-Auth-Email, with --api-key (env CF_EMULATOR_EMAIL)")
	fs.StringVar(&o.apiKey, "api-key", env("CF_EMULATOR_API_KEY", ""), "accepted legacy X-Auth-Key, with --email (env CF_EMULATOR_API_KEY)")
	fs.StringVar(&verifyAfter, "verify-after", env("CF_EMULATOR_VERIFY_AFTER", "10s"), "client_uri verification succeeds after this; 0 never (env CF_EMULATOR_VERIFY_AFTER)")
	fs.StringVar(&rateLimit, "rate-limit", env("CF_EMULATOR_RATE_LIMIT", "1200/5m"), "requests per window per credential, N/DURATION; 0 disables (env CF_EMULATOR_RATE_LIMIT)")
	fs.StringVar(&latency, "latency", env("CF_EMULATOR_LATENCY", "0"), "added to every API request (env CF_EMULATOR_LATENCY)")
	fs.StringVar(&o.scopesFile, "scopes-file", env("CF_EMULATOR_SCOPES_FILE", ""), "JSON array of {id,name,category,scopes} replacing the built-in scope catalogue (env CF_EMULATOR_SCOPES_FILE)")
	fs.BoolVar(&o.noControl, "no-control", noControlDefault, "disable the /_emulator control endpoints (env CF_EMULATOR_NO_CONTROL)")
	strict := fs.Bool("strict", strictDefault, "play the harsher reading of every undocumented behaviour (rotate conflict 400, shuffled order, promotion judged before the PATCH) (env CF_EMULATOR_STRICT)")
	fs.StringVar(&strictSeed, "strict-seed", env("CF_EMULATOR_STRICT_SEED", "0"), "seed of --strict's shuffled order (env CF_EMULATOR_STRICT_SEED)")
	fs.StringVar(&failVerificationAfter, "fail-verification-after", env("CF_EMULATOR_FAIL_VERIFICATION_AFTER", "0"), "a client_uri verification still unfinished this long after it started fails, as Cloudflare's does after 48h; 0 never (env CF_EMULATOR_FAIL_VERIFICATION_AFTER)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, usage(fs)
		}
		return nil, err
	}
	if secretErr != nil {
		return nil, secretErr
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.readEnvLists(getenv); err != nil {
		return nil, err
	}
	if o.verifyAfter, err = parseDuration("verify-after", verifyAfter); err != nil {
		return nil, err
	}
	if o.latency, err = parseDuration("latency", latency); err != nil {
		return nil, err
	}
	if o.rateLimit, o.rateWindow, err = parseRateLimit(rateLimit); err != nil {
		return nil, err
	}
	if o.strict, err = parseStrict(*strict, strictSeed, failVerificationAfter); err != nil {
		return nil, err
	}
	if err := o.checkCredentials(); err != nil {
		return nil, err
	}
	return o, nil
}

// readEnvLists fills the token lists from their CF_EMULATOR_* variables, unless flags
// set them (flags replace the variable entirely).
func (o *options) readEnvLists(getenv func(string) string) error {
	for _, list := range []struct {
		env string
		v   flag.Value
		set bool
	}{
		{"CF_EMULATOR_TOKENS", &o.tokens, len(o.tokens) > 0},
		{"CF_EMULATOR_USERS", &o.users, len(o.users) > 0},
		{"CF_EMULATOR_READ_ONLY_TOKENS", &o.readOnly, len(o.readOnly) > 0},
	} {
		if list.set {
			continue // flags replace the variable entirely
		}
		for _, t := range strings.Fields(getenv(list.env)) {
			if err := list.v.Set(t); err != nil {
				return fmt.Errorf("%s: %w", list.env, err)
			}
		}
	}
	return nil
}

// checkCredentials requires at least one accepted credential and consistent pairs.
func (o *options) checkCredentials() error {
	if len(o.tokens) == 0 && len(o.readOnly) == 0 && (o.email == "" || o.apiKey == "") {
		return errors.New("no credential accepted: give at least one --token (or CF_EMULATOR_TOKENS)")
	}
	for token := range o.users {
		if _, ok := o.tokens[token]; !ok && !slices.Contains(o.readOnly, token) {
			// Never name the token.
			return errors.New("--user: a token is not among the accepted ones (--token, --read-only-token)")
		}
	}
	if (o.email == "") != (o.apiKey == "") {
		return errors.New("--email and --api-key go together")
	}
	return nil
}

// usage renders the flag help into an error for main to print.
func usage(fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString("usage: cf-emulator --token TOKEN[=ACCOUNT,...] [flags]\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return errors.New(b.String())
}

func envBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not a boolean", name, v)
	}
	return b, nil
}

// parseStrict builds the strict modes: every Harsh mode with --strict, and
// --fail-verification-after (which --strict does not imply) on its own.
func parseStrict(on bool, seed, failAfter string) (cfemu.Strict, error) {
	n, err := strconv.ParseInt(seed, 10, 64)
	if err != nil {
		return cfemu.Strict{}, fmt.Errorf("--strict-seed: %q is not an integer", seed)
	}
	var st cfemu.Strict
	if on {
		st = cfemu.Harsh(n)
	}
	if st.FailVerificationAfter, err = parseDuration("fail-verification-after", failAfter); err != nil {
		return cfemu.Strict{}, err
	}
	if err := st.Validate(); err != nil {
		return cfemu.Strict{}, fmt.Errorf("--fail-verification-after: %w", err)
	}
	return st, nil
}

func parseDuration(name, v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--%s: %q is not a non-negative duration", name, v)
	}
	return d, nil
}

// parseRateLimit reads "N/DURATION" or "0".
func parseRateLimit(v string) (int, time.Duration, error) {
	if v == "0" {
		return 0, 0, nil
	}
	n, w, ok := strings.Cut(v, "/")
	limit, err1 := strconv.Atoi(n)
	window, err2 := time.ParseDuration(w)
	if !ok || err1 != nil || err2 != nil || limit < 0 || window <= 0 {
		return 0, 0, fmt.Errorf("--rate-limit: %q is not N/DURATION (e.g. 1200/5m) or 0", v)
	}
	return limit, window, nil
}

var accountIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

// secretValue wraps a flag whose values hold tokens. The flag package would print a
// rejected value ("invalid value %q for flag"), so Set records the first error in err
// (without the value) and reports success.
type secretValue struct {
	name string
	v    flag.Value
	err  *error
}

func (s secretValue) String() string { return "" }

func (s secretValue) Set(v string) error {
	if err := s.v.Set(v); err != nil && *s.err == nil {
		*s.err = fmt.Errorf("--%s: %w", s.name, err)
	}
	return nil
}

// validToken reports whether a token can travel in a header and a space-separated
// environment variable.
func validToken(token string) bool {
	return token != "" && !strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f })
}

// tokenFlag collects --token values: token -> allowed accounts (empty: all).
type tokenFlag map[string][]string

func (t *tokenFlag) String() string {
	// Never print tokens, not even in help.
	return ""
}

func (t *tokenFlag) Set(v string) error {
	token, accounts, hasAccounts := strings.Cut(v, "=")
	if !validToken(token) {
		return errors.New("a token must be non-empty, without whitespace or control characters")
	}
	var list []string
	if hasAccounts {
		for _, a := range strings.Split(accounts, ",") {
			if !accountIDPattern.MatchString(a) {
				return fmt.Errorf("account id %q is not 32 lowercase hex characters", a)
			}
			list = append(list, a)
		}
	}
	if *t == nil {
		*t = tokenFlag{}
	}
	(*t)[token] = list
	return nil
}

// userFlag collects --user TOKEN=USER values: token -> the user owning it.
type userFlag map[string]string

func (u *userFlag) String() string { return "" } // never print tokens

func (u *userFlag) Set(v string) error {
	token, user, ok := strings.Cut(v, "=")
	if !ok || !validToken(token) || !validToken(user) {
		return errors.New("want TOKEN=USER, both non-empty, without whitespace or control characters")
	}
	if *u == nil {
		*u = userFlag{}
	}
	(*u)[token] = user
	return nil
}

// readOnlyFlag collects --read-only-token values.
type readOnlyFlag []string

func (r *readOnlyFlag) String() string { return "" } // never print tokens

func (r *readOnlyFlag) Set(v string) error {
	if !validToken(v) {
		return errors.New("a token must be non-empty, without whitespace or control characters")
	}
	if !slices.Contains(*r, v) {
		*r = append(*r, v)
	}
	return nil
}

func loadScopes(path string) ([]cfapi.OAuthScope, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--scopes-file: %w", err)
	}
	var scopes []cfapi.OAuthScope
	if err := json.Unmarshal(b, &scopes); err != nil {
		return nil, fmt.Errorf("--scopes-file: %w", err)
	}
	for i, s := range scopes {
		if s.ID == "" {
			return nil, fmt.Errorf("--scopes-file: entry %d has no id", i)
		}
	}
	if scopes == nil {
		scopes = []cfapi.OAuthScope{}
	}
	return scopes, nil
}

// run serves until ctx ends, then shuts down gracefully. It prints exactly one line to
// stdout, with the base URL, once it accepts connections.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	scopes, err := loadScopes(o.scopesFile)
	if err != nil {
		return err
	}
	handler := cfemu.New(cfemu.Options{
		Tokens:         o.tokens,
		Users:          o.users,
		ReadOnlyTokens: o.readOnly,
		Strict:         o.strict,
		Email:          o.email,
		APIKey:         o.apiKey,
		VerifyAfter:    o.verifyAfter,
		RateLimit:      o.rateLimit,
		RateWindow:     o.rateWindow,
		Latency:        o.latency,
		Scopes:         scopes,
		DisableControl: o.noControl,
	})
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", o.addr)
	if err != nil {
		return err
	}
	// Handlers that hang (latency, timeout faults) watch their request context; ending
	// this base context on shutdown releases them so Shutdown does not wait for them.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
	}
	// The listener already accepts connections (the kernel queues them), so the line
	// may be printed before Serve starts.
	if _, err := fmt.Fprintf(stdout, "cf-emulator listening on http://%s%s\n", ln.Addr(), cfemu.BasePath); err != nil {
		_ = ln.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
