package main

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// dashboardUID is stable, so that links to the dashboard survive re-imports.
const dashboardUID = "cloudflare-oauth-operator"

// The dashboard's variables, used in every query: the Prometheus data source, and the
// namespaces of the OAuthClients shown.
var (
	datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
	nsFilter   = `namespace=~"$namespace"`
)

// unitCount is Grafana's unit for plain numbers.
const unitCount = "short"

// query is one PromQL expression of a panel and its legend.
type query struct {
	expr, legend string
	// instant asks for one value per series (tables), not a range.
	instant bool
}

// panelKind is how a panel shows its queries.
type panelKind int

const (
	timeSeries panelKind = iota
	statPanel
	tablePanel
)

// panel is one panel: what it shows, how, and its size on Grafana's 24-column grid.
type panel struct {
	title, description, unit string
	kind                     panelKind
	width, height            uint32
	stacked                  bool
	queries                  []query
}

// row is a titled row of panels.
type row struct {
	title  string
	panels []panel
}

// rows is the dashboard, top to bottom: the six subjects, in the order an
// on-call engineer asks about them.
var rows = []row{
	{title: "Cloudflare request budget and rate limits", panels: []panel{
		{title: "Budget remaining", unit: "percentunit", width: 8, height: 8,
			description: "Share of Cloudflare's per-user request quota left in the current window, from the last Ratelimit header. Past it, Cloudflare blocks every call of the user for 5 minutes.",
			queries:     []query{{expr: `min by (user) (cloudflare_budget_remaining / cloudflare_budget_quota)`, legend: "{{user}}"}}},
		{title: "429 responses and blocks", unit: unitCount, width: 8, height: 8,
			description: "429 answers from Cloudflare, blocks of a user's calls, and calls the operator deferred to stay within --cloudflare-request-budget.",
			queries: []query{
				{expr: `sum by (user) (increase(cloudflare_rate_limited_responses_total[$__rate_interval]))`, legend: "429 {{user}}"},
				{expr: `sum by (user) (increase(cloudflare_budget_blocks_total[$__rate_interval]))`, legend: "blocks {{user}}"},
				{expr: `sum by (user) (increase(cloudflare_budget_deferred_total[$__rate_interval]))`, legend: "deferred {{user}}"},
			}},
		{title: "Blocked for", unit: "s", kind: statPanel, width: 8, height: 8,
			description: "How long the calls of each user stay blocked after a 429.",
			queries:     []query{{expr: `max by (user) (clamp_min(cloudflare_budget_blocked_until_timestamp_seconds - time(), 0))`, legend: "{{user}}"}}},
	}},
	{title: "Cloudflare API", panels: []panel{
		{title: "Requests by operation", unit: "reqps", width: 8, height: 8,
			queries: []query{{expr: `sum by (operation) (rate(cloudflare_api_requests_total[$__rate_interval]))`, legend: "{{operation}}"}}},
		{title: "Errors by operation and code", unit: "reqps", width: 8, height: 8,
			description: "Answers other than 2xx; code 0 means no answer (timeout or connection failure).",
			queries:     []query{{expr: `sum by (operation, code) (rate(cloudflare_api_requests_total{code!~"2.."}[$__rate_interval]))`, legend: "{{operation}} {{code}}"}}},
		{title: "Latency p95 by operation", unit: "s", width: 8, height: 8,
			queries: []query{{expr: `histogram_quantile(0.95, sum by (operation, le) (rate(cloudflare_api_request_duration_seconds_bucket[$__rate_interval])))`, legend: "{{operation}}"}}},
	}},
	{title: "Objects", panels: []panel{
		{title: "Objects by Ready reason", unit: unitCount, width: 8, height: 8, stacked: true,
			queries: []query{{expr: `sum by (status, reason) (oauthclients_ready{` + nsFilter + `})`, legend: "{{status}} {{reason}}"}}},
		{title: "Stalled objects", unit: unitCount, width: 8, height: 8, stacked: true,
			description: "Objects that need a person; they are not retried in a loop.",
			queries:     []query{{expr: `sum by (namespace, reason) (oauthclients_stalled{` + nsFilter + `})`, legend: "{{namespace}} {{reason}}"}}},
		{title: "Stalled for", unit: "s", kind: tablePanel, width: 8, height: 8,
			description: "How long the longest-stalled object of each namespace and reason has been stalled.",
			queries:     []query{{expr: `time() - min by (namespace, reason) (oauthclients_stalled_since_timestamp_seconds{` + nsFilter + `})`, instant: true}}},
		{title: "Reconcile failures by reason", unit: unitCount, width: 12, height: 8,
			queries: []query{{expr: `sum by (reason) (increase(oauthclient_reconcile_failures_total[$__rate_interval]))`, legend: "{{reason}}"}}},
		{title: "Snapshot age by account", unit: "s", width: 12, height: 8,
			description: "Age of the operator's last List of each Cloudflare account's clients; it is reused for --remote-sync-period.",
			queries:     []query{{expr: `max by (account) (time() - cloudflare_snapshot_last_list_timestamp_seconds)`, legend: "{{account}}"}}},
	}},
	{title: "Verification", panels: []panel{
		{title: "Objects by verification status", unit: unitCount, width: 16, height: 8, stacked: true,
			description: "Cloudflare's DNS verification of the client URI host, which public clients need.",
			queries:     []query{{expr: `sum by (status) (oauthclients_verification{` + nsFilter + `})`, legend: "{{status}}"}}},
		{title: "Verification failed", unit: unitCount, kind: statPanel, width: 8, height: 8,
			queries: []query{{expr: `sum(oauthclients_verification{status="failed", ` + nsFilter + `}) or vector(0)`}}},
	}},
	{title: "Secrets and rotation", panels: []panel{
		{title: "Oldest client secrets", unit: "s", kind: tablePanel, width: 8, height: 9,
			queries: []query{{expr: `topk(10, time() - oauthclient_secret_issued_timestamp_seconds{` + nsFilter + `})`, instant: true}}},
		{title: "Next rotations", unit: "s", kind: tablePanel, width: 8, height: 9,
			description: "Time until each periodic rotation (spec.secretRotation.every); negative is overdue.",
			queries:     []query{{expr: `bottomk(10, oauthclient_secret_next_rotation_timestamp_seconds{` + nsFilter + `} - time())`, instant: true}}},
		{title: "Previous secrets still valid", unit: unitCount, width: 8, height: 9,
			description: "Objects in a rotation overlap: the previous secret still works until it ends.",
			queries:     []query{{expr: `sum by (namespace) (oauthclients_previous_secret_valid{` + nsFilter + `})`, legend: "{{namespace}}"}}},
	}},
	{title: "Drift", panels: []panel{
		{title: "Drift corrections", unit: unitCount, width: 24, height: 7,
			description: "PATCHes that undid a change made in Cloudflare outside the operator.",
			queries:     []query{{expr: `sum(increase(oauthclient_drift_corrections_total[$__rate_interval]))`, legend: "corrections"}}},
	}},
}

