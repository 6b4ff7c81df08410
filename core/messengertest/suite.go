package messengertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// Harness connects the suite to one adapter and its fake network.
type Harness struct {
	// New builds a fresh Messenger, not started, against a fresh fake
	// network of its own, and returns both. Required.
	New func(t *testing.T) (core.Messenger, Network)
	// NewBroken builds a Messenger whose Start fails (the fake refuses
	// its token, say). Optional.
	NewBroken func(t *testing.T) core.Messenger
	// Redelivery says what the network does with a message that was not
	// acknowledged (ByNetwork unless set).
	Redelivery Redelivery
	// Restart builds a new Messenger, not started, on the same network
	// and with the same DataDir as old, which has been stopped: a restart
	// of the gateway. Needed for the backfill check of an InProcess
	// network.
	Restart func(t *testing.T, old core.Messenger) core.Messenger
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("messengertest: Harness needs New")
	}
	t.Run("StartStopTwice", func(t *testing.T) { startStopTwice(t, h) })
	t.Run("StartAgainAfterStop", func(t *testing.T) { startAgainAfterStop(t, h) })
	t.Run("SendBeforeStart", func(t *testing.T) { sendBeforeStart(t, h) })
	t.Run("SendAfterStop", func(t *testing.T) { sendAfterStop(t, h) })
	t.Run("HealthBeforeStart", func(t *testing.T) { healthBeforeStart(t, h) })
	t.Run("StopAfterFailedStart", func(t *testing.T) {
		if h.NewBroken == nil {
			t.Skip("harness has no NewBroken")
		}
		stopAfterFailedStart(t, h)
	})
	t.Run("DeliverAndAck", func(t *testing.T) { deliverAndAck(t, h) })
	switch h.Redelivery {
	case ByNetwork:
		t.Run("NoAckWhenDeliverFails", func(t *testing.T) { noAckWhenDeliverFails(t, h) })
	case InProcess:
		t.Run("RetriedInProcess", func(t *testing.T) { retriedInProcess(t, h) })
		t.Run("BackfilledAfterRestart", func(t *testing.T) {
			if h.Restart == nil {
				t.Fatal("an InProcess harness needs Restart: without a backfill, a message sent while the gateway was down is lost")
			}
			backfilledAfterRestart(t, h)
		})
	}
	t.Run("ReceivesOnlyInReceive", func(t *testing.T) { receivesOnlyInReceive(t, h) })
	t.Run("OwnMessagesIgnored", func(t *testing.T) { ownMessagesIgnored(t, h) })
	t.Run("ConcurrentSend", func(t *testing.T) { concurrentSend(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { cancelledContext(t, h) })
	t.Run("RateLimitIsRetryAfter", func(t *testing.T) { rateLimit(t, h) })
	t.Run("GoneChatIsUnknownChat", func(t *testing.T) { goneChat(t, h) })
}

// eventually polls cond for up to 10 s.
var eventually = testutil.Eventually

// started builds a Messenger with h.New and starts it with c.Deliver; it
// is stopped when the test ends.
func started(t *testing.T, h Harness, c *Core) (core.Messenger, Network) {
	t.Helper()
	m, net := h.New(t)
	start(t, m, c)
	return m, net
}

func start(t *testing.T, m core.Messenger, c *Core) {
	t.Helper()
	Start(t, m, c.Deliver)
}

// Start starts m with deliver (a Core's Deliver, usually) within ten
// seconds, failing the test if it cannot, and stops it when the test ends,
// reporting an error from Stop. A Messenger that is an exclusive receiver
// (core.ExclusiveReceiver) also gets its Receive, as the core calls it on
// the replica holding the lease; stopping it ends Receive first.
func Start(t testing.TB, m core.Messenger, deliver core.DeliverFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx, deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if rx, ok := m.(core.ExclusiveReceiver); ok && rx.Exclusive() {
		receive(rx, deliver)
	}
	t.Cleanup(func() { stop(t, m) })
}

// receiving holds the Receive running for each exclusive receiver the
// suite started, so that stop can end it before Stop, as the core does.
var receiving sync.Map // core.ExclusiveReceiver → *receiveRun

// receiveRun is one Receive in a goroutine.
type receiveRun struct {
	cancel context.CancelFunc
	done   chan error
}

func receive(rx core.ExclusiveReceiver, deliver core.DeliverFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	run := &receiveRun{cancel: cancel, done: make(chan error, 1)}
	receiving.Store(rx, run)
	go func() { run.done <- rx.Receive(ctx, deliver) }()
}

// endReceive ends the Receive of m, if one runs, and checks it returned
// nil in time.
func endReceive(t testing.TB, m core.Messenger) {
	t.Helper()
	v, ok := receiving.LoadAndDelete(m)
	if !ok {
		return
	}
	run := v.(*receiveRun)
	run.cancel()
	select {
	case err := <-run.done:
		if err != nil {
			t.Errorf("Receive returned %v when its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Receive did not return within 10 s of its context ending")
	}
}

func stop(t testing.TB, m core.Messenger) {
	t.Helper()
	endReceive(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// says has the network deliver one message and waits until the core has
// it and the network saw the ack.
func says(t *testing.T, net Network, c *Core, user int, text string) string {
	t.Helper()
	chat, acked := net.UserSays(t, user, text)
	eventually(t, fmt.Sprintf("%q handed to DeliverFunc", text), func() bool { return slices.Contains(c.Texts(), text) })
	eventually(t, fmt.Sprintf("the network to see %q acknowledged", text), acked)
	return chat
}

func send(m core.Messenger, chat, id, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return m.Send(ctx, core.Outbound{ChatID: chat, ID: id, Text: text, From: core.SenderBot})
}

// deliveredOnce waits until the network received marker in chat, and
// fails if it received it more than once.
func deliveredOnce(t *testing.T, net Network, chat, marker string) {
	t.Helper()
	eventually(t, marker+" delivered", func() bool { return count(net.Delivered(t, chat), marker) > 0 })
	if n := count(net.Delivered(t, chat), marker); n != 1 {
		t.Fatalf("%s delivered %d times", marker, n)
	}
}

func count(texts []string, marker string) int {
	n := 0
	for _, s := range texts {
		if strings.Contains(s, marker) {
			n++
		}
	}
	return n
}

func startStopTwice(t *testing.T, h Harness) {
	m, _ := h.New(t)
	if err := m.Start(context.Background(), (&Core{}).Deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stop(t, m)
	stop(t, m) // the contract: safe when called twice
}

// startAgainAfterStop: the core may call Start again after Stop (a
// failed start is retried; an operator's restart). The second run must
// receive and send like the first.
func startAgainAfterStop(t *testing.T, h Harness) {
	m, net := h.New(t)
	first := &Core{}
	start(t, m, first)
	says(t, net, first, 0, "first run hello")
	stop(t, m)
	second := &Core{}
	start(t, m, second)
	chat := says(t, net, second, 0, "second run hello")
	if err := send(m, chat, "again-1", "second-run-marker"); err != nil {
		t.Fatalf("Send in the second run: %v", err)
	}
	deliveredOnce(t, net, chat, "second-run-marker")
	// A redelivery of the first run's message is allowed (at least
	// once), under the same id only, so that the core drops it.
	firstID := first.Accepted()[0].ID
	for _, in := range second.Calls() {
		if in.Text == "first run hello" && in.ID != firstID {
			t.Fatalf("the first run's message came again in the second under another id %q", in.ID)
		}
	}
}

// receivesOnlyInReceive: an exclusive receiver's Start must not receive
// (on a replica that does not hold the lease, it would take the bot's one
// connection from the replica that does), while Send works at once. What
// a user writes while no Receive runs comes through the next Receive, as
// on a takeover: by the network's redelivery, or by the adapter's
// backfill from its checkpoint. Others skip.
func receivesOnlyInReceive(t *testing.T, h Harness) {
	m, net := h.New(t)
	rx, ok := m.(core.ExclusiveReceiver)
	if !ok || !rx.Exclusive() {
		t.Skip("not an exclusive receiver")
	}
	c := &Core{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx, c.Deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(t, m) })
	standingBy := func(text string) string {
		t.Helper()
		chat, _ := net.UserSays(t, 0, text)
		time.Sleep(300 * time.Millisecond)
		if slices.Contains(c.Texts(), text) {
			t.Fatalf("%q was delivered while no Receive ran: Start must not receive", text)
		}
		return chat
	}
	chat := standingBy("before the first receive")
	if err := send(m, chat, "standby-1", "sent while standing by"); err != nil {
		t.Fatalf("Send before Receive: %v; a standby replica must send", err)
	}
	deliveredOnce(t, net, chat, "sent while standing by")

	receive(rx, c.Deliver)
	says(t, net, c, 0, "while receiving")
	endReceive(t, m)
	standingBy("while another replica receives")
	receive(rx, c.Deliver)
	eventually(t, "the message written between two Receives delivered by the second", func() bool {
		return slices.Contains(c.Texts(), "while another replica receives")
	})
}

func sendBeforeStart(t *testing.T, h Harness) {
	m, _ := h.New(t)
	err := send(m, "1", "x", "too early")
	if err == nil {
		t.Fatal("Send before Start returned nil: a message would be marked delivered without going anywhere")
	}
	stop(t, m) // Stop without Start is safe too
}

// healthBeforeStart: a HealthChecker's probe works before Start, on the
// credentials alone: `switchboard check --online` calls it so.
func healthBeforeStart(t *testing.T, h Harness) {
	m, _ := h.New(t)
	hc, ok := m.(core.HealthChecker)
	if !ok {
		t.Skip("not a core.HealthChecker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hc.CheckHealth(ctx); err != nil {
		t.Fatalf("CheckHealth before Start = %v, want nil: check --online would report a working instance as failing", err)
	}
	stop(t, m) // the probe left nothing that Stop must end
}

// sendAfterStop: after Stop, Send to a chat that exists must fail as not
// connected, never as permanent: the core would dead-letter every reply
// that arrives while an instance restarts.
func sendAfterStop(t *testing.T, h Harness) {
	m, net := h.New(t)
	c := &Core{}
	start(t, m, c)
	chat := says(t, net, c, 0, "before stop")
	stop(t, m)
	err := send(m, chat, "late-1", "too late")
	if err == nil {
		t.Fatal("Send after Stop returned nil: the message would be marked delivered without going anywhere")
	}
	if !errors.Is(err, core.ErrNotConnected) || core.IsPermanent(err) {
		t.Fatalf("Send after Stop = %v; want an error wrapping core.ErrNotConnected, not a permanent one", err)
	}
	if n := count(net.Delivered(t, chat), "too late"); n != 0 {
		t.Fatal("the network received a message sent after Stop")
	}
}

func stopAfterFailedStart(t *testing.T, h Harness) {
	m := h.NewBroken(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx, (&Core{}).Deliver); err == nil {
		t.Fatal("Start of a broken messenger returned nil")
	}
	stop(t, m)
	stop(t, m)
}

func deliverAndAck(t *testing.T, h Harness) {
	c := &Core{}
	_, net := started(t, h, c)
	chat := says(t, net, c, 0, "conformance hello")
	got := c.Accepted()[0]
	if got.ChatID != chat {
		t.Fatalf("Inbound.ChatID = %q, want the native chat %q", got.ChatID, chat)
	}
	if err := core.CheckNativeID(got.ChatID); err != nil {
		t.Fatalf("Inbound.ChatID %q: %v", got.ChatID, err)
	}
	if got.ID == "" {
		t.Fatal("Inbound.ID is empty: the core cannot drop a redelivery of this message")
	}
}

// noAckWhenDeliverFails: while the core refuses, the adapter must not
// acknowledge; the network's redelivery goes through once the core
// accepts again, under the same Inbound.ID as every refused attempt, so
// that the core can tell it from a new message.
func noAckWhenDeliverFails(t *testing.T, h Harness) {
	c := &Core{}
	c.FailWith(func(context.Context, int, core.Inbound) error { return errors.New("store unavailable") })
	_, net := started(t, h, c)
	_, acked := net.UserSays(t, 1, "conformance not acked")
	eventually(t, "a first attempt", func() bool { return len(c.Calls()) > 0 })
	// Give the adapter time to (wrongly) acknowledge.
	time.Sleep(300 * time.Millisecond)
	if acked() {
		t.Fatal("the network saw an ack although DeliverFunc failed: the message would be lost")
	}
	if n := len(c.Calls()); n > maxCallsWhileFailing {
		t.Fatalf("%d deliveries in 300 ms while the core refuses: the adapter retries without a backoff (a busy loop)", n)
	}
	c.FailWith(nil)
	eventually(t, "redelivery after the core recovers", func() bool {
		return slices.Contains(c.Texts(), "conformance not acked")
	})
	eventually(t, "the ack", acked)
	sameIDs(t, c, "conformance not acked")
}

// maxCallsWhileFailing bounds the DeliverFunc calls for one message in
// 300 ms of refusals: a backoff of some tens of milliseconds or more
// stays far below it, a busy loop far above.
const maxCallsWhileFailing = 30

// sameIDs checks that every call of DeliverFunc with text carried the id
// of the one the core accepted.
func sameIDs(t *testing.T, c *Core, text string) {
	t.Helper()
	var id string
	for _, m := range c.Accepted() {
		if m.Text == text {
			id = m.ID
		}
	}
	for _, m := range c.Calls() {
		if m.Text == text && m.ID != id {
			t.Fatalf("Inbound.ID changed between deliveries of one message: %q and %q; the core would queue it twice", m.ID, id)
		}
	}
}

// retriedInProcess: a network that never redelivers leaves it to the
// adapter: it must retry until the core accepts, with the same id.
func retriedInProcess(t *testing.T, h Harness) {
	c := &Core{}
	c.FailWith(func(_ context.Context, call int, _ core.Inbound) error {
		if call < 3 {
			return errors.New("store unavailable")
		}
		return nil
	})
	_, net := started(t, h, c)
	net.UserSays(t, 1, "conformance retried")
	eventually(t, "accepted after three refusals", func() bool { return slices.Contains(c.Texts(), "conformance retried") })
	if n := len(c.Calls()); n < 4 {
		t.Fatalf("%d calls; want the three refusals retried", n)
	}
	sameIDs(t, c, "conformance retried")
}

// backfilledAfterRestart: what a user says while the gateway is down (or
// while its session is broken) reaches the core after the restart, from
// the adapter's checkpoint; what it had already handed over comes again
// only under the same id.
func backfilledAfterRestart(t *testing.T, h Harness) {
	m, net := h.New(t)
	first := &Core{}
	start(t, m, first)
	says(t, net, first, 2, "before the restart")
	stop(t, m)
	net.UserSays(t, 2, "while it was down")
	again := h.Restart(t, m)
	second := &Core{}
	start(t, again, second)
	eventually(t, "the message sent while down, backfilled", func() bool {
		return slices.Contains(second.Texts(), "while it was down")
	})
	for _, in := range second.Calls() {
		if in.Text == "before the restart" && !slices.ContainsFunc(first.Accepted(), func(f core.Inbound) bool { return f.ID == in.ID }) {
			t.Fatalf("a message of the first run came again under another id %q: the core would queue it twice", in.ID)
		}
	}
}

// ownMessagesIgnored: the bot's own messages, echoed by the network, must
// never reach the core (they would be sent to Selarti as the user's, and
// answered: a loop).
func ownMessagesIgnored(t *testing.T, h Harness) {
	c := &Core{}
	_, net := started(t, h, c)
	own, ok := net.(OwnMessages)
	if !ok {
		t.Skip("the network does not echo the bot's own messages (OwnMessages)")
	}
	own.BotSays(t, 5, "own-echo-marker")
	says(t, net, c, 5, "user after the echo")
	for _, text := range c.CallTexts() {
		if strings.Contains(text, "own-echo-marker") {
			t.Fatal("the bot's own message reached DeliverFunc: it would be answered as the user's")
		}
	}
}

func concurrentSend(t *testing.T, h Harness) {
	c := &Core{}
	m, net := started(t, h, c)
	chat := says(t, net, c, 2, "conformance concurrent")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- send(m, chat, fmt.Sprintf("concurrent-%d", i), fmt.Sprintf("marker-%02d", i)) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Send: %v", err)
		}
	}
	eventually(t, "every concurrent message delivered once", func() bool {
		texts := net.Delivered(t, chat)
		for i := range n {
			if count(texts, fmt.Sprintf("marker-%02d", i)) != 1 {
				return false
			}
		}
		return true
	})
}

func cancelledContext(t *testing.T, h Harness) {
	c := &Core{}
	m, net := started(t, h, c)
	chat := says(t, net, c, 3, "conformance cancel")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() {
		done <- m.Send(ctx, core.Outbound{ChatID: chat, ID: "cancelled", Text: "cancelled-marker", From: core.SenderBot})
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Send with a cancelled context returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send ignored a cancelled context")
	}
}

func rateLimit(t *testing.T, h Harness) {
	c := &Core{}
	m, net := started(t, h, c)
	rl, ok := net.(RateLimiter)
	if !ok {
		t.Skip("the network has no rate limit to answer with (RateLimiter)")
	}
	chat := says(t, net, c, 4, "conformance rate limit")
	rl.RateLimitNext(t, 3*time.Second)
	err := send(m, chat, "limited", "limited-marker")
	wait, ok := core.RetryAfter(err)
	if !ok || wait < 3*time.Second {
		t.Fatalf("Send under a rate limit = %v; want a *core.RetryAfterError asking for at least 3s", err)
	}
	if core.IsPermanent(err) {
		t.Fatal("a rate limit reported as permanent: the message would be dead-lettered")
	}
}

func goneChat(t *testing.T, h Harness) {
	c := &Core{}
	m, net := started(t, h, c)
	gc, ok := net.(GoneChats)
	if !ok {
		t.Skip("the network cannot name a gone chat (GoneChats)")
	}
	says(t, net, c, 6, "conformance gone chat") // connected and working
	err := send(m, gc.GoneChat(t), "gone-1", "to nobody")
	if !errors.Is(err, core.ErrUnknownChat) {
		t.Fatalf("Send to a chat that does not exist = %v; want an error wrapping core.ErrUnknownChat", err)
	}
}
