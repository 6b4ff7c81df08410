package telegram

import (
	"bytes"
	"testing"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"
)

// TestChatActionEncodedAsTelegoWould: the hand-written sendChatAction body
// is byte for byte what telego's own encoder writes, and parameters the
// hand-written path does not cover go to telego's encoder.
func TestChatActionEncodedAsTelegoWould(t *testing.T) {
	tests := []struct {
		name     string
		p        telego.SendChatActionParams
		byHand   bool
		contains string
	}{
		{"private chat", telego.SendChatActionParams{ChatID: telego.ChatID{ID: 123456789}, Action: telego.ChatActionTyping}, true, ""},
		{"supergroup", telego.SendChatActionParams{ChatID: telego.ChatID{ID: -1001234567890}, Action: telego.ChatActionTyping}, true, ""},
		{"largest id", telego.SendChatActionParams{ChatID: telego.ChatID{ID: 1<<63 - 1}, Action: telego.ChatActionUploadPhoto}, true, ""},
		{"username", telego.SendChatActionParams{ChatID: telego.ChatID{Username: "@shop"}, Action: telego.ChatActionTyping}, false, `"@shop"`},
		{"thread", telego.SendChatActionParams{ChatID: telego.ChatID{ID: 5}, MessageThreadID: 7, Action: telego.ChatActionTyping}, false, `"message_thread_id":7`},
		{"business", telego.SendChatActionParams{ChatID: telego.ChatID{ID: 5}, BusinessConnectionID: "b1", Action: telego.ChatActionTyping}, false, `"b1"`},
		{"action to escape", telego.SendChatActionParams{ChatID: telego.ChatID{ID: 5}, Action: `ty"ping`}, false, `ty\"ping`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := ta.DefaultConstructor{}.JSONRequest(&tt.p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := requestConstructor{}.JSONRequest(&tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.BodyRaw, want.BodyRaw) || got.ContentType != want.ContentType {
				t.Fatalf("body %s (%s), want telego's %s (%s)", got.BodyRaw, got.ContentType, want.BodyRaw, want.ContentType)
			}
			if _, byHand := chatActionJSON(&tt.p); byHand != tt.byHand {
				t.Fatalf("encoded by hand: %v, want %v", byHand, tt.byHand)
			}
			if !bytes.Contains(got.BodyRaw, []byte(tt.contains)) {
				t.Fatalf("body %s lacks %s", got.BodyRaw, tt.contains)
			}
		})
	}
}
