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
	"strings"
	"syscall"
	"time"
)

// Target names.
const (
	targetGateway = "gateway"
	targetRelay   = "relay"
)

// Packages the harness builds.
const (
	pkgGateway = "github.com/switchboard-gw/switchboard/cmd/switchboard"
	pkgRelay   = "github.com/switchboard-gw/switchboard/test/bench/relay"
	pkgProfile = "github.com/switchboard-gw/switchboard/test/bench/gwprof"
)

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
// relay into dir, the way `make build` builds the gateway.
func buildBinaries(ctx context.Context, dir string, profile bool) (binaries, error) {
	b := binaries{gateway: filepath.Join(dir, "switchboard"), relay: filepath.Join(dir, "relay"), profile: profile}
	gw := pkgGateway
	if profile {
		gw = pkgProfile
	}
	for _, job := range []struct{ out, pkg string }{{b.gateway, gw}, {b.relay, pkgRelay}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", job.out, job.pkg)
		if out, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("build %s: %w\n%s", job.pkg, err, out)
		}
	}
	return b, nil
}

// gatewayParams are the parts of the gateway's config a run chooses.
type gatewayParams struct {
	Listen     string // host:port
	SelartiURL string
	APIKey     string
	Secret     string
	DataDir    string
	Workers    int
	Adapter    string // the driver's adapters list entry
}

// gatewayConfig is the config file of the gateway under test: the durable
// SQLite store (the default, with its fsynced commits), every default
// that matters for speed kept, logs at info as in production.
func gatewayConfig(p gatewayParams) string {
	return fmt.Sprintf(`server:
  listen: %q
  public_url: "http://%s"
  shutdown_timeout: 20s
selarti:
  base_url: %q
  api_key: %q
  webhook_secret: %q
store:
  driver: sqlite
  path: %q
delivery:
  workers: %d
log:
  level: info
  format: json
adapters:
%s`, p.Listen, p.Listen, p.SelartiURL, p.APIKey, p.Secret, p.DataDir, p.Workers, p.Adapter)
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
