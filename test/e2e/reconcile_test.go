package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// TestAmbiguousSendSettledByEcho: Selarti takes a message but its answer
// comes after the client gave up, the case where a resend duplicates.
// With echo reconciliation (the default), Selarti's user echo on the "All
// messages" webhook proves the delivery and the message is not sent again;
// with it off (echo_window 0), it is sent twice, which shows this test can
// see a repeat.
func TestAmbiguousSendSettledByEcho(t *testing.T) {
	for _, tc := range []struct {
		name      string
		window    time.Duration
		wantSends int
	}{
		{"reconciled", 5 * time.Second, 1},
		{"off", 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{
				adapters: []engine.AdapterConfig{testChatAdapter("chat-a", "task-1")},
				cfgEdit: func(c *engine.Config) {
					c.Selarti.Timeout = 300 * time.Millisecond
					c.Selarti.EchoWindow = tc.window
				},
			})
			e.sim.SetAckDelay(2 * time.Second)
			chat := e.chats.get("chat-a")
			if err := chat.say(context.Background(), core.Inbound{ChatID: "u1", ID: "m1", Text: "hello"}); err != nil {
				t.Fatal(err)
			}
			if err := e.sim.WaitReceived(ctxTimeout(t), 1); err != nil {
				t.Fatal(err)
			}
			e.sim.SetAckDelay(0) // a resend, if any, now goes through at once
			eventually(t, "bot reply", func() bool { return len(chat.sent()) >= 1 })
			// Long enough for a resend to happen: the attempt's timeout has
			// passed and the backoff is tens of milliseconds.
			time.Sleep(time.Second)
			if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
				t.Fatal(err)
			}
			got := e.sim.ReceivedFor("chat-a:u1")
			if len(got) != tc.wantSends {
				t.Fatalf("Selarti received %d copies, want %d", len(got), tc.wantSends)
			}
			replies := texts(chat.sent())
			if len(replies) != tc.wantSends || replies[0] != "bot: "+fakeselarti.Reply("hello") {
				t.Fatalf("user got %q, want %d replies", replies, tc.wantSends)
			}
			logs := e.logs.String()
			if settled := strings.Contains(logs, "echo proves delivery: not sent again"); settled != (tc.window > 0) {
				t.Errorf("log says the echo settled it: %v, want %v", settled, tc.window > 0)
			}
			if st, err := e.gw.Store().Stats(context.Background(), "to_selarti"); err != nil || st.Pending != 0 || st.Dead != 0 {
				t.Fatalf("inbound outbox = %+v, %v; want empty", st, err)
			}
		})
	}
}
