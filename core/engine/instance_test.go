package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// nopMessenger does nothing, successfully.
type nopMessenger struct{}

func (nopMessenger) Start(context.Context, core.DeliverFunc) error { return nil }
func (nopMessenger) Send(context.Context, core.Outbound) error     { return nil }
func (nopMessenger) Stop(context.Context) error                    { return nil }

// flakyMessenger fails Start a given number of times, then succeeds, and
// reports health from a switch.
type flakyMessenger struct {
	nopMessenger
	startFailures atomic.Int32
	startErr      error
	starts        atomic.Int32
	stops         atomic.Int32
	unhealthy     atomic.Bool
}

func (f *flakyMessenger) Start(context.Context, core.DeliverFunc) error {
	f.starts.Add(1)
	if f.startFailures.Add(-1) >= 0 {
		return f.startErr
	}
	return nil
}

func (f *flakyMessenger) Stop(context.Context) error { f.stops.Add(1); return nil }

func (f *flakyMessenger) CheckHealth(context.Context) error {
	if f.unhealthy.Load() {
		return errors.New("getMe: 401 Unauthorized")
	}
	return nil
}

func newTestInstance(m core.Messenger) *instance {
	return &instance{name: "x", kind: "test", enabled: true, messenger: m,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), healthEvery: 10 * time.Millisecond}
}

func TestSuperviseRetriesTransientStartFailures(t *testing.T) {
	m := &flakyMessenger{startErr: errors.New("connection refused")}
	m.startFailures.Store(1)
	inst := newTestInstance(m)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inst.supervise(ctx, nil, newMetrics(func() store.Store { return nil }))
	// The first retry waits about a second (backoff from 1s, with jitter).
	waitFor(t, "running after a retry", func() bool { return inst.running() })
	if m.starts.Load() != 2 || m.stops.Load() != 1 {
		t.Fatalf("starts=%d stops=%d, want 2 starts and a Stop after the failed one", m.starts.Load(), m.stops.Load())
	}

	m.unhealthy.Store(true)
	waitFor(t, "health error shown", func() bool { return inst.snapshot().HealthError != "" })
	m.unhealthy.Store(false)
	waitFor(t, "healthy again", func() bool { return inst.snapshot().HealthError == "" })
}

func TestSuperviseStopsOnPermanentStartFailure(t *testing.T) {
	m := &flakyMessenger{startErr: core.Permanent(errors.New("token revoked"))}
	m.startFailures.Store(100)
	inst := newTestInstance(m)
	done := make(chan struct{})
	go func() {
		inst.supervise(context.Background(), nil, newMetrics(func() store.Store { return nil }))
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("supervise kept retrying a permanent failure")
	}
	if s := inst.snapshot(); s.State != StateFailed || s.LastError == "" || m.starts.Load() != 1 {
		t.Fatalf("status = %+v after %d starts, want failed after one", s, m.starts.Load())
	}
}
