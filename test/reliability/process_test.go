package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// userConfig is the rest.Config of the managers' user, for the apiserver proxy.
var userConfig *rest.Config

// managerOptions are what differs between manager processes.
type managerOptions struct {
	name       string // for the log file
	kubeconfig string
	apiURL     string
	token      string // CLOUDFLARE_API_TOKEN; "" uses credentialsRef Secrets only
	args       []string
}

// manager is one manager process.
type manager struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	started time.Time
}

// startManager runs the manager binary. It is killed when the test ends and never
// outlives the test process.
func startManager(t *testing.T, o managerOptions) *manager {
	t.Helper()
	args := append([]string{
		"--cloudflare-api-url=" + o.apiURL,
		"--remote-sync-period=2s",
		"--verification-poll-interval=1s",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--cloudflare-request-budget=0",
		"--cloudflare-api-timeout=5s",
		"--operator-namespace=" + operatorNamespace,
		// The suite's objects use the default credentials in namespaces of their own:
		// a single-tenant cluster, where every namespace may.
		"--default-credentials-namespace-selector=",
	}, o.args...)
	logPath := filepath.Join(logDir(t), o.name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fmt.Fprintf(logFile, "=== start %s %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command(suite.managerBin, args...)
	cmd.Env = managerEnv(o)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	m := &manager{t: t, name: o.name, cmd: cmd, logPath: logPath, done: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(m.done)
	}()
	t.Cleanup(m.kill)
	return m
}

// managerEnv is the test's environment without anything that would change what the
// manager talks to, plus the kubeconfig and token.
func managerEnv(o managerOptions) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "KUBECONFIG" || name == "POD_NAMESPACE" || strings.HasPrefix(name, "CLOUDFLARE_") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "KUBECONFIG="+o.kubeconfig)
	if o.token != "" {
		env = append(env, "CLOUDFLARE_API_TOKEN="+o.token)
	}
	return env
}

// kill sends SIGKILL and waits for the process to be gone.
func (m *manager) kill() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}

// stop sends SIGTERM and waits for a graceful exit, killing the process after 30s.
func (m *manager) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		m.t.Errorf("%s did not exit within 30s of SIGTERM", m.name)
		m.kill()
	}
}

// tail returns the last lines of the manager's log, for failure messages.
func (m *manager) tail(n int) string {
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// grepLog counts log lines containing s.
func (m *manager) grepLog(s string) int {
	f, err := os.Open(m.logPath)
	if err != nil {
		return 0
	}
	defer func() { _ = f.Close() }()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			n++
		}
	}
	return n
}

var logDirs sync.Map // test name -> dir

// logDir is where a test's manager logs go. They are kept (and their path logged)
// when the test fails.
func logDir(t *testing.T) string {
	t.Helper()
	if d, ok := logDirs.Load(t.Name()); ok {
		return d.(string)
	}
	d, err := os.MkdirTemp("", "reliability-"+strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-")
	if err != nil {
		t.Fatal(err)
	}
	logDirs.Store(t.Name(), d)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RELIABILITY_KEEP_LOGS") != "" {
			t.Logf("manager logs kept in %s", d)
			return
		}
		_ = os.RemoveAll(d)
	})
	return d
}

// writeKubeconfig writes the managers' user's kubeconfig to a file.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(logDir(t), "kubeconfig")
	if err := os.WriteFile(p, suite.kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// apiProxy sits between a manager and the apiserver and can fail its writes, as an
// apiserver (or etcd) under trouble would. The manager reaches it over plain HTTP; the
// proxy authenticates upstream as the managers' user.
type apiProxy struct {
	srv        *httptest.Server
	kubeconfig string

	mu sync.Mutex
	// failWrites is how many more writes to Secrets and OAuthClients in namespace
	// fail; applyFirst sends them to the apiserver first (the write happens, the
	// response is lost).
	failWrites int
	applyFirst bool
	namespace  string
	failed     []string
}

var errInjected = errors.New("injected apiserver write failure")

type ctxKey struct{}

func newAPIProxy(t *testing.T) *apiProxy {
	t.Helper()
	target, err := url.Parse(userConfig.Host)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := rest.TransportFor(userConfig)
	if err != nil {
		t.Fatal(err)
	}
	p := &apiProxy{}
	rp := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     rt,
		FlushInterval: -1, // watches stream
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Context().Value(ctxKey{}) != nil {
				return errInjected
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, errInjected) {
				writeStatus(w, http.StatusInternalServerError, "etcdserver: request timed out (injected)")
				return
			}
			writeStatus(w, http.StatusBadGateway, "proxy: "+err.Error())
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch fail, apply := p.take(r); {
		case fail && apply:
			rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, true)))
		case fail:
			writeStatus(w, http.StatusInternalServerError, "etcdserver: request timed out (injected)")
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.srv.Close)
	p.kubeconfig = filepath.Join(logDir(t), "kubeconfig-proxy")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: proxy
  cluster:
    server: %s
users:
- name: proxy
  user: {}
contexts:
- name: proxy
  context:
    cluster: proxy
    user: proxy
current-context: proxy
`, p.srv.URL)
	if err := os.WriteFile(p.kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// take decides whether this request fails, consuming one failure.
func (p *apiProxy) take(r *http.Request) (fail, applyFirst bool) {
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return false, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ours := strings.Contains(r.URL.Path, "/secrets") || strings.Contains(r.URL.Path, "/oauthclients")
	if p.failWrites <= 0 || !ours || !strings.Contains(r.URL.Path, "/namespaces/"+p.namespace+"/") {
		return false, false
	}
	p.failWrites--
	p.failed = append(p.failed, r.Method+" "+r.URL.Path)
	return true, p.applyFirst
}

// failNextWrites makes the next n writes in namespace fail.
func (p *apiProxy) failNextWrites(namespace string, n int, applyFirst bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.namespace, p.failWrites, p.applyFirst = namespace, n, applyFirst
	p.failed = nil
}

// stopFailing cancels unused failures and returns the writes that failed.
func (p *apiProxy) stopFailing() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failWrites = 0
	return p.failed
}

func writeStatus(w http.ResponseWriter, code int, msg string) {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":"InternalError","code":%d}`, msg, code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}
