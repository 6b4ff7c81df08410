// Package messengertest is the conformance suite of the core.Messenger
// contract. Every adapter runs it against its own fake network, the way
// database/sql's drivers are exercised through the real database/sql path:
//
//	func TestConformance(t *testing.T) {
//		messengertest.Run(t, messengertest.Harness{New: ..., UserSays: ..., ...})
//	}
//
// It checks the rules written in core/messenger.go that hold for every
// network: the lifecycle (Start, Stop, Stop twice, Stop after a failed
// Start, Send before Start), concurrent Send under -race, no
// acknowledgement when DeliverFunc fails, a cancelled context honoured,
// and a rate limit reported as *core.RetryAfterError.
package messengertest

import (
	"context"
	"errors"
	"fmt"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// Harness connects the suite to one adapter and its fake network. New,
// UserSays and Delivered are required; the rest enable more checks.
type Harness struct {
	// New builds a fresh Messenger, not started, against the fake network.
	New func(t *testing.T) core.Messenger
	// NewBroken builds a Messenger whose Start fails (the fake refuses
	// its token, say). Optional.
	NewBroken func(t *testing.T) core.Messenger
	// UserSays makes the fake network hand the started Messenger m one
	// user message, from a native chat it picks (the same chat for the
	// same user index), and returns that chat and a function that reports
	// whether the network has seen the message acknowledged.
	UserSays func(t *testing.T, m core.Messenger, user int, text string) (chat string, acked func() bool)
	// Delivered returns the texts the fake network received for chat, in
	// order. Texts may be formatted by the adapter; the suite only looks
	// for its own plain markers inside them.
	Delivered func(t *testing.T, chat string) []string
	// RateLimitNext makes the fake network answer the next send with a
	// rate limit asking to wait d. Optional.
	RateLimitNext func(t *testing.T, d time.Duration)
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.UserSays == nil || h.Delivered == nil {
		t.Fatal("messengertest: Harness needs New, UserSays and Delivered")
	}
	t.Run("StartStopTwice", func(t *testing.T) { startStopTwice(t, h) })
	t.Run("SendBeforeStart", func(t *testing.T) { sendBeforeStart(t, h) })
	t.Run("StopAfterFailedStart", func(t *testing.T) {
		if h.NewBroken == nil {
			t.Skip("harness has no NewBroken")
		}
		stopAfterFailedStart(t, h)
	})
	t.Run("DeliverAndAck", func(t *testing.T) { deliverAndAck(t, h) })
	t.Run("NoAckWhenDeliverFails", func(t *testing.T) { noAckWhenDeliverFails(t, h) })
	t.Run("ConcurrentSend", func(t *testing.T) { concurrentSend(t, h) })
	t.Run("CancelledContext", func(t *testing.T) { cancelledContext(t, h) })
	t.Run("RateLimitIsRetryAfter", func(t *testing.T) {
		if h.RateLimitNext == nil {
			t.Skip("harness has no RateLimitNext")
		}
		rateLimit(t, h)
	})
}

// recorder is a DeliverFunc that records, and fails while fail is set.
type recorder struct {
	mu   sync.Mutex
	got  []core.Inbound
	fail error
}

func (r *recorder) deliver(_ context.Context, m core.Inbound) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.got = append(r.got, m)
	return nil
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.got {
		out = append(out, m.Text)
	}
	return out
}

func start(t *testing.T, h Harness, rec *recorder) core.Messenger {
	t.Helper()
	m := h.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx, rec.deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { stop(t, m) })
	return m
}

func stop(t *testing.T, m core.Messenger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

// eventually polls cond for up to 10 s.
var eventually = testutil.Eventually

func startStopTwice(t *testing.T, h Harness) {
	m := h.New(t)
	if err := m.Start(context.Background(), (&recorder{}).deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	stop(t, m)
	stop(t, m) // the contract: safe when called twice
}

func sendBeforeStart(t *testing.T, h Harness) {
	m := h.New(t)
	err := m.Send(context.Background(), core.Outbound{ChatID: "1", ID: "x", Text: "too early", From: core.SenderBot})
	if err == nil {
		t.Fatal("Send before Start returned nil: a message would be marked delivered without going anywhere")
	}
	stop(t, m) // Stop without Start is safe too
}

func stopAfterFailedStart(t *testing.T, h Harness) {
	m := h.NewBroken(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Start(ctx, (&recorder{}).deliver); err == nil {
		t.Fatal("Start of a broken messenger returned nil")
	}
	stop(t, m)
	stop(t, m)
}

func deliverAndAck(t *testing.T, h Harness) {
	rec := &recorder{}
	m := start(t, h, rec)
	chat, acked := h.UserSays(t, m, 0, "conformance hello")
	eventually(t, "the message handed to DeliverFunc", func() bool { return slices.Contains(rec.texts(), "conformance hello") })
	eventually(t, "the network to see the ack", acked)
	rec.mu.Lock()
	got := rec.got[0]
	rec.mu.Unlock()
	if got.ChatID != chat {
		t.Fatalf("Inbound.ChatID = %q, want the native chat %q", got.ChatID, chat)
	}
}

func noAckWhenDeliverFails(t *testing.T, h Harness) {
	rec := &recorder{fail: errors.New("store unavailable")}
	m := start(t, h, rec)
	_, acked := h.UserSays(t, m, 1, "conformance not acked")
	// Give the adapter time to (wrongly) acknowledge.
	time.Sleep(300 * time.Millisecond)
	if acked() {
		t.Fatal("the network saw an ack although DeliverFunc failed: the message would be lost")
	}
	// Once the core accepts again, the network's redelivery goes through.
	rec.mu.Lock()
	rec.fail = nil
	rec.mu.Unlock()
	eventually(t, "redelivery after the core recovers", func() bool {
		return slices.Contains(rec.texts(), "conformance not acked")
	})
}

func concurrentSend(t *testing.T, h Harness) {
	rec := &recorder{}
	m := start(t, h, rec)
	chat, acked := h.UserSays(t, m, 2, "conformance concurrent")
	eventually(t, "ack", acked)
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			errs <- m.Send(ctx, core.Outbound{ChatID: chat, ID: fmt.Sprintf("concurrent-%d", i), Text: fmt.Sprintf("marker-%02d", i), From: core.SenderBot})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent Send: %v", err)
		}
	}
	eventually(t, "every concurrent message delivered", func() bool {
		found := 0
		for _, text := range h.Delivered(t, chat) {
			for i := range n {
				if strings.Contains(text, fmt.Sprintf("marker-%02d", i)) {
					found++
				}
			}
		}
		return found == n
	})
}

func cancelledContext(t *testing.T, h Harness) {
	rec := &recorder{}
	m := start(t, h, rec)
	chat, acked := h.UserSays(t, m, 3, "conformance cancel")
	eventually(t, "ack", acked)
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
	rec := &recorder{}
	m := start(t, h, rec)
	chat, acked := h.UserSays(t, m, 4, "conformance rate limit")
	eventually(t, "ack", acked)
	h.RateLimitNext(t, 3*time.Second)
	err := m.Send(context.Background(), core.Outbound{ChatID: chat, ID: "limited", Text: "limited-marker", From: core.SenderBot})
	wait, ok := core.RetryAfter(err)
	if !ok || wait < 3*time.Second {
		t.Fatalf("Send under a rate limit = %v; want a *core.RetryAfterError asking for at least 3s", err)
	}
	if core.IsPermanent(err) {
		t.Fatal("a rate limit reported as permanent: the message would be dead-lettered")
	}
}
