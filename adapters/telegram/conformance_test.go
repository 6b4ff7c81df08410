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
	var h *harness // the current test's harness; the suite runs its tests in turn
	messengertest.Run(t, messengertest.Harness{
		New: func(t *testing.T) core.Messenger {
			h = newHarness(t, nil)
			return h.a
		},
		NewBroken: func(t *testing.T) core.Messenger {
			bh := newHarness(t, nil)
			// A token the fake does not know: getMe answers 401.
			cfg := fast(core.RawConfig{"token": faketelegram.TestToken(999), "api_url": bh.srv.URL()})
			m, err := New(core.Instance{Name: "tg", Kind: Kind, Config: cfg, Logger: bh.a.log})
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
		UserSays: func(t *testing.T, _ core.Messenger, user int, text string) (string, func() bool) {
			from := faketelegram.User{ID: int64(1000 + user), FirstName: fmt.Sprintf("User %d", user)}
			h.bot.SendText(from, text)
			return strconv.FormatInt(from.ID, 10), func() bool { return h.bot.Pending() == 0 }
		},
		Delivered: func(t *testing.T, chat string) []string {
			id, _ := strconv.ParseInt(chat, 10, 64)
			var out []string
			for _, m := range h.bot.SentTo(id) {
				out = append(out, m.Plain)
			}
			return out
		},
		RateLimitNext: func(t *testing.T, d time.Duration) {
			h.bot.FailNext("sendMessage", faketelegram.TooManyRequests(int(d/time.Second)))
		},
	})
}
