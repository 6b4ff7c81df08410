package telegram

import (
	"context"
	"slices"
	"testing"
	"time"
)

func updateIDs(ups []Update) []int64 {
	var ids []int64
	for _, u := range ups {
		ids = append(ids, u.UpdateID)
	}
	return ids
}

// TestOffsetSemantics: updates stay until getUpdates is called with a
// higher offset; a negative offset keeps only the last updates.
func TestOffsetSemantics(t *testing.T) {
	s, b := startBot(t, Options{})
	get := func(params map[string]any) []Update {
		t.Helper()
		return result[[]Update](t, call(t, s, b.Token(), "getUpdates", params))
	}
	if ups := get(nil); len(ups) != 0 {
		t.Fatalf("empty queue returned %d updates", len(ups))
	}
	id1 := b.SendText(ann, "one")
	id2 := b.SendText(ann, "two")
	id3 := b.SendText(ann, "three")
	if id2 != id1+1 || id3 != id2+1 {
		t.Fatalf("update ids %d %d %d are not sequential", id1, id2, id3)
	}

	tests := []struct {
		name   string
		params map[string]any
		want   []int64
	}{
		{name: "no offset returns all unconfirmed", params: nil, want: []int64{id1, id2, id3}},
		{name: "again: nothing was confirmed", params: map[string]any{"limit": 2}, want: []int64{id1, id2}},
		{name: "offset confirms older updates", params: map[string]any{"offset": id2}, want: []int64{id2, id3}},
		{name: "confirmed updates are gone for good", params: nil, want: []int64{id2, id3}},
		{name: "negative offset keeps the last ones", params: map[string]any{"offset": -1}, want: []int64{id3}},
		{name: "offset past the end confirms all", params: map[string]any{"offset": id3 + 1}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := updateIDs(get(tt.params)); !slices.Equal(got, tt.want) {
				t.Fatalf("update ids = %v, want %v", got, tt.want)
			}
		})
	}
	if b.Served(id1) != 2 || b.Served(id2) != 4 || b.Pending() != 0 {
		t.Fatalf("served id1=%d id2=%d pending=%d, want 2, 4, 0", b.Served(id1), b.Served(id2), b.Pending())
	}
}

func TestUpdateShape(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "/start promo_42")
	raw := call(t, s, b.Token(), "getUpdates", nil).Result
	ups := result[[]map[string]any](t, answer{OK: true, Status: 200, Result: raw})
	msg := ups[0]["message"].(map[string]any)
	chat := msg["chat"].(map[string]any)
	from := msg["from"].(map[string]any)
	if chat["id"].(float64) != 111 || chat["type"] != "private" || chat["first_name"] != "Ann" || chat["username"] != "ann" {
		t.Errorf("chat = %v", chat)
	}
	if from["is_bot"] != false || from["last_name"] != "Lee" || from["language_code"] != "en" {
		t.Errorf("from = %v", from)
	}
	if msg["message_id"].(float64) != 1 || msg["date"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("message_id/date = %v/%v", msg["message_id"], msg["date"])
	}
	ents := msg["entities"].([]any)
	if len(ents) != 1 || ents[0].(map[string]any)["type"] != "bot_command" || ents[0].(map[string]any)["length"].(float64) != 6 {
		t.Errorf("entities = %v, want one bot_command of length 6", ents)
	}
}

func TestDetectEntities(t *testing.T) {
	tests := []struct {
		text string
		want []MessageEntity
	}{
		{text: "/start", want: []MessageEntity{{Type: "bot_command", Offset: 0, Length: 6}}},
		{text: "/help@shop_bot now", want: []MessageEntity{{Type: "bot_command", Offset: 0, Length: 14}}},
		{text: "hey @shop_bot!", want: []MessageEntity{{Type: "mention", Offset: 4, Length: 9}}},
		{text: "😀 @shop_bot", want: []MessageEntity{{Type: "mention", Offset: 3, Length: 9}}},
		{text: "mail a@b.com or 1/2", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			if got := detectEntities(tt.text); !slices.Equal(got, tt.want) {
				t.Fatalf("entities = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLongPoll(t *testing.T) {
	s, b := startBot(t, Options{})
	t.Run("returns as soon as an update arrives", func(t *testing.T) {
		go func() {
			_ = b.WaitCalls(context.Background(), "getUpdates", 1)
			time.Sleep(50 * time.Millisecond)
			b.SendText(ann, "hello")
		}()
		start := time.Now()
		ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", map[string]any{"timeout": 10}))
		if len(ups) != 1 || ups[0].Message.Text != "hello" {
			t.Fatalf("updates = %+v", ups)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("long poll took %s", d)
		}
		call(t, s, b.Token(), "getUpdates", map[string]any{"offset": ups[0].UpdateID + 1, "timeout": 0})
	})
	t.Run("times out with an empty result", func(t *testing.T) {
		start := time.Now()
		ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", map[string]any{"timeout": 1}))
		if d := time.Since(start); len(ups) != 0 || d < 900*time.Millisecond || d > 3*time.Second {
			t.Fatalf("got %d updates after %s, want none after about 1s", len(ups), d)
		}
	})
	t.Run("a second poller terminates the first", func(t *testing.T) {
		first := make(chan answer, 1)
		n := len(b.CallsTo("getUpdates"))
		go func() {
			a, _ := tryCall(context.Background(), s, b.Token(), "getUpdates", map[string]any{"timeout": 10})
			first <- a
		}()
		if err := b.WaitCalls(ctxTimeout(t, 5*time.Second), "getUpdates", n+1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // let the first start waiting
		second := make(chan answer, 1)
		go func() {
			a, _ := tryCall(context.Background(), s, b.Token(), "getUpdates", map[string]any{"timeout": 1})
			second <- a
		}()
		wantError(t, <-first, 409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
		if a := <-second; !a.OK {
			t.Fatalf("second poller: %+v", a)
		}
	})
}

func TestAllowedUpdates(t *testing.T) {
	s, b := startBot(t, Options{})
	b.Push(Update{EditedMessage: &Message{From: &ann, Text: "edited"}})
	b.Push(Update{ChannelPost: &Message{Chat: Chat{ID: -1001, Type: ChatChannel, Title: "News"}, Text: "post"}})
	id := b.SendText(ann, "plain")
	ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", map[string]any{"allowed_updates": []string{"message"}}))
	if got := updateIDs(ups); !slices.Equal(got, []int64{id}) {
		t.Fatalf("update ids = %v, want only the message %d", got, id)
	}
	// The setting sticks when allowed_updates is not given again.
	b.Push(Update{EditedMessage: &Message{From: &ann, Text: "edited again"}})
	ups = result[[]Update](t, call(t, s, b.Token(), "getUpdates", map[string]any{"offset": id + 1}))
	if len(ups) != 0 {
		t.Fatalf("got %d updates, want the edit filtered out", len(ups))
	}
}
