package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const (
	testAccount = "023e105f4ecef8ad9ca31a8372d0c353"
	testZone    = "5f1d8e7c3b2a19f0e4d6c8b7a6958473"
)

func TestParseOptions(t *testing.T) {
	tests := []parseCase{
		{"defaults", []string{"--token", "T"}, nil, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"T": nil}, verifyAfter: 10 * time.Second,
			rateLimit: 1200, rateWindow: 5 * time.Minute,
		}, ""},
		{"everything from flags", []string{"--addr", ":0", "--token", "A=" + testAccount, "--token", "B", "--email", "e@x", "--api-key", "k",
			"--verify-after", "0", "--rate-limit", "0", "--latency", "5ms", "--no-control"}, nil, &options{
			addr: ":0", tokens: tokenFlag{"A": {testAccount}, "B": nil}, email: "e@x", apiKey: "k", latency: 5 * time.Millisecond, noControl: true,
		}, ""},
		{"everything from the environment", nil, map[string]string{
			"CF_EMULATOR_ADDR": "127.0.0.1:9", "CF_EMULATOR_TOKENS": "A B=" + testAccount, "CF_EMULATOR_VERIFY_AFTER": "1m",
			"CF_EMULATOR_RATE_LIMIT": "10/1s", "CF_EMULATOR_LATENCY": "1s", "CF_EMULATOR_NO_CONTROL": "true",
		}, &options{
			addr: "127.0.0.1:9", tokens: tokenFlag{"A": nil, "B": {testAccount}}, verifyAfter: time.Minute,
			rateLimit: 10, rateWindow: time.Second, latency: time.Second, noControl: true,
		}, ""},
		{"flags win over the environment", []string{"--token", "F", "--verify-after", "2s"},
			map[string]string{"CF_EMULATOR_TOKENS": "E", "CF_EMULATOR_VERIFY_AFTER": "1m"}, &options{
				addr: "127.0.0.1:8787", tokens: tokenFlag{"F": nil}, verifyAfter: 2 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			}, ""},
		{"legacy pair alone is enough", []string{"--email", "e@x", "--api-key", "k"}, nil, &options{
			addr: "127.0.0.1:8787", email: "e@x", apiKey: "k", verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
		}, ""},
		{"no credential", nil, nil, nil, "no credential accepted"},
		{"email without key", []string{"--token", "T", "--email", "e@x"}, nil, nil, "go together"},
		{"bad account", []string{"--token", "T=abc"}, nil, nil, "not 32 lowercase hex"},
		{"token with a space", []string{"--token", "a b"}, nil, nil, "without whitespace"},
		{"bad rate limit", []string{"--token", "T", "--rate-limit", "fast"}, nil, nil, "N/DURATION"},
		{"bad duration", []string{"--token", "T", "--latency", "-1s"}, nil, nil, "non-negative duration"},
		{"stray argument", []string{"--token", "T", "extra"}, nil, nil, "unexpected arguments"},
		{"help", []string{"-h"}, nil, nil, "usage: cf-emulator"},
		{"strict modes from flags", []string{"--token", "T", "--strict", "--strict-seed", "7", "--fail-verification-after", "48h"}, nil, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"T": nil}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			strict: harsh(7, 48*time.Hour),
		}, ""},
		{"fail-verification-after without --strict", []string{"--token", "T", "--fail-verification-after", "1h", "--strict-seed", "7"}, nil, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"T": nil}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			strict: cfemu.Strict{FailVerificationAfter: time.Hour},
		}, ""},
		{"users and read-only tokens from flags", []string{"--token", "A", "--token", "B=" + testAccount, "--user", "A=alice", "--user", "R=alice",
			"--read-only-token", "R", "--read-only-token", "B"}, nil, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"A": nil, "B": {testAccount}}, users: userFlag{"A": "alice", "R": "alice"},
			readOnly: readOnlyFlag{"R", "B"}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
		}, ""},
		{"a read-only token alone is enough", []string{"--read-only-token", "R"}, nil, &options{
			addr: "127.0.0.1:8787", readOnly: readOnlyFlag{"R"}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
		}, ""},
		{"strict modes, users and read-only tokens from the environment", nil, map[string]string{
			"CF_EMULATOR_TOKENS": "A B", "CF_EMULATOR_USERS": "A=alice B=alice", "CF_EMULATOR_READ_ONLY_TOKENS": "B",
			"CF_EMULATOR_STRICT": "true", "CF_EMULATOR_STRICT_SEED": "-3", "CF_EMULATOR_FAIL_VERIFICATION_AFTER": "2h",
		}, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"A": nil, "B": nil}, users: userFlag{"A": "alice", "B": "alice"},
			readOnly: readOnlyFlag{"B"}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			strict: harsh(-3, 2*time.Hour),
		}, ""},
		{"flags replace the user and read-only variables", []string{"--token", "A", "--user", "A=bob", "--read-only-token", "A"},
			map[string]string{"CF_EMULATOR_USERS": "A=alice", "CF_EMULATOR_READ_ONLY_TOKENS": "Z"}, &options{
				addr: "127.0.0.1:8787", tokens: tokenFlag{"A": nil}, users: userFlag{"A": "bob"}, readOnly: readOnlyFlag{"A"},
				verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			}, ""},
		{"bad strict seed", []string{"--token", "T", "--strict", "--strict-seed", "lucky"}, nil, nil, "--strict-seed"},
		{"negative fail-verification-after", []string{"--token", "T", "--fail-verification-after", "-1s"}, nil, nil, "non-negative duration"},
		{"unparsable fail-verification-after", []string{"--token", "T", "--fail-verification-after", "soon"}, nil, nil, "non-negative duration"},
		{"huge fail-verification-after", []string{"--token", "T", "--fail-verification-after", "9000h"}, nil, nil, "outside"},
		{"bad CF_EMULATOR_STRICT", []string{"--token", "T"}, map[string]string{"CF_EMULATOR_STRICT": "maybe"}, nil, "CF_EMULATOR_STRICT"},
		{"user without a user", []string{"--token", "T", "--user", "T"}, nil, nil, "--user: want TOKEN=USER"},
		{"user with an empty user", []string{"--token", "T", "--user", "T="}, nil, nil, "--user: want TOKEN=USER"},
		{"user for an unknown token", []string{"--token", "T", "--user", "U=alice"}, nil, nil, "not among the accepted"},
		{"bad user variable", []string{"--token", "T"}, map[string]string{"CF_EMULATOR_USERS": "T"}, nil, "CF_EMULATOR_USERS"},
		{"read-only token with a control character", []string{"--read-only-token", "a\x01b"}, nil, nil, "--read-only-token: a token must be"},
		{"zones and DNS tokens from flags", []string{"--token", "T", "--zone", "example.com", "--zone", "Other.ORG.=" + testZone,
			"--zone-account", testAccount, "--dns-token", "T", "--dns-token", "Z=" + testZone, "--dns-read-token", "R",
			"--dns-propagation", "0", "--dns-verification-timeout", "1h", "--zone-scoped-list", "forbidden", "--user", "R=alice"}, nil, &options{
			addr: "127.0.0.1:8787", tokens: tokenFlag{"T": nil}, verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			zones: zoneFlag{{Name: "example.com"}, {Name: "other.org", ID: testZone}}, zoneAccount: testAccount,
			dnsTokens: dnsTokenFlag{"T": nil, "Z": {testZone}}, dnsReadTokens: dnsTokenFlag{"R": nil}, users: userFlag{"R": "alice"},
			dnsPropagation: -1, dnsTimeout: time.Hour, strict: cfemu.Strict{ZoneScopedList: cfemu.ZoneListForbidden},
		}, ""},
		{"zones and DNS tokens from the environment", nil, map[string]string{
			"CF_EMULATOR_ZONES": "a.example b.example", "CF_EMULATOR_DNS_TOKENS": "D=" + testZone, "CF_EMULATOR_DNS_READ_TOKENS": "R",
			"CF_EMULATOR_DNS_PROPAGATION": "2s", "CF_EMULATOR_DNS_VERIFICATION_TIMEOUT": "0", "CF_EMULATOR_ZONE_ACCOUNT": testAccount,
			"CF_EMULATOR_STRICT": "true", "CF_EMULATOR_ZONE_SCOPED_LIST": "filtered",
		}, &options{
			addr: "127.0.0.1:8787", verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			zones: zoneFlag{{Name: "a.example"}, {Name: "b.example"}}, zoneAccount: testAccount,
			dnsTokens: dnsTokenFlag{"D": {testZone}}, dnsReadTokens: dnsTokenFlag{"R": nil}, dnsPropagation: 2 * time.Second, dnsTimeout: -1,
			strict: func() cfemu.Strict { st := cfemu.Harsh(0); st.ZoneScopedList = cfemu.ZoneListFiltered; return st }(),
		}, ""},
		{"--strict makes zone-scoped lists empty", []string{"--dns-token", "D", "--strict"}, nil, &options{
			addr: "127.0.0.1:8787", verifyAfter: 10 * time.Second, rateLimit: 1200, rateWindow: 5 * time.Minute,
			dnsTokens: dnsTokenFlag{"D": nil}, strict: cfemu.Harsh(0),
		}, ""},
		{"bad zone name", []string{"--token", "T", "--zone", "localhost"}, nil, nil, "not a domain name"},
		{"bad zone id", []string{"--token", "T", "--zone", "example.com=42"}, nil, nil, "32 lowercase hex"},
		{"zone twice", []string{"--token", "T", "--zone", "example.com", "--zone", "EXAMPLE.com."}, nil, nil, "given twice"},
		{"bad zone account", []string{"--token", "T", "--zone-account", "acme"}, nil, nil, "--zone-account"},
		{"bad DNS token zone", []string{"--dns-token", "D=example.com"}, nil, nil, "--dns-token: zone id"},
		{"bad zone-scoped-list", []string{"--token", "T", "--zone-scoped-list", "hidden"}, nil, nil, "--zone-scoped-list"},
		{"negative DNS propagation", []string{"--token", "T", "--dns-propagation", "-1s"}, nil, nil, "--dns-propagation"},
		{"huge DNS timeout", []string{"--token", "T", "--dns-verification-timeout", "9000h"}, nil, nil, "longer than"},
	}
	runParseCases(t, tests)
}

