package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Target names. gateway-pg1, gateway-pg2, ... are N gateway replicas on
// one PostgreSQL database behind a balancer (see pgReplicas).
const (
	targetGateway  = "gateway"
	targetRelay    = "relay"
	targetPGPrefix = "gateway-pg"
)

// maxReplicas is the most replicas a gateway-pgN target may ask for: the
// store's pools (8 connections each) must fit in the server's
// max_connections (100 by default) beside the other users.
const maxReplicas = 8

// pgReplicas returns how many gateway replicas target runs on
// PostgreSQL: N for gateway-pgN, 0 for the other targets.
func pgReplicas(target string) int {
	rest, ok := strings.CutPrefix(target, targetPGPrefix)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 1 || strconv.Itoa(n) != rest {
		return 0
	}
	return n
}

// parseTarget checks a -targets entry.
func parseTarget(t string) error {
	switch n := pgReplicas(t); {
	case t == targetGateway || t == targetRelay:
		return nil
	case n > maxReplicas:
		return fmt.Errorf("target %q: at most %d replicas", t, maxReplicas)
	case n > 0:
		return nil
	}
	return fmt.Errorf("unknown target %q (known: relay, gateway, %sN for N gateway replicas on PostgreSQL, N from 1 to %d)", t, targetPGPrefix, maxReplicas)
}

// isGateway says whether target runs the gateway (on SQLite, or as
// replicas on PostgreSQL).
func isGateway(target string) bool { return target == targetGateway || pgReplicas(target) > 0 }

// Packages the harness builds.
const (
	pkgGateway = "github.com/switchboard-gw/switchboard/cmd/switchboard"
	pkgRelay   = "github.com/switchboard-gw/switchboard/test/bench/relay"
	pkgProfile = "github.com/switchboard-gw/switchboard/test/bench/gwprof"
)

// gatewayTags are the build tags of the gateway, as the Makefile's TAGS
// (TestGatewayTagsAreTheMakefiles): what is measured is what make build
// ships.
const gatewayTags = "stdjson"

// taskID is the Selarti task of the one adapter instance both targets
// serve (its name is the driver's, see Driver.Instance).
const taskID = "bench-task"

// binaries are the programs built for a run.
type binaries struct {
	gateway string // cmd/switchboard, or gwprof in -profile mode
	relay   string
	profile bool // gateway is gwprof
}

// buildBinaries builds the gateway (or its profiling wrapper) and the
// relay into dir, the way `make build` builds the gateway: with its build
// tags, and its version is the tree's revision. A gatewayBin given is
// used as it is, not built.
func buildBinaries(ctx context.Context, dir string, profile bool, gatewayBin, revision string) (binaries, error) {
	b := binaries{gateway: filepath.Join(dir, "switchboard"), relay: filepath.Join(dir, "relay"), profile: profile}
	gw := pkgGateway
	if profile {
		gw = pkgProfile
	}
	jobs := []struct{ out, pkg string }{{b.relay, pkgRelay}}
	if gatewayBin == "" {
		jobs = append(jobs, struct{ out, pkg string }{b.gateway, gw})
	} else {
		b.gateway = gatewayBin
	}
	for _, job := range jobs {
		args := []string{"build", "-trimpath", "-o", job.out}
		if job.pkg != pkgRelay {
			args = append(args, "-tags", gatewayTags)
		}
		if job.pkg == pkgGateway && revision != "" {
			args = append(args, "-ldflags", "-X main.version="+revision)
		}
		cmd := exec.CommandContext(ctx, "go", append(args, job.pkg)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("build %s: %w\n%s", job.pkg, err, out)
		}
	}
	return b, nil
}

// gatewayParams are the parts of the gateway's config a run chooses.
type gatewayParams struct {
	Listen string // host:port
	// PublicURL is server.public_url: "http://" + Listen, or the
	// balancer's address in front of replicas.
	PublicURL  string
	SelartiURL string
	APIKey     string
	Secret     string
	DataDir    string
	Workers    int
	Adapter    string // the driver's adapters list entry
	// PGDSN, when set, puts the store on PostgreSQL (store.driver
	// postgres) with this replica's ReplicaID; DataDir is then the
	// replica's own directory.
	PGDSN     string
	ReplicaID string
}

