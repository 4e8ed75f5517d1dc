package main

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const root = "../.."

// The committed dashboard, its chart copy, the chart's rules and docs/dashboard.svg are
// what `make observability` writes from their sources today.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	if s := stale(root, files); len(s) > 0 {
		t.Fatalf("stale generated files %v: run `make observability` and commit the result", s)
	}
}

// The chart's rules are the PrometheusRule's spec, value for value.
func TestChartRulesAreTheSpec(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root, prometheusRulePath))
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		Spec any `json:"spec"`
	}
	if err := yaml.Unmarshal(src, &pr); err != nil {
		t.Fatal(err)
	}
	rules, err := chartRules(src)
	if err != nil {
		t.Fatal(err)
	}
	var got any
	if err := yaml.Unmarshal(rules, &got); err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(pr.Spec)
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(want, gotJSON) {
		t.Errorf("chart rules differ from the PrometheusRule's spec:\n got %s\nwant %s", gotJSON, want)
	}
	if _, err := chartRules([]byte("kind: X\nmetadata: {}\n")); err == nil {
		t.Error("a file without spec must be refused")
	}
}

// Every panel of the drawing is in the dashboard, with its title and its queries.
func TestSVGShowsEveryPanel(t *testing.T) {
	dash, err := buildDashboard()
	if err != nil {
		t.Fatal(err)
	}
	svg, err := renderSVG(dash)
	if err != nil {
		t.Fatal(err)
	}
	var d gridDashboard
	if err := json.Unmarshal(dash, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) < 20 {
		t.Fatalf("%d panels and rows, want the six rows and their panels", len(d.Panels))
	}
	text := string(svg)
	// The query lines, joined without spaces: a wrapped query is whole in it.
	var queries strings.Builder
	for _, m := range regexp.MustCompile(`fill="#6e9fff">([^<]*)</text>`).FindAllStringSubmatch(text, -1) {
		queries.WriteString(html.UnescapeString(m[1]))
	}
	drawn := strings.ReplaceAll(queries.String(), " ", "")
	for _, p := range d.Panels {
		if !strings.Contains(text, ">"+html.EscapeString(p.Title)+"<") {
			t.Errorf("panel %q is not drawn", p.Title)
		}
		for _, q := range p.Targets {
			if !strings.Contains(drawn, strings.ReplaceAll(q.Expr, " ", "")) {
				t.Errorf("query %q of %q is not drawn whole", q.Expr, p.Title)
			}
		}
	}
}

func TestWrap(t *testing.T) {
	got := wrap("sum by (a) (rate(x[5m]))", 12)
	for _, l := range got {
		if len(l) > 12 {
			t.Errorf("line %q is longer than 12", l)
		}
	}
	if strings.ReplaceAll(strings.Join(got, ""), " ", "") != "sumby(a)(rate(x[5m]))" {
		t.Errorf("wrap lost text: %q", got)
	}
}