// buildDashboard returns the dashboard as Grafana's JSON model, indented.
func buildDashboard() ([]byte, error) {
	// The classic (v1) model: it is what Grafana's dashboard sidecar and every Grafana
	// before 12 import; the SDK prefers the v2 model only Grafana 12 reads.
	b := dashboard.NewDashboardBuilder("Cloudflare OAuth operator"). //nolint:staticcheck // see above
										Uid(dashboardUID).
										Description("Cloudflare request budget, API calls, OAuthClient states, verification, secret rotation and drift. Generated by hack/observability; do not edit.").
										Tags([]string{"cloudflare", "oauth", "kubernetes-operator"}).
										Refresh("1m").
										Time("now-6h", "now").
										Timezone(common.TimeZoneBrowser).
										Tooltip(dashboard.DashboardCursorSyncCrosshair).
										WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
										WithVariable(dashboard.NewQueryVariableBuilder("namespace").Label("Namespace").
											Datasource(datasource).
											Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(oauthclients_ready, namespace)")}).
											Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
											Sort(dashboard.VariableSortAlphabeticalAsc).
											Multi(true).IncludeAll(true).AllValue(".*"))
	// Grafana keys panel links and state by id: unique, stable ids in layout order.
	id := uint32(0)
	for _, r := range rows {
		id++
		b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			b.WithPanel(p.builder(id))
		}
	}
	d, err := b.Build()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

func (p panel) targets() []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(p.queries))
	for _, q := range p.queries {
		t := prometheus.NewDataqueryBuilder().Expr(q.expr).Datasource(datasource)
		if q.legend != "" {
			t.LegendFormat(q.legend)
		}
		if q.instant {
			t.Instant().Format(prometheus.PromQueryFormatTable)
		}
		out = append(out, t)
	}
	return out
}

func (p panel) builder(id uint32) cog.Builder[dashboard.Panel] {
	switch p.kind {
	case statPanel:
		return stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(datasource).Span(p.width).Height(p.height).Targets(p.targets())
	case tablePanel:
		return table.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
			Datasource(datasource).Span(p.width).Height(p.height).Targets(p.targets())
	}
	ts := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).Unit(p.unit).
		Datasource(datasource).Span(p.width).Height(p.height).Targets(p.targets()).Min(0).
		Legend(common.NewVizLegendOptionsBuilder().DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).ShowLegend(true))
	if p.stacked {
		ts.FillOpacity(30).Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal))
	}
	return ts
}
