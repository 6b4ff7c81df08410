package telegram

import (
	"context"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// harness is one adapter against one bot of a fake Bot API server.
type harness struct {
	t    *testing.T
	srv  *faketelegram.Server
	bot  *faketelegram.Bot
	a    *Adapter
	rec  *recorder
	logs *syncBuffer
}

// fast are config settings that keep tests quick: no pacing to speak of,
// no typing indicator unless a test wants one.
func fast(extra core.RawConfig) core.RawConfig {
	raw := core.RawConfig{
		"poll_timeout": "1s", "request_timeout": "5s", "typing_timeout": "0s",
		"global_rate_limit": 1000, "chat_rate_limit": 1000, "chat_burst": 100, "group_rate_limit": 6000,
	}
	for k, v := range extra {
		raw[k] = v
	}
	return raw
}

func newFake(t *testing.T, opts faketelegram.Options) *faketelegram.Server {
	t.Helper()
	srv, err := faketelegram.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// newHarness starts a fake server with one bot and builds (not starts) an
// adapter for it.
func newHarness(t *testing.T, raw core.RawConfig) *harness {
	t.Helper()
	srv := newFake(t, faketelegram.Options{InsecureWebhooks: true, WebhookRetry: 20 * time.Millisecond})
	bot, err := srv.AddBot(testToken, "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, srv: srv, bot: bot, rec: newRecorder(), logs: &syncBuffer{}}
	h.a = h.build(raw, "")
	return h
}

// build makes another adapter for the harness's bot.
func (h *harness) build(raw core.RawConfig, publicURL string) *Adapter {
	h.t.Helper()
	cfg := fast(raw)
	cfg["token"] = h.bot.Token()
	cfg["api_url"] = h.srv.URL()
	log := slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(core.Instance{Name: "tg", Kind: Kind, Config: cfg, Logger: log, HTTP: &http.Client{}, PublicURL: publicURL})
	if err != nil {
		h.t.Fatal(err)
	}
	return m.(*Adapter)
}

// start starts a with the recorder's deliver and stops it at cleanup.
func (h *harness) start(a *Adapter) {
	h.t.Helper()
	if err := a.Start(ctxTimeout(h.t), h.rec.deliver); err != nil {
		h.t.Fatalf("start: %v", err)
	}
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			h.t.Errorf("stop: %v", err)
		}
	})
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond every 10ms for up to 10s.
var eventually = testutil.Eventually

// recorder is a DeliverFunc that acts like the core: it accepts messages
// once by Inbound.ID (a redelivery is acknowledged, not recorded twice),
// unless fail says otherwise.
type recorder struct {
	mu       sync.Mutex
	calls    []core.Inbound // every call, in order
	accepted []core.Inbound // first acceptance of each id, in order
	seen     map[string]bool
	fail     func(n int, m core.Inbound) error // n counts calls from 0
	changed  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]bool{}, changed: make(chan struct{}, 1)}
}

func (r *recorder) deliver(ctx context.Context, m core.Inbound) error {
	r.mu.Lock()
	n := len(r.calls)
	r.calls = append(r.calls, m)
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(n, m); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seen[m.ID] {
		r.seen[m.ID] = true
		r.accepted = append(r.accepted, m)
	}
	select {
	case r.changed <- struct{}{}:
	default:
	}
	return nil
}

func (r *recorder) setFail(f func(n int, m core.Inbound) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = f
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.accepted {
		out = append(out, m.Text)
	}
	return out
}

func (r *recorder) callTexts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.calls {
		out = append(out, m.Text)
	}
	return out
}

func (r *recorder) acceptedList() []core.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.accepted)
}

// syncBuffer collects logs from many goroutines.
type syncBuffer = testutil.SyncBuffer

var ann = faketelegram.User{ID: 42, FirstName: "Ann", LastName: "Lee", Username: "ann"}

// out is an outbound message to ann's chat.
func out(id, text string) core.Outbound {
	return core.Outbound{ChatID: "42", ID: id, Text: text, From: core.SenderBot}
}