func harsh(seed int64, failAfter time.Duration) cfemu.Strict {
	st := cfemu.Harsh(seed)
	st.FailVerificationAfter = failAfter
	return st
}

func TestHelpNeverShowsTokens(t *testing.T) {
	_, err := parseOptions([]string{"--token", "SECRET-TOKEN", "--user", "SECRET-TOKEN=alice", "--read-only-token", "SECRET-RO",
		"--dns-token", "SECRET-DNS", "--dns-read-token", "SECRET-DNSR", "-h"},
		func(string) string { return "" })
	if err == nil || strings.Contains(err.Error(), "SECRET-") {
		t.Errorf("help = %v", err)
	}
}

// TestRejectedTokensAreNotEchoed: the flag package quotes a rejected value in its
// error; for flags that carry tokens the message must not.
func TestRejectedTokensAreNotEchoed(t *testing.T) {
	for _, args := range [][]string{
		{"--token", "SECRET TOKEN"},
		{"--token", "SECRET-TOKEN=not-an-account"},
		{"--token", "T", "--user", "SECRET-TOKEN"},
		{"--token", "T", "--user", "SECRET-TOKEN=bad user"},
		{"--token", "T", "--user", "SECRET-TOKEN=alice"},
		{"--read-only-token", "SECRET TOKEN"},
		{"--dns-token", "SECRET TOKEN"},
		{"--dns-token", "SECRET-TOKEN=not-a-zone"},
		{"--dns-read-token", "SECRET\tTOKEN"},
	} {
		_, err := parseOptions(args, func(string) string { return "" })
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("parseOptions(%q) = %v; want an error that does not show the token", args, err)
		}
	}
	_, err := parseOptions(nil, func(k string) string {
		return map[string]string{"CF_EMULATOR_READ_ONLY_TOKENS": "SECRET\x01", "CF_EMULATOR_TOKENS": "T"}[k]
	})
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("bad CF_EMULATOR_READ_ONLY_TOKENS: %v", err)
	}
}

