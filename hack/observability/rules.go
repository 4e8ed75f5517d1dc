package main

import (
	"bytes"
	"errors"
	"strings"
)

// rulesHeader heads the chart's copy of the rules.
const rulesHeader = `# Generated from config/prometheus/prometheusrule.yaml (its spec) by
# ` + "`make observability`" + `; do not edit. templates/prometheusrule.yaml renders it.
`

// chartRules returns the spec of the PrometheusRule in config/prometheus as a rule file
// (groups: ...), text for text: the comments stay, and the chart renders the same
// rules kustomize does.
func chartRules(prometheusRule []byte) ([]byte, error) {
	lines := strings.SplitAfter(string(prometheusRule), "\n")
	for i, l := range lines {
		if strings.TrimRight(l, "\n") != "spec:" {
			continue
		}
		var out bytes.Buffer
		out.WriteString(rulesHeader)
		for _, body := range lines[i+1:] {
			if strings.TrimSpace(body) == "" {
				out.WriteString(body)
				continue
			}
			trimmed, ok := strings.CutPrefix(body, "  ")
			if !ok {
				return nil, errors.New("config/prometheus/prometheusrule.yaml: spec must be the last top-level key, indented by two spaces")
			}
			out.WriteString(trimmed)
		}
		return out.Bytes(), nil
	}
	return nil, errors.New("config/prometheus/prometheusrule.yaml has no top-level spec")
}
