package main

import (
	"strings"
	"testing"
)

func fakeRun(target string, chats int, idle, peak int64, steps ...StepResult) RunResult {
	return RunResult{Target: target, Driver: "webchat", Chats: chats, Active: chats, IdleRSS: idle, PeakRSS: peak, Steps: steps}
}

// driverRun is r as run by driver.
func driverRun(driver string, r RunResult) RunResult {
	r.Driver = driver
	return r
}

func TestCompareRuns(t *testing.T) {
	runs := []RunResult{
		fakeRun(targetRelay, 10, 8<<20, 20<<20,
			StepResult{Kind: stepRate, Offered: 500, In: Percentiles{P99: 1}, Out: Percentiles{P99: 1.5}, CPUPer1000: 0.5},
			StepResult{Kind: stepMax, Achieved: 4000, CPUPer1000: 0.25}),
		fakeRun(targetGateway, 10, 20<<20, 60<<20,
			StepResult{Kind: stepRate, Offered: 500, In: Percentiles{P99: 4}, Out: Percentiles{P99: 2}, CPUPer1000: 2},
			StepResult{Kind: stepRate, Offered: 1000},
			StepResult{Kind: stepMax, Achieved: 1000, CPUPer1000: 1}),
		fakeRun(targetGateway, 1000, 20<<20, 60<<20),                      // no relay run to compare with
		driverRun("telegram", fakeRun(targetGateway, 10, 20<<20, 60<<20)), // nor this: the relay ran webchat
		driverRun("telegram", fakeRun(targetRelay, 1000, 8<<20, 20<<20)),  // and this relay's gateway is webchat
	}
	got := compareRuns(runs)
	if len(got) != 1 {
		t.Fatalf("%d comparisons, want 1: %+v", len(got), got)
	}
	c := got[0]
	if c.Chats != 10 || c.MaxRate != 0.25 || c.CPUPer1000 != 4 || c.PeakRSS != 3 {
		t.Errorf("comparison %+v, want chats 10, max rate 0.25, cpu 4, peak 3", c)
	}
	if len(c.Rates) != 1 {
		t.Fatalf("rates %+v, want the one rate both ran", c.Rates)
	}
	if r := c.Rates[0]; r.Offered != 500 || r.InP99Added != 3 || r.OutP99Added != 0.5 || r.CPUPer1000 != 4 {
		t.Errorf("rate comparison %+v", r)
	}
}

