package telegram

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// DeliverNow posts straight to the webhook, many at once, with the secret
// header and the fields Push fills in, and never through the queue: no
// update may arrive twice (once from DeliverNow, once from the poster).
func TestDeliverNow(t *testing.T) {
	s, b := startBot(t, Options{InsecureWebhooks: true, WebhookRetry: 20 * time.Millisecond})
	if _, err := b.DeliverNow(ctxTimeout(t, 5*time.Second), Update{Message: &Message{From: &ann, Text: "early"}}); !errors.Is(err, ErrNoWebhook) {
		t.Fatalf("without a webhook: err = %v, want ErrNoWebhook", err)
	}
	h := newHookReceiver(t, func(int) int { return http.StatusOK })
	result[bool](t, call(t, s, b.Token(), "setWebhook", map[string]any{
		"url": h.srv.URL + "/hook", "secret_token": "s3cret", "allowed_updates": []string{"message"}}))

	const n = 20
	ctx := ctxTimeout(t, 5*time.Second)
	var wg sync.WaitGroup
	ids := make([]int64, n)
	for i := range n {
		wg.Go(func() {
			user := User{ID: int64(5000 + i%4), FirstName: "U"}
			id, err := b.DeliverNow(ctx, Update{Message: &Message{From: &user, Text: "hi"}})
			if err != nil {
				t.Errorf("deliver %d: %v", i, err)
			}
			ids[i] = id
		})
	}
	wg.Wait()
	// An update type the webhook did not ask for is not posted.
	if _, err := b.DeliverNow(ctx, Update{MyChatMember: &ChatMemberUpdated{Chat: PrivateChat(ann)}}); err != nil {
		t.Fatalf("my_chat_member: %v", err)
	}
	time.Sleep(50 * time.Millisecond) // a stray post from the queue would show by now

	got, secrets := h.updates()
	if len(got) != n {
		t.Fatalf("webhook got %d updates, want %d", len(got), n)
	}
	perChat := map[int64][]int64{}
	for i, u := range got {
		if secrets[i] != "s3cret" {
			t.Fatalf("secret header = %q", secrets[i])
		}
		m := u.Message
		if m == nil || m.Chat.ID != m.From.ID || m.Chat.Type != ChatPrivate || m.Date == 0 || m.Text != "hi" {
			t.Fatalf("update %+v: want a filled private message", u)
		}
		perChat[m.Chat.ID] = append(perChat[m.Chat.ID], m.MessageID)
	}
	for chat, msgIDs := range perChat {
		slices.Sort(msgIDs)
		if len(msgIDs) != n/4 || msgIDs[0] != 1 || msgIDs[len(msgIDs)-1] != n/4 {
			t.Errorf("chat %d: message ids %v, want 1..%d", chat, msgIDs, n/4)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(slices.Clone(ids))) != n {
		t.Errorf("update ids %v are not unique", ids)
	}
	if b.Pending() != 0 || len(b.WebhookAttempts()) != n || b.Served(ids[0]) != 1 {
		t.Errorf("pending %d, %d attempts, served %d: want 0, %d, 1", b.Pending(), len(b.WebhookAttempts()), b.Served(ids[0]), n)
	}
}

func TestDeliverNowRefused(t *testing.T) {
	s, b := startBot(t, Options{InsecureWebhooks: true})
	h := newHookReceiver(t, func(int) int { return http.StatusServiceUnavailable })
	result[bool](t, call(t, s, b.Token(), "setWebhook", map[string]any{"url": h.srv.URL + "/hook"}))
	_, err := b.DeliverNow(ctxTimeout(t, 5*time.Second), Update{Message: &Message{From: &ann, Text: "x"}})
	var se *WebhookStatusError
	if !errors.As(err, &se) || se.Status != http.StatusServiceUnavailable {
		t.Fatalf("err = %v, want a WebhookStatusError 503", err)
	}
	time.Sleep(50 * time.Millisecond)
	if got, _ := h.updates(); len(got) != 1 {
		t.Errorf("webhook got %d posts, want 1: DeliverNow does not retry", len(got))
	}
}

// Observe sees every sent message, with its parsed text, also once the
// records are off; the records stop growing but keep what they had.
func TestObserveAndStopRecording(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hello") // makes the chat known
	var mu sync.Mutex
	var seen []SentMessage
	b.Observe(func(m SentMessage) {
		mu.Lock()
		seen = append(seen, m)
		mu.Unlock()
	})
	result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": ann.ID, "text": "<b>one</b>", "parse_mode": "HTML"}))
	callsBefore := len(b.Calls())
	b.StopRecording()
	result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": ann.ID, "text": "two"}))
	result[bool](t, call(t, s, b.Token(), "sendChatAction", map[string]any{"chat_id": ann.ID, "action": "typing"}))
	wantError(t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": 1, "text": "nobody"}), 400, "Bad Request: chat not found")

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Plain != "one" || seen[0].Text != "<b>one</b>" || seen[1].Plain != "two" || seen[1].ChatID != ann.ID || seen[1].MessageID != seen[0].MessageID+1 {
		t.Fatalf("observed %+v, want the two messages sent", seen)
	}
	if len(b.Sent()) != 1 || len(b.Calls()) != callsBefore || len(b.ChatActions()) != 0 {
		t.Errorf("records after StopRecording: %d sent, %d calls (had %d), %d actions; want 1, %d, 0",
			len(b.Sent()), len(b.Calls()), callsBefore, len(b.ChatActions()), callsBefore)
	}
	b.Observe(nil)
	result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": ann.ID, "text": "three"}))
	if len(seen) != 2 {
		t.Errorf("observer removed, still saw %d messages", len(seen))
	}
}
