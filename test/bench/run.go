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

// scrapeGoMemoryAll sums scrapeGoMemory over the replicas' /metrics; nil
// when one cannot be had.
func scrapeGoMemoryAll(urls []string) *GoMemory {
	var sum GoMemory
	for _, u := range urls {
		m := scrapeGoMemory(u)
		if m == nil {
			return nil
		}
		sum.HeapInuse += m.HeapInuse
		sum.StackInuse += m.StackInuse
		sum.Sys += m.Sys
		sum.Goroutines += m.Goroutines
	}
	return &sum
}

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
	replicas := pgReplicas(res.Target)
	res.Replicas = replicas
	simAddr, err := freeAddr()
	if err != nil {
		return err
	}
	// addr is where the drivers and the simulator's webhooks find the
	// target: the process itself, or the balancer in front of replicas.
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	dir := filepath.Join(workDir, fmt.Sprintf("%s-%s-%d", res.Driver, res.Target, res.Chats))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	var pg *pgDatabase
	if replicas > 0 {
		// A database of its own, dropped however the run ends (this defer
		// runs last: after the replicas are stopped or killed).
		if pg, err = createPGDatabase(ctx, o.pgDSN); err != nil {
			return err
		}
		defer func() {
			if err := pg.drop(); err != nil {
				log.Error("drop the run's database", "err", err)
			}
		}()
		log.Info("database", "target", res.Target, "name", pg.name, "server", pg.where)
	}
	apiKey := "bench-" + rand.Text()
	secret := rand.Text() + rand.Text() // 52 characters, over the gateway's minimum of 32
	base := "http://" + addr
	r := &runner{
		o: o, driver: drv, chats: res.Chats, simAddr: simAddr, apiKey: apiKey,
		webhookURL: base + "/webhooks/selarti/" + secret,
		t0:         time.Now(), errors: make(map[string]int), pg: pg, log: log,
	}
	simURL := "http://" + simAddr + "/api/1.1"
	if err := drv.Prepare(ctx); err != nil {
		return err
	}
	// Every path out closes the driver (and what Prepare started); the
	// normal one closes it earlier, to time the disconnect.
	defer drv.Close()

	group := &procGroup{}
	stopped := false
	defer func() {
		if !stopped {
			group.kill()
		}
	}()
	// gateway writes the config of one gateway process and starts it.
	gateway := func(name, listen, dataDir, procDir string, pgDSN, replicaID string) error {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		cfgPath := filepath.Join(procDir, "config.yaml")
		cfg := gatewayConfig(gatewayParams{
			Listen: listen, PublicURL: base, SelartiURL: simURL, APIKey: apiKey, Secret: secret, DataDir: dataDir,
			Workers: o.workers, Adapter: drv.Adapter(drv.Instance(), taskID, res.Chats), PGDSN: pgDSN, ReplicaID: replicaID,
		})
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			return fmt.Errorf("write gateway config: %w", err)
		}
		args := []string{"serve", "-c", cfgPath}
		if bins.profile {
			stem := filepath.Join(o.out, fmt.Sprintf("%s-%s-%d", o.stamp, res.Driver, res.Chats))
			if replicaID != "" {
				stem += "-" + res.Target + "-" + replicaID
			}
			args = []string{"-c", cfgPath, "-cpuprofile", stem + "-cpu.pprof", "-memprofile", stem + "-mem.pprof"}
			log.Info("profiling the gateway", "cpu", stem+"-cpu.pprof", "mem", stem+"-mem.pprof")
		}
		p, err := startProcess(ctx, name, bins.gateway, args, filepath.Join(procDir, "gateway.log"), "http://"+listen+"/readyz")
		if err != nil {
			return err
		}
		group.procs = append(group.procs, p)
		return nil
	}
	var dataDirs, metricsURLs []string
	var lb *balancer
	switch {
	case res.Target == targetGateway:
		dataDir := filepath.Join(dir, "data")
		if err := gateway(res.Target, addr, dataDir, dir, "", ""); err != nil {
			return err
		}
		dataDirs, metricsURLs = []string{dataDir}, []string{base + "/metrics"}
	case replicas > 0:
		var listens, backends []string
		for range replicas {
			a, err := freeAddr()
			if err != nil {
				return err
			}
			listens, backends = append(listens, a), append(backends, "http://"+a)
		}
		if lb, err = startBalancer(addr, backends); err != nil {
			return err
		}
		defer lb.Close()
		for i, listen := range listens {
			id := fmt.Sprintf("r%d", i+1)
			procDir := filepath.Join(dir, id)
			dataDir := filepath.Join(procDir, "data")
			if err := gateway(res.Target+"/"+id, listen, dataDir, procDir, pg.dsn, id); err != nil {
				return fmt.Errorf("replica %s: %w", id, err)
			}
			dataDirs, metricsURLs = append(dataDirs, dataDir), append(metricsURLs, backends[i]+"/metrics")
		}
	case res.Target == targetRelay:
		args := append([]string{
			"-listen", addr, "-selarti", simURL, "-key", apiKey, "-secret", secret,
			"-task", taskID, "-instance", drv.Instance(),
			"-conns", strconv.Itoa(max(o.workers, 64)),
		}, drv.RelayArgs()...)
		p, err := startProcess(ctx, res.Target, bins.relay, args, filepath.Join(dir, res.Target+".log"), base+"/readyz")
		if err != nil {
			return err
		}
		group.procs = append(group.procs, p)
	default:
		return fmt.Errorf("unknown target %q", res.Target)
	}
	r.proc = group
	r.watch = watchRSS(group.pids(), 10*time.Millisecond)
	r.watch.setPhase("idle")
	var pgStart map[int]time.Duration
	if pg != nil {
		if pgStart, err = pg.cpu(ctx); err != nil {
			log.Warn("PostgreSQL's CPU is not measured", "err", err)
		}
	}

	// Idle: started, nothing connected, nothing sent. A second lets the
	// start-up garbage be collected.
	time.Sleep(time.Second)
	if s, err := group.sample(); err == nil {
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
			"cpu_s_per_1000", fmt.Sprintf("%.3f", s.CPUPer1000), "pg_cpu_s_per_1000", fmt.Sprintf("%.3f", s.PGCPUPer1000),
			"load1", s.Load1, "errors", s.Errors)
		if err != nil {
			if p.kind == stepWarmup && replicas > 1 && res.Driver == "webchat" {
				err = fmt.Errorf("%w (webchat on %d replicas: a tab gets the replies another replica takes from Selarti only when the webchat keeps its sessions in the shared store, core.Journals)", err, replicas)
			}
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
			if s, err := group.sample(); err == nil {
				res.ConnectedRSS = s.RSS
			}
			if len(metricsURLs) > 0 {
				res.ConnectedGo = scrapeGoMemoryAll(metricsURLs)
			}
			if bins.profile && isGateway(res.Target) {
				for _, p := range group.procs {
					_ = p.cmd.Process.Signal(syscall.SIGUSR1) // gwprof: heap profile of the connected state
				}
			}
		}
		if p.kind == stepRate && s.Saturated {
			saturated = true
		}
	}

	r.watch.setPhase("disconnect")
	drv.Close()
	if pg != nil && pgStart != nil {
		// Before the replicas stop: their backends end with them.
		if pgEnd, err := pg.cpu(ctx); err == nil {
			res.PGCPUSeconds = cpuBetween(pgStart, pgEnd).Seconds()
		}
	}
	r.watch.setPhase("stop")
	stopped = true
	usage, err := group.stop(60 * time.Second)
	res.Phases, res.PeakRSS = r.watch.finish()
	res.CPUSeconds = usage.CPU.Seconds()
	for _, d := range dataDirs {
		if n, serr := dirSize(d); serr == nil {
			res.StoreBytes += n
		}
	}
	if pg != nil {
		if n, serr := pg.size(ctx); serr == nil {
			res.PGBytes = n
		}
	}
	if lb != nil {
		res.Balanced, res.BalancerErrors = lb.Picks(), lb.Errors()
	}
	if stepErr != nil {
		return stepErr
	}
	return err
}