func TestCheckTargets(t *testing.T) {
	// The relay at 10 chats that two cases measure the gateway against.
	relay10 := fakeRun(targetRelay, 10, 8<<20, 20<<20,
		StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 1}, Out: Percentiles{N: 10, P99: 1}, CPUPer1000: 0.6},
		StepResult{Kind: stepMax, Achieved: 5000})
	tests := []struct {
		name string
		runs []RunResult
		want map[string]string // substring of the target → met
	}{
		{
			name: "all met",
			runs: []RunResult{
				relay10,
				fakeRun(targetGateway, 10, 20<<20, 50<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 2}, Out: Percentiles{N: 10, P99: 5.9}, CPUPer1000: 1.2},
					StepResult{Kind: stepMax, Achieved: 3000, CPUPer1000: 0.5}),
				fakeRun(targetGateway, 100000, 25<<20, 70<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 4}, Out: Percentiles{N: 10, P99: 4.9}, CPUPer1000: 1.15},
					StepResult{Kind: stepMax, Achieved: 3000, CPUPer1000: 0.55}),
			},
			want: map[string]string{
				"max rate ≥ 60% of the bare relay's (webchat, 10 chats)":              "yes",
				"CPU per round trip ≤ 2× the relay's at 500 rt/s (webchat, 10 chats)": "yes",
				"p99 added over the relay < 5 ms at 500 rt/s (webchat, 10 chats)":     "yes",
				// No relay at 100,000 chats: nothing to compare with.
				"relay's (webchat, 100000 chats)": "n/a", "at 500 rt/s (webchat, 100000 chats)": "n/a",
				"peak RSS": "yes", "idle RSS": "yes",
				"across chats (webchat, at 500 rt/s)": "yes", "across chats (webchat, at the max step)": "yes",
			},
		},
		{
			name: "none met",
			runs: []RunResult{
				fakeRun(targetRelay, 10, 8<<20, 20<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 1}, Out: Percentiles{N: 10, P99: 1}, CPUPer1000: 0.4},
					StepResult{Kind: stepMax, Achieved: 5000}),
				fakeRun(targetGateway, 10, 31<<20, 50<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 6}, Out: Percentiles{N: 10, P99: 1}, CPUPer1000: 1.0},
					StepResult{Kind: stepMax, Achieved: 2999, CPUPer1000: 1}),
				fakeRun(targetRelay, 100000, 8<<20, 20<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 1}, Out: Percentiles{N: 10, P99: 1}, CPUPer1000: 1.0},
					StepResult{Kind: stepMax, Achieved: 5000}),
				fakeRun(targetGateway, 100000, 25<<20, 81<<20,
					StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 1}, Out: Percentiles{N: 10, P99: 1}, CPUPer1000: 1.25},
					StepResult{Kind: stepMax, Achieved: 2000, CPUPer1000: 1.21}),
			},
			want: map[string]string{
				// 2,999 of 5,000 is just under 60%; 1.0 / 0.4 is 2.5×; in
				// +5 ms is not under 5.
				"max rate ≥ 60% of the bare relay's (webchat, 10 chats)":                  "no",
				"CPU per round trip ≤ 2× the relay's at 500 rt/s (webchat, 10 chats)":     "no",
				"p99 added over the relay < 5 ms at 500 rt/s (webchat, 10 chats)":         "no",
				"relay's (webchat, 100000 chats)":                                         "no",
				"CPU per round trip ≤ 2× the relay's at 500 rt/s (webchat, 100000 chats)": "yes",
				"p99 added over the relay < 5 ms at 500 rt/s (webchat, 100000 chats)":     "yes",
				"peak RSS": "no", "idle RSS": "no",
				"across chats (webchat, at 500 rt/s)": "no", "across chats (webchat, at the max step)": "no",
			},
		},
		{
			name: "warm-up cut short: a low peak proves nothing, a high one is a miss",
			runs: []RunResult{
				{Target: targetGateway, Driver: "webchat", Chats: 100000, Active: 40000, PeakRSS: 60 << 20},
				{Target: targetGateway, Driver: "webchat", Chats: 200000, Active: 50000, PeakRSS: 90 << 20},
			},
			want: map[string]string{"peak RSS": "no"},
		},
		{
			name: "two drivers: memory and flatness are each driver's",
			runs: []RunResult{
				fakeRun(targetRelay, 10, 8<<20, 20<<20, StepResult{Kind: stepMax, Achieved: 5000}),
				fakeRun(targetGateway, 10, 20<<20, 50<<20,
					StepResult{Kind: stepRate, Offered: 500, CPUPer1000: 1.0}, StepResult{Kind: stepMax, Achieved: 1000, CPUPer1000: 1.0}),
				fakeRun(targetGateway, 100000, 25<<20, 90<<20,
					StepResult{Kind: stepRate, Offered: 500, CPUPer1000: 1.1}, StepResult{Kind: stepMax, Achieved: 1000, CPUPer1000: 1.1}),
				driverRun("telegram", fakeRun(targetRelay, 10, 8<<20, 20<<20, StepResult{Kind: stepMax, Achieved: 4000})),
				driverRun("telegram", fakeRun(targetGateway, 10, 32<<20, 40<<20,
					StepResult{Kind: stepRate, Offered: 500, CPUPer1000: 1.0}, StepResult{Kind: stepMax, Achieved: 2400, CPUPer1000: 0.5})),
				driverRun("telegram", fakeRun(targetGateway, 100000, 29<<20, 60<<20,
					StepResult{Kind: stepRate, Offered: 500, CPUPer1000: 2.0}, StepResult{Kind: stepMax, Achieved: 2000, CPUPer1000: 0.55})),
			},
			want: map[string]string{
				"bare relay's (webchat, 10 chats)": "no", "bare relay's (telegram, 10 chats)": "yes",
				"peak RSS < 80 MB at 100000 active chats (webchat)": "no", "peak RSS < 80 MB at 100000 active chats (telegram)": "yes",
				"idle RSS < 30 MB (webchat)": "yes", "idle RSS < 30 MB (telegram)": "no",
				"across chats (webchat, at 500 rt/s)": "yes", "across chats (telegram, at 500 rt/s)": "no",
				"across chats (webchat, at the max step)": "yes", "across chats (telegram, at the max step)": "yes",
			},
		},
		{
			name: "no latency samples: nothing measured, not met by a p99 of 0",
			runs: []RunResult{
				relay10,
				fakeRun(targetGateway, 10, 20<<20, 50<<20,
					StepResult{Kind: stepRate, Offered: 500, CPUPer1000: 1.0},
					StepResult{Kind: stepMax, Achieved: 3000, CPUPer1000: 0.5}),
			},
			want: map[string]string{"p99 added over the relay < 5 ms at 500 rt/s (webchat, 10 chats)": "n/a"},
		},
		{
			name: "not measured",
			runs: []RunResult{fakeRun(targetGateway, 10, 20<<20, 50<<20, StepResult{Kind: stepMax, Achieved: 100})},
			want: map[string]string{
				"relay's (webchat, 10 chats)": "n/a", "at 500 rt/s (webchat, 10 chats)": "n/a", "peak RSS": "n/a",
				"across chats (webchat, at 500 rt/s)": "n/a",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checks := checkTargets(tt.runs, compareRuns(tt.runs))
			for sub, want := range tt.want {
				found := false
				for _, c := range checks {
					if strings.Contains(c.Target, sub) {
						found = true
						if c.Met != want {
							t.Errorf("%q: met %q (%s), want %q", c.Target, c.Met, c.Got, want)
						}
					}
				}
				if !found {
					t.Errorf("no target matching %q in %+v", sub, checks)
				}
			}
		})
	}
}

