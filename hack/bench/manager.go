package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// managerProcess is the real manager binary, run as a child process so that its RSS is
// its own.
type managerProcess struct {
	cmd        *exec.Cmd
	started    time.Time
	metricsURL string
	// pprofURL serves Go's pprof endpoints (--pprof-bind-address), for heap profiles.
	pprofURL string
	http     *http.Client
	done     chan struct{}

	logPath string

	mu       sync.Mutex
	peakHeap float64 // max sampled go_memstats_heap_alloc_bytes
	rss      []point // VmRSS in MiB over time (seconds since start)
	// peakSplit is RssAnon and RssFile at the largest VmRSS sampled.
	peakSplit [2]float64
	peakRSS   float64
}

// gcTrace summarises the runtime's gctrace lines: the largest heap at a collection
// and the largest live heap after one, in bytes.
type gcTrace struct {
	collections int
	peakHeap    float64
	peakLive    float64
}

// operatorNamespace is the manager's --operator-namespace, where it keeps the claims
// that bind each Cloudflare client to one OAuthClient.
const operatorNamespace = "cfoauth-system"

// startManager runs the manager against the cluster and the emulator at apiURL; the
// operator's namespace must exist (createOperatorNamespace).
func startManager(ctx context.Context, bin, dir string, cl *cluster, apiURL string, args, env []string, scrapeEvery time.Duration) (*managerProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := dir + "/manager.log"
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	m := &managerProcess{
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", port),
		pprofURL:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pprofPort),
		http:       &http.Client{Timeout: 30 * time.Second},
		done:       make(chan struct{}),
		logPath:    logPath,
	}
	all := append([]string{
		"--cloudflare-api-url=" + apiURL,
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(port),
		"--metrics-secure=false",
		"--pprof-bind-address=127.0.0.1:" + strconv.Itoa(pprofPort),
		"--health-probe-bind-address=0",
		"--leader-elect=false",
		"--operator-namespace=" + operatorNamespace,
	}, args...)
	m.cmd = exec.Command(bin, all...)
	// gctrace makes the runtime print every collection's heap sizes to stderr: exact
	// peak and live heap without instrumenting the manager.
	godebug := "gctrace=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + ",gctrace=1"
	}
	m.cmd.Env = append(os.Environ(), "KUBECONFIG="+cl.kubeconfig, "GODEBUG="+godebug)
	m.cmd.Env = append(m.cmd.Env, env...)
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	// The manager must not outlive the benchmark, even if the benchmark is killed.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	m.started = time.Now()
	if err := m.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, err
	}
	go func() {
		_ = m.cmd.Wait()
		_ = logFile.Close()
		close(m.done)
	}()
	go m.sample(ctx, scrapeEvery)
	return m, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sample records RSS every second and the Go heap every scrapeEvery.
func (m *managerProcess) sample(ctx context.Context, scrapeEvery time.Duration) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastScrape := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.done:
			return
		case now := <-tick.C:
			if mem, err := m.memory(); err == nil {
				m.mu.Lock()
				m.rss = append(m.rss, point{X: now.Sub(m.started).Seconds(), Y: mem.rss / mib})
				if mem.rss > m.peakRSS {
					m.peakRSS, m.peakSplit = mem.rss, [2]float64{mem.anon, mem.file}
				}
				m.mu.Unlock()
			}
			if now.Sub(lastScrape) >= scrapeEvery {
				lastScrape = now
				m.scrapeHeap(ctx)
			}
		}
	}
}

// scrapeHeap reads the manager's metrics once and keeps the largest heap seen.
func (m *managerProcess) scrapeHeap(ctx context.Context) {
	ss, err := scrape(ctx, m.http, m.metricsURL)
	if err != nil {
		return
	}
	heap := ss.sum("go_memstats_heap_alloc_bytes", nil)
	m.mu.Lock()
	m.peakHeap = max(m.peakHeap, heap)
	m.mu.Unlock()
}

// procMemory is the manager's resident memory from /proc/<pid>/status, in bytes.
type procMemory struct {
	rss, hwm, anon, file float64
}

func (m *managerProcess) memory() (procMemory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		return procMemory{}, err
	}
	kb := func(key string) float64 {
		v := strings.TrimSuffix(fieldOf(strings.NewReader(string(b)), key), " kB")
		n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return n * 1024
	}
	return procMemory{rss: kb("VmRSS"), hwm: kb("VmHWM"), anon: kb("RssAnon"), file: kb("RssFile")}, nil
}

// gcTrace parses the gctrace lines of the manager's log:
// "gc 12 @3.1s 2%: ... 79->80->41 MB, 82 MB goal, ...".
func (m *managerProcess) gcTrace() gcTrace {
	var t gcTrace
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		return t
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "gc ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			parts := strings.Split(f, "->")
			if len(parts) != 3 {
				continue
			}
			var v [3]float64
			for i, p := range parts {
				v[i], _ = strconv.ParseFloat(p, 64)
			}
			t.collections++
			t.peakHeap = max(t.peakHeap, v[0]*mib, v[1]*mib)
			t.peakLive = max(t.peakLive, v[2]*mib)
			break
		}
	}
	return t
}

// waitMetrics waits until the manager serves /metrics.
func (m *managerProcess) waitMetrics(ctx context.Context) error {
	ok := waitFor(ctx, 100*time.Millisecond, time.Minute, func() bool {
		select {
		case <-m.done:
			return true
		default:
		}
		_, err := scrape(ctx, m.http, m.metricsURL)
		return err == nil
	})
	select {
	case <-m.done:
		return errors.New("the manager exited; see manager.log in the temporary directory (-keep-tmp)")
	default:
	}
	if !ok {
		return errors.New("the manager did not serve /metrics within a minute")
	}
	return nil
}

// stop terminates the manager gracefully, or kills it after 15 seconds.
func (m *managerProcess) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(15 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func (m *managerProcess) rssTimeline() []point {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]point(nil), m.rss...)
}

func (m *managerProcess) heapPeak() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakHeap
}

// rssSplit returns RssAnon and RssFile at the largest RSS sampled.
func (m *managerProcess) rssSplit() (anon, file float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakSplit[0], m.peakSplit[1]
}

// createOperatorNamespace creates the manager's --operator-namespace, before the
// apiserver's writes are counted: it is the benchmark's write, not the operator's.
func createOperatorNamespace(ctx context.Context, cl *cluster) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}
	if err := cl.client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the operator namespace: %w", err)
	}
	return nil
}
