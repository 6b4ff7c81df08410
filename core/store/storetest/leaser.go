package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

// RunLeaser checks the Leaser contract. open returns a new, empty store
// that implements store.Leaser; RunLeaser closes it.
func RunLeaser(t *testing.T, open func(t *testing.T) store.Leaser) {
	ctx := context.Background()
	l := open(t)
	t.Cleanup(func() {
		if c, ok := l.(interface{ Close() error }); ok {
			c.Close()
		}
	})
	now := time.Now()
	acquire := func(what, name, owner string, at time.Time, wantHeld bool, wantPrev string) {
		t.Helper()
		held, prev, err := l.AcquireLease(ctx, name, owner, at, 10*time.Second)
		if err != nil || held != wantHeld || prev != wantPrev {
			t.Fatalf("%s: AcquireLease(%s, %s) = %v, %q, %v; want %v, %q", what, name, owner, held, prev, err, wantHeld, wantPrev)
		}
	}
	acquire("a free lease", "rx:tg", "a", now, true, "")
	acquire("held by another", "rx:tg", "b", now.Add(time.Second), false, "")
	acquire("renewed by its owner", "rx:tg", "a", now.Add(5*time.Second), true, "")
	acquire("still held after the first term, thanks to the renewal", "rx:tg", "b", now.Add(12*time.Second), false, "")
	acquire("another name is separate", "rx:dc", "b", now, true, "")
	acquire("expired: a takeover", "rx:tg", "b", now.Add(16*time.Second), true, "a")
	acquire("the old owner lost it", "rx:tg", "a", now.Add(17*time.Second), false, "")

	if err := l.ReleaseLease(ctx, "rx:tg", "a"); err != nil {
		t.Fatalf("ReleaseLease by a non-owner: %v", err)
	}
	acquire("a release by a non-owner changes nothing", "rx:tg", "a", now.Add(18*time.Second), false, "")
	if err := l.ReleaseLease(ctx, "rx:tg", "b"); err != nil {
		t.Fatalf("ReleaseLease: %v", err)
	}
	acquire("released: free at once, no takeover", "rx:tg", "a", now.Add(18*time.Second), true, "")

	for _, bad := range []struct {
		name, owner string
		ttl         time.Duration
	}{{"", "a", time.Second}, {"x", "", time.Second}, {"x", "a", 0}} {
		if _, _, err := l.AcquireLease(ctx, bad.name, bad.owner, now, bad.ttl); err == nil {
			t.Errorf("AcquireLease(%q, %q, %s) = nil error", bad.name, bad.owner, bad.ttl)
		}
	}
}
