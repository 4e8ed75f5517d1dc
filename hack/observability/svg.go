package main

import (
	"encoding/json"
	"fmt"
	"html"
	"strings"
)

// The SVG rendering of the dashboard for docs/observability.md: each panel is a box at its grid
// position with its title, kind and queries, each row a heading. It is drawn from the
// dashboard JSON, not from the Go definitions, so it shows what Grafana imports.
const (
	cellW   = 60 // pixels per grid column (24 columns)
	cellH   = 30 // pixels per grid row
	margin  = 16
	headerH = 56
	lineH   = 14
	charW   = 6.7 // average advance of the 11px monospace font
)

// gridDashboard is the part of Grafana's dashboard model the rendering needs.
type gridDashboard struct {
	Title  string      `json:"title"`
	Panels []gridPanel `json:"panels"`
}

type gridPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		X, Y, W, H int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// renderSVG draws the dashboard JSON as an SVG document.
func renderSVG(dashboardJSON []byte) ([]byte, error) {
	var d gridDashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, err
	}
	bottom := 0
	for _, p := range d.Panels {
		bottom = max(bottom, p.GridPos.Y+p.GridPos.H)
	}
	width := 24*cellW + 2*margin
	height := headerH + bottom*cellH + margin
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#111217"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="34" font-size="22" fill="#ccccdc">%s</text>`+"\n", margin, html.EscapeString(d.Title))
	fmt.Fprintf(&b, `<text x="%d" y="34" font-size="12" fill="#8e8e9e" text-anchor="end">Data source: Prometheus · Namespace: All</text>`+"\n", width-margin)
	for _, p := range d.Panels {
		x := margin + p.GridPos.X*cellW
		y := headerH + p.GridPos.Y*cellH
		w, h := p.GridPos.W*cellW, p.GridPos.H*cellH
		if p.Type == "row" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="15" font-weight="bold" fill="#ccccdc">%s</text>`+"\n", x, y+21, html.EscapeString(p.Title))
			continue
		}
		drawPanel(&b, p, x+3, y+3, w-6, h-6)
	}
	b.WriteString("</svg>\n")
	return []byte(b.String()), nil
}

func drawPanel(b *strings.Builder, p gridPanel, x, y, w, h int) {
	fmt.Fprintf(b, `<g><rect x="%d" y="%d" width="%d" height="%d" rx="3" fill="#181b1f" stroke="#2c3235"/>`+"\n", x, y, w, h)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="13" font-weight="bold" fill="#ccccdc">%s</text>`+"\n", x+10, y+20, html.EscapeString(p.Title))
	kind := p.Type
	if u := p.FieldConfig.Defaults.Unit; u != "" {
		kind += " · " + u
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="#8e8e9e" text-anchor="end">%s</text>`+"\n", x+w-10, y+20, html.EscapeString(kind))
	drawSketch(b, p.Type, x+10, y+h-58, w-20, 48)
	maxChars := int(float64(w-20) / charW)
	line := 0
	maxLines := (h - 30 - 62) / lineH
	for _, t := range p.Targets {
		for _, l := range wrap(t.Expr, maxChars) {
			if line >= maxLines {
				break
			}
			fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" font-family="Menlo, Consolas, monospace" fill="#6e9fff">%s</text>`+"\n",
				x+10, y+40+line*lineH, html.EscapeString(l))
			line++
		}
	}
	b.WriteString("</g>\n")
}

// drawSketch suggests the visualisation: a line for a time series, a big number for a
// stat, rows for a table.
func drawSketch(b *strings.Builder, kind string, x, y, w, h int) {
	switch kind {
	case "stat":
		fmt.Fprintf(b, `<text x="%d" y="%d" font-size="30" fill="#73bf69" text-anchor="middle">0</text>`+"\n", x+w/2, y+h-8)
	case "table":
		for i := range 3 {
			fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="10" fill="#22252b"/>`+"\n", x, y+i*16, w)
		}
	default:
		pts := make([]string, 0, 13)
		for i := range 13 {
			level := []int{30, 26, 28, 20, 22, 14, 18, 24, 16, 10, 14, 8, 12}[i]
			pts = append(pts, fmt.Sprintf("%d,%d", x+i*w/12, y+level*h/40))
		}
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="#73bf69" stroke-width="2"/>`+"\n", strings.Join(pts, " "))
	}
}

// wrap breaks s into lines of at most n characters, at spaces where it can.
func wrap(s string, n int) []string {
	s = strings.Join(strings.Fields(s), " ")
	if n < 10 {
		n = 10
	}
	var out []string
	for len(s) > n {
		// After a space, or else after an opening bracket or a comma.
		cut := strings.LastIndex(s[:n], " ")
		if cut <= 0 {
			cut = strings.LastIndexAny(s[:n], "({,") + 1
		}
		if cut <= 0 {
			cut = n
		}
		out = append(out, s[:cut])
		s = strings.TrimLeft(s[cut:], " ")
	}
	return append(out, s)
}
