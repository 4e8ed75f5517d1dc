package main

import (
	"fmt"
	"math"
	"strings"
)

// A small hand-written SVG plotter: panels with linear or log axes, polylines with
// markers, reference lines and a legend. Enough for results.svg, no dependency.

type axis struct {
	min, max float64
	log      bool
	// lo and hi are the pixel positions of min and max.
	lo, hi float64
}

func (a axis) px(v float64) float64 {
	if a.log {
		v, lo, hi := math.Log10(math.Max(v, a.min)), math.Log10(a.min), math.Log10(a.max)
		return a.lo + (v-lo)/(hi-lo)*(a.hi-a.lo)
	}
	return a.lo + (v-a.min)/(a.max-a.min)*(a.hi-a.lo)
}

// ticks returns tick values: 1-2-5 decades on a log axis, round steps on a linear one.
func (a axis) ticks() []float64 {
	var out []float64
	if a.log {
		for d := math.Pow(10, math.Floor(math.Log10(a.min))); d <= a.max; d *= 10 {
			for _, m := range []float64{1, 2, 5} {
				if v := d * m; v >= a.min*0.999 && v <= a.max*1.001 {
					out = append(out, v)
				}
			}
		}
		return out
	}
	step := niceStep((a.max - a.min) / 6)
	for v := math.Ceil(a.min/step) * step; v <= a.max+step/1000; v += step {
		out = append(out, v)
	}
	return out
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= raw {
			return m * mag
		}
	}
	return 10 * mag
}

func tickLabel(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%gk", v/1000)
	case v >= 1:
		return trimFloat(v)
	default:
		return fmt.Sprintf("%g", v)
	}
}

// markerNone draws a series as a line without markers.
const markerNone = "none"

type series struct {
	name   string
	color  string
	dash   string // stroke-dasharray, "" for solid
	marker string // "circle", "square", "none"
	points []point
	// open marks points drawn hollow with a label (capped or blocked measurements).
	open map[int]string
	// labelBelow puts the labels under the points instead of above them.
	labelBelow bool
}

type refLine struct {
	label          string
	x0, y0, x1, y1 float64 // data coordinates
	color          string
	// at is where along the line the label sits, 0 (start) to 1 (end).
	at float64
}

type panel struct {
	x, y, w, h    float64
	title, xl, yl string
	xa, ya        axis
	series        []series
	refs          []refLine
	// legendX and legendY place the legend, as fractions of the plot area from its
	// top-left corner; legendWidth > 0 puts it to the right of the plot instead.
	legendX, legendY float64
	legendWidth      float64
	// note is a line of explanation under the legend.
	note string
}

type svg struct{ b strings.Builder }

func (s *svg) f(format string, args ...any) { fmt.Fprintf(&s.b, format, args...) }

func esc(t string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(t)
}

func (s *svg) text(x, y float64, anchor, size, fill, t string) {
	s.f(`<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%s" fill="%s">%s</text>`+"\n", x, y, anchor, size, fill, esc(t))
}

func (s *svg) panel(p panel) {
	p.xa.lo, p.xa.hi = p.x+60, p.x+p.w-15-p.legendWidth
	p.ya.lo, p.ya.hi = p.y+p.h-45, p.y+35
	s.f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#ffffff" stroke="#dddddd"/>`+"\n", p.x, p.y, p.w, p.h)
	s.text(p.x+p.w/2, p.y+20, "middle", "14", "#222", p.title)
	s.axes(p)
	s.f(`<svg x="%.1f" y="%.1f" width="%.1f" height="%.1f" viewBox="%.1f %.1f %.1f %.1f" overflow="hidden">`+"\n",
		p.xa.lo, p.ya.hi, p.xa.hi-p.xa.lo, p.ya.lo-p.ya.hi, p.xa.lo, p.ya.hi, p.xa.hi-p.xa.lo, p.ya.lo-p.ya.hi)
	for _, r := range p.refs {
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n",
			p.xa.px(r.x0), p.ya.px(r.y0), p.xa.px(r.x1), p.ya.px(r.y1), r.color)
	}
	for _, se := range p.series {
		s.series(p, se)
	}
	s.f("</svg>\n")
	for _, r := range p.refs {
		lx := p.xa.px(r.x0) + r.at*(p.xa.px(r.x1)-p.xa.px(r.x0))
		ly := p.ya.px(r.y0) + r.at*(p.ya.px(r.y1)-p.ya.px(r.y0))
		anchor := "start"
		if r.at > 0.5 {
			anchor = "end"
		}
		s.text(lx+4, ly-6, anchor, "10", r.color, r.label)
	}
	s.legend(p)
}

