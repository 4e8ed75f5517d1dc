// Package reliability_test breaks the operator on purpose and measures what survives:
// Cloudflare faults, kill -9 at random points, writes Cloudflare commits after
// answering with a fault, leader failover, another tool exhausting the Cloudflare
// user's rate limit, two tokens of one user, and client claims across a restart.
// Every scenario runs the real manager binary (built once from ./cmd/manager) as a
// child process against a source-built kube-apiserver and the in-process Cloudflare
// emulator in its strict modes.
//
// `go test ./...` runs every scenario at reduced scale (about three minutes on two
// cores). `make test-reliability` sets RELIABILITY_SCALE=full: 200 objects per fault,
// 100 crash iterations, a failover in the middle of 200 creates, 100 objects per
// rate-limit scenario, and writes the figures to RELIABILITY_REPORT. RELIABILITY_SEED
// replays a crash run and RELIABILITY_CRASH_ITERATIONS overrides its length.
package reliability_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// scale is how hard the suite pushes.
type scale struct {
	name string
	// faultObjects is how many OAuthClients each fault scenario manages.
	faultObjects int
	// faultWindow is how long each fault lasts.
	faultWindow time.Duration
	// crashIterations is how many times the manager is killed with SIGKILL.
	crashIterations int
	// lostResponses is how many iterations lose a response without a kill: half an
	// emulator fault after the change was applied, half failing apiserver writes.
	lostResponses int
	// commitLater is how many iterations lose a Cloudflare response whose write
	// commits a few hundred milliseconds after the fault was answered.
	commitLater int
	// failoverObjects is the size of the wave of creates the leader dies in.
	failoverObjects int
	// rateObjects is how many objects the rate-limit scenarios create (per namespace).
	rateObjects int
	// Leader election flags of the failover scenario.
	leaseDuration, renewDeadline, retryPeriod time.Duration
	// settleTimeout bounds every wait for convergence.
	settleTimeout time.Duration
}

var (
	reducedScale = scale{
		name: "reduced", faultObjects: 40, faultWindow: 10 * time.Second,
		crashIterations: 10, lostResponses: 4, commitLater: 4, failoverObjects: 40, rateObjects: 30,
		leaseDuration: 6 * time.Second, renewDeadline: 4 * time.Second, retryPeriod: time.Second,
		settleTimeout: 90 * time.Second,
	}
	// fullScale uses the manager's default lease flags, so the failover figure is the
	// one a production install sees.
	fullScale = scale{
		name: "full", faultObjects: 200, faultWindow: time.Minute,
		crashIterations: 100, lostResponses: 40, commitLater: 20, failoverObjects: 200, rateObjects: 100,
		leaseDuration: 15 * time.Second, renewDeadline: 10 * time.Second, retryPeriod: 2 * time.Second,
		settleTimeout: 4 * time.Minute,
	}
)

// operatorNamespace is the managers' --operator-namespace: it holds the client claims.
const operatorNamespace = "cfoauth-system"

// suite is what every test shares: one control plane, one manager binary.
var suite struct {
	scale      scale
	env        *envtest.Environment
	kube       client.WithWatch
	kubeconfig []byte // system:masters user for the manager processes
	managerBin string
	report     report
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	suite.scale = reducedScale
	if os.Getenv("RELIABILITY_SCALE") == "full" {
		suite.scale = fullScale
	}
	suite.scale.crashIterations = int(envInt("RELIABILITY_CRASH_ITERATIONS", int64(suite.scale.crashIterations)))
	dir, err := os.MkdirTemp("", "reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()

	suite.managerBin = filepath.Join(dir, "manager")
	// go test puts its own GOROOT/bin first in PATH.
	build := exec.Command("go", "build", "-o", suite.managerBin, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the manager: %v\n%s", err, out)
		return 1
	}

	env, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	suite.env = env
	if err := v1alpha1.AddToScheme(clientgoscheme.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	suite.kube, err = client.NewWithWatch(env.Config, client.Options{Scheme: clientgoscheme.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	user, err := env.AddUser(envtest.User{Name: "reliability", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if suite.kubeconfig, err = user.KubeConfig(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	userConfig = user.Config()
	// Every manager keeps its client claims in the operator namespace; the managers of
	// all scenarios share this one, as several installs on one cluster would.
	if err := suite.kube.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	started := time.Now()
	code := m.Run()
	suite.report.finish(time.Since(started))
	return code
}

// report collects the figures of a run and writes them to RELIABILITY_REPORT.
type report struct {
	mu       sync.Mutex
	sections map[string]*section
}

// section is a heading, an optional table header and rows (sorted when written).
type section struct {
	header []string
	rows   []string
	notes  []string
}

func (r *report) section(name string) *section {
	if r.sections == nil {
		r.sections = map[string]*section{}
	}
	s := r.sections[name]
	if s == nil {
		s = &section{}
		r.sections[name] = s
	}
	return s
}

// table sets a section's table header: column names.
func (r *report) table(name string, columns ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.section(name)
	s.header = []string{"| " + strings.Join(columns, " | ") + " |", strings.Repeat("|---", len(columns)) + "|"}
}

// row adds a table row.
func (r *report) row(name string, cells ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = fmt.Sprint(c)
	}
	s := r.section(name)
	s.rows = append(s.rows, "| "+strings.Join(parts, " | ")+" |")
}

// note adds a line below a section's table.
func (r *report) note(name, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.section(name)
	s.notes = append(s.notes, fmt.Sprintf(format, args...))
}

func (r *report) finish(took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sections) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Reliability figures (%s scale, %s, %d CPUs, took %s)\n",
		suite.scale.name, time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), took.Round(time.Second))
	names := make([]string, 0, len(r.sections))
	for n := range r.sections {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		s := r.sections[n]
		fmt.Fprintf(&b, "\n## %s\n\n", n)
		if len(s.rows) > 0 {
			slices.Sort(s.rows)
			for _, l := range append(s.header, s.rows...) {
				fmt.Fprintln(&b, l)
			}
			fmt.Fprintln(&b)
		}
		for _, l := range s.notes {
			fmt.Fprintln(&b, "- "+l)
		}
	}
	fmt.Print(b.String())
	if path := os.Getenv("RELIABILITY_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
}

// envInt reads an integer override such as RELIABILITY_SEED.
func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}
