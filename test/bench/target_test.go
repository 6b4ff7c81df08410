package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/adapters/telegram"
	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
)

// The generated config must be one the real gateway accepts, with the
// store durable and each driver's adapter block valid for its kind (for
// Telegram: webhook mode against the fake, with the config's public URL).
func TestGatewayConfigIsValid(t *testing.T) {
	tg := &telegramDriver{}
	if err := tg.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, d := range []Driver{&webchatDriver{}, tg} {
		for _, chats := range []int{10, 100000, 300000} {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.yaml")
			cfg := gatewayConfig(gatewayParams{
				Listen: "127.0.0.1:18080", SelartiURL: "http://127.0.0.1:18081/api/1.1", APIKey: "k",
				Secret: "0123456789abcdef0123456789abcdef0123", DataDir: filepath.Join(dir, "data"), Workers: 24,
				Adapter: d.Adapter(d.Instance(), taskID, chats),
			})
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := engine.LoadConfig(path)
			if err != nil {
				t.Fatalf("%s, %d chats: config rejected: %v\n%s", d.Name(), chats, err, cfg)
			}
			if c.Store.Driver != "sqlite" || c.Delivery.Workers != 24 || len(c.Adapters) != 1 || c.Adapters[0].Name != d.Instance() {
				t.Errorf("%s, %d chats: decoded %+v", d.Name(), chats, c)
			}
			reg := core.NewRegistry()
			reg.Register(webchat.Kind, webchat.New)
			reg.Register(telegram.Kind, telegram.New)
			if _, err := engine.New(c, engine.Options{Registry: reg}); err != nil {
				t.Errorf("%s, %d chats: the adapter block is rejected: %v", d.Name(), chats, err)
			}
		}
	}
}

// A replica's config: the store on PostgreSQL with the run's database,
// its own replica.id and data directory, and the balancer's address as
// its public URL (where Telegram's webhook and the webchat's origin
// point); the rest as the single gateway's.
func TestReplicaConfigIsValid(t *testing.T) {
	tg := &telegramDriver{}
	if err := tg.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	const dsn = "postgres://postgres@127.0.0.1:5432/switchboard_bench_1_abcd?sslmode=disable"
	for _, d := range []Driver{&webchatDriver{}, tg} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		cfg := gatewayConfig(gatewayParams{
			Listen: "127.0.0.1:18082", PublicURL: "http://127.0.0.1:18080", SelartiURL: "http://127.0.0.1:18081/api/1.1", APIKey: "k",
			Secret: "0123456789abcdef0123456789abcdef0123", DataDir: filepath.Join(dir, "r2", "data"), Workers: 16,
			Adapter: d.Adapter(d.Instance(), taskID, 1000), PGDSN: dsn, ReplicaID: "r2",
		})
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := engine.LoadConfig(path)
		if err != nil {
			t.Fatalf("%s: config rejected: %v\n%s", d.Name(), err, cfg)
		}
		if c.Store.Driver != "postgres" || c.Store.DSN.Reveal() != dsn || c.Replica.ID != "r2" ||
			c.Store.Path != filepath.Join(dir, "r2", "data") || c.Server.Listen != "127.0.0.1:18082" ||
			c.Server.PublicURL != "http://127.0.0.1:18080" || c.Delivery.Workers != 16 {
			t.Errorf("%s: decoded %+v", d.Name(), c)
		}
		reg := core.NewRegistry()
		reg.Register(webchat.Kind, webchat.New)
		reg.Register(telegram.Kind, telegram.New)
		if _, err := engine.New(c, engine.Options{Registry: reg}); err != nil {
			t.Errorf("%s: rejected: %v", d.Name(), err)
		}
	}
}

func TestPGReplicas(t *testing.T) {
	for target, want := range map[string]int{
		"gateway-pg1": 1, "gateway-pg3": 3, "gateway-pg12": 12,
		"gateway": 0, "relay": 0, "gateway-pg": 0, "gateway-pg0": 0, "gateway-pg01": 0, "gateway-pg-1": 0, "gateway-pgx": 0, "gateway-pg+2": 0,
	} {
		if got := pgReplicas(target); got != want {
			t.Errorf("pgReplicas(%q) = %d, want %d", target, got, want)
		}
	}
	for target, ok := range map[string]bool{"relay": true, "gateway": true, "gateway-pg1": true, "gateway-pg8": true, "gateway-pg9": false, "gateway-pg0": false, "sqlite": false} {
		if err := parseTarget(target); (err == nil) != ok {
			t.Errorf("parseTarget(%q) = %v, want ok %v", target, err, ok)
		}
	}
}

// The harness builds the gateway with the Makefile's tags, so that a run
// measures the binary make build ships.
func TestGatewayTagsAreTheMakefiles(t *testing.T) {
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(makefile), "\n") {
		if name, value, ok := strings.Cut(line, "?="); ok && strings.TrimSpace(name) == "TAGS" {
			if got := strings.TrimSpace(value); got != gatewayTags {
				t.Fatalf("the Makefile builds with TAGS %q, the harness with %q", got, gatewayTags)
			}
			return
		}
	}
	t.Fatal("the Makefile sets no TAGS")
}

// The report names the binary measured: the gateway's version line.
func TestGatewayVersion(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "switchboard")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n[ \"$1\" = version ] && echo 'switchboard v1.2.3 (go1.26.8, linux/amd64)'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := gatewayVersion(context.Background(), binaries{gateway: bin})
	if err != nil || got != "switchboard v1.2.3 (go1.26.8, linux/amd64)" {
		t.Errorf("gatewayVersion = %q, %v", got, err)
	}
	if _, err := gatewayVersion(context.Background(), binaries{gateway: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("gatewayVersion of a missing binary: no error")
	}
	if got, err := gatewayVersion(context.Background(), binaries{gateway: bin, profile: true}); err != nil || !strings.Contains(got, "gwprof") {
		t.Errorf("gatewayVersion of the profiling wrapper = %q, %v", got, err)
	}
}