func (s *svg) axes(p panel) {
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", p.xa.lo, p.ya.lo, p.xa.hi, p.ya.lo)
	s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#444"/>`+"\n", p.xa.lo, p.ya.lo, p.xa.lo, p.ya.hi)
	for _, v := range p.xa.ticks() {
		x := p.xa.px(v)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eeeeee"/>`+"\n", x, p.ya.lo, x, p.ya.hi)
		s.text(x, p.ya.lo+15, "middle", "10", "#444", tickLabel(v))
	}
	for _, v := range p.ya.ticks() {
		y := p.ya.px(v)
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eeeeee"/>`+"\n", p.xa.lo, y, p.xa.hi, y)
		s.text(p.xa.lo-5, y+3, "end", "10", "#444", tickLabel(v))
	}
	s.text((p.xa.lo+p.xa.hi)/2, p.ya.lo+33, "middle", "11", "#222", p.xl)
	s.f(`<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" fill="#222" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		p.x+16, (p.ya.lo+p.ya.hi)/2, p.x+16, (p.ya.lo+p.ya.hi)/2, esc(p.yl))
}

func (s *svg) series(p panel, se series) {
	if len(se.points) == 0 {
		return
	}
	var pts []string
	for _, pt := range se.points {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", p.xa.px(pt.X), p.ya.px(pt.Y)))
	}
	dash := ""
	if se.dash != "" {
		dash = fmt.Sprintf(` stroke-dasharray="%s"`, se.dash)
	}
	s.f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), se.color, dash)
	for i, pt := range se.points {
		label, open := se.open[i]
		s.marker(se.marker, p.xa.px(pt.X), p.ya.px(pt.Y), se.color, open)
		if label != "" {
			x, dy, anchor := p.xa.px(pt.X)+6, -6.0, "start"
			if se.labelBelow {
				dy = 16
			}
			if x > p.xa.lo+0.75*(p.xa.hi-p.xa.lo) {
				x, anchor = x-12, "end"
			}
			s.text(x, p.ya.px(pt.Y)+dy, anchor, "10", se.color, label)
		}
	}
}

func (s *svg) marker(kind string, x, y float64, color string, open bool) {
	fill := color
	if open {
		fill = "#ffffff"
	}
	switch kind {
	case "circle":
		s.f(`<circle cx="%.1f" cy="%.1f" r="4" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", x, y, fill, color)
	case "square":
		s.f(`<rect x="%.1f" y="%.1f" width="8" height="8" fill="%s" stroke="%s" stroke-width="1.5"/>`+"\n", x-4, y-4, fill, color)
	case "cross":
		s.f(`<path d="M%.1f %.1fl6 6m0 -6l-6 6" stroke="%s" stroke-width="1.5"/>`+"\n", x-3, y-3, color)
	}
}

func (s *svg) legend(p panel) {
	x := p.xa.lo + 10 + p.legendX*(p.xa.hi-p.xa.lo)
	y := p.ya.hi + 8 + p.legendY*(p.ya.lo-p.ya.hi)
	if p.legendWidth > 0 {
		x, y = p.xa.hi+15, p.ya.hi+8
	}
	for _, se := range p.series {
		if se.name == "" {
			continue
		}
		dash := ""
		if se.dash != "" {
			dash = fmt.Sprintf(` stroke-dasharray="%s"`, se.dash)
		}
		s.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", x, y, x+22, y, se.color, dash)
		s.marker(se.marker, x+11, y, se.color, false)
		s.text(x+28, y+4, "start", "10", "#222", se.name)
		y += 15
	}
	if p.note != "" {
		s.text(x, y+6, "start", "10", "#555", p.note)
	}
}
