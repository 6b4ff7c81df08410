package main

import (
	"fmt"
	"html"
	"io"
	"math"
	"slices"
	"strings"
)

// chart is one line chart with logarithmic axes: offered load spans
// 100 to 4,000 round trips a second and latency spans a millisecond to
// seconds once a target saturates, so linear axes would hide one end.
type chart struct {
	Title  string
	XLabel string
	YLabel string
	Series []series
	// RefY, when positive, draws a horizontal reference line (a target)
	// labelled RefLabel.
	RefY     float64
	RefLabel string
}

// series is one line of a chart.
type series struct {
	Name   string
	Color  string
	Dashed bool
	Points []point
}

// point is one measurement; Hollow marks one taken while the target was
// saturated.
type point struct {
	X, Y   float64
	Hollow bool
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH             = 460, 340
	padL, padR, padT, padB     = 62, 16, 34, 46
	legendW                    = 250
	minLogValue                = 1e-3 // values at or below 0 are not drawable on a log axis
	tickLabelSize, legendLineH = 11, 16
)

// writeSVG writes charts side by side, with one shared legend taken from
// the first chart's series, as a standalone SVG document.
func writeSVG(w io.Writer, charts []chart) error {
	width := len(charts)*chartW + legendW
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="%d">`+"\n",
		width, chartH, width, chartH, tickLabelSize)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, chartH)
	for i, c := range charts {
		fmt.Fprintf(&b, `<g transform="translate(%d,0)">`+"\n", i*chartW)
		c.draw(&b)
		b.WriteString("</g>\n")
	}
	if len(charts) > 0 {
		fmt.Fprintf(&b, `<g transform="translate(%d,%d)">`+"\n", len(charts)*chartW+8, padT)
		for i, s := range charts[0].Series {
			y := i*legendLineH + 8
			fmt.Fprintf(&b, `<line x1="0" y1="%d" x2="24" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", y, y, esc(s.Color), dash(s.Dashed))
			fmt.Fprintf(&b, `<text x="30" y="%d" dominant-baseline="middle">%s</text>`+"\n", y, esc(s.Name))
		}
		y := len(charts[0].Series)*legendLineH + 16
		fmt.Fprintf(&b, `<circle cx="12" cy="%d" r="3.5" fill="white" stroke="black"/>`+"\n", y)
		fmt.Fprintf(&b, `<text x="30" y="%d" dominant-baseline="middle">saturated step</text>`+"\n", y)
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func (c chart) draw(b *strings.Builder) {
	var xs, ys []float64
	for _, s := range c.Series {
		for _, p := range s.Points {
			if p.X > 0 && p.Y > 0 {
				xs, ys = append(xs, p.X), append(ys, p.Y)
			}
		}
	}
	if c.RefY > 0 {
		ys = append(ys, c.RefY)
	}
	x0, x1 := logRange(xs)
	y0, y1 := logRange(ys)
	plotW, plotH := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 {
		return padL + (math.Log10(max(x, minLogValue))-x0)/(x1-x0)*plotW
	}
	py := func(y float64) float64 {
		return padT + plotH - (math.Log10(max(y, minLogValue))-y0)/(y1-y0)*plotH
	}

	fmt.Fprintf(b, `<text x="%d" y="20" font-size="13" font-weight="bold">%s</text>`+"\n", padL, esc(c.Title))
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#888"/>`+"\n", padL, padT, plotW, plotH)
	for _, t := range logTicks(x0, x1) {
		x := px(t)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", x, padT, x, padT+plotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x, padT+plotH+15, tickLabel(t))
	}
	for _, t := range logTicks(y0, y1) {
		y := py(t)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", padL, y, padL+plotW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", padL-5, y, tickLabel(t))
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, chartH-8, esc(c.XLabel))
	fmt.Fprintf(b, `<text transform="translate(14,%.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(c.YLabel))

	if c.RefY > 0 {
		y := py(c.RefY)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#555" stroke-width="1.5" stroke-dasharray="2,3"/>`+"\n", padL, y, padL+plotW, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" fill="#555" font-size="10">%s</text>`+"\n", padL+4, y+12, esc(c.RefLabel))
	}
	for _, s := range c.Series {
		var pts []string
		for _, p := range s.Points {
			if p.X > 0 && p.Y > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.X), py(p.Y)))
			}
		}
		if len(pts) > 1 {
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), esc(s.Color), dash(s.Dashed))
		}
		for _, p := range s.Points {
			if p.X <= 0 || p.Y <= 0 {
				continue
			}
			fill := esc(s.Color)
			if p.Hollow {
				fill = "white"
			}
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s" stroke="%s"><title>%s: %s at %s</title></circle>`+"\n",
				px(p.X), py(p.Y), fill, esc(s.Color), esc(s.Name), tickLabel(p.Y), tickLabel(p.X))
		}
	}
}

