package webchat

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// newReplica builds a webchat instance named "web" on j, the journals of
// a shared store: several built on handles of one store's journals are
// the replicas of one gateway instance. It has a data directory too,
// which it must not use.
func newReplica(t testing.TB, raw core.RawConfig, j core.Journals) (*Adapter, *messengertest.Logs) {
	t.Helper()
	inst, logs := messengertest.Instance(t, Kind, raw)
	inst.Name, inst.Journals = "web", j
	m, err := New(inst)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m.(*Adapter), logs
}

// startReplicas starts two replicas of one webchat instance on one shared
// store, each with its own core and its own listener.
func startReplicas(t *testing.T, raw core.RawConfig) (a, b *testServer) {
	t.Helper()
	ja, jb := newTestJournals(t)
	ra, _ := newReplica(t, raw, ja)
	rb, _ := newReplica(t, raw, jb)
	return startServer(t, ra), startServer(t, rb)
}

// sendOn is ts.a.Send of a bot message with Selarti's id outID.
func sendOn(t *testing.T, ts *testServer, session, outID, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ts.a.Send(ctx, core.Outbound{ChatID: session, ID: outID, Text: text, From: core.SenderBot}); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// expectEntry reads the next frame and checks that it is a message with
// seq and text.
func (tb *tab) expectEntry(seq int64, text string) frame {
	tb.t.Helper()
	f := tb.next()
	if f.Type != typeMessage || f.Seq != seq || f.Text != text {
		tb.t.Fatalf("got %+v, want message %q with seq %d", f, text, seq)
	}
	return f
}

func TestReplicaUsesTheSharedStore(t *testing.T) {
	j, _ := newTestJournals(t)
	a, logs := newReplica(t, nil, j)
	ts := startServer(t, a)
	tb, w := ts.connect(t, "", 0)
	tb.message("c-1", "hi")
	tb.expect(typeMessage)
	tb.expect(typeAck)
	if h, ok, err := j.Head(context.Background(), w.Session); err != nil || !ok || h.Epoch != w.Epoch || h.LastSeq != 1 {
		t.Fatalf("journal head = %+v, %v, %v; want the session with epoch %s and last seq 1", h, ok, err, w.Epoch)
	}
	if _, err := os.Stat(filepath.Join(a.dataDir, mailboxFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat %s = %v: the file mailbox was opened", mailboxFile, err)
	}
	if !logs.Contains(`"sessions":"shared store"`) {
		t.Fatalf("the start log does not say where the sessions are: %s", logs.String())
	}
	// No data directory is needed then.
	inst, _ := messengertest.Instance(t, Kind, nil)
	inst.DataDir, inst.Journals = "", j
	m, err := New(inst)
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, m.(*Adapter))
}

// TestReplicaSendReachesOtherReplicasTab: a browser is connected to
// replica A; the replies Selarti's webhook brings to replica B reach it
// at once, in order, once each.
func TestReplicaSendReachesOtherReplicasTab(t *testing.T) {
	a, b := startReplicas(t, nil)
	tb, w := a.connect(t, "", 0)
	for i := int64(1); i <= 3; i++ {
		sendOn(t, b, w.Session, fmt.Sprint("sel-", i), fmt.Sprint("reply ", i))
		if f := tb.expectEntry(i, fmt.Sprint("reply ", i)); f.From != fromBot || f.HTML == "" {
			t.Fatalf("got %+v, want a bot message with its html", f)
		}
	}
	// A redelivery through B is not stored again, and A's own Send
	// carries on after B's seqs: the next frame is seq 4.
	sendOn(t, b, w.Session, "sel-2", "reply 2")
	sendOn(t, a, w.Session, "sel-4", "from A")
	tb.expectEntry(4, "from A")
	// The user's own messages too: a second tab on B sees what the tab on
	// A says, and the other way round.
	tb2 := b.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 4, "epoch": w.Epoch})
	if w2 := tb2.expect(typeWelcome); w2.Epoch != w.Epoch || w2.LastSeq != 4 {
		t.Fatalf("welcome on B = %+v, want epoch %s, last seq 4", w2, w.Epoch)
	}
	tb.message("c-1", "question on A")
	tb.expectEntry(5, "question on A")
	tb.expect(typeAck)
	if f := tb2.expectEntry(5, "question on A"); f.ID != "c-1" || f.From != fromUser {
		t.Fatalf("on B: %+v, want the user's c-1", f)
	}
	tb2.message("c-2", "question on B")
	tb2.expectEntry(6, "question on B")
	tb2.expect(typeAck)
	tb.expectEntry(6, "question on B")
	sendOn(t, b, w.Session, "sel-5", "last")
	tb.expectEntry(7, "last")
	tb2.expectEntry(7, "last")
}

