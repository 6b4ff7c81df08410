package engine

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

func TestRetryPolicyBackoff(t *testing.T) {
	p := retryPolicy{initial: time.Second, max: time.Minute}
	tests := []struct {
		failures int
		base     time.Duration
	}{
		{1, time.Second},
		{2, 2 * time.Second},
		{3, 4 * time.Second},
		{6, 32 * time.Second},
		{7, time.Minute}, // 64s capped
		{50, time.Minute},
	}
	for _, tt := range tests {
		for range 50 {
			got := p.backoff(tt.failures)
			if got < tt.base/2 || got > tt.base {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.failures, got, tt.base/2, tt.base)
			}
		}
	}
}

func TestDispatcherReserve(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.NewMemory()
	release := make(chan struct{})
	attempts := make(chan store.Message, 10)
	attempt := func(ctx context.Context, m store.Message) error {
		attempts <- m
		<-release
		return nil
	}
	policy := retryPolicy{initial: time.Millisecond, max: time.Millisecond, maxAttempts: 3, maxAge: time.Hour, attemptTimeout: time.Minute}
	d := newDispatcher(store.ToUser, st, attempt, policy, 2, log, newMetrics(func() store.Store { return st }))

	if d.reserve() {
		t.Fatal("reserve before run: true, want false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx, context.Background()) }()
	waitFor(t, "a worker", d.reserve)

	// Start an attempt on the reserved worker, then take the other one:
	// every worker is busy.
	m := store.Message{Dir: store.ToUser, Chat: "c"}
	if _, claimed, err := st.EnqueueClaim(ctx, &m, time.Now(), d.lease()); err != nil || !claimed {
		t.Fatalf("EnqueueClaim = %v, %v", claimed, err)
	}
	d.start(m)
	<-attempts
	if !d.reserve() {
		t.Fatal("second worker not free")
	}
	if d.reserve() {
		t.Fatal("reserve with every worker busy: true, want false")
	}
	d.release()

	// run returns only after the attempt it did not start has ended, and
	// reserves nothing once it is stopping.
	cancel()
	select {
	case <-done:
		t.Fatal("run returned while an attempt was in flight")
	case <-time.After(50 * time.Millisecond):
	}
	waitFor(t, "stopping", func() bool {
		if d.reserve() {
			d.release()
			return false
		}
		return true
	})
	close(release)
	<-done
	if got, _ := st.Get(context.Background(), m.ID); got.State != store.Delivered {
		t.Fatalf("message state %s after run, want delivered", got.State)
	}
}
