package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// TestOutboundTransportKeepsConnectionsForWorkersAndIndicators: four idle
// connections per worker to each host, for the workers' sends and the
// adapters' "typing…" requests to the same API.
func TestOutboundTransportKeepsConnectionsForWorkersAndIndicators(t *testing.T) {
	def := http.DefaultTransport.(*http.Transport)
	for _, workers := range []int{1, 16, 64} {
		tr := outboundTransport(workers)
		if tr.MaxIdleConnsPerHost < 4*workers || tr.MaxIdleConns < 4*workers {
			t.Errorf("workers %d: idle connections %d per host, %d in all; want at least %d", workers, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, 4*workers)
		}
		if tr == def {
			t.Fatal("the default transport itself was returned")
		}
	}
	if def.MaxIdleConnsPerHost != 0 {
		t.Fatalf("the default transport was changed: MaxIdleConnsPerHost %d", def.MaxIdleConnsPerHost)
	}
}

// TestDataDirectoryLocked: a second gateway on the data directory of a
// running one refuses to start, with the memory store too (whose data
// directory still holds the adapters' files), and starts none of its
// adapters; once the first stops, the directory is free again.
func TestDataDirectoryLocked(t *testing.T) {
	dir := t.TempDir()
	build := func(m *lifecycleMessenger) *Gateway {
		reg := core.NewRegistry()
		reg.Register("test", func(core.Instance) (core.Messenger, error) { return m, nil })
		cfg := testGatewayConfig(t, AdapterConfig{Name: "web", Kind: "test", TaskID: "task"})
		cfg.Store.Path = dir
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		gw, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.DiscardHandler), Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		return gw
	}
	shutdown := func(gw *Gateway) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}

	first := &lifecycleMessenger{}
	gw1 := build(first)
	if err := gw1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	second := &lifecycleMessenger{}
	err := build(second).Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "in use by another gateway") || !strings.Contains(err.Error(), store.DirLockFile) {
		t.Fatalf("second gateway on %s: %v, want an error saying the directory is in use", dir, err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, _, starts, _ := second.state(); starts != 0 {
		t.Fatalf("the refused gateway started its adapter %d times", starts)
	}

	shutdown(gw1)
	gw3 := build(&lifecycleMessenger{})
	if err := gw3.Start(context.Background()); err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	shutdown(gw3)
}

// TestPruneCheckpointsStore: the retention job also checkpoints the
// SQLite store, so its WAL does not keep the room it took.
func TestPruneCheckpointsStore(t *testing.T) {
	m := &deliveringMessenger{}
	gw, _ := testGateway(t, m, nil, io.Discard, func(g *Gateway) {
		g.pruneEvery = 100 * time.Millisecond
		g.storeProbeEvery = time.Hour
	})
	eventually(t, "started", func() bool { return m.deliver.Load() != nil })
	deliver := *m.deliver.Load()
	for i := range 50 {
		if err := deliver(context.Background(), core.Inbound{ChatID: fmt.Sprint("u", i), ID: fmt.Sprint(i), Text: strings.Repeat("x", 4<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	wal := filepath.Join(gw.cfg.Store.Path, StoreFile+"-wal")
	eventually(t, "the WAL checkpointed to nothing", func() bool {
		fi, err := os.Stat(wal)
		return err == nil && fi.Size() == 0
	})
}
