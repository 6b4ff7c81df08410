// Command bench is Switchboard's end-to-end load benchmark (issues 5 and 15),
// run by `make bench`. On loopback it drives load from many users of a
// messenger (the drivers: webchat users on the WebSocket, and Telegram
// users through the Bot API fake in webhook mode; Discord and Slack users
// writing DMs through their fakes with -drivers discord,slack; see
// Driver) through a target to the Selarti simulator, answering at zero
// think time, and the simulator's webhooks back to the users. The target is, in turn, the
// real gateway binary with its durable SQLite store, the bare relay
// (test/bench/relay), the smallest program that moves the same messages
// between the same fakes, and one to three gateway replicas on one
// PostgreSQL database (gateway-pg1 to gateway-pg3: a database of their
// own on the -pg server for each run, and a round-robin balancer in the
// harness in front of them; see balancer.go and postgres.go). They run in
// the same benchmark, so the gateway's figures are reported as ratios to
// the relay's, and the replicas' also to the single gateway's.
//
// For each driver, each of its numbers of active chats (default 10, 1,000
// and 100,000 for Telegram, 10 and 1,000 for the webchat; the replicas
// at 1,000 only, -pg-chats) and each target: start it, connect the
// chats, send each chat's first message (warm-up), offer fixed rates
// open loop (default 100 to 4,000 round trips a second, stopping above
// the first rate the target cannot sustain), then keep a fixed number of
// messages outstanding (the max step). It prints a table and writes bench-results/<stamp>.json, .csv,
// .svg (latency against offered load) and .txt.
//
// The run is not part of `go test ./...`; only its pure parts have tests.
// docs/benchmarks.md describes the method and its limits.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	quick       bool
	drivers     []string
	chats       map[string][]int // by driver
	rates       []float64
	targets     []string
	pgDSN       string           // the server of the gateway-pgN targets' databases
	pgChats     map[string][]int // by driver: the numbers of chats the gateway-pgN targets run at
	skipPG      bool
	step        time.Duration
	settle      time.Duration
	drain       time.Duration
	warmupDrain time.Duration
	warmupMax   time.Duration
	window      int
	workers     int
	out         string
	profile     bool
	gatewayBin  string
	allRates    bool
	keep        bool
	maxConns    int
	sourceIPs   int
	connsPerIP  int
	stamp       string
	replot      string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		return err
	}
	if o.replot != "" {
		return replot(o.replot)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	maxConns := 0
	for _, c := range o.chats["webchat"] {
		maxConns = max(maxConns, min(c, o.maxConns))
	}
	// One socket per open webchat chat (Telegram users have none), plus
	// the HTTP connections to and from the fakes. The targets inherit the
	// limit.
	if got, err := raiseFileLimit(uint64(maxConns + 10000)); err != nil {
		return err
	} else if got < uint64(maxConns+1000) {
		log.Warn("open files limit too low for the connections asked for; lower -max-conns", "limit", got, "connections", maxConns)
	}

	workDir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	if o.keep {
		log.Info("keeping the work directory (logs, stores)", "dir", workDir)
	} else {
		defer os.RemoveAll(workDir)
	}
	if o.profile {
		// The gateway writes its profiles there, before the results are.
		if err := os.MkdirAll(o.out, 0o755); err != nil {
			return fmt.Errorf("create results directory: %w", err)
		}
	}
	log.Info("building", "profile", o.profile)
	if o.gatewayBin != "" {
		if o.profile {
			return errors.New("-gateway-bin and -profile: the profiling wrapper is built from this tree")
		}
		abs, err := filepath.Abs(o.gatewayBin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			return fmt.Errorf("-gateway-bin: %w", err)
		}
		o.gatewayBin = abs
	}
	mach := machine()
	bins, err := buildBinaries(ctx, workDir, o.profile, o.gatewayBin, mach.Revision)
	if err != nil {
		return err
	}
	gwVersion, err := gatewayVersion(ctx, bins)
	if err != nil {
		return err
	}

	rep := Report{
		Started: time.Now(),
		Command: "go run ./test/bench " + strings.Join(os.Args[1:], " "),
		Machine: mach,
		Gateway: gwVersion,
		Settings: Settings{
			Drivers: o.drivers, Chats: o.chats, Targets: o.targets, PGChats: o.pgChats, Rates: o.rates, StepSeconds: o.step.Seconds(),
			SettleSeconds: o.settle.Seconds(), Window: o.window, Workers: o.workers, Profile: o.profile,
		},
	}
	plan := runPlan(o)
	if slices.ContainsFunc(plan, func(p planned) bool { return pgReplicas(p.target) > 0 }) {
		if err := checkPG(ctx, o.pgDSN); err != nil {
			// Not skipped: each of those runs tries again, and fails with
			// the reason, unless -skip-pg leaves them out.
			log.Error("the PostgreSQL targets' runs will fail; start PostgreSQL, or leave them out with -skip-pg", "err", err)
		}
	}
	log.Info("plan", "runs", len(plan))
	for _, p := range plan {
		if ctx.Err() != nil {
			break
		}
		rep.Runs = append(rep.Runs, runOne(ctx, log, o, bins, p.driver, p.target, p.chats, workDir))
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	rep.Comparisons = compareRuns(rep.Runs)
	rep.Targets = checkTargets(rep.Runs, rep.Comparisons)

	fmt.Println()
	if err := writeTable(os.Stdout, rep); err != nil {
		return err
	}
	paths, err := writeFiles(o.out, o.stamp, rep)
	if err != nil {
		return err
	}
	fmt.Printf("\nwritten: %s\n", strings.Join(paths, ", "))
	if o.profile {
		fmt.Printf("profiles: go tool pprof -top %s/%s-*-cpu.pprof (and -sample_index=alloc_space on -mem.pprof)\n", o.out, o.stamp)
	}
	for _, r := range rep.Runs {
		if r.Err != "" {
			return errors.New("some runs failed; see the table")
		}
	}
	return ctx.Err()
}

// replot rewrites the text, CSV and SVG of a saved report, after a change
// to how they are drawn, and prints its table.
func replot(jsonPath string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return fmt.Errorf("read report: %w", err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("read report %s: %w", jsonPath, err)
	}
	if err := writeTable(os.Stdout, rep); err != nil {
		return err
	}
	dir, stem := filepath.Split(strings.TrimSuffix(jsonPath, ".json"))
	paths, err := writeFiles(dir, stem, rep)
	if err != nil {
		return err
	}
	fmt.Printf("\nwritten: %s\n", strings.Join(paths, ", "))
	return nil
}

func parseFlags(args []string) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	o := options{stamp: time.Now().Format("20060102-150405")}
	var drivers, chats, pgChats, rates, targets string
	fs.BoolVar(&o.quick, "quick", false, "a 4-5 minute smoke run: 10 and 1,000 chats, three rates, short steps, of the replicas "+quickPGTarget+" only")
	fs.StringVar(&drivers, "drivers", strings.Join(defaultDrivers, ","), "load sources (messengers), in the order they run: any of "+strings.Join(knownDrivers, ", "))
	fs.StringVar(&drivers, "driver", strings.Join(defaultDrivers, ","), "the same as -drivers")
	fs.StringVar(&chats, "chats", defaultChats, "numbers of active chats, comma-separated: one list for every driver, or lists by driver (\"webchat=10,1000 telegram=100000\"; a bare list is for the drivers not named)")
	fs.StringVar(&rates, "rates", "100,250,500,1000,2000,4000", "offered loads in round trips a second, comma-separated")
	fs.StringVar(&targets, "targets", defaultTargets, "targets, in the order they run for each number of chats: relay, gateway (SQLite), "+targetPGPrefix+"N (N gateway replicas on PostgreSQL behind a balancer)")
	fs.StringVar(&pgChats, "pg-chats", defaultPGChats, "numbers of chats the "+targetPGPrefix+"N targets run at, in the form of -chats (default: the -chats lists when -chats is given, else these)")
	fs.StringVar(&o.pgDSN, "pg", pgDSNDefault(), "PostgreSQL server for the "+targetPGPrefix+"N targets (a database of their own is created for each run, and dropped); default $"+envPGDSN+" or this")
	fs.BoolVar(&o.skipPG, "skip-pg", false, "leave the "+targetPGPrefix+"N targets out (without PostgreSQL their runs fail)")
	fs.DurationVar(&o.step, "step", 8*time.Second, "measured length of each step")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "unmeasured start of each step")
	fs.DurationVar(&o.drain, "drain", 15*time.Second, "longest wait for a step's last replies")
	fs.DurationVar(&o.warmupMax, "warmup-max", 3*time.Minute, "longest warm-up; chats that have not written by then are left out of the run")
	fs.DurationVar(&o.warmupDrain, "warmup-drain", time.Minute, "longest wait for the warm-up's last replies")
	fs.IntVar(&o.window, "window", 256, "messages outstanding in the warm-up and max steps")
	fs.IntVar(&o.workers, "workers", 16, "the gateway's delivery.workers")
	fs.StringVar(&o.out, "out", "bench-results", "directory for the result files")
	fs.StringVar(&o.gatewayBin, "gateway-bin", "", "measure this switchboard binary instead of one built from this tree (another revision's, for a before and after in one harness: go build -trimpath -o /tmp/sb-before ./cmd/switchboard)")
	fs.BoolVar(&o.profile, "profile", false, "run the gateway with CPU and allocation profiling (test/bench/gwprof); profiles go to -out")
	fs.BoolVar(&o.allRates, "all-rates", false, "run every rate, also above the first saturated one")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (target logs and stores)")
	fs.IntVar(&o.maxConns, "max-conns", 10000, "most connections the users hold open; more chats than this rotate their connections")
	fs.IntVar(&o.sourceIPs, "source-ips", 8, "loopback source addresses for client connections (127.0.1.1 ...)")
	fs.IntVar(&o.connsPerIP, "conns-per-ip", 20000, "client connections per source address")
	fs.StringVar(&o.replot, "report", "", "run nothing: read a result .json, print its table and rewrite its .txt, .csv and .svg")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["chats"] && !set["pg-chats"] {
		pgChats = chats
	}
	if o.quick {
		if !set["chats"] {
			chats = "10,1000"
		}
		if !set["rates"] {
			rates = "100,500,2000"
		}
		if !set["step"] {
			o.step = 4 * time.Second
		}
		if !set["settle"] {
			o.settle = time.Second
		}
		if !set["targets"] {
			targets = quickTargets
		}
	}
	var err error
	if o.drivers, err = parseDrivers(drivers); err != nil {
		return o, fmt.Errorf("-drivers: %w", err)
	}
	if o.chats, err = parseChats(chats, o.drivers); err != nil {
		return o, fmt.Errorf("-chats: %w", err)
	}
	if o.rates, err = parseFloats(rates); err != nil {
		return o, fmt.Errorf("-rates: %w", err)
	}
	if o.pgChats, err = parseChats(pgChats, o.drivers); err != nil {
		return o, fmt.Errorf("-pg-chats: %w", err)
	}
	for t := range strings.SplitSeq(targets, ",") {
		t = strings.TrimSpace(t)
		if err := parseTarget(t); err != nil {
			return o, fmt.Errorf("-targets: %w", err)
		}
		if slices.Contains(o.targets, t) {
			return o, fmt.Errorf("-targets: %q named twice", t)
		}
		if !o.skipPG || pgReplicas(t) == 0 {
			o.targets = append(o.targets, t)
		}
	}
	if len(o.targets) == 0 {
		return o, errors.New("-targets: no target left to run (-skip-pg leaves out the PostgreSQL ones)")
	}
	if o.window < 1 || o.workers < 1 || o.step <= 0 {
		return o, errors.New("-window, -workers and -step must be positive")
	}
	return o, nil
}

