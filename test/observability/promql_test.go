// Package observability_test proves the operator's dashboard and alerts work before a
// Grafana or Prometheus ever sees them: every PromQL expression parses, every metric they
// name is exposed by the real manager (scraped in an envtest run), every alert fires on
// the series it is about and stays silent otherwise (rule unit tests in the style of
// `promtool test rules`), and docs/observability.md documents every metric the manager exposes.
package observability_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

var (
	dashboardPath      = filepath.Join(testenv.RepoRoot(), "config", "grafana", "dashboard.json")
	prometheusRulePath = filepath.Join(testenv.RepoRoot(), "config", "prometheus", "prometheusrule.yaml")
	promql             = parser.NewParser(parser.Options{})
)

// expression is one PromQL expression and where it comes from, for failure messages.
type expression struct {
	where, expr string
}

// grafanaVars stands in for Grafana's built-in interval variables, so that a query
// parses as Grafana sends it. $namespace appears only inside label matcher strings.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// labelValues matches a label_values(metric, label) variable query.
var labelValues = regexp.MustCompile(`^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$`)

// dashboardExpressions returns every query of the dashboard, variables included (a
// label_values query stands for its metric).
func dashboardExpressions(t *testing.T) []expression {
	t.Helper()
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	var out []expression
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			out = append(out, expression{where: "dashboard panel " + p.Title, expr: grafanaVars.Replace(q.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("dashboard variable %s: query %q is not label_values(metric, label)", v.Name, q)
			continue
		}
		out = append(out, expression{where: "dashboard variable " + v.Name, expr: m[1]})
	}
	if len(out) < 20 {
		t.Fatalf("only %d dashboard queries found in %s", len(out), dashboardPath)
	}
	return out
}

// alertRule is one rule of the PrometheusRule.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// ruleGroups reads the PrometheusRule's spec: a Prometheus rule file.
func ruleGroups(t *testing.T) (spec []byte, rules []alertRule) {
	t.Helper()
	raw, err := os.ReadFile(prometheusRulePath)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Metadata   map[string]any `json:"metadata"`
		Spec       struct {
			Groups []struct {
				Name  string      `json:"name"`
				Rules []alertRule `json:"rules"`
			} `json:"groups"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(raw, &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Kind != "PrometheusRule" {
		t.Fatalf("%s is a %s", prometheusRulePath, pr.Kind)
	}
	for _, g := range pr.Spec.Groups {
		rules = append(rules, g.Rules...)
	}
	// The rule file is the spec as written, not as the structs above see it.
	var asWritten struct {
		Spec any `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &asWritten); err != nil {
		t.Fatal(err)
	}
	spec, err = yaml.Marshal(asWritten.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return spec, rules
}

func ruleExpressions(t *testing.T) []expression {
	t.Helper()
	_, rules := ruleGroups(t)
	out := make([]expression, 0, len(rules))
	for _, r := range rules {
		out = append(out, expression{where: "alert " + r.Alert, expr: r.Expr})
	}
	return out
}

// metricNames returns the metric names an expression selects.
func metricNames(t *testing.T, e expression) []string {
	t.Helper()
	node, err := promql.ParseExpr(e.expr)
	if err != nil {
		t.Errorf("%s: %v\n%s", e.where, err, e.expr)
		return nil
	}
	var names []string
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			name := vs.Name
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
			if name == "" {
				t.Errorf("%s: a selector without a metric name: %s", e.where, vs)
			}
			names = append(names, name)
		}
		return nil
	})
	return names
}

// TestPromQLParses parses every expression of the dashboard and the alerts with
// Prometheus' own parser.
func TestPromQLParses(t *testing.T) {
	for _, e := range append(dashboardExpressions(t), ruleExpressions(t)...) {
		if len(metricNames(t, e)) == 0 && !t.Failed() {
			t.Errorf("%s selects no metric: %s", e.where, e.expr)
		}
	}
}

// TestAlertsHaveRunbooks: every alert has a severity, a summary, a description and a
// runbook_url pointing at its own section of docs/runbooks.md.
func TestAlertsHaveRunbooks(t *testing.T) {
	runbooks, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rules := ruleGroups(t)
	want := []string{"CloudflareRequestBudgetNearlySpent", "CloudflareTokenBlocked", "OAuthClientStalled",
		"OAuthClientVerificationFailed", "OAuthClientSecretTooOld", "OAuthClientRotationOverdue",
		"CloudflareOAuthOperatorAbsent", "CloudflareSnapshotStale"}
	got := make([]string, 0, len(rules))
	const base = "https://github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/blob/main/docs/runbooks.md#"
	for _, r := range rules {
		got = append(got, r.Alert)
		if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s: needs a summary and a description", r.Alert)
		}
		if want := base + strings.ToLower(r.Alert); r.Annotations["runbook_url"] != want {
			t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
		}
		if !strings.Contains(string(runbooks), "\n## "+r.Alert+"\n") {
			t.Errorf("docs/runbooks.md has no section \"## %s\"", r.Alert)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("alerts %v, want %v", got, want)
	}
}
