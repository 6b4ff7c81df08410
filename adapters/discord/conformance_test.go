package discord

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
)

// TestConformance runs the Messenger contract's suite against the fake
// Discord: users write direct messages; the gateway never redelivers, so
// the suite checks the in-process retries and the backfill after a
// restart.
func TestConformance(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		Redelivery: messengertest.InProcess,
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			h := newHarness(t, nil)
			return h.a, network{h}
		},
		NewBroken: func(t *testing.T) core.Messenger {
			h := newHarness(t, nil)
			h.bot.RevokeToken() // GET /users/@me answers 401
			return h.a
		},
		Restart: func(t *testing.T, old core.Messenger) core.Messenger {
			// The same network and data directory: a new process.
			return networks[old.(*Adapter)].h.build(nil)
		},
	})
}

// sessionGrace is how long UserSays waits for a gateway session.
const sessionGrace = 2 * time.Second

// networks finds a test's harness from its adapter, for Restart.
var networks = map[*Adapter]network{}

// network is the suite's handle on one test's fake Discord.
type network struct{ h *harness }

func (n network) dm(user int) fakediscord.Channel { return n.h.bot.DMChannel(n.h.user(user)) }

func (n network) UserSays(t *testing.T, user int, text string) (string, func() bool) {
	networks[n.h.a] = n
	ch := n.dm(user)
	// The suite calls Receive on a goroutine of its own: give its session
	// a moment to open, as a user writing to a new DM would be lost
	// before (Discord does not send it again, and the channel is not in
	// the checkpoint yet). With no Receive running (a standby replica, or
	// stopped) the message goes out after the grace.
	ctx, cancel := context.WithTimeout(context.Background(), sessionGrace)
	_ = n.h.bot.Wait(ctx, func() bool { ss := n.h.bot.Sessions(); return len(ss) > 0 && ss[0].Heartbeats > 0 })
	cancel()
	n.h.srv.UserSays(ch.ID, n.h.user(user), text)
	return ch.ID, func() bool { return true } // the gateway has no acknowledgement
}

func (n network) Delivered(t *testing.T, chat string) []string {
	tg, _ := parseTarget(chat)
	return n.h.sent(tg.channel)
}

func (n network) RateLimitNext(t *testing.T, d time.Duration) {
	n.h.bot.FailNext("POST /channels/{id}/messages", fakediscord.TooManyRequests(d, false))
}

// BotSays posts as the bot itself, through REST as a bot does; Discord
// echoes a bot's own messages to its gateway session.
func (n network) BotSays(t *testing.T, user int, text string) {
	body, _ := json.Marshal(map[string]string{"content": text})
	req, _ := http.NewRequest(http.MethodPost, n.h.srv.URL()+"/channels/"+n.dm(user).ID+"/messages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bot "+n.h.bot.Token())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post as the bot: %s", resp.Status)
	}
}

// GoneChat is a channel Discord does not know: 404 Unknown Channel.
func (n network) GoneChat(t *testing.T) string { return strconv.Itoa(999999999) }
