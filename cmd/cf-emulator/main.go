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
	email       string
	apiKey      string
	verifyAfter time.Duration
	rateLimit   int
	rateWindow  time.Duration
	latency     time.Duration
	scopesFile  string
	noControl   bool
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
	var verifyAfter, latency, rateLimit string
	noControlDefault, err := strconv.ParseBool(env("CF_EMULATOR_NO_CONTROL", "false"))
	if err != nil {
		return nil, fmt.Errorf("CF_EMULATOR_NO_CONTROL: %q is not a boolean", getenv("CF_EMULATOR_NO_CONTROL"))
	}
	fs.StringVar(&o.addr, "addr", env("CF_EMULATOR_ADDR", "127.0.0.1:8787"), "listen address; port 0 picks a free one (env CF_EMULATOR_ADDR)")
	fs.Var(&o.tokens, "token", "accepted API token, TOKEN or TOKEN=ACCOUNT_ID,ACCOUNT_ID; repeatable (env CF_EMULATOR_TOKENS, space-separated)")
	fs.StringVar(&o.email, "email", env("CF_EMULATOR_EMAIL", ""), "accepted legacy X-Auth-Email, with --api-key (env CF_EMULATOR_EMAIL)")
	fs.StringVar(&o.apiKey, "api-key", env("CF_EMULATOR_API_KEY", ""), "accepted legacy X-Auth-Key, with --email (env CF_EMULATOR_API_KEY)")
	fs.StringVar(&verifyAfter, "verify-after", env("CF_EMULATOR_VERIFY_AFTER", "10s"), "client_uri verification succeeds after this; 0 never (env CF_EMULATOR_VERIFY_AFTER)")
	fs.StringVar(&rateLimit, "rate-limit", env("CF_EMULATOR_RATE_LIMIT", "1200/5m"), "requests per window per credential, N/DURATION; 0 disables (env CF_EMULATOR_RATE_LIMIT)")
	fs.StringVar(&latency, "latency", env("CF_EMULATOR_LATENCY", "0"), "added to every API request (env CF_EMULATOR_LATENCY)")
	fs.StringVar(&o.scopesFile, "scopes-file", env("CF_EMULATOR_SCOPES_FILE", ""), "JSON array of {id,name,category,scopes} replacing the built-in scope catalogue (env CF_EMULATOR_SCOPES_FILE)")
	fs.BoolVar(&o.noControl, "no-control", noControlDefault, "disable the /_emulator control endpoints (env CF_EMULATOR_NO_CONTROL)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, usage(fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if len(o.tokens) == 0 {
		for _, t := range strings.Fields(getenv("CF_EMULATOR_TOKENS")) {
			if err := o.tokens.Set(t); err != nil {
				return nil, fmt.Errorf("CF_EMULATOR_TOKENS: %w", err)
			}
		}
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
	if len(o.tokens) == 0 && (o.email == "" || o.apiKey == "") {
		return nil, errors.New("no credential accepted: give at least one --token (or CF_EMULATOR_TOKENS)")
	}
	if (o.email == "") != (o.apiKey == "") {
		return nil, errors.New("--email and --api-key go together")
	}
	return o, nil
}

// usage renders the flag help into an error for main to print.
func usage(fs *flag.FlagSet) error {
	var b strings.Builder
	b.WriteString("usage: cf-emulator --token TOKEN[=ACCOUNT,...] [flags]\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return errors.New(b.String())
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

// tokenFlag collects --token values: token -> allowed accounts (empty: all).
type tokenFlag map[string][]string

func (t *tokenFlag) String() string {
	// Never print tokens, not even in help.
	return ""
}

func (t *tokenFlag) Set(v string) error {
	token, accounts, hasAccounts := strings.Cut(v, "=")
	if token == "" || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
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