// defaultTargets are the targets of `make bench`: the bare relay, the
// gateway on SQLite, and one to three gateway replicas on PostgreSQL.
const defaultTargets = "relay,gateway," + targetPGPrefix + "1," + targetPGPrefix + "2," + targetPGPrefix + "3"

// quickTargets are -quick's: one replicas target, the smallest that has
// replicas deliver what another took in.
const (
	quickPGTarget = targetPGPrefix + "2"
	quickTargets  = "relay,gateway," + quickPGTarget
)

// defaultPGChats are the numbers of chats the PostgreSQL targets run at
// by default: one level each, a modest one, to keep `make bench` within
// about 20 minutes on 2 cores.
const defaultPGChats = "webchat=1000 telegram=1000 discord=1000 slack=1000"

// pgDSNDefault is -pg's default.
func pgDSNDefault() string {
	if v := os.Getenv(envPGDSN); v != "" {
		return v
	}
	return defaultPGDSN
}

// planned is one run: a driver, a number of chats and a target.
type planned struct {
	driver string
	chats  int
	target string
}

// runPlan lists the runs in the order they run: by driver, then number
// of chats (the -chats levels, then those only the PostgreSQL targets
// run at), then target. The gateway-pgN targets run at the -pg-chats
// levels, the others at the -chats ones.
func runPlan(o options) []planned {
	var out []planned
	for _, driver := range o.drivers {
		levels := slices.Clone(o.chats[driver])
		for _, c := range o.pgChats[driver] {
			if !slices.Contains(levels, c) {
				levels = append(levels, c)
			}
		}
		for _, chats := range levels {
			for _, target := range o.targets {
				at := o.chats[driver]
				if pgReplicas(target) > 0 {
					at = o.pgChats[driver]
				}
				if slices.Contains(at, chats) {
					out = append(out, planned{driver: driver, chats: chats, target: target})
				}
			}
		}
	}
	return out
}

