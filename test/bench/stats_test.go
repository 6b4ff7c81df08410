package main

import (
	"math"
	"testing"
	"time"
)

func TestSummarise(t *testing.T) {
	msList := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100 ms down to 1 ms, unsorted
	}
	tests := []struct {
		name    string
		samples []time.Duration
		want    Percentiles
	}{
		{name: "none", samples: nil, want: Percentiles{}},
		{name: "one", samples: msList(7), want: Percentiles{N: 1, P50: 7, P95: 7, P99: 7, Max: 7}},
		{name: "two: the median is the lower by nearest rank", samples: msList(9, 1), want: Percentiles{N: 2, P50: 1, P95: 9, P99: 9, Max: 9}},
		{name: "1 to 100", samples: hundred, want: Percentiles{N: 100, P50: 50, P95: 95, P99: 99, Max: 100}},
		{name: "ten with an outlier", samples: msList(1, 1, 1, 1, 1, 1, 1, 1, 1, 500), want: Percentiles{N: 10, P50: 1, P95: 500, P99: 500, Max: 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarise(tt.samples); got != tt.want {
				t.Errorf("summarise = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		name string
		a, b float64
		want float64
	}{
		{name: "half", a: 1500, b: 3000, want: 0.5},
		{name: "above one", a: 3, b: 2, want: 1.5},
		{name: "missing numerator", a: 0, b: 3000, want: 0},
		{name: "missing denominator", a: 1500, b: 0, want: 0},
		{name: "negative", a: -1, b: 2, want: 0},
		{name: "NaN", a: math.NaN(), b: 2, want: 0},
		{name: "infinite", a: math.Inf(1), b: 2, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ratio(tt.a, tt.b); got != tt.want {
				t.Errorf("ratio(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestSpread(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   float64
	}{
		{name: "flat", values: []float64{2, 2, 2}, want: 0},
		{name: "20 percent", values: []float64{1.0, 1.2, 1.1}, want: 0.2},
		{name: "doubles", values: []float64{3, 6}, want: 1},
		{name: "zeros are missing values", values: []float64{0, 4, 5}, want: 0.25},
		{name: "one value", values: []float64{4}, want: 0},
		{name: "none", values: nil, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := spread(tt.values); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("spread(%v) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}
