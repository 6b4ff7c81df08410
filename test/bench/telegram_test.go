package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// The Telegram driver against a stand-in target: a webhook that checks
// the secret and answers each update with a sendMessage to the fake
// quoting the text ("fail" is refused with 503). Every message sent must
// come back through onReply once, each chat must be its own Telegram
// user, and a refused update must be reported, not hang.
func TestTelegramDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &telegramDriver{}
	if err := d.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var mu sync.Mutex
	users := map[int64]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/telegram/tg/webhook" || r.Header.Get(faketelegram.SecretTokenHeader) != "t3st" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		var u faketelegram.Update
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil || u.Message == nil {
			http.Error(w, "bad update", http.StatusBadRequest)
			return
		}
		m := u.Message
		if m.Text == "fail" {
			http.Error(w, "later", http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		users[m.Chat.ID] = true
		mu.Unlock()
		body, _ := json.Marshal(map[string]any{"chat_id": m.Chat.ID, "text": "you said " + m.Text})
		resp, err := http.Post(d.fake.URL()+"/bot"+d.bot.Token()+"/sendMessage", "application/json", bytes.NewReader(body))
		if err != nil || resp.StatusCode != http.StatusOK {
			http.Error(w, "send failed", http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	// What the target does at its start.
	body, _ := json.Marshal(map[string]any{"url": srv.URL + "/telegram/tg/webhook", "secret_token": "t3st", "max_connections": 4})
	resp, err := http.Post(d.fake.URL()+"/bot"+d.bot.Token()+"/setWebhook", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("setWebhook: %v %v", resp, err)
	}
	resp.Body.Close()

	const chats, n = 3, 40
	replies := make(chan string, 2*n)
	errs := make(chan string, n)
	if err := d.Open(ctx, srv.URL, chats, func(text string, at time.Time) {
		if at.IsZero() {
			t.Error("reply without a time")
		}
		replies <- text
	}, func(code string) { errs <- code }); err != nil {
		t.Fatal(err)
	}
	if d.Conns() != 4 {
		t.Errorf("Conns = %d, want the webhook's max_connections, 4", d.Conns())
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := d.Send(ctx, i%chats, "ignored", "m"+strconv.Itoa(i)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for range n {
		select {
		case r := <-replies:
			seen[r] = true
		case <-ctx.Done():
			t.Fatalf("only %d of %d replies", len(seen), n)
		}
	}
	for i := range n {
		if !seen["you said m"+strconv.Itoa(i)] {
			t.Errorf("no reply to m%d", i)
		}
	}
	mu.Lock()
	if len(users) != chats || !users[telegramUserBase] || !users[telegramUserBase+chats-1] {
		t.Errorf("chats seen %v, want users %d..%d", users, telegramUserBase, telegramUserBase+chats-1)
	}
	mu.Unlock()

	if _, err := d.Send(ctx, 0, "x", "fail"); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-errs:
		if code != "webhook_503" {
			t.Errorf("error code %q, want webhook_503", code)
		}
	case <-ctx.Done():
		t.Fatal("a refused update was not reported")
	}
	if _, err := d.Send(ctx, chats, "x", "y"); err == nil {
		t.Error("send to a chat out of range: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
