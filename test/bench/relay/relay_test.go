package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// The relay must move a message from a WebSocket user to Selarti and the
// bot's reply back, as the gateway does, or the benchmark's baseline is
// wrong. It must also survive the simulator forgetting its token, since
// the benchmark restarts the simulator between steps.
func TestRelayRoundTrip(t *testing.T) {
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "relay-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	r := newRelay(slog.New(slog.DiscardHandler), sim.URL(), "relay-key", "task-1", "web", 4)
	srv := httptest.NewServer(r.handler("/chat/", "s3cret"))
	defer srv.Close()
	sim.SetWebhookURL(srv.URL + "/webhooks/selarti/s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1)+"/chat/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	write := func(v any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() frame {
		t.Helper()
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		return f
	}

	write(frame{Type: "hello"})
	welcome := read()
	if welcome.Type != "welcome" || len(welcome.Session) < 16 {
		t.Fatalf("welcome = %+v", welcome)
	}
	for i, text := range []string{"hello", "what does it cost"} {
		if i == 1 {
			sim.ExpireTokens() // as a restarted simulator would
		}
		id := "m" + text[:2]
		write(frame{Type: "message", ID: id, Text: text})
		if ack := read(); ack.Type != "ack" || ack.ID != id {
			t.Fatalf("message %d: got %+v, want its ack", i, ack)
		}
		reply := read()
		if reply.Type != "message" || reply.From != "bot" || reply.Text != fakeselarti.Reply(text) {
			t.Fatalf("message %d: got %+v, want the bot's reply", i, reply)
		}
	}
	got := sim.ReceivedFor("web:" + welcome.Session)
	if len(got) != 2 || got[0].TaskID != "task-1" || got[1].Text != "what does it cost" {
		t.Errorf("simulator received %+v", got)
	}
	if sim.AuthCount() != 2 {
		t.Errorf("AuthCount = %d, want 2 (once, then once after the tokens expired)", sim.AuthCount())
	}

	// A webhook for a chat that has no connection is refused.
	resp, err := http.Post(srv.URL+"/webhooks/selarti/s3cret", "application/json",
		strings.NewReader(`{"external_chat_id":"web:nobody","message_type":"bot","message_text":"hi","message_id":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("webhook for an unknown chat: status %d, want 404", resp.StatusCode)
	}
}
