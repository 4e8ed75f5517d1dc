//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// managerBinary is the operator, built once for all tests.
var managerBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "demo-test")
	if err != nil {
		panic(err)
	}
	managerBinary = filepath.Join(dir, "manager")
	if err := buildManager(context.Background(), managerBinary); err != nil {
		panic(err)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// TestDemoOnce is the smoke test of `make demo DEMO_ARGS=--once`: the real operator
// binary brings every sample to Ready, the output shows the table, the Secret keys and
// the TXT record but no secret value, and every process is gone afterwards.
func TestDemoOnce(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	err := run(ctx, []string{"--once", "--verify-after=1s", "--timeout=60s", "--dir=" + dir, "--manager-binary=" + managerBinary}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("demo --once: %v", err)
	}
	text := out.String()
	for _, want := range []string{
		"NAME", "CLIENT ID", "VISIBILITY", "VERIFICATION", "READY", "REASON", "AGE", "ACCOUNT", "TXT RECORD",
		"All 4 OAuthClients are Ready",
		"secret/web-app-oauth", "client_id, client_secret",
		// The oauth2-proxy sample's Secret, as its profile renders it (names only).
		"secret/dashboard-oauth2-proxy", "client-id, client-secret, client_id, client_secret, cookie-secret, login-url, oidc-issuer-url, oidc-jwks-url, profile-url, redeem-url, scope, stable-random.oauth2-proxy-cookie",
		"app.example.com  TXT  \"cloudflare_oauth_client_publisher=",
		// web-app goes public with no manual step: published, verified, promoted.
		"web-app (https://app.example.com, verification verified, visibility public)",
		"published by the operator: TXT record ",
		"kubectl --kubeconfig " + filepath.Join(dir, "kubeconfig") + " get oauthclients -o wide",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	// The final table shows web-app public.
	if !regexp.MustCompile(`(?m)^web-app\s+[0-9a-f]{32}\s+public\s+Verified\s+True\s`).MatchString(text) {
		t.Error("the final table does not show web-app public and verified")
	}
	// The emulator's secrets start with cfoauth_; none may be printed.
	if strings.Contains(text, "cfoauth_") {
		t.Error("the output shows a client secret value")
	}

	// Everything stopped: the operator process and the API server of the kubeconfig.
	m := regexp.MustCompile(`pid (\d+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatal("the output names no operator pid")
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the operator (pid %d) is still running: %v", pid, err)
	}
	cfg, err := clientcmd.LoadFromFile(filepath.Join(dir, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil || kctx.Namespace != "demo" {
		t.Errorf("the kubeconfig's context %+v does not default to namespace demo", kctx)
	}
	server, err := url.Parse(cfg.Clusters[kctx.Cluster].Server)
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := net.DialTimeout("tcp", server.Host, time.Second); err == nil {
		_ = conn.Close()
		t.Errorf("kube-apiserver still listens on %s", server.Host)
	}
	if strings.Contains(text, "built the operator") {
		t.Error("the demo built the operator although --manager-binary was given")
	}
	if _, err := os.Stat(filepath.Join(dir, "manager.log")); err != nil {
		t.Errorf("no operator log: %v", err)
	}
}

// TestDemoOnceTimeout: when the samples are not Ready in time, --once fails and says
// which sample is stuck and why.
func TestDemoOnceTimeout(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"--once", "--timeout=1ms", "--dir=" + t.TempDir(), "--manager-binary=" + managerBinary}, &out)
	if err == nil {
		t.Fatalf("demo --once --timeout=1ms succeeded:\n%s", out.String())
	}
	for _, want := range []string{"not every sample was Ready within 1ms", "web-app: ", "operator log ("} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	for _, args := range [][]string{{"--timeout=0"}, {"extra"}, {"--verify-after=-1s"}} {
		if _, err := parseOptions(args, &bytes.Buffer{}); err == nil {
			t.Errorf("parseOptions(%q) succeeded", args)
		}
	}
	o, err := parseOptions(nil, &bytes.Buffer{})
	if err != nil || o.once || o.timeout != 2*time.Minute || o.namespace != "demo" || o.dir != "bin/demo" {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}
