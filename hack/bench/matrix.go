package main

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Variants of a scenario: the same cell of the matrix measured another way.
const (
	// variantShippedEnv runs the manager with the Go runtime environment the
	// deployment ships (GOMEMLIMIT), where every other scenario runs with Go's defaults.
	variantShippedEnv = "gomemlimit"
	// variantShared runs another tool that spends part of the same user's Cloudflare
	// limit while the operator works (shared.go).
	variantShared = "shared"
)

// scenarios returns what runs, in run order: adoption first (it also measures steady
// state), small N first, ours before the baseline; each cell's +gomemlimit variant right
// after it, and the shared-quota scenario last. A scenario runs unless a -skip pattern
// matches its whole key; a variant is skipped by its own key, not by its cell's.
func (c *config) scenarios() []scenario {
	var out []scenario
	add := func(sc scenario) {
		if !c.skipped(sc) {
			out = append(out, sc)
		}
	}
	for _, p := range c.paths {
		for _, n := range c.ns {
			for _, a := range c.accounts {
				for _, s := range c.strategies {
					sc := scenario{Path: p, N: n, Accounts: a, Strategy: s}
					add(sc)
					if c.shippedEnvCells[sc.String()] {
						sc.Variant = variantShippedEnv
						add(sc)
					}
				}
			}
		}
	}
	if sc, ok := c.sharedScenario(); ok {
		add(sc)
	}
	return out
}

// sharedScenario is create/N/1/ours+shared, when -shared-n is set and the create path
// and our strategy are selected.
func (c *config) sharedScenario() (scenario, bool) {
	sc := scenario{Path: pathCreate, N: c.shared.n, Accounts: 1, Strategy: strategyOurs, Variant: variantShared}
	return sc, sc.N > 0 && slices.Contains(c.paths, pathCreate) && slices.Contains(c.strategies, strategyOurs)
}

func (c *config) skipped(sc scenario) bool {
	key := sc.String()
	for pattern := range c.skip {
		if ok, _ := path.Match(pattern, key); ok {
			return true
		}
	}
	return false
}

// envOf is the manager's environment in a scenario.
func (c *config) envOf(sc scenario) []string {
	if sc.Variant == variantShippedEnv {
		return c.shippedEnv
	}
	return c.managerEnv
}

// measuresLatency reports whether the spec-edit latency phases run in the scenario.
func (c *config) measuresLatency(sc scenario) bool {
	return c.editLatency.n > 0 && sc == scenario{Path: pathAdopt, N: c.editLatency.n, Accounts: 1, Strategy: strategyOurs}
}

// printScenarios prints what would run, one scenario a line, with the extra
// measurements each makes.
func (c *config) printScenarios() {
	for _, sc := range c.scenarios() {
		var extra []string
		if sc.Variant == variantShippedEnv {
			extra = append(extra, "env "+strings.Join(c.shippedEnv, " "))
		}
		if c.heapProfiles[sc.String()] {
			extra = append(extra, "heap profile")
		}
		if c.measuresLatency(sc) {
			extra = append(extra, fmt.Sprintf("latency phases (%d edits each, %d more adopted)", c.editLatency.edits, c.editLatency.adopt))
		}
		if sc.Variant == variantShared {
			extra = append(extra, fmt.Sprintf("another tool at %.0f%% of the limit", 100*c.shared.share))
		}
		fmt.Println(strings.TrimSpace(sc.String() + "  " + strings.Join(extra, "; ")))
	}
}
