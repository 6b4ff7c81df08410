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
	inst := newInstance(AdapterConfig{Name: "x", Kind: "test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	inst.messenger, inst.healthEvery = m, 10*time.Millisecond
	return inst
}

// supervised runs inst's supervisor and stops it at the end of the test.
func supervised(t *testing.T, inst *instance) {
	t.Helper()
	go inst.supervise(nil, newMetrics(func() store.Store { return nil }))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := inst.stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

func TestSuperviseRetriesTransientStartFailures(t *testing.T) {
	m := &flakyMessenger{startErr: errors.New("connection refused")}
	m.startFailures.Store(1)
	inst := newTestInstance(m)
	supervised(t, inst)
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
	supervised(t, inst)
	waitFor(t, "failed", func() bool { return inst.snapshot().State == StateFailed })
	time.Sleep(1500 * time.Millisecond) // past the first retry's backoff
	if s := inst.snapshot(); s.State != StateFailed || s.LastError == "" || m.starts.Load() != 1 {
		t.Fatalf("status = %+v after %d starts, want failed after one", s, m.starts.Load())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := inst.stop(ctx); err != nil {
		t.Fatal(err)
	}
	if s := inst.snapshot(); s.State != StateStopped {
		t.Fatalf("state after stop = %s, want stopped", s.State)
	}
}
