package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// fullDisk is a store whose writes fail while full is set, as SQLite's
// do on a full disk; reads keep working.
type fullDisk struct {
	store.Store
	full atomic.Bool
}

var errDiskFull = errors.New("database or disk is full (13)")

func (s *fullDisk) check() error {
	if s.full.Load() {
		return errDiskFull
	}
	return nil
}

func (s *fullDisk) Enqueue(ctx context.Context, m *store.Message) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	return s.Store.Enqueue(ctx, m)
}

func (s *fullDisk) EnqueueClaim(ctx context.Context, m *store.Message, now time.Time, lease time.Duration) (bool, bool, error) {
	if err := s.check(); err != nil {
		return false, false, err
	}
	return s.Store.EnqueueClaim(ctx, m, now, lease)
}

func (s *fullDisk) Delivered(ctx context.Context, id int64) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.Delivered(ctx, id)
}

func (s *fullDisk) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.Retry(ctx, id, next, lastErr)
}

func (s *fullDisk) Kill(ctx context.Context, id int64, lastErr string) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.Kill(ctx, id, lastErr)
}

func (s *fullDisk) SetDialogFlags(ctx context.Context, chat string, flags uint32) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.SetDialogFlags(ctx, chat, flags)
}

// deliveringMessenger hands its DeliverFunc to the test and has private
// chat ids, like the webchat.
type deliveringMessenger struct {
	nopMessenger
	deliver atomic.Pointer[core.DeliverFunc]
}

func (m *deliveringMessenger) Start(_ context.Context, d core.DeliverFunc) error {
	m.deliver.Store(&d)
	return nil
}

func (m *deliveringMessenger) PrivateChatIDs() bool { return true }

// testGateway starts a gateway with one instance "web" of m, on st (nil:
// the SQLite store in a data directory of its own), with its logs in logs.
func testGateway(t *testing.T, m core.Messenger, st store.Store, logs io.Writer, edit func(*Gateway)) (*Gateway, string) {
	t.Helper()
	reg := core.NewRegistry()
	reg.Register("test", func(core.Instance) (core.Messenger, error) { return m, nil })
	cfg := testGatewayConfig(t, AdapterConfig{Name: "web", Kind: "test", TaskID: "task"})
	if st == nil {
		cfg.Store.Driver = "sqlite"
	}
	// A Selarti that takes everything.
	sel := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","response":{"token":"tok"}}`)
	}))
	t.Cleanup(sel.Close)
	cfg.Selarti.BaseURL = sel.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.NewJSONHandler(logs, nil)), Listener: ln, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(gw)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
	})
	return gw, "http://" + ln.Addr().String()
}

func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzFollowsStoreWrites: /readyz answers 503 while the store's
// writes fail (a full disk), though it opened and reads fine, and 200
// again once a write succeeds: the periodic probe's, with no traffic.
// The webhook that could not be queued is logged without the private
// chat id the store's error quotes.
func TestReadyzFollowsStoreWrites(t *testing.T) {
	st := &fullDisk{Store: store.NewMemory()}
	t.Cleanup(func() { st.Store.Close() })
	m := &deliveringMessenger{}
	logs := &testutil.SyncBuffer{}
	_, base := testGateway(t, m, st, logs, func(g *Gateway) { g.storeProbeEvery = 50 * time.Millisecond })
	eventually(t, "ready", func() bool { code, _ := readyz(t, base); return code == http.StatusOK })
	deliver := *m.deliver.Load()
	ctx := context.Background()
	if err := deliver(ctx, core.Inbound{ChatID: testSession, ID: "1", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message delivered", func() bool {
		s, err := st.Stats(ctx, store.ToSelarti)
		return err == nil && s.Pending == 0
	})

	st.full.Store(true)
	if err := deliver(ctx, core.Inbound{ChatID: testSession, ID: "2", Text: "hello again"}); err == nil {
		t.Fatal("deliver on a full disk succeeded")
	}
	code, body := readyz(t, base)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"store":"writes failing for`) || !strings.Contains(body, "disk is full") {
		t.Fatalf("readyz on a full disk: %d %s, want 503 naming the store", code, body)
	}
	// The probe keeps failing too: still not ready.
	time.Sleep(200 * time.Millisecond)
	if code, _ := readyz(t, base); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz after the probe on a full disk: %d, want 503", code)
	}
	// A webhook that cannot be queued: 503, and a log line without the id.
	wh := `{"external_chat_id":"web:` + testSession + `","message_id":"s1","message_type":"bot","message_text":"hi","operator":true}`
	resp, err := http.Post(base+WebhookPath+"/0123456789abcdef0123456789abcdef", "application/json", strings.NewReader(wh))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("webhook on a full disk: %d, want 503", resp.StatusCode)
	}

	// Space is freed; nothing writes but the probe.
	st.full.Store(false)
	eventually(t, "ready again", func() bool { code, _ := readyz(t, base); return code == http.StatusOK })
	if _, body := readyz(t, base); !strings.Contains(body, `"store":"ok"`) {
		t.Fatalf("readyz: %s, want store ok", body)
	}

	out := logs.String()
	for _, want := range []string{"store writes failing", "store takes writes again", "webhook not queued"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testSession) {
		t.Errorf("logs show the private chat id:\n%s", out)
	}
}

var eventually = testutil.Eventually
