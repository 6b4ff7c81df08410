package engine

import (
	"testing"
	"time"
)

// clock is a settable now for the reconciler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// size is how many chats the reconciler tracks.
func (e *echoReconciler) size() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.chats)
}

func newTestReconciler(window time.Duration) (*echoReconciler, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	e := newEchoReconciler(window)
	e.now = c.now
	return e, c
}

func mustVerdict(t *testing.T, what string, got, want verdict) {
	t.Helper()
	if got != want {
		names := map[verdict]string{sendIt: "send", proven: "proven", awaitIt: "await"}
		t.Fatalf("%s: verdict %s, want %s", what, names[got], names[want])
	}
}

const chatA = "web:a"

func TestReconcilerTimeoutThenEcho(t *testing.T) {
	e, c := newTestReconciler(5 * time.Second)
	v, _ := e.begin(chatA, 1, "hello", false, nil)
	mustVerdict(t, "first attempt", v, sendIt)
	ok, until := e.unknown(chatA, 1)
	if ok || until.Sub(c.now()) != e.pollEvery() {
		t.Fatalf("unknown = %v, %v; want a wait, next look in %s", ok, until.Sub(c.now()), e.pollEvery())
	}
	c.advance(e.pollEvery())
	v, _ = e.begin(chatA, 1, "hello", true, nil)
	mustVerdict(t, "before the echo", v, awaitIt)
	// Waiting, not in flight: the echo settles it at once (the router marks
	// it delivered), without waiting for the next look.
	if id, _ := e.echo(chatA, " hello\n"); id != 1 { // Selarti may trim
		t.Fatalf("echo settles message %d, want 1", id)
	}
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked after a proven delivery = %d, want 0", n)
	}
}

func TestReconcilerTimeoutNoEchoSendsAgain(t *testing.T) {
	e, c := newTestReconciler(5 * time.Second)
	e.begin(chatA, 1, "hello", false, nil)
	e.unknown(chatA, 1)
	for range 3 {
		c.advance(time.Second)
		v, _ := e.begin(chatA, 1, "hello", true, nil)
		mustVerdict(t, "within the window", v, awaitIt)
	}
	c.advance(2 * time.Second)
	v, _ := e.begin(chatA, 1, "hello", true, nil)
	mustVerdict(t, "after the window", v, sendIt)
	e.sent(chatA, 1)
	// Its echo, when it comes, is the resend's: nothing left over.
	e.echo(chatA, "hello")
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked = %d, want 0", n)
	}
}

func TestReconcilerEchoBeforeAnswer(t *testing.T) {
	// The echo may come while the send is still waiting for its 200.
	e, _ := newTestReconciler(5 * time.Second)
	e.begin(chatA, 1, "hello", false, nil)
	if id, _ := e.echo(chatA, "hello"); id != 1 {
		t.Fatalf("an echo during the attempt settles message %d, want 1", id)
	}
	if ok, _ := e.unknown(chatA, 1); !ok {
		t.Fatal("a timeout after the echo came: want proven at once")
	}
	e.begin(chatA, 2, "again", false, nil)
	e.echo(chatA, "again")
	e.sent(chatA, 2)
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked = %d, want 0: the echo came before the answer, none is expected", n)
	}
}

// A late echo of a delivered message with the same text must not prove
// the next one, which did not reach Selarti.
func TestReconcilerRepeatedTextLateEcho(t *testing.T) {
	e, c := newTestReconciler(5 * time.Second)
	e.begin(chatA, 1, "ok", false, nil)
	e.sent(chatA, 1) // delivered; its echo is late
	e.begin(chatA, 2, "ok", false, nil)
	e.unknown(chatA, 2)
	e.echo(chatA, "ok") // message 1's
	c.advance(time.Second)
	v, _ := e.begin(chatA, 2, "ok", true, nil)
	mustVerdict(t, "after the first message's late echo", v, awaitIt)
	if id, _ := e.echo(chatA, "ok"); id != 2 { // message 2's
		t.Fatalf("its own echo settles message %d, want 2", id)
	}
}

