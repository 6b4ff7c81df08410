package telegram

import (
	"strings"
	"testing"
)

func TestSendMessage(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi") // makes the chat known; message 1
	group := Chat{ID: -100500, Type: ChatSupergroup, Title: "Shop fans"}
	b.Push(Update{Message: &Message{From: &ann, Chat: group, Text: "hi all"}})

	tests := []struct {
		name      string
		params    map[string]any
		wantCode  int
		wantDesc  string
		wantPlain string
		wantEnts  []MessageEntity
	}{
		{name: "plain", params: map[string]any{"chat_id": 111, "text": "  a < b & c  "}, wantPlain: "a < b & c"},
		{name: "html", params: map[string]any{"chat_id": 111, "parse_mode": "HTML", "text": "<b>Price</b>: 5 &lt; 6 &amp; <a href=\"https://x.example/?a=1&amp;b=2\">link</a>"},
			wantPlain: "Price: 5 < 6 & link",
			wantEnts:  []MessageEntity{{Type: "bold", Offset: 0, Length: 5}, {Type: "text_link", Offset: 15, Length: 4, URL: "https://x.example/?a=1&b=2"}}},
		{name: "string chat id", params: map[string]any{"chat_id": "111", "text": "x"}, wantPlain: "x"},
		{name: "group", params: map[string]any{"chat_id": -100500, "text": "hello group"}, wantPlain: "hello group"},
		{name: "html parse error", params: map[string]any{"chat_id": 111, "parse_mode": "HTML", "text": "a < b"},
			wantCode: 400, wantDesc: `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
		{name: "unknown chat", params: map[string]any{"chat_id": 222, "text": "x"}, wantCode: 400, wantDesc: "Bad Request: chat not found"},
		{name: "no chat", params: map[string]any{"text": "x"}, wantCode: 400, wantDesc: "Bad Request: chat_id is empty"},
		{name: "empty text", params: map[string]any{"chat_id": 111, "text": ""}, wantCode: 400, wantDesc: "Bad Request: message text is empty"},
		{name: "only tags and spaces", params: map[string]any{"chat_id": 111, "parse_mode": "HTML", "text": "<b> </b>\n"}, wantCode: 400, wantDesc: "Bad Request: message text is empty"},
		{name: "4096 is fine", params: map[string]any{"chat_id": 111, "text": strings.Repeat("a", 4096)}, wantPlain: strings.Repeat("a", 4096)},
		{name: "4097 is too long", params: map[string]any{"chat_id": 111, "text": strings.Repeat("a", 4097)}, wantCode: 400, wantDesc: "Bad Request: message is too long"},
		{name: "length counts UTF-16 units", params: map[string]any{"chat_id": 111, "text": strings.Repeat("😀", 2049)}, wantCode: 400, wantDesc: "Bad Request: message is too long"},
		{name: "length is counted after parsing", params: map[string]any{"chat_id": 111, "parse_mode": "HTML", "text": "<b>" + strings.Repeat("&amp;", 4096) + "</b>"}, wantPlain: strings.Repeat("&", 4096),
			wantEnts: []MessageEntity{{Type: "bold", Offset: 0, Length: 4096}}},
		{name: "markdown is not implemented", params: map[string]any{"chat_id": 111, "parse_mode": "MarkdownV2", "text": "*x*"}, wantCode: 400, wantDesc: "Bad Request: unsupported parse_mode"},
		{name: "reply to a missing message", params: map[string]any{"chat_id": 111, "text": "x", "reply_parameters": map[string]any{"message_id": 999}},
			wantCode: 400, wantDesc: "Bad Request: message to be replied not found"},
		{name: "reply to a missing message, allowed", params: map[string]any{"chat_id": 111, "text": "x", "reply_parameters": map[string]any{"message_id": 999, "allow_sending_without_reply": true}}, wantPlain: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.Sent())
			a := call(t, s, b.Token(), "sendMessage", tt.params)
			if tt.wantCode != 0 {
				wantError(t, a, tt.wantCode, tt.wantDesc)
				if len(b.Sent()) != before {
					t.Fatal("a refused message was recorded as sent")
				}
				return
			}
			m := result[Message](t, a)
			if m.Text != tt.wantPlain || m.From == nil || !m.From.IsBot || m.MessageID == 0 || m.Chat.ID == 0 {
				t.Fatalf("result = %+v, want text %q from the bot", m, tt.wantPlain)
			}
			if len(m.Entities) != len(tt.wantEnts) {
				t.Fatalf("entities = %+v, want %+v", m.Entities, tt.wantEnts)
			}
			for i := range m.Entities {
				if m.Entities[i] != tt.wantEnts[i] {
					t.Fatalf("entity %d = %+v, want %+v", i, m.Entities[i], tt.wantEnts[i])
				}
			}
			sent := b.Sent()
			if len(sent) != before+1 || sent[before].Plain != tt.wantPlain || sent[before].MessageID != m.MessageID {
				t.Fatalf("record = %+v", sent[len(sent)-1])
			}
		})
	}
	// Message ids go on from the user's message in the same chat.
	if got := b.SentTo(111); got[0].MessageID != 2 || got[1].MessageID != 3 {
		t.Fatalf("message ids = %d, %d, want 2, 3", got[0].MessageID, got[1].MessageID)
	}
}

func TestSendRecordsOptions(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi")
	result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{
		"chat_id": 111, "text": "x", "message_thread_id": 7,
		"link_preview_options": map[string]any{"is_disabled": true},
		"reply_parameters":     map[string]any{"message_id": 1, "allow_sending_without_reply": true},
	}))
	m := b.Sent()[0]
	if m.ThreadID != 7 || !m.LinkPreviewDisabled || m.ReplyTo != 1 {
		t.Fatalf("record = %+v", m)
	}
}

func TestSendChatAction(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi")
	if ok := result[bool](t, call(t, s, b.Token(), "sendChatAction", map[string]any{"chat_id": 111, "action": "typing"})); !ok {
		t.Fatal("sendChatAction result = false")
	}
	wantError(t, call(t, s, b.Token(), "sendChatAction", map[string]any{"chat_id": 111, "action": "dancing"}), 400, "Bad Request: wrong parameter action in request")
	wantError(t, call(t, s, b.Token(), "sendChatAction", map[string]any{"chat_id": 5, "action": "typing"}), 400, "Bad Request: chat not found")
	if got := b.ChatActions(); len(got) != 1 || got[0].ChatID != 111 || got[0].Action != "typing" {
		t.Fatalf("actions = %+v", got)
	}
}

func TestBlock(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi")
	id := b.Block(111)
	wantError(t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": 111, "text": "x"}), 403, "Forbidden: bot was blocked by the user")
	wantError(t, call(t, s, b.Token(), "sendChatAction", map[string]any{"chat_id": 111, "action": "typing"}), 403, "Forbidden: bot was blocked by the user")
	ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", map[string]any{"allowed_updates": []string{"message", "my_chat_member"}}))
	last := ups[len(ups)-1]
	if last.UpdateID != id || last.MyChatMember == nil || last.MyChatMember.NewChatMember.Status != "kicked" ||
		last.MyChatMember.OldChatMember.Status != "member" || last.MyChatMember.Chat.ID != 111 || !last.MyChatMember.NewChatMember.User.IsBot {
		t.Fatalf("last update = %+v, want my_chat_member member → kicked", last)
	}
	b.Unblock(111)
	result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": 111, "text": "back"}))

	group := Chat{ID: -42, Type: ChatGroup, Title: "G"}
	b.Push(Update{Message: &Message{From: &ann, Chat: group, Text: "x"}})
	b.Block(-42)
	wantError(t, call(t, s, b.Token(), "sendMessage", map[string]any{"chat_id": -42, "text": "x"}), 403, "Forbidden: bot was kicked from the group chat")
}
