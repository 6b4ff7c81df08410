package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// probeMessenger is an instance whose probe answers health, counting
// Starts (a probe must not start anything). With block, the probe waits
// for its context to end.
type probeMessenger struct {
	health error
	block  bool
	starts atomic.Int32
}

func (m *probeMessenger) Start(context.Context, core.DeliverFunc) error { m.starts.Add(1); return nil }
func (m *probeMessenger) Send(context.Context, core.Outbound) error     { return core.ErrNotConnected }
func (m *probeMessenger) Stop(context.Context) error                    { return nil }
func (m *probeMessenger) CheckHealth(ctx context.Context) error {
	if m.block {
		<-ctx.Done()
		return ctx.Err()
	}
	return m.health
}

// plainMessenger has no probe.
type plainMessenger struct{}

func (plainMessenger) Start(context.Context, core.DeliverFunc) error { return nil }
func (plainMessenger) Send(context.Context, core.Outbound) error     { return core.ErrNotConnected }
func (plainMessenger) Stop(context.Context) error                    { return nil }

// selartiAuth is a Selarti whose auth call answers with a token when the
// key is "key", and 401 otherwise.
func selartiAuth(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/wf/auth") {
			http.NotFound(w, r)
			return
		}
		var body strings.Builder
		_, _ = io.Copy(&body, r.Body)
		if !strings.Contains(body.String(), `:"key"`) {
			http.Error(w, `{"status":"error","message":"Invalid API key"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","response":{"token":"tok"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func probeGateway(t *testing.T, baseURL, apiKey string, ms map[string]core.Messenger, adapters ...AdapterConfig) *Gateway {
	t.Helper()
	reg := core.NewRegistry()
	for kind, m := range ms {
		reg.Register(kind, func(core.Instance) (core.Messenger, error) { return m, nil })
	}
	cfg := testGatewayConfig(t, adapters...)
	cfg.Selarti.BaseURL = baseURL
	cfg.Selarti.APIKey = core.Secret(apiKey)
	g, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestProbeOnline(t *testing.T) {
	sel := selartiAuth(t)
	good := &probeMessenger{}
	bad := &probeMessenger{health: errors.New("getMe: 401 Unauthorized for token tg-secret-token-123")}
	hung := &probeMessenger{block: true}
	off := &probeMessenger{}
	g := probeGateway(t, sel.URL, "key", map[string]core.Messenger{"good": good, "bad": bad, "hung": hung, "plain": plainMessenger{}, "off": off},
		AdapterConfig{Name: "a", Kind: "good", TaskID: "t"},
		AdapterConfig{Name: "b", Kind: "bad", TaskID: "t", Config: map[string]any{"token": "tg-secret-token-123"}},
		AdapterConfig{Name: "c", Kind: "hung", TaskID: "t"},
		AdapterConfig{Name: "d", Kind: "plain", TaskID: "t"},
		AdapterConfig{Name: "e", Kind: "off", TaskID: "t", Enabled: new(bool)},
	)
	start := time.Now()
	got := g.ProbeOnline(context.Background(), 300*time.Millisecond)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("ProbeOnline took %s with a 300ms timeout", d)
	}
	want := []ProbeResult{
		{Item: "selarti", Status: ProbeOK},
		{Item: "adapter a (good)", Status: ProbeOK},
		{Item: "adapter b (bad)", Status: ProbeFail, Reason: "getMe: 401 Unauthorized for token " + core.Redacted},
		{Item: "adapter c (hung)", Status: ProbeFail, Reason: "no answer within 300ms: context deadline exceeded"},
		{Item: "adapter d (plain)", Status: ProbeSkip, Reason: "nothing remote to check"},
		{Item: "adapter e (off)", Status: ProbeSkip, Reason: "disabled"},
	}
	if len(got) != len(want) {
		t.Fatalf("ProbeOnline = %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("result %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, m := range []*probeMessenger{good, bad, hung, off} {
		if n := m.starts.Load(); n != 0 {
			t.Errorf("a probe started an instance %d times", n)
		}
	}
}

func TestProbeOnlineSelartiRefusesTheKey(t *testing.T) {
	sel := selartiAuth(t)
	g := probeGateway(t, sel.URL, "wrong-key-12345", nil)
	got := g.ProbeOnline(context.Background(), 5*time.Second)
	if len(got) != 1 || got[0].Status != ProbeFail || !strings.Contains(got[0].Reason, "401") || strings.Contains(got[0].Reason, "wrong-key-12345") {
		t.Fatalf("ProbeOnline = %+v, want selarti FAIL with the 401 and not the key", got)
	}
}