// TestReplicaReconnectToOtherReplica: what a tab said and was shown on
// replica A is replayed by replica B, with the same epoch and seqs.
func TestReplicaReconnectToOtherReplica(t *testing.T) {
	a, b := startReplicas(t, nil)
	tb, w := a.connect(t, "", 0)
	tb.message("c-1", "question")
	tb.expectEntry(1, "question")
	if f := tb.expect(typeAck); f.Seq != 1 {
		t.Fatalf("ack %+v, want seq 1", f)
	}
	sendOn(t, a, w.Session, "sel-1", "answer")
	tb.expectEntry(2, "answer")
	_ = tb.ws.Close(websocket.StatusNormalClosure, "")

	tb2 := b.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 0, "epoch": w.Epoch})
	if w2 := tb2.expect(typeWelcome); w2.Session != w.Session || w2.Epoch != w.Epoch || w2.LastSeq != 2 {
		t.Fatalf("welcome on B = %+v, want session %s, epoch %s, last seq 2", w2, w.Session, w.Epoch)
	}
	if f := tb2.expectEntry(1, "question"); f.From != fromUser || f.ID != "c-1" {
		t.Fatalf("replay %+v, want the user's c-1", f)
	}
	if f := tb2.expectEntry(2, "answer"); f.From != fromBot {
		t.Fatalf("replay %+v, want the bot's answer", f)
	}
	// Only what it missed, for a tab that saw some.
	tb3 := b.dial(t, "")
	tb3.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 1, "epoch": w.Epoch})
	tb3.expect(typeWelcome)
	tb3.expectEntry(2, "answer")
	sendOn(t, b, w.Session, "sel-2", "more")
	tb3.expectEntry(3, "more")
	tb2.expectEntry(3, "more")
}

// TestReplicaWelcomeAfterOtherReplicaAppended: a session replica A holds
// in memory without tabs is behind once B appends (notices are for
// sessions with tabs); a tab connecting to A gets the store's epoch and
// last seq, and exactly what it missed.
func TestReplicaWelcomeAfterOtherReplicaAppended(t *testing.T) {
	a, b := startReplicas(t, nil)
	tb, w := a.connect(t, "", 0)
	sendOn(t, a, w.Session, "sel-1", "one")
	tb.expectEntry(1, "one")
	_ = tb.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the tab to detach", func() bool { return a.a.connsOf(w.Session) == 0 })
	if !a.a.hasSession(w.Session) {
		t.Fatal("A dropped the session from memory: the test needs it cached")
	}
	sendOn(t, b, w.Session, "sel-2", "two")
	sendOn(t, b, w.Session, "sel-3", "three")

	tb2 := a.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 1, "epoch": w.Epoch})
	if w2 := tb2.expect(typeWelcome); w2.Epoch != w.Epoch || w2.LastSeq != 3 {
		t.Fatalf("welcome on A = %+v, want epoch %s and the store's last seq 3", w2, w.Epoch)
	}
	tb2.expectEntry(2, "two")
	tb2.expectEntry(3, "three")
	// A browser that saw seq 3 on B is not reset.
	tb3 := a.dial(t, "")
	tb3.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 3, "epoch": w.Epoch})
	if w3 := tb3.expect(typeWelcome); w3.LastSeq != 3 {
		t.Fatalf("welcome = %+v, want last seq 3", w3)
	}
	sendOn(t, a, w.Session, "sel-4", "four")
	tb3.expectEntry(4, "four")
	tb2.expectEntry(4, "four")
}

// TestReplicaResendToOtherReplica: a message the client re-sends to
// replica B after A stored it (its ack was lost) is acknowledged with its
// seq, and neither delivered to the core again nor shown twice. B holds
// the session in memory from before A stored the message: what B knows
// of the session's user messages is not the store's.
func TestReplicaResendToOtherReplica(t *testing.T) {
	a, b := startReplicas(t, nil)
	onB, w := b.connect(t, "", 0) // B creates the session
	onA := a.dial(t, "")
	onA.send(map[string]any{"type": "hello", "session": w.Session, "epoch": w.Epoch})
	onA.expect(typeWelcome)
	onA.message("c-1", "question")
	onA.expectEntry(1, "question")
	onA.expect(typeAck)
	onB.expectEntry(1, "question")
	if n := len(a.core.Answered()); n != 1 {
		t.Fatalf("A delivered %d messages, want 1", n)
	}
	onB.message("c-1", "question")
	if f := onB.expect(typeAck); f.ID != "c-1" || f.Seq != 1 {
		t.Fatalf("got %+v, want the ack of c-1 with its seq 1", f)
	}
	if n := len(b.core.Calls()); n != 0 {
		t.Fatalf("B delivered the re-sent message to its core (%d calls), want none", n)
	}
	// Shown once: the next frames are the next entry.
	sendOn(t, b, w.Session, "sel-1", "answer")
	onA.expectEntry(2, "answer")
	onB.expectEntry(2, "answer")
	// And from a tab that connects to B afterwards.
	onB2 := b.dial(t, "")
	onB2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 2, "epoch": w.Epoch})
	onB2.expect(typeWelcome)
	onB2.message("c-1", "question")
	if f := onB2.expect(typeAck); f.Seq != 1 {
		t.Fatalf("got %+v, want the ack of c-1 with seq 1", f)
	}
	if n := len(b.core.Calls()) + len(a.core.Calls()); n != 1 {
		t.Fatalf("%d deliveries in all, want 1", n)
	}
}

