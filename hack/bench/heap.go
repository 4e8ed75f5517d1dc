package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// heapProfile summarises one heap profile of the manager in steady state: what is
// live, and where it was allocated.
type heapProfile struct {
	// AtSeconds is when it was taken, in seconds since the manager's start.
	AtSeconds    float64 `json:"atSeconds"`
	InuseBytes   int64   `json:"inuseBytes"`
	InuseObjects int64   `json:"inuseObjects"`
	// Sites are the largest allocation sites by live bytes, largest first.
	Sites []heapSite `json:"sites"`
}

// heapSite is the live memory allocated by one function (flat: the innermost frame
// outside the runtime, which is where Go's heap profile starts its stacks).
type heapSite struct {
	Function string `json:"function"`
	Bytes    int64  `json:"bytes"`
	Objects  int64  `json:"objects"`
	// Caller is the nearest frame above Function in this module, controller-runtime or
	// client-go, the one most of the site's bytes were allocated through: why they are
	// live. CallerShare is that share of the site's bytes.
	Caller      string  `json:"caller,omitempty"`
	CallerShare float64 `json:"callerShare,omitempty"`
}

// heapSites is how many allocation sites a summary keeps.
const heapSites = 10

// modulePath is this repository's Go module.
const modulePath = "github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/"

// callerPrefixes are the packages whose frames say why memory is held: ours, and the
// controller-runtime and client-go machinery (caches, informers, work queues).
var callerPrefixes = []string{modulePath, "sigs.k8s.io/controller-runtime/", "k8s.io/client-go/"}

// profileHeap fetches the manager's heap profile after a collection (?gc=1), keeps the
// raw profile in dir and summarises it.
func (m *managerProcess) profileHeap(ctx context.Context, dir, name string) (*heapProfile, error) {
	at := time.Since(m.started).Seconds()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.pprofURL+"/heap?gc=1", nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the heap profile: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("fetching the heap profile: %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("fetching the heap profile: %w", err)
	}
	file := filepath.Join(dir, name+".heap.pb.gz")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		return nil, err
	}
	logf("  heap profile in %s (go tool pprof -sample_index=inuse_space %s)", file, file)
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the heap profile: %w", err)
	}
	hp, err := summariseHeap(p)
	if err != nil {
		return nil, err
	}
	hp.AtSeconds = at
	return hp, nil
}

// summariseHeap adds up inuse_space and inuse_objects by the innermost function, and
// finds for each the caller that explains it.
func summariseHeap(p *profile.Profile) (*heapProfile, error) {
	space, objects := sampleIndex(p, "inuse_space"), sampleIndex(p, "inuse_objects")
	if space < 0 || objects < 0 {
		return nil, fmt.Errorf("the heap profile has no inuse_space or inuse_objects")
	}
	hp := &heapProfile{}
	sites := map[string]*heapSite{}
	callers := map[string]map[string]int64{}
	for _, s := range p.Sample {
		frames := frameNames(s)
		if len(frames) == 0 {
			continue
		}
		b, n := s.Value[space], s.Value[objects]
		if b == 0 {
			continue // allocated and since freed
		}
		hp.InuseBytes += b
		hp.InuseObjects += n
		leaf := leafFrame(frames)
		site := sites[frames[leaf]]
		if site == nil {
			site = &heapSite{Function: frames[leaf]}
			sites[frames[leaf]] = site
			callers[frames[leaf]] = map[string]int64{}
		}
		site.Bytes += b
		site.Objects += n
		callers[frames[leaf]][nearestCaller(frames[leaf], frames[leaf+1:])] += b
	}
	all := make([]*heapSite, 0, len(sites))
	for _, s := range sites {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Bytes > all[j].Bytes })
	for _, s := range all[:min(len(all), heapSites)] {
		s.Caller, s.CallerShare = dominant(callers[s.Function], s.Bytes)
		hp.Sites = append(hp.Sites, *s)
	}
	return hp, nil
}

func sampleIndex(p *profile.Profile, typ string) int {
	for i, st := range p.SampleType {
		if st.Type == typ {
			return i
		}
	}
	return -1
}

// frameNames returns a sample's function names, innermost first, inlined frames
// included.
func frameNames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				out = append(out, line.Function.Name)
			}
		}
	}
	return out
}

// leafFrame is the index of the innermost frame outside the runtime (Go's heap
// profile usually starts there already); when every frame is the runtime's, the first
// that is not a generic allocator (runtime.malg: a goroutine).
func leafFrame(frames []string) int {
	for i, f := range frames {
		if !strings.HasPrefix(f, "runtime.") {
			return i
		}
	}
	for i, f := range frames {
		if !runtimeAllocators[f] {
			return i
		}
	}
	return 0
}

// runtimeAllocators are the runtime's own allocation functions, never the reason.
var runtimeAllocators = map[string]bool{
	"runtime.mallocgc": true, "runtime.newobject": true, "runtime.makeslice": true, "runtime.growslice": true,
	"runtime.makemap": true, "runtime.makemap_small": true, "runtime.newarray": true, "runtime.rawstring": true,
}

// nearestCaller explains an allocation by leaf: the first of the frames above it in one
// of callerPrefixes; else "package initialisation" for memory allocated by an init
// function; else the first frame outside the standard library and leaf's package; else
// "".
func nearestCaller(leaf string, frames []string) string {
	for _, f := range frames {
		for _, prefix := range callerPrefixes {
			if strings.HasPrefix(f, prefix) {
				return f
			}
		}
	}
	for _, f := range frames {
		if strings.HasPrefix(f, "runtime.doInit") {
			return initCaller
		}
	}
	for _, f := range frames {
		if pkg := packageOf(f); pkg != packageOf(leaf) && strings.Contains(strings.Split(pkg, "/")[0], ".") {
			return f
		}
	}
	return ""
}

// initCaller stands for the init functions of the packages the binary links.
const initCaller = "package initialisation"

// packageOf is a function name's import path: github.com/a/b/c.(*T).M -> github.com/a/b/c.
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/') + 1
	if dot := strings.IndexByte(fn[slash:], '.'); dot >= 0 {
		return fn[:slash+dot]
	}
	return fn
}

// dominant returns the caller most bytes came through, and its share of total.
func dominant(byCaller map[string]int64, total int64) (string, float64) {
	best, bestBytes := "", int64(-1)
	for _, c := range keys(byCaller) {
		if byCaller[c] > bestBytes {
			best, bestBytes = c, byCaller[c]
		}
	}
	if total <= 0 || bestBytes <= 0 {
		return best, 0
	}
	return best, float64(bestBytes) / float64(total)
}

// shortFunc drops this module's path from a function name: the rest is
// internal/controller.(*Snapshots).store.
func shortFunc(f string) string { return strings.TrimPrefix(f, modulePath) }
