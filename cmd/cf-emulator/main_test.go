package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

const testAccount = "023e105f4ecef8ad9ca31a8372d0c353"

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    *options
		wantErr string
	}{
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
	}
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

func TestHelpNeverShowsTokens(t *testing.T) {
	_, err := parseOptions([]string{"--token", "SECRET-TOKEN", "-h"}, func(string) string { return "" })
	if err == nil || strings.Contains(err.Error(), "SECRET-TOKEN") {
		t.Errorf("help = %v", err)
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
