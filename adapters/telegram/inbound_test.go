package telegram

import (
	"strconv"
	"testing"
	"time"

	"github.com/mymmrac/telego"

	"github.com/switchboard-gw/switchboard/core"
)

func TestParseUpdate(t *testing.T) {
	me := telego.User{ID: 900, IsBot: true, FirstName: "Shop", Username: "shop_bot"}
	ann := &telego.User{ID: 42, FirstName: "Ann", LastName: "Lee", Username: "ann"}
	private := telego.Chat{ID: 42, Type: "private"}
	group := telego.Chat{ID: -1001234, Type: "supergroup", Title: "Fans"}
	msg := func(chat telego.Chat, edit func(m *telego.Message)) telego.Update {
		m := &telego.Message{MessageID: 7, From: ann, Chat: chat, Date: 1700000000}
		edit(m)
		return telego.Update{UpdateID: 500, Message: m}
	}
	cmd := func(text string, length int) []telego.MessageEntity {
		return []telego.MessageEntity{{Type: "bot_command", Offset: 0, Length: length}}
	}
	mention := func(off, length int) []telego.MessageEntity {
		return []telego.MessageEntity{{Type: "mention", Offset: off, Length: length}}
	}
	mentionMode := func(c *Config) { c.Groups = GroupsMention }

	tests := []struct {
		name       string
		cfg        func(*Config)
		u          telego.Update
		wantSkip   bool
		wantChat   string
		wantText   string
		wantPhone  string
		wantName   string
		wantNotice bool
		wantGroup  bool
	}{
		{name: "private text", u: msg(private, func(m *telego.Message) { m.Text = "  hello  " }),
			wantChat: "42", wantText: "hello", wantName: "Ann Lee"},
		{name: "start with deep-link payload", u: msg(private, func(m *telego.Message) { m.Text, m.Entities = "/start promo_42", cmd("/start", 6) }),
			wantChat: "42", wantText: "/start promo_42"},
		{name: "start addressed to the bot by name", u: msg(private, func(m *telego.Message) {
			m.Text, m.Entities = "/start@shop_bot promo", cmd("", 15)
		}), wantChat: "42", wantText: "/start promo"},
		{name: "own contact becomes the phone", u: msg(private, func(m *telego.Message) {
			m.Contact = &telego.Contact{PhoneNumber: "15550001", FirstName: "Ann", UserID: 42}
		}), wantChat: "42", wantText: "[shared contact: Ann +15550001]", wantPhone: "+15550001"},
		{name: "someone else's contact is only text", u: msg(private, func(m *telego.Message) {
			m.Contact = &telego.Contact{PhoneNumber: "+15550002", FirstName: "Bob", UserID: 77}
		}), wantChat: "42", wantText: "[shared contact: Bob +15550002]"},
		{name: "photo without caption asks for text", u: msg(private, func(m *telego.Message) { m.Photo = []telego.PhotoSize{{FileID: "f"}} }),
			wantChat: "42", wantText: "[photo]", wantNotice: true},
		{name: "photo with caption", u: msg(private, func(m *telego.Message) { m.Photo, m.Caption = []telego.PhotoSize{{FileID: "f"}}, "in blue?" }),
			wantChat: "42", wantText: "[photo] in blue?"},
		{name: "voice", u: msg(private, func(m *telego.Message) { m.Voice = &telego.Voice{Duration: 75} }),
			wantChat: "42", wantText: "[voice message, 1:15]", wantNotice: true},
		{name: "document", u: msg(private, func(m *telego.Message) { m.Document = &telego.Document{FileName: "order.pdf"} }),
			wantChat: "42", wantText: "[file: order.pdf]", wantNotice: true},
		{name: "sticker carries its emoji", u: msg(private, func(m *telego.Message) { m.Sticker = &telego.Sticker{Emoji: "👍"} }),
			wantChat: "42", wantText: "[sticker 👍]"},
		{name: "location", u: msg(private, func(m *telego.Message) { m.Location = &telego.Location{Latitude: 52.52, Longitude: 13.405} }),
			wantChat: "42", wantText: "[location: 52.52000, 13.40500]"},
		{name: "media reply can be off", cfg: func(c *Config) { c.MediaReply = "" }, u: msg(private, func(m *telego.Message) { m.Photo = []telego.PhotoSize{{FileID: "f"}} }),
			wantChat: "42", wantText: "[photo]"},
		{name: "service message", u: msg(private, func(m *telego.Message) { m.NewChatMembers = []telego.User{*ann} }), wantSkip: true},
		{name: "from a bot", u: msg(private, func(m *telego.Message) { m.From = &telego.User{ID: 5, IsBot: true}; m.Text = "x" }), wantSkip: true},
		{name: "not a message", u: telego.Update{UpdateID: 1, EditedMessage: &telego.Message{Text: "x", Chat: private, From: ann}}, wantSkip: true},
		{name: "channel", u: msg(telego.Chat{ID: -100, Type: "channel"}, func(m *telego.Message) { m.Text = "x" }), wantSkip: true},
		{name: "group ignored by default", u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "@shop_bot hi", mention(0, 9) }), wantSkip: true},
		{name: "group: mention", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "hey @Shop_Bot price?", mention(4, 9) }),
			wantChat: "-1001234:42", wantText: "hey price?", wantName: "Ann Lee (Fans)", wantGroup: true},
		{name: "group: reply to the bot", cfg: mentionMode, u: msg(group, func(m *telego.Message) {
			m.Text, m.ReplyToMessage = "and delivery?", &telego.Message{MessageID: 3, From: &me, Chat: group}
		}), wantChat: "-1001234:42", wantText: "and delivery?", wantGroup: true},
		{name: "group: reply to someone else", cfg: mentionMode, u: msg(group, func(m *telego.Message) {
			m.Text, m.ReplyToMessage = "lol", &telego.Message{MessageID: 3, From: &telego.User{ID: 8}, Chat: group}
		}), wantSkip: true},
		{name: "group: bare command", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "/price", cmd("", 6) }),
			wantChat: "-1001234:42", wantText: "/price", wantGroup: true},
		{name: "group: command for this bot", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "/price@shop_bot lamp", cmd("", 15) }),
			wantChat: "-1001234:42", wantText: "/price lamp", wantGroup: true},
		{name: "group: command for another bot", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "/price@other_bot", cmd("", 16) }),
			wantSkip: true},
		{name: "group: mention of someone else", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "@bob hi", mention(0, 4) }),
			wantSkip: true},
		{name: "group: text mention", cfg: mentionMode, u: msg(group, func(m *telego.Message) {
			m.Text, m.Entities = "Shop, hi", []telego.MessageEntity{{Type: "text_mention", Offset: 0, Length: 4, User: &me}}
		}), wantChat: "-1001234:42", wantText: "Shop, hi", wantGroup: true},
		{name: "group: mention after an emoji (UTF-16 offsets)", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "😀 @shop_bot hi", mention(3, 9) }),
			wantChat: "-1001234:42", wantText: "😀 hi", wantGroup: true},
		{name: "group: anonymous admin", cfg: mentionMode, u: msg(group, func(m *telego.Message) {
			m.Text, m.Entities, m.SenderChat = "@shop_bot hi", mention(0, 9), &group
		}), wantSkip: true},
		{name: "group: only the mention", cfg: mentionMode, u: msg(group, func(m *telego.Message) { m.Text, m.Entities = "@shop_bot", mention(0, 9) }), wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg Config
			cfg.setDefaults()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			in, skip := parseUpdate(&cfg, &me, tt.u)
			if tt.wantSkip {
				if skip == "" {
					t.Fatalf("parseUpdate = %+v, want it skipped", in)
				}
				return
			}
			if skip != "" {
				t.Fatalf("skipped: %s", skip)
			}
			m := in.msg
			if m.ChatID != tt.wantChat || m.Text != tt.wantText || m.User.Phone != tt.wantPhone || in.group != tt.wantGroup {
				t.Fatalf("inbound = %+v (group %v), want chat %q text %q phone %q", m, in.group, tt.wantChat, tt.wantText, tt.wantPhone)
			}
			if tt.wantName != "" && m.User.Name != tt.wantName {
				t.Fatalf("name = %q, want %q", m.User.Name, tt.wantName)
			}
			if m.User.Username != "ann" || !m.ReceivedAt.Equal(time.Unix(1700000000, 0)) {
				t.Fatalf("user/time = %+v %v", m.User, m.ReceivedAt)
			}
			if want := tt.u.Message.Chat; m.ID != strconv.FormatInt(want.ID, 10)+"/7" || in.chat != want.ID || in.reply.messageID != 7 {
				t.Fatalf("id %q chat %d reply %+v", m.ID, in.chat, in.reply)
			}
			if (in.notice != "") != tt.wantNotice {
				t.Fatalf("notice = %q, want one: %v", in.notice, tt.wantNotice)
			}
			if err := core.CheckNativeID(m.ChatID); err != nil {
				t.Fatalf("native id %q is not acceptable to the core: %v", m.ChatID, err)
			}
			if tgt, err := parseTarget(m.ChatID); err != nil || tgt.chat != in.chat {
				t.Fatalf("parseTarget(%q) = %+v, %v", m.ChatID, tgt, err)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want target
		ok   bool
	}{
		{in: "42", want: target{chat: 42}, ok: true},
		{in: "-1001234:42", want: target{chat: -1001234, user: 42}, ok: true},
		{in: "-100", want: target{chat: -100}, ok: true},
		{in: "", ok: false},
		{in: "abc", ok: false},
		{in: "0", ok: false},
		{in: "42:7", ok: false}, // a private chat has no users inside
		{in: "-1:x", ok: false},
		{in: "-1:-5", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTarget(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseTarget(%q) = %+v, %v", tt.in, got, err)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{"15550001": "+15550001", "+15550001": "+15550001", " 79161234567 ": "+79161234567", "(555) 0001": "(555) 0001", "": ""} {
		if got := normalizePhone(in); got != want {
			t.Errorf("normalizePhone(%q) = %q, want %q", in, got, want)
		}
	}
}
