package slack

import (
	"context"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// TestConformance runs the Messenger contract's suite against the fake
// Slack in socket mode: users write direct messages; Slack sends an
// envelope again until it is acknowledged (ByNetwork), and the suite
// checks that nothing is acknowledged while the core refuses.
func TestConformance(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		Redelivery: messengertest.ByNetwork,
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			h := newHarness(t, nil)
			return h.a, network{h}
		},
		NewBroken: func(t *testing.T) core.Messenger {
			h := newHarness(t, nil)
			h.team.RevokeBotToken() // auth.test answers token_revoked
			return h.a
		},
	})
}

// TestConformanceEventsMode runs the suite in events mode: Slack posts
// each event to the request URL and retries a request not answered 2xx.
func TestConformanceEventsMode(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		Redelivery: messengertest.ByNetwork,
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			h := newEventsHarness(t, nil)
			return h.a, network{h}
		},
		NewBroken: func(t *testing.T) core.Messenger {
			h := newEventsHarness(t, nil)
			h.team.RevokeBotToken()
			return h.a
		},
	})
}

// network is the suite's handle on one test's fake Slack.
type network struct{ h *harness }

func (n network) UserSays(t *testing.T, user int, text string) (string, func() bool) {
	r := n.h.team.UserSaysIM(n.h.user(user), text)
	if len(r.EventIDs) != 1 {
		t.Fatalf("UserSaysIM raised %+v", r)
	}
	id := r.EventIDs[0]
	return n.h.dm(user), func() bool { return n.acked(id) }
}

// acked reports whether Slack saw an event acknowledged: an envelope
// acknowledged in socket mode, a request answered 2xx in events mode.
func (n network) acked(eventID string) bool {
	if n.h.gw == nil {
		return n.h.team.Acked(eventID)
	}
	for _, p := range n.h.team.EventPostsOf(eventID) {
		if p.Failure == "" {
			return true
		}
	}
	return false
}

func (n network) Delivered(t *testing.T, chat string) []string {
	tg, err := parseTarget(chat)
	if err != nil {
		return nil
	}
	return n.h.posted(tg.channel)
}

func (n network) RateLimitNext(t *testing.T, d time.Duration) {
	n.h.srv.RateLimit("chat.postMessage", 1, int(d/time.Second))
}

// BotSays posts as the app itself, with its bot token, as a bot does;
// Slack sends the app its own message back as a message event with its
// bot_id.
func (n network) BotSays(t *testing.T, user int, text string) {
	api := slack.New(n.h.team.BotToken(), slack.OptionAPIURL(n.h.srv.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := api.PostMessageContext(ctx, n.h.team.IM(n.h.user(user)).ID, slack.MsgOptionText(text, false)); err != nil {
		t.Fatalf("post as the app: %v", err)
	}
}

// GoneChat is a channel of the workspace that does not exist:
// channel_not_found.
func (n network) GoneChat(t *testing.T) string {
	return n.h.team.ID() + ":C0GONE0000:u" + n.h.user(0).ID
}
