package main

import (
	"math"
	"slices"
	"time"
)

// Percentiles summarises one latency distribution, in milliseconds.
type Percentiles struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P95 float64 `json:"p95_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarise computes the percentiles of samples (which it sorts in place)
// by the nearest-rank method: the p-th percentile is the smallest sample
// with at least p% of the samples at or below it. Nearest rank never
// invents a value between two samples, so a p99 over few samples is one
// that was really observed.
func summarise(samples []time.Duration) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	slices.Sort(samples)
	return Percentiles{
		N:   len(samples),
		P50: ms(percentile(samples, 50)),
		P95: ms(percentile(samples, 95)),
		P99: ms(percentile(samples, 99)),
		Max: ms(samples[len(samples)-1]),
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted, by
// nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ratio returns a/b, or 0 when either is not a positive measurement: a
// ratio to nothing is reported as missing, not as infinity.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 || math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || math.IsInf(b, 0) {
		return 0
	}
	return a / b
}

// spread returns (max-min)/min over the positive values: how far the
// largest is above the smallest, as a fraction. It is the measure of
// "flat within 20%". Fewer than two values give 0.
func spread(values []float64) float64 {
	lo, hi, n := math.Inf(1), math.Inf(-1), 0
	for _, v := range values {
		if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		lo, hi, n = min(lo, v), max(hi, v), n+1
	}
	if n < 2 {
		return 0
	}
	return (hi - lo) / lo
}
