package webchat

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// dialFrom opens a tab whose connection comes from the loopback address
// src (127.0.0.x: every one of them is the loopback on Linux), so that
// tests can be several clients.
func (ts *testServer) dialFrom(t *testing.T, src string) *tab {
	t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	return &tab{t: t, ws: ws}
}

// helloFrom dials from src and says hello for session ("" for a new one),
// returning the tab and the server's first frame.
func (ts *testServer) helloFrom(t *testing.T, src, session string) (*tab, frame) {
	t.Helper()
	tb := ts.dialFrom(t, src)
	tb.send(map[string]any{"type": "hello", "session": session})
	return tb, tb.next()
}

func rejected(a *Adapter, reason string) int {
	return a.metrics.(*messengertest.Metrics).RejectedCount(reason)
}

func TestIPSessionLimit(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"ip_session_limit": 3}))
	var first string
	for i := range 3 {
		_, f := ts.helloFrom(t, "127.0.0.2", "")
		if f.Type != typeWelcome {
			t.Fatalf("session %d: %+v, want a welcome", i, f)
		}
		if i == 0 {
			first = f.Session
		}
	}

	// The fourth new session from the address is refused, cleanly.
	tb, f := ts.helloFrom(t, "127.0.0.2", "")
	if f.Type != typeError || f.Code != codeTooManySessions {
		t.Fatalf("fourth session: %+v, want a %s error", f, codeTooManySessions)
	}
	tb.expectClose(websocket.StatusTryAgainLater)
	if n := rejected(ts.a, rejectIPSessionLimit); n != 1 {
		t.Fatalf("%d refusals counted, want 1", n)
	}

	// A session the address already has is not a new one.
	if _, f := ts.helloFrom(t, "127.0.0.2", first); f.Type != typeWelcome || f.Session != first {
		t.Fatalf("known session: %+v, want its welcome", f)
	}
	// Other addresses are served as before.
	for i := range 3 {
		if _, f := ts.helloFrom(t, "127.0.0.3", ""); f.Type != typeWelcome {
			t.Fatalf("other address, session %d: %+v, want a welcome", i, f)
		}
	}
}

func TestIPRateLimit(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"ip_rate_limit": 5, "rate_limit": 100}))
	var tabs []*tab
	for range 3 {
		tb, f := ts.helloFrom(t, "127.0.0.2", "")
		if f.Type != typeWelcome {
			t.Fatalf("hello: %+v", f)
		}
		tabs = append(tabs, tb)
	}
	// Five messages over three sessions are accepted; the sixth, in a
	// session well within its own rate_limit, is refused for the address.
	n := 0
	for i := range 5 {
		tb := tabs[i%3]
		tb.message(fmt.Sprintf("m-%d", i), "hello")
		tb.expect(typeMessage) // the sender's own copy comes first
		if f := tb.expect(typeAck); f.ID != fmt.Sprintf("m-%d", i) {
			t.Fatalf("ack %+v", f)
		}
		n++
	}
	tabs[2].message("m-over", "one too many")
	f := tabs[2].expect(typeError)
	if f.Code != codeRateLimited || !f.Retry || f.ID != "m-over" {
		t.Fatalf("sixth message: %+v, want rate_limited with retry", f)
	}
	if got := rejected(ts.a, rejectIPRateLimit); got != 1 {
		t.Fatalf("%d refusals counted, want 1", got)
	}
	// Another address is served.
	other, w := ts.helloFrom(t, "127.0.0.3", "")
	if w.Type != typeWelcome {
		t.Fatalf("other address: %+v", w)
	}
	other.message("o-1", "from elsewhere")
	other.expect(typeMessage)
	other.expect(typeAck)
	if got := len(ts.core.Texts()); got != n+1 {
		t.Fatalf("%d messages reached the core, want %d", got, n+1)
	}
}

func TestIPLimitsOff(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"ip_session_limit": 0, "ip_rate_limit": 0, "rate_limit": 100}))
	if ts.a.ipSessions != nil || ts.a.ipMessages != nil {
		t.Fatal("limits of 0 were not turned off")
	}
	for i := range 25 {
		tb, f := ts.helloFrom(t, "127.0.0.2", "")
		if f.Type != typeWelcome {
			t.Fatalf("session %d: %+v", i, f)
		}
		tb.message("m", "hi")
		tb.expect(typeMessage)
		tb.expect(typeAck)
	}
}
