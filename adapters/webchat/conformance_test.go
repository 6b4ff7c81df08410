package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// browser is a minimal page for the conformance suite, one per test: one
// tab per user, which says hello, sends one message, re-sends it while the
// server asks for a retry (as app.js does), and records acks and bot
// messages. It is the suite's handle on the adapter's "network".
type browser struct {
	a   *Adapter
	srv *httptest.Server

	mu    sync.Mutex
	acked map[string]bool     // client message id → acked
	bot   map[string][]string // session → bot texts
	tabs  map[int]string      // user → session, kept across reconnects
	sent  int                 // messages sent, for their ids
}

func newBrowser(t *testing.T, a *Adapter) *browser {
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return &browser{a: a, srv: srv, acked: map[string]bool{}, bot: map[string][]string{}, tabs: map[int]string{}}
}

func (b *browser) UserSays(t *testing.T, user int, text string) (string, func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(b.srv.URL, "http")+b.a.cfg.Path+"ws", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { cancel(); ws.CloseNow() })
	write := func(v any) {
		raw, _ := json.Marshal(v)
		_ = ws.Write(ctx, websocket.MessageText, raw)
	}
	read := func() (frame, error) {
		_, raw, err := ws.Read(ctx)
		if err != nil {
			return frame{}, err
		}
		var f frame
		err = json.Unmarshal(raw, &f)
		return f, err
	}
	b.mu.Lock()
	session := b.tabs[user]
	b.mu.Unlock()
	write(map[string]any{"type": "hello", "session": session})
	welcome, err := read()
	if err != nil || welcome.Type != typeWelcome {
		t.Fatalf("welcome = %+v, %v", welcome, err)
	}
	b.mu.Lock()
	b.tabs[user] = welcome.Session
	b.sent++
	id := fmt.Sprintf("conformance-%d", b.sent)
	b.mu.Unlock()
	msg := map[string]any{"type": "message", "id": id, "text": text}
	write(msg)
	go func() {
		for {
			f, err := read()
			if err != nil {
				return
			}
			switch {
			case f.Type == typeAck && f.ID == id:
				b.mu.Lock()
				b.acked[id] = true
				b.mu.Unlock()
			case f.Type == typeError && f.Retry:
				time.Sleep(50 * time.Millisecond)
				write(msg)
			case f.Type == typeMessage && f.From == string(core.SenderBot):
				b.mu.Lock()
				b.bot[welcome.Session] = append(b.bot[welcome.Session], f.Text)
				b.mu.Unlock()
			}
		}
	}()
	return welcome.Session, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.acked[id]
	}
}

// Delivered returns the bot messages the session's open tabs were shown.
func (b *browser) Delivered(t *testing.T, chat string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bot[chat]...)
}

// GoneChat is an id no session can have: the webchat's sessions exist for
// any well-formed id (a reply creates it), so only a malformed one is gone.
func (b *browser) GoneChat(t *testing.T) string { return "not a session id!" }

func TestConformance(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			a := newTestAdapter(t, nil)
			return a, newBrowser(t, a)
		},
		NewBroken: func(t *testing.T) core.Messenger {
			// No data directory: the mailbox cannot open, Start fails.
			return newTestAdapterIn(t, nil, "")
		},
	})
}

// TestConformanceJournals runs the suite on the shared store's journals
// (core.Instance.Journals), as several replicas do: on one replica, and
// on two (pair), where the browser talks to one and the core sends
// through the other.
func TestConformanceJournals(t *testing.T) {
	broken := func(t *testing.T) core.Messenger {
		// No journals and no data directory: Start fails.
		return newTestAdapterIn(t, nil, "")
	}
	t.Run("OneReplica", func(t *testing.T) {
		messengertest.Run(t, messengertest.Harness{
			New: func(t *testing.T) (core.Messenger, messengertest.Network) {
				j, _ := newTestJournals(t)
				a, _ := newReplica(t, nil, j)
				return a, newBrowser(t, a)
			},
			NewBroken: broken,
		})
	})
	t.Run("TwoReplicas", func(t *testing.T) {
		messengertest.Run(t, messengertest.Harness{
			New: func(t *testing.T) (core.Messenger, messengertest.Network) {
				ja, jb := newTestJournals(t)
				a, _ := newReplica(t, nil, ja)
				b, _ := newReplica(t, nil, jb)
				return &pair{browsers: a, sends: b}, newBrowser(t, a)
			},
			NewBroken: broken,
		})
	})
}

// pair is two replicas of one webchat instance as one Messenger: the
// browser is connected to browsers, and the core's messages and dialog
// events go through sends.
type pair struct{ browsers, sends *Adapter }

var (
	_ core.DialogObserver = (*pair)(nil)
	_ core.PrivateChatIDs = (*pair)(nil)
)

func (p *pair) Start(ctx context.Context, deliver core.DeliverFunc) error {
	if err := p.browsers.Start(ctx, deliver); err != nil {
		return err
	}
	if err := p.sends.Start(ctx, deliver); err != nil {
		_ = p.browsers.Stop(ctx)
		return err
	}
	return nil
}

func (p *pair) Send(ctx context.Context, msg core.Outbound) error { return p.sends.Send(ctx, msg) }

func (p *pair) Stop(ctx context.Context) error {
	return errors.Join(p.sends.Stop(ctx), p.browsers.Stop(ctx))
}

func (p *pair) DialogChanged(ctx context.Context, ev core.DialogEvent) error {
	return p.sends.DialogChanged(ctx, ev)
}

func (p *pair) PrivateChatIDs() bool { return true }
