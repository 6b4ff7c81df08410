package main

import (
	"encoding/csv"
	"slices"
	"strings"
	"testing"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 10: "10", 999: "999", 1000: "1,000", 100000: "100,000", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestReportFiles(t *testing.T) {
	rep := Report{Runs: []RunResult{
		fakeRun(targetRelay, 10, 8<<20, 20<<20, StepResult{Kind: stepWarmup}, StepResult{Kind: stepMax, Achieved: 5000}),
		fakeRun(targetGateway, 10, 20<<20, 50<<20, StepResult{Kind: stepRate, Offered: 500, Saturated: true}),
	}}
	rep.Comparisons = compareRuns(rep.Runs)
	rep.Targets = checkTargets(rep.Runs, rep.Comparisons)

	var b strings.Builder
	if err := writeCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(strings.NewReader(b.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+3 {
		t.Fatalf("%d CSV rows, want a header and one per step (3)", len(rows))
	}
	for i, row := range rows {
		if len(row) != len(csvHeader) {
			t.Errorf("row %d has %d fields, want %d", i, len(row), len(csvHeader))
		}
	}
	col := func(name string) int { return slices.Index(csvHeader, name) }
	if last := rows[3]; last[col("target")] != targetGateway || last[col("step")] != stepRate || last[col("saturated")] != "true" {
		t.Errorf("last row %v: want the gateway's saturated rate step", last)
	}

	b.Reset()
	rep.Gateway = "switchboard v9.9.9 (go1.26.8, linux/amd64)"
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\ngateway: switchboard v9.9.9 (go1.26.8, linux/amd64)\n", "== webchat, 10 chats", "gateway/relay: max rate", "== targets (issue 15) ==", "0.0*"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}

	// A second driver gets its own tables, comparison and targets.
	rep.Runs = append(rep.Runs,
		driverRun("telegram", fakeRun(targetRelay, 10, 8<<20, 20<<20, StepResult{Kind: stepMax, Achieved: 4000})),
		driverRun("telegram", fakeRun(targetGateway, 10, 20<<20, 50<<20, StepResult{Kind: stepMax, Achieved: 1000})))
	rep.Comparisons = compareRuns(rep.Runs)
	rep.Targets = checkTargets(rep.Runs, rep.Comparisons)
	b.Reset()
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"== webchat, 10 chats", "== telegram, 10 chats", "gateway/relay: max rate 0.25,", "telegram: the send is the user writing",
		"peak RSS < 80 MB at 100000 active chats (webchat)", "idle RSS < 30 MB (telegram)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("two-driver table lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	if err := writeCSV(&b, rep); err != nil {
		t.Fatal(err)
	}
	if rows, _ := csv.NewReader(strings.NewReader(b.String())).ReadAll(); len(rows) != 1+5 || rows[5][col("driver")] != "telegram" {
		t.Errorf("two-driver CSV: %d rows, last %v; want 6, the last telegram's", len(rows), rows[len(rows)-1])
	}

	dir := t.TempDir()
	paths, err := writeFiles(dir, "stamp", rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 4 {
		t.Errorf("wrote %v, want json, csv, svg and txt", paths)
	}
}
