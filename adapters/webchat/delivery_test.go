package webchat

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// statusFrame fields beyond helpers_test.go's frame.
type statusTestFrame struct {
	frame
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
	RetryAt  string `json:"retry_at"`
}

// expectStatus reads the next frame and checks it is the status of id.
func (tb *tab) expectStatus(id, state, reason string) statusTestFrame {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, b, err := tb.ws.Read(ctx)
	if err != nil {
		tb.t.Fatalf("read frame: %v", err)
	}
	var f statusTestFrame
	if err := json.Unmarshal(b, &f); err != nil {
		tb.t.Fatal(err)
	}
	if f.Type != typeStatus || f.ID != id || f.State != state || f.Reason != reason {
		tb.t.Fatalf("got frame %s, want status of %s: %s %s", b, id, state, reason)
	}
	return f
}

func changed(t *testing.T, a *Adapter, ev core.DeliveryEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.DeliveryChanged(ctx, ev); err != nil {
		t.Fatalf("DeliveryChanged(%+v): %v", ev, err)
	}
}

// TestDeliveryStatusFrames: what the core reports of a user's message
// reaches every tab as a status frame, in the history's order, a repeat
// of the same state and reason is not stored again, and a reload replays
// the statuses after their message.
func TestDeliveryStatusFrames(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	other, _ := ts.connect(t, w.Session, 0)
	tb.message("c-1", "hello")
	tb.expect(typeMessage)
	tb.expect(typeAck)
	other.expect(typeMessage)
	id := inboundID(w.Session, "c-1")

	retryAt := time.Now().Add(time.Second)
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: id, State: core.DeliveryDelayed, Reason: core.ReasonThrottled, Attempts: 1, RetryAt: retryAt})
	f := tb.expectStatus("c-1", "delayed", "throttled")
	if f.Seq != 2 || f.Attempts != 1 || f.RetryAt != formatTS(retryAt) {
		t.Fatalf("status frame %+v: want seq 2, 1 attempt, retry_at %s", f, formatTS(retryAt))
	}
	other.expectStatus("c-1", "delayed", "throttled")

	// Another attempt failed for the same reason: nothing new to show.
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: id, State: core.DeliveryDelayed, Reason: core.ReasonThrottled, Attempts: 2})
	// A new reason is.
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: id, State: core.DeliveryDelayed, Reason: core.ReasonUnreachable, Attempts: 3})
	if f := tb.expectStatus("c-1", "delayed", "unreachable"); f.Seq != 3 {
		t.Fatalf("second status has seq %d, want 3 (the repeat is not stored)", f.Seq)
	}
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: id, State: core.DeliveryFailed, Reason: core.ReasonUnreachable, Attempts: 4})
	if f := tb.expectStatus("c-1", "failed", "unreachable"); f.Seq != 4 || f.RetryAt != "" {
		t.Fatalf("failed status %+v: want seq 4 and no retry_at", f)
	}

	// A reload replays them after the message.
	re, _ := ts.connect(t, w.Session, 0)
	if m := re.expect(typeMessage); m.ID != "c-1" || m.Seq != 1 {
		t.Fatalf("replay starts with %+v, want message c-1", m)
	}
	re.expectStatus("c-1", "delayed", "throttled")
	re.expectStatus("c-1", "delayed", "unreachable")
	re.expectStatus("c-1", "failed", "unreachable")

	// Delivered after all (a retry): shown, without a reason.
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: id, State: core.DeliveryDelivered, Reason: core.ReasonUnreachable, Attempts: 4})
	re.expectStatus("c-1", "delivered", "")
}

// TestDeliveryStatusOfAnotherChatIsRefused: a report whose id was not
// made for its chat (another session's digest) shows nothing anywhere.
func TestDeliveryStatusOfAnotherChatIsRefused(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	a, wa := ts.connect(t, "", 0)
	_, wb := ts.connect(t, "", 0)
	ctx := context.Background()
	for _, id := range []string{inboundID(wb.Session, "c-1"), "c-1", "", wa.Session + "/c-1"} {
		if err := ts.a.DeliveryChanged(ctx, core.DeliveryEvent{ChatID: wa.Session, ID: id, State: core.DeliveryFailed}); err == nil {
			t.Errorf("DeliveryChanged with id %q in chat A: nil error", id)
		}
	}
	if err := ts.a.DeliveryChanged(ctx, core.DeliveryEvent{ChatID: wa.Session, ID: inboundID(wa.Session, "c-1"), State: "lost"}); err == nil {
		t.Errorf("DeliveryChanged with an unknown state: nil error")
	}
	ts.send(t, wa.Session, "barrier")
	if f := a.expect(typeMessage); f.Text != "barrier" || f.Seq != 1 {
		t.Fatalf("next frame = %+v, want the barrier with seq 1", f)
	}
}

