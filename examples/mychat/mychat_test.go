package mychat

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// newAdapter builds an instance against f, as the engine would.
func newAdapter(t *testing.T, f *fakeMyChat, token string) core.Messenger {
	inst, _ := messengertest.Instance(t, Kind, core.RawConfig{"api_url": f.srv.URL, "token": token, "poll_timeout": "1s", "chat_rate_limit": 1000})
	m, err := New(inst)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// network is the suite's handle on one test's fake.
type network struct{ f *fakeMyChat }

func chatOf(user int) string { return fmt.Sprintf("chat-%d", user) }

func (n network) UserSays(t *testing.T, user int, text string) (string, func() bool) {
	id := n.f.push(chatOf(user), fmt.Sprint("user-", user), text)
	return chatOf(user), func() bool { return n.f.isAcked(id) }
}

func (n network) Delivered(t *testing.T, chat string) []string {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	return append([]string(nil), n.f.sent[chat]...)
}

func (n network) RateLimitNext(t *testing.T, d time.Duration) {
	n.f.mu.Lock()
	defer n.f.mu.Unlock()
	n.f.limit = d
}

func (n network) BotSays(t *testing.T, user int, text string) { n.f.push(chatOf(user), botID, text) }

func (n network) GoneChat(t *testing.T) string { return "chat-nobody-wrote-from" }

// TestConformance runs the Messenger contract's suite: this is what
// proves the skeleton keeps the contract.
func TestConformance(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			f := newFake(t)
			return newAdapter(t, f, f.token), network{f}
		},
		NewBroken: func(t *testing.T) core.Messenger {
			f := newFake(t)
			return newAdapter(t, f, "wrong-token") // GET /me answers 401
		},
	})
}
