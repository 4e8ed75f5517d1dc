package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// The plugin's tests drive the built binary as a process against a real kube-apiserver
// (envtest), the in-process Cloudflare emulator (strict), and the real reconciler
// running in this test process, as a cluster with the operator installed would.

const (
	testToken = "plugin-test-token-5c2e"
)

var suite struct {
	env        *envtest.Environment
	kube       client.Client
	kubeconfig string // a system:masters kubeconfig file for the plugin
	bin        string // the built plugin
	emu        *cfemu.Server
	apiURL     string // the emulator's base URL, for --api-url
}

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	logf.SetLogger(logr.Discard()) // the in-process operator's logs are not under test here
	dir, err := os.MkdirTemp("", "kubectl-cfoauth-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	suite.bin = filepath.Join(dir, "kubectl-cfoauth")
	if out, err := exec.Command("go", "build", "-o", suite.bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugin: %v\n%s", err, out)
		return 1
	}
	if suite.env, err = testenv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = suite.env.Stop() }()
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = v1alpha1.AddToScheme(scheme)
	if suite.kube, err = client.New(suite.env.Config, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	user, err := suite.env.AddUser(envtest.User{Name: "plugin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(suite.kubeconfig, kubeconfig, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	suite.emu = cfemu.New(cfemu.Options{Tokens: map[string][]string{testToken: nil}, Strict: cfemu.Harsh(1130)})
	srv := httptest.NewServer(suite.emu)
	defer srv.Close()
	suite.apiURL = srv.URL + cfemu.BasePath

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := startOperator(ctx, scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// startOperator runs the reconciler in this process, as the installed operator would.
func startOperator(ctx context.Context, scheme *runtime.Scheme) error {
	mgr, err := ctrl.NewManager(suite.env.Config, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	if err != nil {
		return err
	}
	httpClient := &http.Client{Timeout: 5 * time.Second}
	r := &controller.OAuthClientReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("cloudflare-oauth-operator"),
		NewAPI: func(creds cfapi.Credentials) (controller.CloudflareAPI, error) {
			return cfapi.New(creds, cfapi.WithBaseURL(suite.apiURL), cfapi.WithHTTPClient(httpClient))
		},
		SyncPeriod:               2 * time.Second,
		VerificationPollInterval: 300 * time.Millisecond,
		RequestTimeout:           httpClient.Timeout,
		CreateSettle:             time.Second,
	}
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	go func() {
		if err := mgr.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	return nil
}

// result is one run of the plugin.
type result struct {
	stdout, stderr string
	code           int
}

// plugin runs the built binary with the test kubeconfig; env adds KEY=VALUE variables
// (nothing else leaks in from the developer's shell).
func plugin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), suite.bin, append([]string{"--kubeconfig", suite.kubeconfig}, args...)...)
	cmd.Env = append([]string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running the plugin: %v", err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// namespace creates a namespace holding a credentials Secret "cf" for the emulator.
func namespace(t *testing.T, name string) string {
	t.Helper()
	if err := suite.kube.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := suite.kube.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: "cf"},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: testToken},
	}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls cond (every 50ms) until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		<-tick.C
	}
}

// noToken asserts the test token appears in no output.
func noToken(t *testing.T, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, testToken) {
		t.Fatalf("the API token leaked into the plugin's output:\n%s\n%s", r.stdout, r.stderr)
	}
}