// TestRetryOfUndeliveredMessage: the page's Retry re-sends the message
// with retry set; the core gets the handover again with Inbound.Retry
// (it revives the dead letter), and the history keeps one copy. A plain
// re-send of the same id is only acknowledged again.
func TestRetryOfUndeliveredMessage(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	tb.message("c-1", "hello")
	tb.expect(typeMessage)
	tb.expect(typeAck)
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: inboundID(w.Session, "c-1"), State: core.DeliveryFailed, Reason: core.ReasonUnreachable})
	tb.expectStatus("c-1", "failed", "unreachable")

	tb.message("c-1", "hello") // a re-send after a lost ack: no delivery
	if f := tb.expect(typeAck); f.Seq != 1 {
		t.Fatalf("plain re-send: %+v, want the ack of seq 1", f)
	}
	if n := len(ts.core.Calls()); n != 1 {
		t.Fatalf("core called %d times after a plain re-send, want 1", n)
	}

	tb.send(map[string]any{"type": "message", "id": "c-1", "text": "hello", "retry": true})
	if f := tb.expect(typeAck); f.ID != "c-1" || f.Seq != 1 {
		t.Fatalf("retry answered %+v, want the ack of c-1 with seq 1", f)
	}
	calls := ts.core.Calls()
	if len(calls) != 2 || !calls[1].Retry || calls[1].ID != inboundID(w.Session, "c-1") || calls[1].Text != "hello" || calls[0].Retry {
		t.Fatalf("core calls %+v: want the message, then its retry with Retry set", calls)
	}
	ts.send(t, w.Session, "barrier")
	if f := tb.expect(typeMessage); f.Text != "barrier" || f.Seq != 3 {
		t.Fatalf("next frame = %+v, want the barrier with seq 3 (no second copy of c-1)", f)
	}
	// It fails again, for the same reason: that is news after a retry.
	changed(t, ts.a, core.DeliveryEvent{ChatID: w.Session, ID: inboundID(w.Session, "c-1"), State: core.DeliveryFailed, Reason: core.ReasonUnreachable})
	if f := tb.expectStatus("c-1", "failed", "unreachable"); f.Seq != 4 {
		t.Fatalf("failure after the retry has seq %d, want 4", f.Seq)
	}

	// A retry the core cannot take now is refused as retryable, and
	// costs no rate.
	ts.core.FailWith(func(context.Context, int, core.Inbound) error { return errDown })
	tb.send(map[string]any{"type": "message", "id": "c-1", "retry": true})
	if f := tb.expect(typeError); f.ID != "c-1" || f.Code != codeDeliverFailed || !f.Retry {
		t.Fatalf("failed retry answered %+v, want a retryable deliver error", f)
	}
	if c := ts.core.Calls(); len(c) != 3 || !c[2].Retry {
		t.Fatalf("core calls %+v: want a third, with Retry", c)
	}
}

// TestDeliveryStatusInSharedStore: with replicas, a status written on one
// replica is replayed from the journals like any entry.
func TestDeliveryStatusInSharedStore(t *testing.T) {
	ctx := context.Background()
	ja, jb := newTestJournals(t)
	ssA, ssB := newSharedSessions(t, ja, 10, 100), newSharedSessions(t, jb, 10, 100)
	now := time.Now()
	c := testClient()
	if err := ssA.attach(ctx, "s", "", c, 0, "", now); err != nil {
		t.Fatal(err)
	}
	if ok, err := ssB.appendStatus(ctx, "s", deliveryStatus{ID: "c-1", State: "failed", Reason: "refused"}, now); err != nil || !ok {
		t.Fatalf("appendStatus: %v, %v", ok, err)
	}
	h, err := ssA.mb.history(ctx, "s", 0)
	if err != nil || len(h) != 1 {
		t.Fatalf("history %+v, %v: want the status", h, err)
	}
	got := string(h[0].frame())
	want := fmt.Sprintf(`{"type":"status","seq":1,"id":"c-1","state":"failed","reason":"refused","ts":%q}`, formatTS(now))
	if got != want {
		t.Fatalf("replayed frame %s, want %s", got, want)
	}
}
