package observability_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const (
	metricsToken      = "observability-token-4c8e1f"
	metricsAccount    = "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
	operatorNamespace = "cfoauth-system"
	teamNamespace     = "team-a"
)

// TestManagerExposesEveryMetric runs the manager binary, built from ./cmd/manager,
// against a source-built kube-apiserver and the in-process Cloudflare emulator; makes
// one client Ready, rotates its secret and stalls another object; scrapes /metrics; and
// fails unless every metric the dashboard and the alerts name is exposed (a histogram
// by its _bucket, _sum and _count series), docs/observability.md documents every operator metric, and
// no token appears in the scrape.
func TestManagerExposesEveryMetric(t *testing.T) {
	g := NewWithT(t)
	want := map[string][]string{}
	for _, e := range append(dashboardExpressions(t), ruleExpressions(t)...) {
		for _, name := range metricNames(t, e) {
			want[name] = append(want[name], e.where)
		}
	}

	bin := buildManager(t)
	env, err := testenv.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := adminKubeconfig(t, env)
	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8s, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	// A rate limit makes the emulator count the user's window, as Cloudflare does.
	emu := httptest.NewServer(cfemu.New(cfemu.Options{
		Tokens:    map[string][]string{metricsToken: nil},
		RateLimit: 1200, RateWindow: 5 * time.Minute,
	}))
	t.Cleanup(emu.Close)

	ctx := t.Context()
	for _, ns := range []string{operatorNamespace, teamNamespace} {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}
	g.Expect(k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: teamNamespace, Name: "cloudflare"},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: metricsToken},
	})).To(Succeed())
	rotating := oauthClient("rotating", "cloudflare")
	rotating.Spec.SecretRotation = &v1alpha1.SecretRotation{RotationID: "first", Every: &metav1.Duration{Duration: 720 * time.Hour}}
	g.Expect(k8s.Create(ctx, rotating)).To(Succeed())
	g.Expect(k8s.Create(ctx, oauthClient("stalled", "missing-credentials"))).To(Succeed())

	addr := freeAddress(t)
	startManager(t, bin, kubeconfig, emu.URL+"/client/v4", addr)

	key := client.ObjectKeyFromObject(rotating)
	g.Eventually(func(g Gomega) {
		obj := &v1alpha1.OAuthClient{}
		g.Expect(k8s.Get(ctx, key, obj)).To(Succeed())
		ready := meta(obj, v1alpha1.ConditionReady)
		g.Expect(ready).NotTo(BeNil())
		g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), ready.Message)
	}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	// A new rotationID rotates now: the previous secret stays valid for the overlap.
	g.Eventually(func() error {
		obj := &v1alpha1.OAuthClient{}
		if err := k8s.Get(ctx, key, obj); err != nil {
			return err
		}
		obj.Spec.SecretRotation.RotationID = "second"
		return k8s.Update(ctx, obj)
	}, 10*time.Second, 100*time.Millisecond).Should(Succeed())

	var families map[string]*dto.MetricFamily
	var missing []string
	g.Eventually(func(g Gomega) {
		families = scrape(g, addr)
		exposed := exposedNames(families)
		missing = missing[:0]
		for name := range want {
			if !exposed[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		g.Expect(missing).To(BeEmpty(), "not exposed (yet)")
	}, 60*time.Second, 250*time.Millisecond).Should(Succeed(), func() string {
		var b strings.Builder
		for _, name := range missing {
			fmt.Fprintf(&b, "%s, used by %s\n", name, strings.Join(want[name], "; "))
		}
		return b.String()
	})

	t.Run("docs/observability.md documents every operator metric", func(t *testing.T) {
		readme, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "observability.md"))
		if err != nil {
			t.Fatal(err)
		}
		for name := range families {
			if strings.HasPrefix(name, "cloudflare_") || strings.HasPrefix(name, "oauthclient") {
				if !strings.Contains(string(readme), "| `"+name+"` |") {
					t.Errorf("docs/observability.md has no row for %s in its metrics table", name)
				}
			}
		}
	})
	t.Run("no token in the scrape", func(t *testing.T) {
		var b strings.Builder
		for _, mf := range families {
			if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
				t.Fatal(err)
			}
		}
		if strings.Contains(b.String(), metricsToken) {
			t.Error("the Cloudflare token appears in /metrics")
		}
	})
}

func oauthClient(name, credentials string) *v1alpha1.OAuthClient {
	method := v1alpha1.AuthMethodClientSecretPost
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: teamNamespace, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               metricsAccount,
			CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: credentials},
			ClientName:              new("Observability " + name),
			RedirectURIs:            &[]string{"https://" + name + ".example.com/callback"},
			GrantTypes:              &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode},
			Scopes:                  &[]string{"account.read"},
			TokenEndpointAuthMethod: &method,
		},
	}
}

func meta(obj *v1alpha1.OAuthClient, typ string) *metav1.Condition {
	for i := range obj.Status.Conditions {
		if obj.Status.Conditions[i].Type == typ {
			return &obj.Status.Conditions[i]
		}
	}
	return nil
}

// buildManager builds ./cmd/manager as the release image does.
func buildManager(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "manager")
	build := exec.Command("go", "build", "-o", bin, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the manager: %v\n%s", err, out)
	}
	return bin
}

// adminKubeconfig writes a kubeconfig of a system:masters user of env.
func adminKubeconfig(t *testing.T, env *envtest.Environment) string {
	t.Helper()
	user, err := env.AddUser(envtest.User{Name: "observability", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(p, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// freeAddress returns a loopback address with a port free a moment ago.
func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// startManager runs the manager with plain-HTTP metrics on addr; it is killed when the
// test ends, and its log is shown when the test fails.
func startManager(t *testing.T, bin, kubeconfig, apiURL, addr string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "manager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--cloudflare-api-url="+apiURL,
		"--metrics-bind-address="+addr,
		"--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--operator-namespace="+operatorNamespace,
		"--remote-sync-period=2s",
		"--create-settle=1s",
	)
	var env []string
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); name != "KUBECONFIG" && name != "POD_NAMESPACE" && !strings.HasPrefix(name, "CLOUDFLARE_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("manager log:\n%s", tail(string(out), 60))
			}
		}
	})
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// scrape reads and parses the manager's /metrics.
func scrape(g Gomega, addr string) map[string]*dto.MetricFamily {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	g.Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	body, err := io.ReadAll(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil && !errors.Is(err, io.EOF) {
		g.Expect(err).NotTo(HaveOccurred())
	}
	return families
}

// exposedNames is every series name of the families: a histogram's _bucket, _sum and
// _count, a summary's _sum and _count.
func exposedNames(families map[string]*dto.MetricFamily) map[string]bool {
	out := map[string]bool{}
	for name, mf := range families {
		if len(mf.GetMetric()) == 0 {
			continue
		}
		out[name] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name+"_sum"], out[name+"_count"] = true, true
		}
	}
	return out
}
