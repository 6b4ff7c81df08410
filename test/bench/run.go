package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// scrapeGoMemory reads the Go runtime's memory figures from the
// gateway's /metrics; nil when they cannot be had.
func scrapeGoMemory(url string) *GoMemory {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	m, ok := parseGoMemory(string(b))
	if !ok {
		return nil
	}
	return &m
}

// runOne measures one target with one driver and one number of chats:
// start it, connect the chats, warm up, run the offered-load steps and
// the max step, stop it and take its lifetime figures.
func runOne(ctx context.Context, log *slog.Logger, o options, bins binaries, driver, target string, chats int, workDir string) RunResult {
	drv, err := newDriver(driver, o)
	res := RunResult{Target: target, Driver: driver, Chats: chats}
	if err != nil {
		res.Err = err.Error()
		return res
	}
	if err := measureRun(ctx, log, o, bins, drv, &res, workDir); err != nil {
		res.Err = err.Error()
		log.Error("run failed", "driver", driver, "target", target, "chats", chats, "err", err)
	}
	return res
}

func measureRun(ctx context.Context, log *slog.Logger, o options, bins binaries, drv Driver, res *RunResult, workDir string) error {
	res.LoadBefore = loadAverage()
	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	dir := filepath.Join(workDir, fmt.Sprintf("%s-%s-%d", res.Driver, res.Target, res.Chats))
	dataDir := filepath.Join(dir, "data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	apiKey := "bench-" + rand.Text()
	secret := rand.Text() + rand.Text() // 52 characters, over the gateway's minimum of 32
	base := "http://" + addr
	r := &runner{
		o: o, driver: drv, chats: res.Chats, simAddr: simAddr, apiKey: apiKey,
		webhookURL: base + "/webhooks/selarti/" + secret,
		t0:         time.Now(), errors: make(map[string]int),
	}
	simURL := "http://" + simAddr + "/api/1.1"
	if err := drv.Prepare(ctx); err != nil {
		return err
	}
	// Every path out closes the driver (and what Prepare started); the
	// normal one closes it earlier, to time the disconnect.
	defer drv.Close()

	var bin string
	var args []string
	switch res.Target {
	case targetGateway:
		cfgPath := filepath.Join(dir, "config.yaml")
		cfg := gatewayConfig(gatewayParams{
			Listen: addr, SelartiURL: simURL, APIKey: apiKey, Secret: secret, DataDir: dataDir,
			Workers: o.workers, Adapter: drv.Adapter(drv.Instance(), taskID, res.Chats),
		})
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("write gateway config: %w", err)
		}
		bin, args = bins.gateway, []string{"serve", "-c", cfgPath}
		if bins.profile {
			stem := filepath.Join(o.out, fmt.Sprintf("%s-%s-%d", o.stamp, res.Driver, res.Chats))
			args = []string{"-c", cfgPath, "-cpuprofile", stem + "-cpu.pprof", "-memprofile", stem + "-mem.pprof"}
			log.Info("profiling the gateway", "cpu", stem+"-cpu.pprof", "mem", stem+"-mem.pprof")
		}
	case targetRelay:
		bin, args = bins.relay, append([]string{
			"-listen", addr, "-selarti", simURL, "-key", apiKey, "-secret", secret,
			"-task", taskID, "-instance", drv.Instance(),
			"-conns", strconv.Itoa(max(o.workers, 64)),
		}, drv.RelayArgs()...)
	default:
		return fmt.Errorf("unknown target %q", res.Target)
	}
	proc, err := startProcess(ctx, res.Target, bin, args, filepath.Join(dir, res.Target+".log"), base+"/readyz")
	if err != nil {
		return err
	}
	r.proc = proc
	r.watch = watchRSS(proc.pid(), 10*time.Millisecond)
	r.watch.setPhase("idle")
	stopped := false
	defer func() {
		if !stopped {
			proc.kill()
		}
	}()

	// Idle: started, nothing connected, nothing sent. A second lets the
	// start-up garbage be collected.
	time.Sleep(time.Second)
	if s, err := proc.sample(); err == nil {
		res.IdleRSS = s.RSS
	}

	log.Info("connecting", "driver", res.Driver, "target", res.Target, "chats", res.Chats)
	r.watch.setPhase("connect")
	openStart := time.Now()
	if err := drv.Open(ctx, base, res.Chats, r.onReply, r.onError); err != nil {
		drv.Close()
		return fmt.Errorf("connect %d chats: %w", res.Chats, err)
	}
	res.Conns, res.Mode = drv.Conns(), drv.Mode()
	log.Info("connected", "driver", res.Driver, "target", res.Target, "chats", res.Chats, "took", time.Since(openStart).Round(time.Millisecond))

	plans := []stepPlan{{kind: stepWarmup, count: res.Chats, window: o.window, dur: o.warmupMax, drain: o.warmupDrain}}
	for _, rate := range o.rates {
		plans = append(plans, stepPlan{kind: stepRate, rate: rate, settle: o.settle, dur: o.step, drain: o.drain})
	}
	plans = append(plans, stepPlan{kind: stepMax, window: o.window, settle: o.settle, dur: o.step, drain: o.drain})

	saturated := false
	var stepErr error
	for _, p := range plans {
		if p.kind == stepRate && saturated && !o.allRates {
			continue // a higher rate only saturates more; the max step measures the limit
		}
		s, err := r.step(ctx, p)
		res.Steps = append(res.Steps, s)
		log.Info("step", "driver", res.Driver, "target", res.Target, "chats", res.Chats, "step", describe(p),
			"achieved", fmt.Sprintf("%.1f rt/s", s.Achieved), "lost", s.Lost,
			"in_p99_ms", fmt.Sprintf("%.2f", s.In.P99), "out_p99_ms", fmt.Sprintf("%.2f", s.Out.P99),
			"cpu_s_per_1000", fmt.Sprintf("%.3f", s.CPUPer1000), "load1", s.Load1, "errors", s.Errors)
		if err != nil {
			stepErr = err
			break
		}
		if p.kind == stepWarmup {
			// The chats that wrote are the active ones; the steps go round
			// them only, so that every step message is a known chat's.
			r.chats = s.Sent
			res.Active = s.Sent
			if r.chats == 0 {
				stepErr = errors.New("warm-up: no chat could send")
				break
			}
			if s, err := proc.sample(); err == nil {
				res.ConnectedRSS = s.RSS
			}
			if res.Target == targetGateway {
				res.ConnectedGo = scrapeGoMemory(base + "/metrics")
			}
			if bins.profile && res.Target == targetGateway {
				_ = proc.cmd.Process.Signal(syscall.SIGUSR1) // gwprof: heap profile of the connected state
			}
		}
		if p.kind == stepRate && s.Saturated {
			saturated = true
		}
	}

	r.watch.setPhase("disconnect")
	drv.Close()
	r.watch.setPhase("stop")
	stopped = true
	usage, err := proc.stop(60 * time.Second)
	res.Phases, res.PeakRSS = r.watch.finish()
	res.CPUSeconds = usage.CPU.Seconds()
	if res.Target == targetGateway {
		if n, serr := dirSize(dataDir); serr == nil {
			res.StoreBytes = n
		}
	}
	if stepErr != nil {
		return stepErr
	}
	return err
}
