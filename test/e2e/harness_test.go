// Package e2e runs the real gateway (engine.Gateway with a real listener),
// the real adapters, and the Selarti simulator against each other over
// real sockets on loopback.
package e2e

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// env is one gateway wired to one Selarti simulator. It can be stopped
// and started again on the same address and store: a restart.
type env struct {
	t       *testing.T
	o       envOptions
	sim     *fakeselarti.Server
	gw      *engine.Gateway
	addr    string // host:port
	base    string // http://127.0.0.1:port
	secret  string
	cfg     *engine.Config
	chats   *testChats
	logs    *syncBuffer
	apiKey  string
	dataDir string
}

// kind is an adapter kind to register in the gateway's registry.
type kind struct {
	name    string
	factory core.Factory
}

type envOptions struct {
	adapters []engine.AdapterConfig
	// kinds are registered beside the webchat and the test-only
	// "testchat": an adapter's end-to-end tests add their own kind here
	// (and start its network's fake) and change nothing else.
	kinds   []kind
	simOpts func(*fakeselarti.Options)
	cfgEdit func(*engine.Config)
	// before runs once the simulator exists, before the gateway starts
	// (to queue a network's updates or faults).
	before func(e *env)
}

// newEnv starts a simulator and a gateway whose registry holds the real
// webchat kind, the test-only "testchat" kind (registered from this test
// package, with no change to core: the plugin contract) and o.kinds.
func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := &env{t: t, o: o, apiKey: "test-api-key-" + rand.Text(), secret: rand.Text() + rand.Text(),
		logs: &syncBuffer{}, chats: newTestChats(), dataDir: t.TempDir()}
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
	if o.before != nil {
		o.before(e)
	}
	e.start("127.0.0.1:0")
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("gateway logs:\n%s", e.logs.String())
		}
	})
	return e
}

// start builds and starts a gateway listening on addr, and waits until
// it is ready.
func (e *env) start(addr string) {
	t := e.t
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	e.base = "http://" + e.addr
	cfg := testConfig(t, e.addr, e.sim.URL(), e.apiKey, e.secret, e.dataDir, e.o.adapters)
	if e.o.cfgEdit != nil {
		e.o.cfgEdit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	reg := core.NewRegistry()
	reg.Register(webchat.Kind, webchat.New)
	reg.Register(testChatKind, e.chats.factory)
	for _, k := range e.o.kinds {
		reg.Register(k.name, k.factory)
	}
	gw, err := engine.New(cfg, engine.Options{Registry: reg, Logger: engine.NewLogger(cfg.Log, e.logs), Listener: ln})
	if err != nil {
		t.Fatalf("build gateway: %v", err)
	}
	e.gw = gw
	e.sim.SetWebhookURL(e.webhookURL())
	if err := gw.Start(context.Background()); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	e.waitReady()
}

// stop shuts the gateway down, if it runs.
func (e *env) stop() {
	if e.gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	e.gw = nil
}

// restart stops the gateway and starts a new one on the same address and
// store.
func (e *env) restart() {
	e.stop()
	e.start(e.addr)
}

// deadLetters counts the dead letters of one direction.
func (e *env) deadLetters(dir store.Direction) int {
	st, err := e.gw.Store().Stats(context.Background(), dir)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Dead
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
