package main

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// wellFormed decodes every token of doc and returns the root element's
// name and how many elements of each name it holds.
func wellFormed(t *testing.T, doc string) (string, map[string]int) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	root := ""
	count := map[string]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return root, count
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			count[se.Name.Local]++
		}
	}
}

func TestWriteSVG(t *testing.T) {
	tests := []struct {
		name        string
		charts      []chart
		wantLines   int // polylines
		wantCircles int // points, plus the legend's "saturated" marker
		wantText    []string
	}{
		{name: "no charts", charts: nil},
		{
			name:        "empty series",
			charts:      []chart{{Title: "t", Series: []series{{Name: "gateway", Color: "red"}}}},
			wantCircles: 1,
		},
		{
			name: "two series, names escaped, saturated point hollow",
			charts: []chart{{
				Title: "in <p99> & out", XLabel: "rt/s", YLabel: "ms", RefY: 5, RefLabel: "target < 5 ms",
				Series: []series{
					{Name: `relay "10" <chats>`, Color: "#1f77b4", Dashed: true, Points: []point{{X: 100, Y: 0.5}, {X: 1000, Y: 2}}},
					{Name: "gateway & co", Color: "#d62728", Points: []point{{X: 100, Y: 3}, {X: 1000, Y: 40}, {X: 4000, Y: 4000, Hollow: true}, {X: 0, Y: 5}}},
				},
			}},
			wantLines:   2,
			wantCircles: 5 + 1,
			wantText:    []string{"in &lt;p99&gt; &amp; out", "target &lt; 5 ms", "relay &#34;10&#34; &lt;chats&gt;", `fill="white" stroke="#d62728"`, "stroke-dasharray"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := writeSVG(&b, tt.charts); err != nil {
				t.Fatal(err)
			}
			root, count := wellFormed(t, b.String())
			if root != "svg" {
				t.Errorf("root element %q, want svg", root)
			}
			if count["polyline"] != tt.wantLines || count["circle"] != tt.wantCircles {
				t.Errorf("%d polylines and %d circles, want %d and %d", count["polyline"], count["circle"], tt.wantLines, tt.wantCircles)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(b.String(), s) {
					t.Errorf("SVG lacks %q", s)
				}
			}
		})
	}
}

func TestLogTicks(t *testing.T) {
	lo, hi := logRange([]float64{150, 3000})
	if lo != 2 || hi != 4 {
		t.Fatalf("logRange = %v..%v, want 2..4", lo, hi)
	}
	got := logTicks(lo, hi)
	want := []float64{100, 200, 500, 1000, 2000, 5000, 10000}
	if len(got) != len(want) {
		t.Fatalf("ticks %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ticks %v, want %v", got, want)
		}
	}
	if lo, hi := logRange([]float64{7}); hi-lo != 1 {
		t.Errorf("one value spans %v..%v, want one decade", lo, hi)
	}
}

func TestLatencyChartsFromRuns(t *testing.T) {
	runs := []RunResult{
		{Target: targetRelay, Chats: 10, Steps: []StepResult{{Kind: stepWarmup}, {Kind: stepRate, Offered: 100, In: Percentiles{P99: 1}, Out: Percentiles{P99: 2}}}},
		{Target: targetGateway, Chats: 10, Steps: []StepResult{{Kind: stepRate, Offered: 100, In: Percentiles{P99: 3}}, {Kind: stepMax}}},
	}
	charts := latencyCharts(runs)
	if len(charts) != 2 {
		t.Fatalf("%d charts, want in and out", len(charts))
	}
	for _, c := range charts {
		if len(c.Series) != 2 || len(c.Series[0].Points) != 1 || len(c.Series[1].Points) != 1 {
			t.Errorf("chart %q: want one point per run from its rate steps only, got %+v", c.Title, c.Series)
		}
		if !c.Series[0].Dashed || c.Series[1].Dashed {
			t.Errorf("chart %q: the relay must be dashed and the gateway solid", c.Title)
		}
	}
	if y := charts[0].Series[1].Points[0].Y; y != 3 {
		t.Errorf("gateway in p99 point = %v, want 3", y)
	}
}

// With two drivers, each series names its driver and each driver's
// level has its own color, so that the lines of the two do not read as
// one.
func TestLatencyChartsTwoDrivers(t *testing.T) {
	rate := []StepResult{{Kind: stepRate, Offered: 100, In: Percentiles{P99: 1}}}
	runs := []RunResult{
		{Target: targetRelay, Driver: "webchat", Chats: 10, Steps: rate},
		{Target: targetGateway, Driver: "webchat", Chats: 10, Steps: rate},
		{Target: targetRelay, Driver: "telegram", Chats: 10, Steps: rate},
		{Target: targetGateway, Driver: "telegram", Chats: 10, Steps: rate},
	}
	s := latencyCharts(runs)[0].Series
	if len(s) != 4 || s[0].Name != "webchat: relay, 10 chats" || s[3].Name != "telegram: gateway, 10 chats" {
		t.Fatalf("series %+v", s)
	}
	if s[0].Color != s[1].Color || s[1].Color == s[2].Color || s[2].Color != s[3].Color {
		t.Errorf("colors %s %s %s %s: want one per driver and chats", s[0].Color, s[1].Color, s[2].Color, s[3].Color)
	}
	one := latencyCharts(runs[:2])[0].Series
	if one[0].Name != "relay, 10 chats" {
		t.Errorf("one driver: series named %q, want no driver", one[0].Name)
	}
}
