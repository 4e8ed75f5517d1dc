package main

import "fmt"

// writeHeap is the section on the heap profiles: what is live in steady state, and
// where it was allocated.
func (rep *report) writeHeap(w writer) {
	var profiled []*result
	for _, r := range rep.Results {
		if r.HeapProfile != nil {
			profiled = append(profiled, r)
		}
	}
	if len(profiled) == 0 {
		return
	}
	w("## The manager's heap in steady state\n\n")
	w("Go's heap profile (`/debug/pprof/heap?gc=1`, served by `--pprof-bind-address`) taken right after the no-drift\n")
	w("steady-state window, after a collection: *live* is what the last collection kept (Go samples allocations and\n")
	w("scales them up, so the figures are estimates). Sites are the innermost function outside the runtime that\n")
	w("allocated; *through* is the nearest frame above it in this module, controller-runtime or client-go (else outside\n")
	w("the standard library), the one most of the site's bytes came through. The raw profiles stay in the run's temporary\n")
	w("directory (`-keep-tmp`).\n\n")
	for _, r := range profiled {
		hp := r.HeapProfile
		w("**%s**: %.1f MiB live in %d objects, %s per object, %s per OAuthClient; taken %s after the manager started.\n\n",
			r.scenario, float64(hp.InuseBytes)/mib, hp.InuseObjects, formatBytes(perObjectBytes(hp.InuseBytes, hp.InuseObjects)),
			formatBytes(float64(hp.InuseBytes)/float64(r.N)), formatSeconds(hp.AtSeconds))
		w("| Allocated in | Live | %% of the heap | Objects | Bytes per object | Through |\n")
		w("|---|---|---|---|---|---|\n")
		for _, s := range hp.Sites {
			through := "—"
			switch s.Caller {
			case "":
			case initCaller:
				through = fmt.Sprintf("%s (%.0f%%)", initCaller, 100*s.CallerShare)
			default:
				through = fmt.Sprintf("`%s` (%.0f%%)", shortFunc(s.Caller), 100*s.CallerShare)
			}
			w("| `%s` | %s | %.1f%% | %d | %s | %s |\n", shortFunc(s.Function), formatBytes(float64(s.Bytes)),
				100*float64(s.Bytes)/float64(max(hp.InuseBytes, 1)), s.Objects, formatBytes(perObjectBytes(s.Bytes, s.Objects)), through)
		}
		w("\n")
	}
}

func perObjectBytes(bytes, objects int64) float64 {
	if objects <= 0 {
		return 0
	}
	return float64(bytes) / float64(objects)
}

// formatBytes renders a size in B, KiB or MiB.
func formatBytes(b float64) string {
	switch {
	case b >= mib:
		return fmt.Sprintf("%.1f MiB", b/mib)
	case b >= 10*1024:
		return fmt.Sprintf("%.0f KiB", b/1024)
	case b >= 1024:
		return fmt.Sprintf("%.1f KiB", b/1024)
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}
