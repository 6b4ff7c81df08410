// Package e2e runs the real gateway (engine.Gateway with a real listener),
// the real adapters, and the Selarti simulator against each other over
// real sockets on loopback.
package e2e

import (
	"context"
	"crypto/rand"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// env is one gateway wired to one Selarti simulator.
type env struct {
	t       *testing.T
	sim     *fakeselarti.Server
	gw      *engine.Gateway
	base    string // http://127.0.0.1:port
	secret  string
	cfg     *engine.Config
	chats   *testChats
	logs    *syncBuffer
	apiKey  string
	dataDir string
}

type envOptions struct {
	adapters []engine.AdapterConfig
	simOpts  func(*fakeselarti.Options)
	cfgEdit  func(*engine.Config)
}

// newEnv starts a simulator and a gateway whose registry holds the real
// webchat kind and the test-only "testchat" kind: the latter is registered
// from this test package, with no change to core (the plugin contract).
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, apiKey: "test-api-key-" + rand.Text(), secret: rand.Text() + rand.Text(), logs: &syncBuffer{}, chats: newTestChats()}
	simOpts := fakeselarti.Options{APIKey: e.apiKey}
	if o.simOpts != nil {
		o.simOpts(&simOpts)
	}
	sim, err := fakeselarti.New(simOpts)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	e.sim = sim
	t.Cleanup(func() { sim.Close() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	e.dataDir = t.TempDir()

	cfg := testConfig(t, ln.Addr().String(), sim.URL(), e.apiKey, e.secret, e.dataDir, o.adapters)
	if o.cfgEdit != nil {
		o.cfgEdit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg

	reg := core.NewRegistry()
	reg.Register(webchat.Kind, webchat.New)
	reg.Register(testChatKind, e.chats.factory)
	log := engine.NewLogger(cfg.Log, e.logs)
	gw, err := engine.New(cfg, engine.Options{Registry: reg, Logger: log, Listener: ln})
	if err != nil {
		t.Fatalf("build gateway: %v", err)
	}
	e.gw = gw
	sim.SetWebhookURL(e.webhookURL())
	if err := gw.Start(context.Background()); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway logs:\n%s", e.logs.String())
		}
	})
	e.waitReady()
	return e
}

// testConfig is the config every end-to-end gateway starts from: the
// given listener address and fakes, a store in dataDir, fast retries and
// debug logs. Callers adjust it and call Validate.
func testConfig(t *testing.T, addr, selartiURL, apiKey, secret, dataDir string, adapters []engine.AdapterConfig) *engine.Config {
	t.Helper()
	cfg, err := engine.DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Listen = addr
	cfg.Server.PublicURL = "http://" + addr
	cfg.Selarti.BaseURL = selartiURL
	cfg.Selarti.APIKey = core.Secret(apiKey)
	cfg.Selarti.WebhookSecret = core.Secret(secret)
	cfg.Selarti.RetryBudget = 3 * time.Second
	cfg.Store.Path = dataDir
	cfg.Delivery.BackoffInitial = 20 * time.Millisecond
	cfg.Delivery.BackoffMax = 200 * time.Millisecond
	cfg.Log.Level = "debug"
	cfg.Adapters = adapters
	return cfg
}

func (e *env) webhookURL() string { return e.base + engine.WebhookPath + "/" + e.secret }

// waitReady waits for /readyz to answer 200 (every instance started).
func (e *env) waitReady() {
	e.t.Helper()
	eventually(e.t, "gateway ready", func() bool {
		resp, err := http.Get(e.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// eventually polls cond every 10ms for up to 10s.
var eventually = testutil.Eventually

// syncBuffer collects logs from many goroutines.
type syncBuffer = testutil.SyncBuffer

// chromiumPath finds a Chromium for the browser test.
func chromiumPath() string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return filepath.Clean(p)
		}
	}
	return ""
}

var _ = slog.LevelDebug
