// Command gwprof is `switchboard serve` with CPU and allocation profiling,
// for the load benchmark's -profile mode (test/bench). The gateway binary
// serves no pprof endpoint, and profiling the gateway inside the harness
// process would mix the load clients and the Selarti simulator into the
// profile. This wrapper runs the same core and the same adapters
// (adapters/all) as the real binary, in a process of its own, and writes
// the profiles when it is stopped with SIGINT or SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	_ "github.com/switchboard-gw/switchboard/adapters/all"
	"github.com/switchboard-gw/switchboard/core/engine"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gwprof:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		config  = flag.String("c", "config.yaml", "config file")
		cpuFile = flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
		memFile = flag.String("memprofile", "", "write an allocation profile to this file at exit")
	)
	flag.Parse()
	cfg, err := engine.LoadConfig(*config)
	if err != nil {
		return fmt.Errorf("config %s: %w", *config, err)
	}
	log := engine.NewLogger(cfg.Log, os.Stderr)
	g, err := engine.New(cfg, engine.Options{Logger: log})
	if err != nil {
		return fmt.Errorf("config %s: %w", *config, err)
	}
	if *cpuFile != "" {
		f, err := os.Create(*cpuFile)
		if err != nil {
			return fmt.Errorf("create cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("start cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	// SIGUSR1 writes the heap as it is now to <memprofile>.live: the
	// harness sends it once every chat is connected, to show what the
	// connections and sessions hold.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	go func() {
		for range usr1 {
			if *memFile != "" {
				if err := writeHeap(*memFile + ".live"); err != nil {
					log.Warn("write live heap profile", "err", err)
				}
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runErr := g.Run(ctx)
	if *memFile != "" {
		if err := writeHeap(*memFile); err != nil {
			return err
		}
	}
	return runErr
}

// writeHeap writes the heap profile, which holds both the live heap and
// every allocation since the start (pprof -sample_index=alloc_space).
func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		return fmt.Errorf("write heap profile: %w", err)
	}
	return nil
}