func TestReconcilerAfterRestart(t *testing.T) {
	t.Run("echo before the claim", func(t *testing.T) {
		e, _ := newTestReconciler(5 * time.Second)
		e.echo(chatA, "hello") // retried by Selarti into the new process
		v, _ := e.begin(chatA, 7, "hello", true, func() bool { return false })
		mustVerdict(t, "in doubt, spare echo", v, proven)
	})
	t.Run("echo after the claim", func(t *testing.T) {
		e, _ := newTestReconciler(5 * time.Second)
		v, _ := e.begin(chatA, 7, "hello", true, func() bool { return false })
		mustVerdict(t, "in doubt, no echo yet", v, awaitIt)
		if id, _ := e.echo(chatA, "hello"); id != 7 {
			t.Fatalf("echo settles message %d, want 7", id)
		}
	})
	t.Run("ambiguous spare echo", func(t *testing.T) {
		// The chat delivered "hello" just before the crash: the spare echo
		// may be that one's, so the message is sent again (at least once).
		e, _ := newTestReconciler(5 * time.Second)
		e.echo(chatA, "hello")
		v, _ := e.begin(chatA, 7, "hello", true, func() bool { return true })
		mustVerdict(t, "in doubt, ambiguous echo", v, sendIt)
	})
	t.Run("other text", func(t *testing.T) {
		e, c := newTestReconciler(5 * time.Second)
		e.echo(chatA, "something else")
		v, _ := e.begin(chatA, 7, "hello", true, nil)
		mustVerdict(t, "in doubt, another text's echo", v, awaitIt)
		c.advance(6 * time.Second)
		v, _ = e.begin(chatA, 7, "hello", true, nil)
		mustVerdict(t, "after the window", v, sendIt)
	})
}

func TestReconcilerAnsweredFailureExpectsNoEcho(t *testing.T) {
	e, _ := newTestReconciler(5 * time.Second)
	e.begin(chatA, 1, "hello", false, nil)
	e.failed(chatA, 1)
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked after a refused send = %d, want 0", n)
	}
}

func TestReconcilerBoundsAndExpiry(t *testing.T) {
	e, c := newTestReconciler(time.Second)
	// A webhook type without echoes: expected echoes pile up, bounded.
	for i := range int64(100) {
		e.begin(chatA, i, "m", false, nil)
		e.sent(chatA, i)
	}
	if n := len(e.chats[chatA].expected); n != maxExpectedEchoes {
		t.Errorf("expected echoes = %d, want the bound %d", n, maxExpectedEchoes)
	}
	for range 20 {
		e.echo("web:b", "unclaimed")
	}
	if n := len(e.chats["web:b"].spare); n != maxSpareEchoes {
		t.Errorf("spare echoes = %d, want the bound %d", n, maxSpareEchoes)
	}
	c.advance(e.expectFor)
	e.sweep()
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked after expiry = %d, want 0", n)
	}
}

// The echo of a message Selarti answered 2xx for settles it in the store
// unless the store has it delivered already.
func TestReconcilerEchoOfUnrecordedDelivery(t *testing.T) {
	e, _ := newTestReconciler(5 * time.Second)
	e.begin(chatA, 1, "one", false, nil)
	e.sent(chatA, 1)
	e.begin(chatA, 2, "two", false, nil)
	e.sent(chatA, 2)
	e.recorded(chatA, 2)
	if id, _ := e.echo(chatA, "one"); id != 1 {
		t.Errorf("echo of a delivery not yet recorded settles %d, want 1", id)
	}
	if id, _ := e.echo(chatA, "two"); id != 0 {
		t.Errorf("echo of a recorded delivery settles %d, want none", id)
	}
	if n := e.size(); n != 0 {
		t.Errorf("chats tracked = %d, want 0", n)
	}
}
