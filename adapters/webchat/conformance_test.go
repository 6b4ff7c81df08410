package webchat

import (
	"context"
	"encoding/json"
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

// browser is a minimal page for the conformance suite: one tab per user,
// which says hello, sends one message, re-sends it while the server asks
// for a retry (as app.js does), and records acks and bot messages.
type browser struct {
	mu      sync.Mutex
	servers map[*Adapter]*httptest.Server
	acked   map[string]bool     // client message id → acked
	bot     map[string][]string // session → bot texts
}

func (b *browser) server(t *testing.T, a *Adapter) *httptest.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.servers[a]; s != nil {
		return s
	}
	s := httptest.NewServer(a)
	t.Cleanup(s.Close)
	b.servers[a] = s
	return s
}

func (b *browser) userSays(t *testing.T, m core.Messenger, user int, text string) (string, func() bool) {
	t.Helper()
	a := m.(*Adapter)
	srv := b.server(t, a)
	ctx, cancel := context.WithCancel(context.Background())
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+a.cfg.Path+"ws", nil)
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
	write(map[string]any{"type": "hello"})
	welcome, err := read()
	if err != nil || welcome.Type != typeWelcome {
		t.Fatalf("welcome = %+v, %v", welcome, err)
	}
	id := fmt.Sprintf("conformance-%d", user)
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

func (b *browser) delivered(_ *testing.T, chat string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.bot[chat]...)
}

func TestConformance(t *testing.T) {
	b := &browser{servers: map[*Adapter]*httptest.Server{}, acked: map[string]bool{}, bot: map[string][]string{}}
	messengertest.Run(t, messengertest.Harness{
		New: func(t *testing.T) core.Messenger { return newTestAdapter(t, nil) },
		NewBroken: func(t *testing.T) core.Messenger {
			// No data directory: the mailbox cannot open, Start fails.
			return newTestAdapterIn(t, nil, "")
		},
		UserSays:  b.userSays,
		Delivered: b.delivered,
	})
}
