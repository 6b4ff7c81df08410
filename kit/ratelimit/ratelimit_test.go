package ratelimit

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestAllowPerKey(t *testing.T) {
	l := New(Options[string]{PerKey: func(string) (rate.Limit, int) { return rate.Every(time.Hour), 2 }})
	for i := range 2 {
		if !l.Allow("a") {
			t.Fatalf("message %d of a burst of 2 refused", i+1)
		}
	}
	if l.Allow("a") {
		t.Fatal("third message of a burst of 2 allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key was limited by the first one's bucket")
	}
}

func TestAllowRefusalTakesNothing(t *testing.T) {
	// The overall bucket refuses: the key's token must be given back, or
	// a key would be charged for messages that were never sent.
	l := New(Options[string]{
		PerKey: func(string) (rate.Limit, int) { return rate.Every(time.Hour), 1 },
		Global: rate.Every(time.Hour), GlobalBurst: 1,
	})
	if !l.Allow("a") {
		t.Fatal("first message refused")
	}
	if l.Allow("b") {
		t.Fatal("the overall limit of 1 let a second message through")
	}
	// b's own bucket must still be full: only the overall one is empty.
	if b := l.bucket("b"); b.lim.Tokens() < 0.99 {
		t.Fatalf("b's bucket holds %.2f tokens after a refusal, want 1", b.lim.Tokens())
	}
}

func TestPerKeyKindsAndPerMinute(t *testing.T) {
	l := New(Options[int64]{PerKey: func(chat int64) (rate.Limit, int) {
		if chat < 0 { // a group
			return PerMinute(20)
		}
		return rate.Limit(1), 1
	}})
	groupAllowed := 0
	for range 25 {
		if l.Allow(-100) {
			groupAllowed++
		}
	}
	if groupAllowed != 20 {
		t.Fatalf("group allowed %d of 25 at once, want a burst of 20", groupAllowed)
	}
	if !l.Allow(42) || l.Allow(42) {
		t.Fatal("private chat: want a burst of exactly 1")
	}
}

func TestWaitPaces(t *testing.T) {
	l := New(Options[string]{PerKey: func(string) (rate.Limit, int) { return rate.Every(50 * time.Millisecond), 1 }})
	start := time.Now()
	for range 3 {
		if err := l.Wait(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("3 messages at 1 per 50ms took %s", d)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	l := New(Options[string]{Global: rate.Every(time.Hour), GlobalBurst: 1})
	_ = l.Wait(context.Background(), "a")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := l.Wait(ctx, "a")
	if err == nil {
		t.Fatal("Wait past an hour-long limit returned nil before its deadline")
	}
	// x/time/rate answers at once when the wait would outlast the deadline.
	if !errors.Is(err, context.DeadlineExceeded) && err.Error() == "" {
		t.Fatalf("err = %v", err)
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New(Options[int]{Keys: 100, PerKey: func(int) (rate.Limit, int) { return 1, 1 }})
	for k := range 1000 {
		l.Allow(k)
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("%d buckets kept, want the bound of 100", n)
	}
	// The most recent keys are kept: their buckets are still empty.
	if l.Allow(999) {
		t.Fatal("the most recently used key was forgotten")
	}
}

func BenchmarkAllowManyKeys(b *testing.B) {
	l := New(Options[int]{Keys: 10000, PerKey: func(int) (rate.Limit, int) { return 1000, 10 }, Global: 1e9, GlobalBurst: 1e9})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Allow(i % 20000)
	}
}

// TestRefund: an event that was allowed but did not happen (the send
// failed) gives its token back, to the key's bucket and the overall one;
// a bucket never holds more than its burst, refunds included.
func TestRefund(t *testing.T) {
	l := New(Options[string]{
		PerKey: func(string) (rate.Limit, int) { return rate.Every(time.Hour), 2 },
		Global: rate.Every(time.Hour), GlobalBurst: 3,
	})
	if !l.Allow("a") || !l.Allow("a") || l.Allow("a") {
		t.Fatal("want a burst of 2 for a")
	}
	l.Refund("a")
	l.Refund("a")
	if !l.Allow("a") || !l.Allow("a") {
		t.Fatal("two refunded events refused")
	}
	if l.Allow("a") {
		t.Fatal("a third event allowed after two refunds of two")
	}
	// The overall bucket got both tokens back too: of its burst of 3 it
	// has let 5 events through, 2 of them refunded.
	if !l.Allow("b") {
		t.Fatal("the overall bucket kept the refunded tokens")
	}
	if l.Allow("c") {
		t.Fatal("the overall burst of 3 let a fourth event through")
	}

	// Refunds never fill a bucket past its burst.
	l = New(Options[string]{PerKey: func(string) (rate.Limit, int) { return rate.Every(time.Hour), 2 }})
	l.Allow("a")
	for range 5 {
		l.Refund("a")
	}
	for i := range 3 {
		if got, want := l.Allow("a"), i < 2; got != want {
			t.Fatalf("event %d after refunds: allowed %v, want %v (burst 2)", i+1, got, want)
		}
	}
	// Refunding a key never seen does nothing: its bucket is full.
	l.Refund("new")
	if !l.Allow("new") || !l.Allow("new") || l.Allow("new") {
		t.Fatal("a refund to a new key changed its burst of 2")
	}
}

// TestRefundMadeUpByRefill: a refund that the bucket's refill has made up
// for since is not added on top of it.
func TestRefundMadeUpByRefill(t *testing.T) {
	l := New(Options[string]{PerKey: func(string) (rate.Limit, int) { return rate.Every(20 * time.Millisecond), 1 }})
	if !l.Allow("a") {
		t.Fatal("first event refused")
	}
	l.Refund("a")
	time.Sleep(50 * time.Millisecond) // the bucket refills its one token
	if !l.Allow("a") || l.Allow("a") {
		t.Fatal("want exactly one event: the refund and the refill are the same token")
	}
}

func TestWaitSpendsRefund(t *testing.T) {
	l := New(Options[string]{PerKey: func(string) (rate.Limit, int) { return rate.Every(time.Hour), 1 }})
	if err := l.Wait(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	l.Refund("a")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := l.Wait(ctx, "a"); err != nil {
		t.Fatalf("Wait after a refund: %v, want the refunded token at once", err)
	}
}
