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
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
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

// In telegram mode the relay must register its webhook with a secret,
// move a user's update to Selarti as "<instance>:<chat id>" and the bot's
// reply back as one sendMessage, refuse updates without the secret, and
// drop Selarti's echo of the user's own message.
func TestRelayTelegramRoundTrip(t *testing.T) {
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "relay-key"})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	tg, err := faketelegram.New(faketelegram.Options{InsecureWebhooks: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	bot, err := tg.AddBot(faketelegram.TestToken(7), "relay_bot")
	if err != nil {
		t.Fatal(err)
	}
	r := newRelay(slog.New(slog.DiscardHandler), sim.URL(), "relay-key", "task-1", "tg", 4)
	r.tg = newTelegram(tg.URL(), bot.Token(), "hook-s3cret", 4)
	srv := httptest.NewServer(r.handler("/chat/", "s3cret"))
	defer srv.Close()
	sim.SetWebhookURL(srv.URL + "/webhooks/selarti/s3cret")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hook := srv.URL + "/telegram/tg/webhook"
	if err := r.tg.setWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	if info := bot.WebhookInfo(); info.URL != hook || info.MaxConnections != telegramHookMaxConns || bot.WebhookSecret() != "hook-s3cret" {
		t.Fatalf("webhook %+v, secret %q", info, bot.WebhookSecret())
	}

	ann := faketelegram.User{ID: 4242, FirstName: "Ann"}
	for i, text := range []string{"hello", "what does it cost"} {
		if _, err := bot.DeliverNow(ctx, faketelegram.Update{Message: &faketelegram.Message{From: &ann, Text: text}}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if err := bot.WaitSent(ctx, i+1); err != nil {
			t.Fatalf("message %d: no reply: %v", i, err)
		}
		got := bot.Sent()[i]
		if got.ChatID != ann.ID || got.Plain != fakeselarti.Reply(text) || got.ParseMode != "" {
			t.Fatalf("message %d: sent %+v, want the bot's reply in plain text", i, got)
		}
	}
	got := sim.ReceivedFor("tg:4242")
	if len(got) != 2 || got[0].TaskID != "task-1" || got[0].Text != "hello" || got[1].Text != "what does it cost" {
		t.Errorf("simulator received %+v", got)
	}
	// Selarti echoes each user message back; neither echo became a send.
	if n := len(bot.Sent()); n != 2 {
		t.Errorf("bot sent %d messages, want only the 2 replies", n)
	}

	post := func(url, secret, body string) int {
		t.Helper()
		status, err := faketelegram.PostUpdate(ctx, http.DefaultClient, url, secret, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return status
	}
	update := `{"update_id":9,"message":{"message_id":9,"date":1,"chat":{"id":4242,"type":"private"},"from":{"id":4242,"is_bot":false,"first_name":"Ann"},"text":"sneaky"}}`
	for _, secret := range []string{"", "wrong"} {
		if st := post(hook, secret, update); st != http.StatusUnauthorized {
			t.Errorf("update with secret %q: status %d, want 401", secret, st)
		}
	}
	if n := len(sim.ReceivedFor("tg:4242")); n != 2 {
		t.Errorf("a refused update reached Selarti (%d messages)", n)
	}
	// A reply for a chat id that is not a Telegram chat is refused.
	if st := post(srv.URL+"/webhooks/selarti/s3cret", "", `{"external_chat_id":"tg:nobody","message_type":"bot","message_text":"hi","message_id":"1"}`); st != http.StatusNotFound {
		t.Errorf("webhook for a bad chat id: status %d, want 404", st)
	}
}
