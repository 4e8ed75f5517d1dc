// Command observability writes the operator's generated observability files from
// their sources: the Grafana dashboard (built here with the Grafana Foundation SDK) to
// config/grafana and the Helm chart, the chart's copy of the alerting rules from
// config/prometheus/prometheusrule.yaml, and docs/dashboard.svg, a drawing of the
// dashboard for docs/observability.md. `make observability` runs it; with -check it writes nothing
// and fails when a file is stale (its test does the same under `make test`).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

// Paths relative to the repository root.
const (
	prometheusRulePath  = "config/prometheus/prometheusrule.yaml"
	dashboardPath       = "config/grafana/dashboard.json"
	chartDashboardPath  = "charts/cloudflare-oauth-operator/files/grafana/dashboard.json"
	chartRulesPath      = "charts/cloudflare-oauth-operator/files/prometheus/rules.yaml"
	dashboardRenderPath = "docs/dashboard.svg"
)

// generate returns every generated file, by path, from the sources under root.
func generate(root string) (map[string][]byte, error) {
	dash, err := buildDashboard()
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	svg, err := renderSVG(dash)
	if err != nil {
		return nil, fmt.Errorf("rendering the dashboard: %w", err)
	}
	src, err := os.ReadFile(filepath.Join(root, prometheusRulePath))
	if err != nil {
		return nil, err
	}
	rules, err := chartRules(src)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		dashboardPath:       dash,
		chartDashboardPath:  dash,
		chartRulesPath:      rules,
		dashboardRenderPath: svg,
	}, nil
}

// stale lists the generated files whose content on disk differs from want.
func stale(root string, want map[string][]byte) []string {
	var out []string
	for path, content := range want {
		got, err := os.ReadFile(filepath.Join(root, path))
		if err != nil || !bytes.Equal(got, content) {
			out = append(out, path)
		}
	}
	return out
}

func main() {
	root := flag.String("root", ".", "repository root")
	check := flag.Bool("check", false, "write nothing; exit 1 when a generated file is stale")
	flag.Parse()
	files, err := generate(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *check {
		if s := stale(*root, files); len(s) > 0 {
			fmt.Fprintf(os.Stderr, "stale: %v; run `make observability`\n", s)
			os.Exit(1)
		}
		return
	}
	for path, content := range files {
		p := filepath.Join(*root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
