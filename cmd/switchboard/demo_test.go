package main

import (
	"context"
	"encoding/json"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// TestDemoChatRoundTrip runs `switchboard demo` as a user would (on a free
// port), chats with it over the webchat WebSocket, and stops it.
func TestDemoChatRoundTrip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.SyncBuffer{}
	cmd := newRootCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"demo", "--port", "0", "--think", "0s", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	urlRE := regexp.MustCompile(`Open the chat:\s+(http://\S+)/chat/`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("demo exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := http.Get(base + "/chat/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat/ = %d", resp.StatusCode)
	}

	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	conn, _, err := websocket.Dial(wctx, strings.Replace(base, "http://", "ws://", 1)+"/chat/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {base}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(wsjson.Write(wctx, conn, map[string]any{"type": "hello"}))
	must(wsjson.Write(wctx, conn, map[string]any{"type": "message", "id": "m-1", "text": "hello"}))
	want := fakeselarti.Reply("hello")
	for {
		var frame map[string]any
		if err := wsjson.Read(wctx, conn, &frame); err != nil {
			t.Fatalf("waiting for the bot reply: %v", err)
		}
		if frame["type"] == "error" {
			b, _ := json.Marshal(frame)
			t.Fatalf("error frame: %s", b)
		}
		if frame["type"] == "message" && frame["from"] == "bot" {
			if frame["text"] != want {
				t.Fatalf("bot said %q, want %q", frame["text"], want)
			}
			break
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop on cancel")
	}
}
