package webchat

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// FuzzClientFrame sends arbitrary frames after the hello over a real
// WebSocket (dialled again whenever the server closes it for misbehaving)
// and checks that every answer is a well-formed JSON frame and that the
// adapter keeps serving: a hostile browser gets error frames or a close,
// never a crash.
func FuzzClientFrame(f *testing.F) {
	for _, seed := range []string{
		`{"type":"message","id":"m1","text":"hello"}`,
		`{"type":"message","id":"","text":"x"}`,
		`{"type":"message","id":"m2","text":""}`,
		`{"type":"hello","session":"x"}`,
		`{"type":"nope"}`,
		`{"type":"message","id":"m3","text":123}`,
		`[1,2]`, `null`, `{`, "\xff\xfe", `{"type":"message","id":"\u0000","text":"a"}`,
	} {
		f.Add([]byte(seed))
	}
	// Every input is a new session from one address: no per-address caps.
	ts := startServer(f, newTestAdapter(f, map[string]any{"rate_limit": 1000000, "ip_rate_limit": 0, "ip_session_limit": 0}))
	var ws *websocket.Conn
	dial := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		c, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{HTTPHeader: http.Header{}})
		if err != nil {
			t.Fatalf("the adapter stopped serving: %v", err)
		}
		hello, _ := json.Marshal(map[string]any{"type": "hello"})
		if err := c.Write(ctx, websocket.MessageText, hello); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(ctx); err != nil { // the welcome
			t.Fatal(err)
		}
		ws = c
	}
	f.Cleanup(func() {
		if ws != nil {
			ws.CloseNow()
		}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		if ws == nil {
			dial(t)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := ws.Write(ctx, websocket.MessageText, data); err != nil {
			ws.CloseNow()
			ws = nil
			return
		}
		_, answer, err := ws.Read(ctx)
		if err != nil {
			// Closed for misbehaving (too many errors in a row, a frame
			// over the read limit): allowed; the next input dials again.
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation && s != websocket.StatusMessageTooBig && s != -1 {
				t.Fatalf("connection ended with status %d: %v", s, err)
			}
			ws.CloseNow()
			ws = nil
			return
		}
		var fr frame
		if err := json.Unmarshal(answer, &fr); err != nil || fr.Type == "" {
			t.Fatalf("answer to %q is not a frame: %q", data, answer)
		}
	})
}
