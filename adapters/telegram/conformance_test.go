package telegram

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// TestConformance runs the Messenger contract's suite against the fake Bot
// API: one bot per test, users are private chats, "acknowledged" means the
// fake saw the update confirmed by a later getUpdates offset.
func TestConformance(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			h := newHarness(t, nil)
			return h.a, network{h}
		},
		NewBroken: func(t *testing.T) core.Messenger {
			bh := newHarness(t, nil)
			// A token the fake does not know: getMe answers 401.
			inst, _ := messengertest.Instance(t, Kind, fast(core.RawConfig{"token": faketelegram.TestToken(999), "api_url": bh.srv.URL()}))
			m, err := New(inst)
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
}

// network is the suite's handle on one test's fake bot.
type network struct{ h *harness }

func user(n int) faketelegram.User {
	return faketelegram.User{ID: int64(1000 + n), FirstName: fmt.Sprintf("User %d", n)}
}

func (n network) UserSays(t *testing.T, u int, text string) (string, func() bool) {
	from := user(u)
	n.h.bot.SendText(from, text)
	return strconv.FormatInt(from.ID, 10), func() bool { return n.h.bot.Pending() == 0 }
}

func (n network) Delivered(t *testing.T, chat string) []string {
	id, _ := strconv.ParseInt(chat, 10, 64)
	var out []string
	for _, m := range n.h.bot.SentTo(id) {
		out = append(out, m.Plain)
	}
	return out
}

func (n network) RateLimitNext(t *testing.T, d time.Duration) {
	n.h.bot.FailNext("sendMessage", faketelegram.TooManyRequests(int(d/time.Second)))
}

// BotSays pushes a message from the bot itself into the user's chat, as
// Telegram shows a bot's messages in a group it is in.
func (n network) BotSays(t *testing.T, u int, text string) {
	me := n.h.bot.User()
	n.h.bot.Push(faketelegram.Update{Message: &faketelegram.Message{From: &me, Chat: faketelegram.PrivateChat(user(u)), Text: text}})
}

// GoneChat is a chat the bot never saw: Telegram answers "chat not found".
func (n network) GoneChat(t *testing.T) string { return "777000111" }