// A replicas run is compared with the relay and with the gateway on
// SQLite, its CPU with PostgreSQL's; issue #5's targets stay the SQLite
// gateway's.
func TestCompareReplicas(t *testing.T) {
	pg := fakeRun("gateway-pg2", 10, 50<<20, 120<<20,
		StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 6}, Out: Percentiles{N: 10, P99: 3}, CPUPer1000: 2, PGCPUPer1000: 2},
		StepResult{Kind: stepMax, Achieved: 800, CPUPer1000: 1, PGCPUPer1000: 1})
	pg.Replicas = 2
	runs := []RunResult{
		fakeRun(targetRelay, 10, 8<<20, 20<<20,
			StepResult{Kind: stepRate, Offered: 500, In: Percentiles{P99: 1}, Out: Percentiles{P99: 1}, CPUPer1000: 0.5},
			StepResult{Kind: stepMax, Achieved: 4000, CPUPer1000: 0.25}),
		fakeRun(targetGateway, 10, 20<<20, 60<<20,
			StepResult{Kind: stepRate, Offered: 500, In: Percentiles{N: 10, P99: 4}, Out: Percentiles{N: 10, P99: 2}, CPUPer1000: 2},
			StepResult{Kind: stepMax, Achieved: 1600, CPUPer1000: 1}),
		pg,
	}
	cmp := compareRuns(runs)
	if len(cmp) != 3 {
		t.Fatalf("%d comparisons, want 3 (gateway/relay, pg2/relay, pg2/gateway): %+v", len(cmp), cmp)
	}
	byPair := map[string]Comparison{}
	for _, c := range cmp {
		byPair[c.Target+"/"+c.Base] = c
	}
	if c := byPair["gateway-pg2/gateway"]; c.MaxRate != 0.5 || c.CPUPer1000 != 2 || c.PeakRSS != 2 || len(c.Rates) != 1 || c.Rates[0].InP99Added != 2 || c.Rates[0].CPUPer1000 != 2 {
		t.Errorf("pg2/gateway %+v", c)
	}
	if c := byPair["gateway-pg2/relay"]; c.MaxRate != 0.2 || c.CPUPer1000 != 8 {
		t.Errorf("pg2/relay %+v", c)
	}
	for _, tc := range checkTargets(runs, cmp) {
		if strings.Contains(tc.Target, "bare relay's") && tc.Got != "40%" {
			t.Errorf("%q: %s, want the SQLite gateway's 40%%", tc.Target, tc.Got)
		}
	}

	failed := RunResult{Target: "gateway-pg3", Driver: "webchat", Chats: 10, Replicas: 3, Err: "PostgreSQL at x cannot be reached"}
	rep := Report{Runs: append(runs, failed), Comparisons: cmp, Targets: checkTargets(runs, cmp)}
	var b strings.Builder
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PG CPU s/1k", "gateway-pg2 (2 replicas, RSS and CPU summed over them)", "gateway-pg2/gateway: max rate 0.50,",
		"gateway-pg2/relay: max rate 0.20,", "gateway/relay: max rate 0.40,", "p99 added over the gateway: in +2.00 ms", "in the PostgreSQL database",
		"gateway-pgN: N gateway replicas", "gateway-pg3  error (below)", "gateway-pg3: error: PostgreSQL at x cannot be reached\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	rep.Comparisons = compareRuns(rep.Runs)
	b.Reset()
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "gateway-pg3/") {
		t.Errorf("a comparison of the failed run, which has no steps:\n%s", b.String())
	}
}