// TestReplicaDialogEventsReachOtherReplica: the operator and closed notes
// stored through replica B are shown on a tab connected to A.
func TestReplicaDialogEventsReachOtherReplica(t *testing.T) {
	a, b := startReplicas(t, nil)
	tb, w := a.connect(t, "", 0)
	ctx := context.Background()
	if err := b.a.DialogChanged(ctx, core.DialogEvent{ChatID: w.Session, Current: core.DialogState{Operator: true}}); err != nil {
		t.Fatal(err)
	}
	if f := tb.expect(typeEvent); f.Seq != 1 || !f.Operator || f.Closed {
		t.Fatalf("got %+v, want the operator event with seq 1", f)
	}
	if err := b.a.DialogChanged(ctx, core.DialogEvent{ChatID: w.Session, Previous: core.DialogState{Operator: true}, Current: core.DialogState{Operator: true, Closed: true}}); err != nil {
		t.Fatal(err)
	}
	if f := tb.expect(typeEvent); f.Seq != 2 || !f.Operator || !f.Closed {
		t.Fatalf("got %+v, want the closed event with seq 2", f)
	}
	// A session no replica stored gets none.
	unknown := newSessionID()
	if err := b.a.DialogChanged(ctx, core.DialogEvent{ChatID: unknown, Current: core.DialogState{Closed: true}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.a.stored(t, unknown); ok {
		t.Fatal("DialogChanged created a session")
	}
}

// TestReplicaConcurrentSends: replies sent through both replicas at once
// reach a tab on A once each, in seq order, with no seq skipped.
func TestReplicaConcurrentSends(t *testing.T) {
	a, b := startReplicas(t, nil)
	tb, w := a.connect(t, "", 0)
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			ts := []*testServer{a, b}[i%2]
			errs <- ts.a.Send(context.Background(), core.Outbound{ChatID: w.Session, ID: fmt.Sprint("sel-", i), Text: fmt.Sprint("m", i), From: core.SenderBot})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for seq := int64(1); seq <= n; seq++ {
		f := tb.expect(typeMessage)
		if f.Seq != seq || seen[f.Text] {
			t.Fatalf("frame %+v, want seq %d and a text not seen yet", f, seq)
		}
		seen[f.Text] = true
	}
	sendOn(t, a, w.Session, "sel-last", "last")
	tb.expectEntry(n+1, "last")
}

// deafWatch is journals whose first Watch tells nothing, and fails once
// fail is closed: a replica that lost its connection to the store.
type deafWatch struct {
	core.Journals
	fail  chan struct{}
	calls atomic.Int32
}

func (d *deafWatch) Watch(ctx context.Context, fn func(string, int64)) error {
	if d.calls.Add(1) == 1 {
		select {
		case <-d.fail:
			return errors.New("connection to the store lost")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d.Journals.Watch(ctx, fn)
}

// TestReplicaWatchFailureResyncs: the appends made while replica A's
// Watch was failing are shown on its tabs once it watches again, and the
// watch goes on.
func TestReplicaWatchFailureResyncs(t *testing.T) {
	ja, jb := newTestJournals(t)
	deaf := &deafWatch{Journals: ja, fail: make(chan struct{})}
	ra, logs := newReplica(t, nil, deaf)
	rb, _ := newReplica(t, nil, jb)
	a, b := startServer(t, ra), startServer(t, rb)
	tb, w := a.connect(t, "", 0)
	// After the check that follows the first Watch call: only the one
	// after the failure can catch this up.
	time.Sleep(watchResyncAfter + 200*time.Millisecond)
	sendOn(t, b, w.Session, "sel-1", "while deaf")
	close(deaf.fail)
	tb.expectEntry(1, "while deaf")
	sendOn(t, b, w.Session, "sel-2", "watched again")
	tb.expectEntry(2, "watched again")
	if deaf.calls.Load() < 2 || !logs.Contains("watch the shared sessions") {
		t.Fatalf("Watch called %d times, and the failure not logged", deaf.calls.Load())
	}
}