// defaultChats are the default numbers of chats. The webchat's 100,000
// level is left out: its users cannot all hold a socket here, so each
// message opens and closes one (see webchatDriver), which takes the
// gateway minutes to warm up and measures connections more than chats.
// Telegram users hold no sockets, so its 100,000 level measures chats.
// Discord and Slack users hold none either, but their drivers are not in
// the default plan (see defaultDrivers): two levels keep them short.
const defaultChats = "webchat=10,1000 telegram=10,1000,100000 discord=10,1000 slack=10,1000"

// parseDrivers reads -drivers: known names, comma-separated, each once.
func parseDrivers(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		name := strings.TrimSpace(f)
		if !slices.Contains(knownDrivers, name) {
			return nil, fmt.Errorf("unknown driver %q (known: %s)", name, strings.Join(knownDrivers, ", "))
		}
		if slices.Contains(out, name) {
			return nil, fmt.Errorf("driver %q named twice", name)
		}
		out = append(out, name)
	}
	return out, nil
}

// parseChats reads -chats for the drivers that run: groups separated by
// spaces or semicolons, each either "driver=list" or a bare list, the
// default for drivers not named. Lists for known drivers that do not run
// are ignored, so that one setting serves any -drivers.
func parseChats(s string, drivers []string) (map[string][]int, error) {
	named := map[string][]int{}
	var fallback []int
	for group := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ';' || r == ' ' }) {
		name, list, isNamed := strings.Cut(group, "=")
		if !isNamed {
			if fallback != nil {
				return nil, fmt.Errorf("two lists for every driver: %q", s)
			}
			list = group
		} else if !slices.Contains(knownDrivers, name) {
			return nil, fmt.Errorf("unknown driver %q (known: %s)", name, strings.Join(knownDrivers, ", "))
		} else if named[name] != nil {
			return nil, fmt.Errorf("two lists for driver %s", name)
		}
		n, err := parseInts(list)
		if err != nil {
			return nil, err
		}
		if isNamed {
			named[name] = n
		} else {
			fallback = n
		}
	}
	out := map[string][]int{}
	for _, d := range drivers {
		switch {
		case named[d] != nil:
			out[d] = named[d]
		case fallback != nil:
			out[d] = fallback
		default:
			return nil, fmt.Errorf("no numbers of chats for driver %s", d)
		}
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive whole number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// machine describes this machine, best effort.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(fields[1], 10, 64)
				m.MemoryMiB = kb >> 10
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		m.Revision = strings.TrimSpace(string(out))
	}
	return m
}
