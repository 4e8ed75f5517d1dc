package observability_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	"sigs.k8s.io/yaml"
)

// ruleTestFile is the subset of `promtool test rules`' format these tests use. Unlike
// promtool, an expected alert without exp_annotations matches any annotations; the
// annotations given must match exactly (so templates are tested where it matters).
type ruleTestFile struct {
	EvaluationInterval model.Duration `json:"evaluation_interval"`
	Tests              []ruleTest     `json:"tests"`
}

type ruleTest struct {
	Name          string          `json:"name"`
	Interval      model.Duration  `json:"interval"`
	InputSeries   []inputSeries   `json:"input_series"`
	AlertRuleTest []alertRuleTest `json:"alert_rule_test"`
}

type inputSeries struct {
	Series string `json:"series"`
	Values string `json:"values"`
}

type alertRuleTest struct {
	EvalTime  model.Duration `json:"eval_time"`
	Alertname string         `json:"alertname"`
	ExpAlerts []struct {
		ExpLabels      map[string]string `json:"exp_labels"`
		ExpAnnotations map[string]string `json:"exp_annotations"`
	} `json:"exp_alerts"`
}

// TestAlertRules evaluates the PrometheusRule's rules on the recorded series of
// testdata/rules_test.yaml, step by step as Prometheus would, and compares the firing
// alerts at each eval_time. Every alert has at least one case where it fires and one
// where it stays silent.
func TestAlertRules(t *testing.T) {
	spec, alerts := ruleGroups(t)
	ruleFile := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(ruleFile, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f ruleTestFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range f.Tests {
		t.Run(tc.Name, func(t *testing.T) {
			runRuleTest(t, ruleFile, time.Duration(f.EvaluationInterval), tc)
		})
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, r := range alerts {
		if !fires[r.Alert] || !silent[r.Alert] {
			t.Errorf("alert %s: testdata/rules_test.yaml needs a case where it fires and one where it is silent (fires %v, silent %v)",
				r.Alert, fires[r.Alert], silent[r.Alert])
		}
	}
}

// firing is an alert as compared: its labels and, when expected, its annotations.
type firing struct {
	Labels      map[string]string
	Annotations map[string]string
}

func runRuleTest(t *testing.T, ruleFile string, evalInterval time.Duration, tc ruleTest) {
	var load strings.Builder
	fmt.Fprintf(&load, "load %s\n", tc.Interval)
	for _, s := range tc.InputSeries {
		fmt.Fprintf(&load, "  %s %s\n", s.Series, s.Values)
	}
	suite, err := promqltest.NewLazyLoader(load.String(), promqltest.LazyLoaderOpts{Parser: promql})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = suite.Close() })
	mgr := rules.NewManager(&rules.ManagerOptions{
		QueryFunc:    rules.EngineQueryFunc(suite.QueryEngine(), suite.Storage()),
		AppendableV2: suite.Storage(),
		Context:      context.Background(),
		NotifyFunc:   func(context.Context, string, ...*rules.Alert) {},
		Logger:       slog.New(slog.DiscardHandler),
		Parser:       promql,
	})
	groups, errs := mgr.LoadGroups(evalInterval, labels.EmptyLabels(), "", nil, false, ruleFile)
	if len(errs) > 0 {
		t.Fatalf("loading the rules: %v", errs)
	}
	for _, g := range groups {
		for _, r := range g.Rules() {
			if ar, ok := r.(*rules.AlertingRule); ok {
				ar.SetRestored(true)
			}
		}
	}

	checks := slices.Clone(tc.AlertRuleTest)
	slices.SortStableFunc(checks, func(a, b alertRuleTest) int { return int(a.EvalTime - b.EvalTime) })
	start := time.Unix(0, 0).UTC()
	end := start.Add(time.Duration(checks[len(checks)-1].EvalTime))
	next := 0
	for ts := start; !ts.After(end); ts = ts.Add(evalInterval) {
		suite.WithSamplesTill(ts, func(err error) {
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range groups {
				g.Eval(suite.Context(), ts)
				for _, r := range g.Rules() {
					if r.LastError() != nil {
						t.Fatalf("rule %s at %s: %v", r.Name(), ts.Sub(start), r.LastError())
					}
				}
			}
		})
		// A check at eval_time is compared with the evaluation at or just before it.
		for next < len(checks) && time.Duration(checks[next].EvalTime) < ts.Add(evalInterval).Sub(start) {
			compareAlerts(t, groups, checks[next])
			next++
		}
	}
}

func compareAlerts(t *testing.T, groups map[string]*rules.Group, check alertRuleTest) {
	t.Helper()
	var got []firing
	for _, g := range groups {
		for _, r := range g.Rules() {
			ar, ok := r.(*rules.AlertingRule)
			if !ok || ar.Name() != check.Alertname {
				continue
			}
			for _, a := range ar.ActiveAlerts() {
				if a.State == rules.StateFiring {
					got = append(got, firing{Labels: a.Labels.Map(), Annotations: a.Annotations.Map()})
				}
			}
		}
	}
	want := make([]firing, 0, len(check.ExpAlerts))
	for _, e := range check.ExpAlerts {
		l := map[string]string{"alertname": check.Alertname}
		for k, v := range e.ExpLabels {
			l[k] = v
		}
		want = append(want, firing{Labels: l, Annotations: e.ExpAnnotations})
		// Annotations not given in the expectation are not compared.
		for j := range got {
			if cmp.Equal(got[j].Labels, l) && e.ExpAnnotations == nil {
				got[j].Annotations = nil
			}
		}
	}
	sortFirings(got)
	sortFirings(want)
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("%s at %s: firing alerts (-want +got):\n%s", check.Alertname, check.EvalTime, diff)
	}
}

func sortFirings(fs []firing) {
	key := func(f firing) string { return labels.FromMap(f.Labels).String() }
	slices.SortFunc(fs, func(a, b firing) int { return strings.Compare(key(a), key(b)) })
}
