// Command cf-emulator serves the in-memory Cloudflare OAuth clients, zones and DNS
// records API emulator (internal/cfapi/cfemu) over HTTP, for local development, demos
// and end-to-end tests. See docs/emulator.md.
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
	// strict are the strict modes: --strict (every Harsh mode), --strict-seed,
	// --fail-verification-after and --zone-scoped-list.
	strict cfemu.Strict
	// zones are created at start (--zone, in --zone-account).
	zones       zoneFlag
	zoneAccount string
	// dnsTokens hold DNS Write and Zone Read (--dns-token), dnsReadTokens DNS Read and
	// Zone Read (--dns-read-token); token -> zone ids (empty: every zone).
	dnsTokens     dnsTokenFlag
	dnsReadTokens dnsTokenFlag
	// dnsPropagation and dnsTimeout are cfemu.Options values: 0 is the emulator's
	// default (the flag was not given), negative is none / never (the flag was 0).
	dnsPropagation time.Duration
	dnsTimeout     time.Duration
	// tokenInfo is what the verify endpoints report about tokens (--token-info).
	tokenInfo tokenInfoFlag
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
	var verifyAfter, latency, rateLimit, strictSeed, failVerificationAfter, zoneScopedList, tokenOwnerMismatch, dnsPropagation, dnsTimeout string
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
	strict := fs.Bool("strict", strictDefault, "play the harsher reading of every undocumented behaviour (rotate conflict 400, shuffled order, promotion judged before the PATCH, empty zone lists for zone-limited tokens, 403 for a token verified at the wrong owner's endpoint, inactive tokens refused by verify too) (env CF_EMULATOR_STRICT)")
	fs.StringVar(&strictSeed, "strict-seed", env("CF_EMULATOR_STRICT_SEED", "0"), "seed of --strict's shuffled order (env CF_EMULATOR_STRICT_SEED)")
	fs.StringVar(&failVerificationAfter, "fail-verification-after", env("CF_EMULATOR_FAIL_VERIFICATION_AFTER", "0"), "a client_uri verification still unfinished this long after it started fails, as Cloudflare's does after 48h; 0 never; hosts in a --zone use --dns-verification-timeout (env CF_EMULATOR_FAIL_VERIFICATION_AFTER)")
	fs.Var(&o.zones, "zone", "NAME[=ZONE_ID]: a zone created at start, its id printed; a client_uri host in it is verified by its TXT record; repeatable (env CF_EMULATOR_ZONES, space-separated)")
	fs.StringVar(&o.zoneAccount, "zone-account", env("CF_EMULATOR_ZONE_ACCOUNT", ""), "account of the --zone zones (default "+cfemu.DefaultAccountID+") (env CF_EMULATOR_ZONE_ACCOUNT)")
	fs.Var(secret("dns-token", &o.dnsTokens), "dns-token", "TOKEN[=ZONE_ID,ZONE_ID]: the token holds Zone Read and DNS Write, on those zones only if given; a token not given with --token may use only zones and DNS; repeatable (env CF_EMULATOR_DNS_TOKENS, space-separated)")
	fs.Var(secret("dns-read-token", &o.dnsReadTokens), "dns-read-token", "TOKEN[=ZONE_ID,...]: the token holds Zone Read and DNS Read; repeatable (env CF_EMULATOR_DNS_READ_TOKENS, space-separated)")
	fs.StringVar(&dnsPropagation, "dns-propagation", env("CF_EMULATOR_DNS_PROPAGATION", ""), "a host in a --zone is verified once its TXT record has been there this long; 0 at once (default "+cfemu.DefaultDNSPropagation.String()+") (env CF_EMULATOR_DNS_PROPAGATION)")
	fs.StringVar(&dnsTimeout, "dns-verification-timeout", env("CF_EMULATOR_DNS_VERIFICATION_TIMEOUT", ""), "a host in a --zone without its TXT record fails this long after verification started; 0 never (default 48h) (env CF_EMULATOR_DNS_VERIFICATION_TIMEOUT)")
	fs.StringVar(&zoneScopedList, "zone-scoped-list", env("CF_EMULATOR_ZONE_SCOPED_LIST", ""), "what GET /zones answers a token limited to some zones: filtered (its zones), empty, forbidden (default filtered; empty with --strict) (env CF_EMULATOR_ZONE_SCOPED_LIST)")
	fs.Var(secret("token-info", &o.tokenInfo), "token-info", tokenInfoSyntax+": what the verify endpoints report about a token: STATUS active, disabled or expired, expiry, start, owning account (else user-owned) and id; a disabled, expired or not yet valid token is refused elsewhere; a token given only here may only verify; repeatable (env CF_EMULATOR_TOKEN_INFO, space-separated)")
	fs.StringVar(&tokenOwnerMismatch, "token-owner-mismatch", env("CF_EMULATOR_TOKEN_OWNER_MISMATCH", ""), "what a verify endpoint answers a token of another owner: invalid (401 1000), forbidden (403), not_found (404) (default invalid; forbidden with --strict) (env CF_EMULATOR_TOKEN_OWNER_MISMATCH)")
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
	if o.strict, err = parseStrict(*strict, strictSeed, failVerificationAfter, zoneScopedList, tokenOwnerMismatch); err != nil {
		return nil, err
	}
	if err := o.parseDNS(dnsPropagation, dnsTimeout); err != nil {
		return nil, err
	}
	if err := o.checkCredentials(); err != nil {
		return nil, err
	}
	if err := o.checkTokenInfo(); err != nil {
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
		{"CF_EMULATOR_ZONES", &o.zones, len(o.zones) > 0},
		{"CF_EMULATOR_DNS_TOKENS", &o.dnsTokens, len(o.dnsTokens) > 0},
		{"CF_EMULATOR_DNS_READ_TOKENS", &o.dnsReadTokens, len(o.dnsReadTokens) > 0},
		{"CF_EMULATOR_TOKEN_INFO", &o.tokenInfo, len(o.tokenInfo) > 0},
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
	if len(o.tokens) == 0 && len(o.readOnly) == 0 && len(o.dnsTokens) == 0 && len(o.dnsReadTokens) == 0 && (o.email == "" || o.apiKey == "") {
		return errors.New("no credential accepted: give at least one --token (or CF_EMULATOR_TOKENS)")
	}
	for token := range o.users {
		_, ok := o.tokens[token]
		_, dns := o.dnsTokens[token]
		_, dnsRead := o.dnsReadTokens[token]
		if !ok && !dns && !dnsRead && !slices.Contains(o.readOnly, token) {
			// Never name the token.
			return errors.New("--user: a token is not among the accepted ones (--token, --read-only-token, --dns-token, --dns-read-token)")
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
// --fail-verification-after (which --strict does not imply), --zone-scoped-list and
// --token-owner-mismatch (which replace --strict's) on their own.
func parseStrict(on bool, seed, failAfter, zoneScopedList, tokenOwnerMismatch string) (cfemu.Strict, error) {
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
	if zoneScopedList != "" {
		st.ZoneScopedList = zoneScopedList
		if err := (cfemu.Strict{ZoneScopedList: zoneScopedList}).Validate(); err != nil {
			return cfemu.Strict{}, fmt.Errorf("--zone-scoped-list: %w", err)
		}
	}
	if tokenOwnerMismatch != "" {
		st.TokenOwnerMismatch = tokenOwnerMismatch
		if err := (cfemu.Strict{TokenOwnerMismatch: tokenOwnerMismatch}).Validate(); err != nil {
			return cfemu.Strict{}, fmt.Errorf("--token-owner-mismatch: %w", err)
		}
	}
	if err := st.Validate(); err != nil {
		return cfemu.Strict{}, fmt.Errorf("--fail-verification-after: %w", err)
	}
	return st, nil
}

// maxDNSDuration is the longest --dns-propagation and --dns-verification-timeout the
// emulator accepts (366 days, like its other durations).
const maxDNSDuration = 366 * 24 * time.Hour

// parseDNS reads --dns-propagation and --dns-verification-timeout ("" keeps the
// emulator's default, 0 means none / never) and checks --zone-account and the zones.
func (o *options) parseDNS(propagation, timeout string) error {
	for _, d := range []struct {
		name, v string
		dst     *time.Duration
	}{{"dns-propagation", propagation, &o.dnsPropagation}, {"dns-verification-timeout", timeout, &o.dnsTimeout}} {
		if d.v == "" {
			continue
		}
		v, err := parseDuration(d.name, d.v)
		switch {
		case err != nil:
			return err
		case v > maxDNSDuration:
			return fmt.Errorf("--%s: %s is longer than %s", d.name, d.v, maxDNSDuration)
		case v == 0:
			v = -1
		}
		*d.dst = v
	}
	if o.zoneAccount != "" && !accountIDPattern.MatchString(o.zoneAccount) {
		return fmt.Errorf("--zone-account: %q is not 32 lowercase hex characters", o.zoneAccount)
	}
	names, ids := map[string]bool{}, map[string]bool{}
	for _, z := range o.zones {
		if names[z.Name] || z.ID != "" && ids[z.ID] {
			return fmt.Errorf("--zone: %s is given twice", z.Name)
		}
		names[z.Name], ids[z.ID] = true, true
	}
	return nil
}

// dnsPermissions merges --dns-read-token and --dns-token (which wins).
func (o *options) dnsPermissions() map[string]cfemu.DNSPermissions {
	out := map[string]cfemu.DNSPermissions{}
	for token, zones := range o.dnsReadTokens {
		out[token] = cfemu.DNSPermissions{ZoneRead: true, DNSRead: true, ZoneIDs: zones}
	}
	for token, zones := range o.dnsTokens {
		out[token] = cfemu.DNSEditor(zones...)
	}
	return out
}

// zoneSpecs are the --zone zones in --zone-account.
func (o *options) zoneSpecs() []cfemu.ZoneSpec {
	out := make([]cfemu.ZoneSpec, 0, len(o.zones))
	for _, z := range o.zones {
		z.AccountID = o.zoneAccount
		out = append(out, z)
	}
	return out
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

// zoneFlag collects --zone NAME[=ZONE_ID] values.
type zoneFlag []cfemu.ZoneSpec

func (z *zoneFlag) String() string { return "" }

func (z *zoneFlag) Set(v string) error {
	name, id, _ := strings.Cut(v, "=")
	spec := cfemu.ZoneSpec{Name: strings.TrimSuffix(strings.ToLower(name), "."), ID: id}
	if err := spec.Validate(); err != nil {
		return err
	}
	*z = append(*z, spec)
	return nil
}

// dnsTokenFlag collects --dns-token and --dns-read-token values: token -> the zone ids
// it is limited to (empty: every zone).
type dnsTokenFlag map[string][]string

func (d *dnsTokenFlag) String() string { return "" } // never print tokens

func (d *dnsTokenFlag) Set(v string) error {
	token, zones, hasZones := strings.Cut(v, "=")
	if !validToken(token) {
		return errors.New("a token must be non-empty, without whitespace or control characters")
	}
	var list []string
	if hasZones {
		for _, z := range strings.Split(zones, ",") {
			if !accountIDPattern.MatchString(z) {
				return fmt.Errorf("zone id %q is not 32 lowercase hex characters", z)
			}
			list = append(list, z)
		}
	}
	if *d == nil {
		*d = dnsTokenFlag{}
	}
	(*d)[token] = list
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

// run serves until ctx ends, then shuts down gracefully. Once it accepts connections it
// prints one line to stdout with the base URL, then one "cf-emulator zone NAME ID" line
// per --zone.
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
		Zones:                  o.zoneSpecs(),
		DNS:                    o.dnsPermissions(),
		DNSPropagation:         o.dnsPropagation,
		DNSVerificationTimeout: o.dnsTimeout,
		TokenInfo:              o.tokenInfo,
		Tokens:                 o.tokens,
		Users:                  o.users,
		ReadOnlyTokens:         o.readOnly,
		Strict:                 o.strict,
		Email:                  o.email,
		APIKey:                 o.apiKey,
		VerifyAfter:            o.verifyAfter,
		RateLimit:              o.rateLimit,
		RateWindow:             o.rateWindow,
		Latency:                o.latency,
		Scopes:                 scopes,
		DisableControl:         o.noControl,
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
	for _, z := range handler.ZoneSpecs() {
		if _, err := fmt.Fprintf(stdout, "cf-emulator zone %s %s\n", z.Name, z.ID); err != nil {
			_ = ln.Close()
			return err
		}
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