// gatewayConfig is the config file of the gateway under test: the durable
// SQLite store (the default, with its fsynced commits), every default
// that matters for speed kept, logs at info as in production. The
// connection caps meant for the internet are lifted: the load's users
// all come from a few loopback addresses, and more than 10,000 at once.
// A replica on PostgreSQL differs only in its store (postgres, with the
// store's default pool) and its replica.id; its public URL is the
// balancer's.
func gatewayConfig(p gatewayParams) string {
	public := p.PublicURL
	if public == "" {
		public = "http://" + p.Listen
	}
	store := "driver: sqlite"
	replica := ""
	if p.PGDSN != "" {
		store = fmt.Sprintf("driver: postgres\n  dsn: %q", p.PGDSN)
		replica = fmt.Sprintf("replica:\n  id: %q\n", p.ReplicaID)
	}
	return fmt.Sprintf(`server:
  listen: %q
  public_url: %q
  shutdown_timeout: 20s
  max_conns: 1000000
  max_conns_per_ip: 0
selarti:
  base_url: %q
  api_key: %q
  webhook_secret: %q
store:
  %s
  path: %q
delivery:
  workers: %d
log:
  level: info
  format: json
%sadapters:
%s`, p.Listen, public, p.SelartiURL, p.APIKey, p.Secret, store, p.DataDir, p.Workers, replica, p.Adapter)
}

// process is one target running as a child process.
type process struct {
	name    string
	cmd     *exec.Cmd
	dataDir string // the gateway's store directory; "" for the relay
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// startProcess starts bin with args, its output in logPath, and waits
// until readyURL answers 200.
func startProcess(ctx context.Context, name, bin string, args []string, logPath, readyURL string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C on the harness reaches the harness,
	// which then stops the target itself, gracefully.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if err := p.waitReady(ctx, readyURL, 30*time.Second); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

func (p *process) waitReady(ctx context.Context, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready: %v; its log ends: %s", p.name, p.waitErr, logTail(p.logPath, 400))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s (log: %s)", p.name, within, p.logPath)
		}
	}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) sample() (procSample, error) { return readProc(p.pid()) }

// exitUsage is what the kernel reports about a process that has exited.
// Its ru_maxrss is left out on purpose: see rssWatch.
type exitUsage struct {
	CPU time.Duration // user + system time of the whole life
}

// stop asks the process to shut down (SIGTERM), waits for it, and
// returns its lifetime usage. A process that does not stop within
// timeout is killed, and that is an error.
func (p *process) stop(timeout time.Duration) (exitUsage, error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.kill()
		err = fmt.Errorf("%s did not stop within %s; killed", p.name, timeout)
	}
	st := p.cmd.ProcessState
	if st == nil {
		return exitUsage{}, errors.Join(err, fmt.Errorf("%s: no exit status", p.name))
	}
	u := exitUsage{CPU: st.UserTime() + st.SystemTime()}
	if err == nil && !st.Success() {
		err = fmt.Errorf("%s exited with %v (log: %s)", p.name, p.waitErr, p.logPath)
	}
	return u, err
}

func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// logTail returns the last n bytes of a log file, on one line, for an
// error message: the log itself is deleted with the work directory.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return strings.Join(strings.Fields(string(b)), " ")
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procGroup is the processes of one target: the relay, the gateway, or
// a gateway-pgN target's N replicas. Its figures (CPU, RSS) are the sums
// over its processes.
type procGroup struct {
	procs []*process
}

func (g *procGroup) pids() []int {
	out := make([]int, len(g.procs))
	for i, p := range g.procs {
		out[i] = p.pid()
	}
	return out
}

// sample sums the processes' samples; a process that cannot be read (it
// exited) is an error.
func (g *procGroup) sample() (procSample, error) {
	var sum procSample
	for _, p := range g.procs {
		s, err := p.sample()
		if err != nil {
			return procSample{}, err
		}
		sum.CPU += s.CPU
		sum.RSS += s.RSS
		sum.HWM += s.HWM
	}
	return sum, nil
}

// stop stops every process at once (see process.stop) and sums their
// lifetime usage.
func (g *procGroup) stop(timeout time.Duration) (exitUsage, error) {
	usages := make([]exitUsage, len(g.procs))
	errs := make([]error, len(g.procs))
	var wg sync.WaitGroup
	for i, p := range g.procs {
		wg.Go(func() { usages[i], errs[i] = p.stop(timeout) })
	}
	wg.Wait()
	var sum exitUsage
	for _, u := range usages {
		sum.CPU += u.CPU
	}
	return sum, errors.Join(errs...)
}

func (g *procGroup) kill() {
	for _, p := range g.procs {
		p.kill()
	}
}

// gatewayVersion is the gateway's `switchboard version` line, so that the
// report says what it measured, a binary given with -gateway-bin included.
// The profiling wrapper has no version command.
func gatewayVersion(ctx context.Context, b binaries) (string, error) {
	if b.profile {
		return "gwprof (switchboard serve with profiling, built from this tree)", nil
	}
	out, err := exec.CommandContext(ctx, b.gateway, "version").Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", b.gateway, err)
	}
	return strings.TrimSpace(string(out)), nil
}
