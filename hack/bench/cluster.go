package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// cluster is one source-built control plane, fresh for each scenario so that neither
// the manager's caches nor the apiserver's counters carry anything over.
type cluster struct {
	env        *envtest.Environment
	client     client.Client
	metrics    *http.Client
	kubeconfig string
}

func startCluster(dir string) (*cluster, error) {
	env, err := testenv.Start()
	if err != nil {
		return nil, err
	}
	c := &cluster{env: env}
	if err := c.init(dir); err != nil {
		_ = env.Stop()
		return nil, err
	}
	return c, nil
}

func (c *cluster) init(dir string) error {
	var err error
	if c.client, err = client.New(c.env.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if c.metrics, err = rest.HTTPClientFor(c.env.Config); err != nil {
		return err
	}
	// The manager runs as its own user with a kubeconfig file, as in a real install.
	user, err := c.env.AddUser(envtest.User{Name: "oauth-operator-bench", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	c.kubeconfig = dir + "/kubeconfig"
	return os.WriteFile(c.kubeconfig, kc, 0o600)
}

func (c *cluster) stop() {
	if err := c.env.Stop(); err != nil {
		logf("stopping the control plane: %v", err)
	}
}

// createNamespace creates a namespace holding a credentials Secret with the token.
func (c *cluster) createNamespace(ctx context.Context, name, token string) error {
	if err := c.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		return err
	}
	return c.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: name, Name: credentialsSecret},
		StringData: map[string]string{"apiToken": token},
	})
}

// writeCounts are the apiserver's mutating requests (POST, PUT, PATCH, DELETE) by
// resource ("oauthclients", "oauthclients/status", "secrets", "events", "leases"), from
// its own apiserver_request_total. The apiserver renews its own identity Lease in
// kube-system with a PUT every 10 seconds, whoever else is connected, so PUTs of Leases
// are left out; the claim Leases the operator keeps in its namespace are created and
// deleted (claims.go), never updated, so they count. The metric has no namespace label
// to tell the two apart otherwise.
type writeCounts map[string]float64

func (c *cluster) writes(ctx context.Context) (writeCounts, error) {
	samples, err := scrape(ctx, c.metrics, strings.TrimSuffix(c.env.Config.Host, "/")+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("scraping the apiserver: %w", err)
	}
	out := writeCounts{}
	for _, s := range samples.named("apiserver_request_total") {
		switch s.labels["verb"] {
		case "POST", "PUT", "PATCH", "DELETE":
		default:
			continue
		}
		res := s.labels["resource"]
		if res == "" || res == "leases" && s.labels["verb"] == "PUT" {
			continue
		}
		if sub := s.labels["subresource"]; sub != "" {
			res += "/" + sub
		}
		out[res] += s.value
	}
	return out, nil
}

// minus returns the writes made since before.
func (w writeCounts) minus(before writeCounts) map[string]int {
	out := map[string]int{}
	for k, v := range w {
		if d := int(v - before[k]); d > 0 {
			out[k] = d
		}
	}
	return out
}

// buildManager builds cmd/manager into dir, as a release would.
func buildManager(ctx context.Context, dir string) (string, error) {
	bin := dir + "/manager"
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", "benchbaseline", "-o", bin, "./cmd/manager")
	cmd.Dir = testenv.RepoRoot()
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the manager: %w", err)
	}
	return bin, nil
}

// provenance returns the commit the manager is built from and the uncommitted files
// that also went into it; empty outside a git checkout.
func provenance(ctx context.Context) (string, []string) {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = testenv.RepoRoot()
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "--short=12", "HEAD")
	var dirty []string
	for _, line := range strings.Split(git("status", "--porcelain", "--", "cmd", "internal", "api", "go.mod"), "\n") {
		if len(line) > 3 {
			dirty = append(dirty, strings.TrimSpace(line[3:]))
		}
	}
	return commit, dirty
}

// deployedRuntimeEnv returns the Go runtime variables (GOMEMLIMIT, GOGC, ...) that
// config/manager/manager.yaml sets on the manager container, so the benchmark runs the
// manager the way it is deployed.
func deployedRuntimeEnv() []string {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "manager", "manager.yaml"))
	if err != nil {
		return nil
	}
	var out []string
	for _, doc := range strings.Split(string(b), "\n---") {
		var d appsv1.Deployment
		if yaml.Unmarshal([]byte(doc), &d) != nil || d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "GO") && e.Value != "" {
					out = append(out, e.Name+"="+e.Value)
				}
			}
		}
	}
	return out
}

// machineInfo describes where the numbers were measured.
type machineInfo struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB int    `json:"memoryGiB"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
}

func machine() machineInfo {
	m := machineInfo{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	m.CPUModel = firstField("/proc/cpuinfo", "model name")
	if kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(firstField("/proc/meminfo", "MemTotal")), " kB")); err == nil {
		m.MemoryGiB = (kb + 512*1024) / (1024 * 1024)
	}
	return m
}

// firstField returns the value of the first "key: value" line of a /proc file.
func firstField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer func() { _ = f.Close() }()
	return fieldOf(f, key)
}

func fieldOf(r io.Reader, key string) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitFor polls cond every interval until it holds, ctx ends or timeout passes.
func waitFor(ctx context.Context, interval, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