func TestLoadScopes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(good, []byte(`[{"id":"a.read","name":"A"}]`), 0o600)
	_ = os.WriteFile(bad, []byte(`[{"name":"no id"}]`), 0o600)
	got, err := loadScopes(good)
	if err != nil || len(got) != 1 || got[0].ID != "a.read" {
		t.Errorf("loadScopes(good) = %v, %v", got, err)
	}
	if _, err := loadScopes(bad); err == nil {
		t.Error("loadScopes accepted an entry without id")
	}
	if _, err := loadScopes(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("loadScopes accepted a missing file")
	}
}

// TestBinary builds the real binary, runs it on a free port, drives it through cfapi and
// stops it with SIGTERM.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	const token = "binary-test-token"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1:0", "--token", token+"="+testAccount, "--verify-after", "0")
	cmd.Env = []string{} // no CF_EMULATOR_* from the developer's shell
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no output; stderr: %s", stderr.String())
	}
	line := lines.Text()
	baseURL, ok := strings.CutPrefix(line, "cf-emulator listening on ")
	if !ok || !strings.HasPrefix(baseURL, "http://127.0.0.1:") || !strings.HasSuffix(baseURL, "/client/v4") {
		t.Fatalf("first line = %q", line)
	}

	c, err := cfapi.New(cfapi.Credentials{APIToken: token}, cfapi.WithBaseURL(baseURL))
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateOAuthClient(ctx, testAccount, cfapi.CreateOAuthClientParams{
		ClientName: "Binary", RedirectURIs: []string{"https://app.example.org/cb"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scopes: []string{"account.read"}, TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.ListOAuthClients(ctx, testAccount)
	if err != nil || len(list) != 1 || list[0].ClientID != created.ClientID {
		t.Fatalf("list = %+v, %v", list, err)
	}
	got, err := c.GetOAuthClient(ctx, testAccount, created.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created.OAuthClient, *got); diff != "" {
		t.Errorf("get (-created +got):\n%s", diff)
	}
	if _, err := c.ListOAuthClients(ctx, "99999999999999999999999999999999"); !cfapi.IsForbidden(err) {
		t.Errorf("other account: %v, want forbidden", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
		t.Errorf("unexpected extra output: %q", lines.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v; stderr: %s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), token) {
		t.Error("stderr shows the token")
	}
}

// startBinary runs the binary with args (and no CF_EMULATOR_* environment) and
// returns its base URL; it is killed when the test ends.
func startBinary(t *testing.T, bin string, args ...string) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("no output; stderr: %s", stderr.String())
	}
	baseURL, ok := strings.CutPrefix(lines.Text(), "cf-emulator listening on ")
	if !ok {
		t.Fatalf("first line = %q", lines.Text())
	}
	return baseURL, cmd, &stderr
}

// TestBinaryStrictFlags runs the binary with every new flag and checks each took effect.
func TestBinaryStrictFlags(t *testing.T) {
	bin := buildBinary(t)
	const writer, reader = "writer-token", "reader-token"
	baseURL, _, stderr := startBinary(t, bin, "--addr", "127.0.0.1:0", "--token", writer, "--read-only-token", reader,
		"--user", writer+"=alice", "--user", reader+"=alice", "--rate-limit", "5/1m",
		"--strict", "--strict-seed", "11", "--fail-verification-after", "48h")
	root := strings.TrimSuffix(baseURL, cfemu.BasePath)

	res, err := (&http.Client{Timeout: 10 * time.Second}).Get(root + "/_emulator/strict")
	if err != nil {
		t.Fatal(err)
	}
	var st cfemu.Strict
	err = json.NewDecoder(res.Body).Decode(&st)
	_ = res.Body.Close()
	if err != nil || st != harsh(11, 48*time.Hour) {
		t.Errorf("GET /_emulator/strict = %+v, %v", st, err)
	}

	ctx := t.Context()
	w, _ := cfapi.New(cfapi.Credentials{APIToken: writer}, cfapi.WithBaseURL(baseURL))
	r, _ := cfapi.New(cfapi.Credentials{APIToken: reader}, cfapi.WithBaseURL(baseURL))
	created, err := w.CreateOAuthClient(ctx, testAccount, cfapi.CreateOAuthClientParams{
		ClientName: "Strict", RedirectURIs: []string{"https://app.example.org/cb"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scopes: []string{"account.read"}, TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.GetOAuthClient(ctx, testAccount, created.ClientID); err != nil {
		t.Errorf("read with the read-only token: %v", err)
	}
	if err := r.DeleteOAuthClient(ctx, testAccount, created.ClientID); !cfapi.IsForbidden(err) {
		t.Errorf("delete with the read-only token: %v, want forbidden", err)
	}
	if _, err := w.RotateOAuthClientSecret(ctx, testAccount, created.ClientID); err != nil {
		t.Fatal(err)
	}
	var apiErr *cfapi.APIError
	if _, err := w.RotateOAuthClientSecret(ctx, testAccount, created.ClientID); !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest {
		t.Errorf("second rotate under --strict: %v, want 400", err)
	}
	// Five requests by the two tokens of one user used up the user's 5/1m.
	if _, err := w.ListOAuthClients(ctx, testAccount); !rateLimited(err) {
		t.Errorf("sixth request of the user: %v, want rate limited", err)
	}
	for _, tok := range []string{writer, reader} {
		if strings.Contains(stderr.String(), tok) {
			t.Error("stderr shows a token")
		}
	}
}

// TestBinaryDNS runs the binary with a zone and DNS tokens: the zone's id is printed,
// a DNS token publishes the verification record, and the client is verified.
func TestBinaryDNS(t *testing.T) {
	bin := buildBinary(t)
	const writer, reader = "dns-writer", "dns-reader"
	out, stderr := startBinaryLines(t, bin, 3, "--addr", "127.0.0.1:0", "--token", writer+"="+testAccount, "--dns-token", writer,
		"--dns-read-token", reader, "--zone", "example.com="+testZone, "--zone", "example.net", "--dns-propagation", "0", "--verify-after", "0")
	baseURL, _ := strings.CutPrefix(out[0], "cf-emulator listening on ")
	otherID, ok := strings.CutPrefix(out[2], "cf-emulator zone example.net ")
	if out[1] != "cf-emulator zone example.com "+testZone || !ok || len(otherID) != 32 {
		t.Fatalf("zone lines = %q", out[1:])
	}

	ctx := t.Context()
	w, _ := cfapi.New(cfapi.Credentials{APIToken: writer}, cfapi.WithBaseURL(baseURL))
	r, _ := cfapi.New(cfapi.Credentials{APIToken: reader}, cfapi.WithBaseURL(baseURL))
	zones, err := w.ListZones(ctx, "example.com")
	if err != nil || len(zones) != 1 || zones[0].ID != testZone {
		t.Fatalf("ListZones = %+v, %v", zones, err)
	}
	created, err := w.CreateOAuthClient(ctx, testAccount, cfapi.CreateOAuthClientParams{
		ClientName: "DNS", ClientURI: ptr("https://app.example.com"), RedirectURIs: []string{"https://app.example.com/cb"},
		GrantTypes: []string{"authorization_code"}, ResponseTypes: []string{"code"}, Scopes: []string{"account.read"},
		TokenEndpointAuthMethod: cfapi.AuthMethodNone,
	})
	if err != nil {
		t.Fatal(err)
	}
	record := cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.com", Content: cfapi.QuoteTXT(created.ClientURIVerification.Text)}
	if _, err := r.CreateDNSRecord(ctx, testZone, record); !cfapi.IsForbidden(err) {
		t.Errorf("create with the DNS read token: %v, want forbidden", err)
	}
	if _, err := r.ListOAuthClients(ctx, testAccount); !cfapi.IsForbidden(err) {
		t.Errorf("OAuth clients with a DNS-only token: %v, want forbidden", err)
	}
	if _, err := w.CreateDNSRecord(ctx, testZone, record); err != nil {
		t.Fatal(err)
	}
	got, err := w.GetOAuthClient(ctx, testAccount, created.ClientID)
	if err != nil || got.ClientURIVerification.Status != cfapi.VerificationVerified {
		t.Errorf("verification = %+v, %v; want verified at once (--dns-propagation 0)", got.ClientURIVerification, err)
	}
	if found, err := r.ListDNSRecords(ctx, testZone, cfapi.DNSRecordFilter{Type: "TXT"}); err != nil || len(found) != 1 {
		t.Errorf("list with the DNS read token = %+v, %v", found, err)
	}
	for _, tok := range []string{writer, reader} {
		if strings.Contains(stderr.String(), tok) || strings.Contains(strings.Join(out, "\n"), tok) {
			t.Error("the output shows a token")
		}
	}
}

func ptr[T any](v T) *T { return &v }

// startBinaryLines runs the binary with args (and no CF_EMULATOR_* environment) until
// it has printed n lines, and returns them; it is killed when the test ends.
func startBinaryLines(t *testing.T, bin string, n int, args ...string) ([]string, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	var out []string
	for len(out) < n && lines.Scan() {
		out = append(out, lines.Text())
	}
	if len(out) != n {
		t.Fatalf("output %q; stderr: %s", out, stderr.String())
	}
	return out, &stderr
}

// TestBinaryBadFlagsExit2: bad values end the binary with status 2 and a message on
// stderr that never shows a token.
func TestBinaryBadFlagsExit2(t *testing.T) {
	bin := buildBinary(t)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--token", "T", "--strict-seed", "lucky"}, "--strict-seed"},
		{[]string{"--token", "T", "--fail-verification-after", "-48h"}, "--fail-verification-after"},
		{[]string{"--token", "T", "--user", "SECRET-TOKEN"}, "--user"},
		{[]string{"--read-only-token", "SECRET TOKEN"}, "--read-only-token"},
		{[]string{"--dns-token", "SECRET TOKEN"}, "--dns-token"},
		{[]string{"--token", "T", "--zone", "example.com", "--zone", "example.com"}, "--zone"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), bin, tt.args...)
			cmd.Env = []string{}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Fatalf("exit = %v, want status 2", err)
			}
			if msg := stderr.String(); !strings.Contains(msg, tt.want) || strings.Contains(msg, "SECRET") {
				t.Errorf("stderr = %q, want it to name %s and not show the token", msg, tt.want)
			}
		})
	}
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cf-emulator")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestRunRefusesWithoutToken(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), nil, func(string) string { return "" }, &out)
	if err == nil || out.Len() != 0 {
		t.Errorf("run = %v, output %q; want an error and no output", err, out.String())
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--token", "T"}, func(string) string { return "" }, w)
		_ = w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "cf-emulator listening on http://127.0.0.1:") {
		t.Fatalf("line = %q, %v", line, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v, want a clean stop", err)
	}
}

func rateLimited(err error) bool {
	_, ok := cfapi.IsRateLimited(err)
	return ok
}

// parseCase is one command line given to parseOptions, with the options or the error
// it must give.
type parseCase struct {
	name    string
	args    []string
	env     map[string]string
	want    *options
	wantErr string
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(options{})); diff != "" {
				t.Errorf("options (-want +got):\n%s", diff)
			}
		})
	}
}