// logRange returns the decades (log10) that hold every value, at least one
// decade wide; [0, 1] when there are none.
func logRange(vs []float64) (lo, hi float64) {
	if len(vs) == 0 {
		return 0, 1
	}
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		l := math.Log10(v)
		lo, hi = min(lo, l), max(hi, l)
	}
	lo, hi = math.Floor(lo), math.Ceil(hi)
	if hi <= lo {
		hi = lo + 1
	}
	return lo, hi
}

// logTicks returns 1, 2 and 5 times each power of ten between the decades
// lo and hi (log10 values).
func logTicks(lo, hi float64) []float64 {
	var out []float64
	for e := lo; e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if math.Log10(v) <= hi+1e-9 {
				out = append(out, v)
			}
		}
	}
	return out
}

func tickLabel(v float64) string {
	switch {
	case v >= 1000 && math.Mod(v, 1000) == 0:
		return fmt.Sprintf("%gk", v/1000)
	case v >= 1:
		return fmt.Sprintf("%.4g", v)
	default:
		return fmt.Sprintf("%.2g", v)
	}
}

func dash(d bool) string {
	if d {
		return ` stroke-dasharray="6,4"`
	}
	return ""
}

func esc(s string) string { return html.EscapeString(s) }

// latencyCharts are the report's plot: p99 of each direction's latency
// against offered load, a line per target and number of chats (the
// relay dashed).
func latencyCharts(runs []RunResult) []chart {
	colors := []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
		"#bcbd22", "#7f7f7f", "#393b79", "#ad494a"}
	// A color per driver and number of chats, shared by the relay and the
	// gateway on SQLite, and one per number of replicas on PostgreSQL;
	// with one driver, the series are named as before it had a name.
	type level struct {
		driver   string
		chats    int
		replicas int
	}
	levelOf := func(r RunResult) level { return level{r.Driver, r.Chats, pgReplicas(r.Target)} }
	var levels []level
	for _, r := range runs {
		if l := levelOf(r); !slices.Contains(levels, l) {
			levels = append(levels, l)
		}
	}
	named := len(driversOf(runs)) > 1
	pick := []struct {
		title string
		get   func(StepResult) float64
	}{
		{"in: client send → Selarti accepts (p99)", func(s StepResult) float64 { return s.In.P99 }},
		{"out: Selarti webhook → client has reply (p99)", func(s StepResult) float64 { return s.Out.P99 }},
	}
	var charts []chart
	for _, pk := range pick {
		c := chart{Title: pk.title, XLabel: "offered load (round trips/s)", YLabel: "latency (ms)",
			RefY: wantP99MS, RefLabel: fmt.Sprintf("%g ms: the target for the p99 added over the relay at %g rt/s", wantP99MS, wantP99AtRate)}
		for _, r := range runs {
			s := series{
				Name:   fmt.Sprintf("%s, %s chats", r.Target, thousands(r.Chats)),
				Color:  colors[slices.Index(levels, levelOf(r))%len(colors)],
				Dashed: r.Target == targetRelay,
			}
			if named {
				s.Name = r.Driver + ": " + s.Name
			}
			for _, st := range r.Steps {
				if st.Kind == stepRate {
					s.Points = append(s.Points, point{X: st.Offered, Y: pk.get(st), Hollow: st.Saturated})
				}
			}
			c.Series = append(c.Series, s)
		}
		charts = append(charts, c)
	}
	return charts
}
