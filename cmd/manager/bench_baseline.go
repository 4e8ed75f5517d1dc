//go:build benchbaseline

package main

import (
	"flag"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
)

// The benchmark's baseline flag exists only in manager builds with the benchbaseline
// tag (hack/bench builds it so).
func init() {
	flag.BoolVar(&controller.BenchPerObjectGET, "bench-per-object-get", false,
		"Benchmark baseline only: observe each object with its own GET instead of the shared List.")
}
