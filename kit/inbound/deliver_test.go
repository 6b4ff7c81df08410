package inbound

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// flaky is a DeliverFunc that fails its first n calls with err.
type flaky struct {
	n     atomic.Int32
	calls atomic.Int32
	err   error
}

func (f *flaky) deliver(ctx context.Context, _ core.Inbound) error {
	f.calls.Add(1)
	if f.n.Add(-1) >= 0 {
		return f.err
	}
	return nil
}

func fastRetry() RetryOptions {
	return RetryOptions{Initial: time.Millisecond, Max: 5 * time.Millisecond}
}

func TestRetryUntilAccepted(t *testing.T) {
	f := &flaky{err: errors.New("store unavailable")}
	f.n.Store(5)
	var notified atomic.Int32
	o := fastRetry()
	o.OnRetry = func(error, time.Duration) { notified.Add(1) }
	if err := Retry(context.Background(), f.deliver, core.Inbound{ChatID: "c", Text: "hi"}, o); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 6 || notified.Load() != 5 {
		t.Fatalf("%d calls, %d retries told: want 6 and 5", f.calls.Load(), notified.Load())
	}
}

func TestRetryStopsOnPermanent(t *testing.T) {
	f := &flaky{err: core.Permanent(errors.New("empty message text"))}
	f.n.Store(100)
	err := Retry(context.Background(), f.deliver, core.Inbound{}, fastRetry())
	if !core.IsPermanent(err) || f.calls.Load() != 1 {
		t.Fatalf("err = %v after %d calls: a refusal for good is not retried", err, f.calls.Load())
	}
}

func TestRetryEndsWithTheRun(t *testing.T) {
	f := &flaky{err: errors.New("store unavailable")}
	f.n.Store(1 << 30)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Retry(ctx, f.deliver, core.Inbound{}, fastRetry())
	if !errors.Is(err, context.DeadlineExceeded) || core.IsPermanent(err) {
		t.Fatalf("err = %v, want the run's end (not a refusal)", err)
	}
}

func TestDeliverBoundsTheCall(t *testing.T) {
	slow := func(ctx context.Context, _ core.Inbound) error {
		<-ctx.Done()
		return ctx.Err()
	}
	start := time.Now()
	err := Deliver(context.Background(), slow, core.Inbound{}, 30*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("Deliver = %v after %s", err, time.Since(start))
	}
	if AckDeadline >= 3*time.Second {
		t.Fatal("AckDeadline leaves no time to acknowledge within Slack's 3 s")
	}
}
