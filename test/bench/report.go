package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything one benchmark run found; it is written as JSON.
type Report struct {
	Started     time.Time     `json:"started"`
	Seconds     float64       `json:"seconds"`
	Command     string        `json:"command"`
	Machine     Machine       `json:"machine"`
	Settings    Settings      `json:"settings"`
	Runs        []RunResult   `json:"runs"`
	Comparisons []Comparison  `json:"comparisons"`
	Targets     []TargetCheck `json:"targets"`
	// Gateway is the measured binary's version line; reports from
	// before it have none.
	Gateway string `json:"gateway,omitempty"`
}

// Machine describes where the figures were taken.
type Machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	MemoryMiB int64  `json:"memory_mib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	Revision  string `json:"revision"`
}

// Settings are the options the run used.
type Settings struct {
	Drivers []string `json:"drivers"`
	// Chats are the numbers of chats by driver. (Reports from before the
	// Telegram driver have "driver" and "chats" instead, which are not
	// read back.)
	Chats map[string][]int `json:"chats_by_driver"`
	// Targets are the targets asked for, PGChats the numbers of chats
	// of the gateway-pgN ones (reports from before them have neither).
	Targets       []string         `json:"targets,omitempty"`
	PGChats       map[string][]int `json:"pg_chats_by_driver,omitempty"`
	Rates         []float64        `json:"rates"`
	StepSeconds   float64          `json:"step_seconds"`
	SettleSeconds float64          `json:"settle_seconds"`
	Window        int              `json:"window"`
	Workers       int              `json:"delivery_workers"`
	Profile       bool             `json:"profile"`
}

// writeTable prints the report as plain text: a table per number of
// chats, the comparison with the relay, and the targets.
func writeTable(w io.Writer, rep Report) error {
	fmt.Fprintf(w, "Switchboard load benchmark, %s\n", rep.Started.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d CPUs, %d MiB, Linux %s, %s, revision %s\n",
		rep.Machine.CPU, rep.Machine.CPUs, rep.Machine.MemoryMiB, rep.Machine.Kernel, rep.Machine.Go, rep.Machine.Revision)
	if rep.Gateway != "" {
		fmt.Fprintf(w, "gateway: %s\n", rep.Gateway)
	}
	fmt.Fprintf(w, "command: %s\n", rep.Command)
	if rep.Settings.Profile {
		fmt.Fprintln(w, "NOTE: -profile run: the gateway ran with CPU and allocation profiling on; its figures are not comparable.")
	}
	for _, group := range groupRuns(rep.Runs) {
		first := group[0]
		fmt.Fprintf(w, "\n== %s, %s chats (%s) ==\n", first.Driver, thousands(first.Chats), first.Mode)
		for _, r := range group {
			if r.Active != 0 && r.Active < r.Chats {
				fmt.Fprintf(w, "%s: only %s chats wrote within the warm-up's time limit; the steps used those\n", r.Target, thousands(r.Active))
			}
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\tstep\toffered\tachieved rt/s\tsent\tlost\tin p50/p95/p99 ms\tout p50/p95/p99 ms\trt p99 ms\tCPU s/1k\tPG CPU s/1k\tharness CPU s\tpeak RSS MB\tload1\t")
		for _, r := range group {
			if r.Err != "" {
				fmt.Fprintf(tw, "%s\terror (below)\t\t\t\t\t\t\t\t\t\t\t\t\t\n", r.Target)
			}
			for _, s := range r.Steps {
				offered := "-"
				switch s.Kind {
				case stepRate:
					offered = fmt.Sprintf("%.0f", s.Offered)
				case stepMax:
					offered = fmt.Sprintf("w=%d", s.Window)
				}
				mark := ""
				if s.Saturated {
					mark = "*"
				}
				pgCPU := "-"
				if r.Replicas > 0 {
					pgCPU = fmt.Sprintf("%.3f", s.PGCPUPer1000)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%s\t%d\t%d\t%s\t%s\t%.2f\t%.3f\t%s\t%.1f\t%.1f\t%.2f\t\n",
					r.Target, s.Kind, offered, s.Achieved, mark, s.Sent, s.Lost,
					pct3(s.In), pct3(s.Out), s.RoundTrip.P99, s.CPUPer1000, pgCPU, s.HarnessCPUSeconds,
					float64(s.PeakRSS)/mib, s.Load1)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, r := range group {
			if r.Err != "" {
				fmt.Fprintf(w, "%s: error: %s\n", r.Target, r.Err)
			}
		}
		for _, r := range group {
			store := "-"
			switch {
			case r.Replicas > 0:
				store = fmt.Sprintf("%.1f MB in the data directories, %.1f MB in the PostgreSQL database", float64(r.StoreBytes)/mib, float64(r.PGBytes)/mib)
			case isGateway(r.Target):
				store = fmt.Sprintf("%.1f MB", float64(r.StoreBytes)/mib)
			}
			name := r.Target
			if r.Replicas > 0 {
				name = fmt.Sprintf("%s (%d replicas, RSS and CPU summed over them)", r.Target, r.Replicas)
				if r.Replicas == 1 {
					name = r.Target + " (1 replica)"
				}
			}
			fmt.Fprintf(w, "%s: load average %.2f before it started; idle RSS %.1f MB, connected %.1f MB, peak %.1f MB (highest sample %s), CPU %.1f s in all, store after the run %s\n",
				name, r.LoadBefore, float64(r.IdleRSS)/mib, float64(r.ConnectedRSS)/mib, float64(r.PeakRSS)/mib, peakPhase(r.Phases), r.CPUSeconds, store)
			if r.Replicas > 0 {
				commits := ""
				if m, ok := r.step(stepMax, 0); ok && m.PGCommitsPerRT > 0 {
					commits = fmt.Sprintf(", %.1f commits per round trip at the max step", m.PGCommitsPerRT)
				}
				fmt.Fprintf(w, "  PostgreSQL: CPU %.1f s from the replicas' start to the users' disconnect%s; balancer: %s requests to the replicas in turn, %d unanswered\n",
					r.PGCPUSeconds, commits, joinInts(r.Balanced, "/"), r.BalancerErrors)
			}
			if g := r.ConnectedGo; g != nil {
				rest := "the rest of the RSS is SQLite's and the runtime's"
				if r.Replicas > 0 {
					rest = "summed over the replicas"
				}
				fmt.Fprintf(w, "  connected, as Go sees it: heap in use %.1f MB, goroutine stacks %.1f MB (%d goroutines), all Go memory %.1f MB; %s\n",
					float64(g.HeapInuse)/mib, float64(g.StackInuse)/mib, g.Goroutines, float64(g.Sys)/mib, rest)
			}
		}
		for _, c := range rep.Comparisons {
			if c.Driver != first.Driver || c.Chats != first.Chats {
				continue
			}
			if c.MaxRate == 0 && len(c.Rates) == 0 && !c.gatewayVsRelay() {
				continue // a replicas run that failed before its steps: nothing to compare
			}
			target, base := c.Target, c.Base
			if target == "" {
				target, base = targetGateway, targetRelay
			}
			fmt.Fprintf(w, "%s/%s: max rate %.2f, CPU per message %.2f×, peak RSS %.2f×\n", target, base, c.MaxRate, c.CPUPer1000, c.PeakRSS)
			for _, rc := range c.Rates {
				fmt.Fprintf(w, "  at %.0f rt/s: p99 added over the %s: in %+.2f ms, out %+.2f ms; CPU per message %.2f×\n",
					rc.Offered, base, rc.InP99Added, rc.OutP99Added, rc.CPUPer1000)
			}
		}
	}
	fmt.Fprintln(w, "\n* saturated: under 90% of the offered load achieved, or replies lost")
	fmt.Fprintln(w, "in: client send → Selarti accepts; out: Selarti starts the reply webhook → client reads the reply")
	if slices.ContainsFunc(rep.Runs, func(r RunResult) bool { return r.Replicas > 0 }) {
		fmt.Fprintln(w, targetPGPrefix+"N: N gateway replicas on one PostgreSQL database, behind the harness's round-robin balancer (its CPU is in the harness's).")
		fmt.Fprintln(w, "  CPU s/1k, RSS and CPU in all are the replicas' summed (a peak is the sum of each one's own); PG CPU s/1k is PostgreSQL's for the")
		fmt.Fprintln(w, "  database (its backends) and the server's WAL writer, checkpointer and background writer; PostgreSQL's memory is not counted.")
		fmt.Fprintln(w, "  The comparisons' CPU per message includes PostgreSQL's.")
	}
	if slices.ContainsFunc(rep.Runs, func(r RunResult) bool { return r.Driver == "telegram" }) {
		fmt.Fprintln(w, "telegram: the send is the user writing (the update then waits for a free webhook connection); the read is the Bot API fake taking the sendMessage")
	}
	if slices.ContainsFunc(rep.Runs, func(r RunResult) bool { return r.Driver == "discord" }) {
		fmt.Fprintln(w, "discord: the send is the user posting in the DM (the fake queues the MESSAGE_CREATE on the target's session); the read is the fake storing the bot's message")
	}
	if slices.ContainsFunc(rep.Runs, func(r RunResult) bool { return r.Driver == "slack" }) {
		fmt.Fprintln(w, "slack: the send is the user writing in the DM (the fake queues the envelope for the target's connections); the read is the fake storing the chat.postMessage")
	}
	fmt.Fprintln(w, "\n== targets (issue 15) ==")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "met\ttarget\tmeasured")
	for _, t := range rep.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Met, t.Target, t.Got)
	}
	return tw.Flush()
}

// peakPhase names the phase with the highest sampled resident set.
func peakPhase(phases []PhasePeak) string {
	best := PhasePeak{Phase: "none"}
	for _, p := range phases {
		if p.RSS > best.RSS {
			best = p
		}
	}
	return fmt.Sprintf("%.1f MB in %s", float64(best.RSS)/mib, best.Phase)
}

func pct3(p Percentiles) string {
	if p.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f", p.P50, p.P95, p.P99)
}

// groupRuns groups runs by driver and chats, in the order they ran.
func groupRuns(runs []RunResult) [][]RunResult {
	var out [][]RunResult
	for _, r := range runs {
		i := slices.IndexFunc(out, func(g []RunResult) bool { return g[0].Driver == r.Driver && g[0].Chats == r.Chats })
		if i < 0 {
			out = append(out, []RunResult{r})
			continue
		}
		out[i] = append(out[i], r)
	}
	return out
}

// csvHeader names the columns of the CSV file: one row per step.
var csvHeader = []string{
	"driver", "chats", "active_chats", "connections", "target", "step", "offered_rt_s", "window", "seconds",
	"sent", "replied", "lost", "dups", "achieved_rt_s",
	"in_p50_ms", "in_p95_ms", "in_p99_ms", "out_p50_ms", "out_p95_ms", "out_p99_ms",
	"webhook_answer_p99_ms", "rt_p50_ms", "rt_p99_ms",
	"cpu_s", "cpu_s_per_1000", "harness_cpu_s", "rss_bytes", "peak_rss_bytes", "load1", "saturated",
	"run_idle_rss_bytes", "run_peak_rss_bytes", "run_store_bytes",
	"replicas", "postgres_cpu_s", "postgres_cpu_s_per_1000", "postgres_commits_per_rt", "run_postgres_cpu_s", "run_postgres_bytes",
}

func writeCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	i := strconv.Itoa
	for _, r := range rep.Runs {
		for _, s := range r.Steps {
			row := []string{
				r.Driver, i(r.Chats), i(r.Active), i(r.Conns), r.Target, s.Kind, f(s.Offered), i(s.Window), f(s.Seconds),
				i(s.Sent), i(s.Replied), i(s.Lost), i(s.Dups), f(s.Achieved),
				f(s.In.P50), f(s.In.P95), f(s.In.P99), f(s.Out.P50), f(s.Out.P95), f(s.Out.P99),
				f(s.WebhookAnswer.P99), f(s.RoundTrip.P50), f(s.RoundTrip.P99),
				f(s.CPUSeconds), f(s.CPUPer1000), f(s.HarnessCPUSeconds),
				strconv.FormatInt(s.RSS, 10), strconv.FormatInt(s.PeakRSS, 10), f(s.Load1), strconv.FormatBool(s.Saturated),
				strconv.FormatInt(r.IdleRSS, 10), strconv.FormatInt(r.PeakRSS, 10), strconv.FormatInt(r.StoreBytes, 10),
				i(r.Replicas), f(s.PGCPUSeconds), f(s.PGCPUPer1000), f(s.PGCommitsPerRT), f(r.PGCPUSeconds), strconv.FormatInt(r.PGBytes, 10),
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// writeFiles writes <dir>/<stamp>.json, .csv, .svg and .txt and returns
// their paths.
func writeFiles(dir, stamp string, rep Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create results directory: %w", err)
	}
	base := filepath.Join(dir, stamp)
	var paths []string
	write := func(ext string, fn func(io.Writer) error) error {
		p := base + ext
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		paths = append(paths, p)
		return nil
	}
	err := write(".json", func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
	if err == nil {
		err = write(".csv", func(w io.Writer) error { return writeCSV(w, rep) })
	}
	if err == nil {
		err = write(".svg", func(w io.Writer) error { return writeSVG(w, latencyCharts(rep.Runs)) })
	}
	if err == nil {
		err = write(".txt", func(w io.Writer) error { return writeTable(w, rep) })
	}
	return paths, err
}

// joinInts joins ns with sep: [1 2 3] → "1/2/3".
func joinInts(ns []int64, sep string) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(s, sep)
}

// thousands formats n with commas: 100000 → "100,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
