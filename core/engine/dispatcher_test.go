package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
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

// newTestDispatcher is a to_user dispatcher on st with workers workers,
// retrying at once up to three attempts, that logs nothing.
func newTestDispatcher(st store.Store, attempt func(context.Context, store.Message) error, workers int) *dispatcher {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	policy := retryPolicy{initial: time.Millisecond, max: time.Millisecond, maxAttempts: 3, maxAge: time.Hour, attemptTimeout: time.Minute}
	return newDispatcher(store.ToUser, st, attempt, policy, workers, log, newMetrics(func() store.Store { return st }))
}

func TestDispatcherReserve(t *testing.T) {
	st := store.NewMemory()
	release := make(chan struct{})
	attempts := make(chan store.Message, 10)
	attempt := func(ctx context.Context, m store.Message) error {
		attempts <- m
		<-release
		return nil
	}
	d := newTestDispatcher(st, attempt, 2)

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

// A deferral (the instance not running, or a wait for Selarti's echo) is
// not a failed attempt: however many there are, max_attempts is never
// reached, and a later failure counts from zero. max_age still applies.
func TestDispatcherDeferralCountsNoAttempt(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := store.NewMemory()
	defer st.Close()
	policy := retryPolicy{initial: time.Millisecond, max: time.Millisecond, maxAttempts: 2, maxAge: time.Hour, attemptTimeout: time.Minute}
	d := newDispatcher(store.ToUser, st, nil, policy, 1, log, newMetrics(func() store.Store { return st }))
	ctx := context.Background()

	m := store.Message{Dir: store.ToUser, Chat: "c"}
	if _, err := st.Enqueue(ctx, &m); err != nil {
		t.Fatal(err)
	}
	claimOne := func() store.Message {
		t.Helper()
		var got []store.Message
		waitFor(t, "the message due again", func() bool {
			var err error
			got, err = st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 1)
			return err == nil && len(got) == 1
		})
		return got[0]
	}
	notRunning := &deferral{reason: errors.New("instance web is starting: not connected")}
	d.attempt = func(context.Context, store.Message) error { return notRunning }
	for range 5 {
		d.process(ctx, claimOne(), func() {})
	}
	got, _ := st.Get(ctx, m.ID)
	if got.State != store.Pending || got.Attempts != 0 || got.InDoubt || !strings.Contains(got.LastError, "not connected") {
		t.Fatalf("after 5 deferrals: %+v; want pending, 0 attempts, the reason kept", got)
	}

	d.attempt = func(context.Context, store.Message) error { return errors.New("network down") }
	d.process(ctx, claimOne(), func() {})
	if got, _ := st.Get(ctx, m.ID); got.State != store.Pending || got.Attempts != 1 {
		t.Fatalf("after one failure: %+v; want pending with 1 attempt", got)
	}

	// The echo wait keeps the error that caused it and marks the doubt.
	d.attempt = func(context.Context, store.Message) error {
		return &deferral{until: time.Now(), inDoubt: true, reason: errAwaitingEcho}
	}
	d.process(ctx, claimOne(), func() {})
	if got, _ := st.Get(ctx, m.ID); !got.InDoubt || got.LastError != "network down" || got.Attempts != 1 {
		t.Fatalf("after an echo wait: %+v; want in doubt, the last error kept, 1 attempt", got)
	}

	// Too old: a deferral that is not an echo wait dead-letters it.
	d.policy.maxAge = 0
	d.attempt = func(context.Context, store.Message) error { return notRunning }
	d.process(ctx, claimOne(), func() {})
	if got, _ := st.Get(ctx, m.ID); got.State != store.Dead {
		t.Fatalf("a deferral past max_age: %+v; want dead", got)
	}
}

// stalledDelivered is a store whose Delivered waits until the test lets
// it go, the way a commit waits for the committer's batch in progress.
type stalledDelivered struct {
	store.Store
	entered chan int64    // the id of each Delivered called
	proceed chan struct{} // one Delivered returns per receive
}

func (s *stalledDelivered) Delivered(ctx context.Context, id int64) error {
	s.entered <- id
	<-s.proceed
	return s.Store.Delivered(ctx, id)
}

// TestDispatcherFreesTheWorkerWhileTheResultIsRecorded: an attempt that
// has its answer hands its worker to the next attempt before the store
// has recorded the result, and no more than workers results wait for the
// store at once. run returns only after the results are recorded.
func TestDispatcherFreesTheWorkerWhileTheResultIsRecorded(t *testing.T) {
	st := &stalledDelivered{Store: store.NewMemory(), entered: make(chan int64, 10), proceed: make(chan struct{})}
	attempts := make(chan string, 10)
	attempt := func(ctx context.Context, m store.Message) error {
		attempts <- m.Chat
		return nil
	}
	d := newTestDispatcher(st, attempt, 1)
	ctx := context.Background()
	for _, chat := range []string{"a", "b", "c"} {
		if _, err := st.Enqueue(ctx, &store.Message{Dir: store.ToUser, Chat: chat}); err != nil {
			t.Fatal(err)
		}
	}
	stop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.run(stop, ctx) }()

	first := <-st.entered // a's result waits for the store...
	select {
	case <-attempts: // a's own attempt
	case <-time.After(10 * time.Second):
		t.Fatal("no attempt")
	}
	select {
	case chat := <-attempts: // ...while the one worker sends b
		if chat == "a" {
			t.Fatalf("chat a attempted twice")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the worker waited for the first result to be recorded before the next attempt")
	}
	// b's result cannot be handed over while a's holds the one record
	// token, so b keeps the worker and c is not attempted.
	select {
	case chat := <-attempts:
		t.Fatalf("chat %s attempted while two results wait for the store with one worker", chat)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case <-done:
		t.Fatal("run returned while a result was not recorded")
	case <-time.After(50 * time.Millisecond):
	}
	st.proceed <- struct{}{}
	second := <-st.entered
	st.proceed <- struct{}{}
	<-done
	for _, id := range []int64{first, second} {
		if got, err := st.Get(ctx, id); err != nil || got.State != store.Delivered {
			t.Fatalf("message %d: %s, %v after run, want delivered", id, got.State, err)
		}
	}
}

// TestDispatcherStartsWorkersAsNeeded: an idle dispatcher holds no worker
// goroutine, and messages one after another reuse the one started.
func TestDispatcherStartsWorkersAsNeeded(t *testing.T) {
	st := store.NewMemory()
	attempt := func(context.Context, store.Message) error { return nil }
	d := newTestDispatcher(st, attempt, 64)
	spawned := func() int {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.spawned
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.run(ctx, context.Background()) }()
	waitFor(t, "the dispatcher running", func() bool {
		if d.reserve() {
			d.release()
			return true
		}
		return false
	})
	if n := spawned(); n != 0 {
		t.Fatalf("%d worker goroutines before any message, want 0", n)
	}
	for i := range 20 {
		m := store.Message{Dir: store.ToUser, Chat: "c"}
		if _, err := st.Enqueue(context.Background(), &m); err != nil {
			t.Fatal(err)
		}
		d.notify()
		waitFor(t, "the message delivered", func() bool {
			got, _ := st.Get(context.Background(), m.ID)
			return got.State == store.Delivered
		})
		if n := spawned(); n > 2 {
			t.Fatalf("%d worker goroutines after %d messages one at a time, want at most 2", n, i+1)
		}
	}
	cancel()
	<-done
}

// TestDispatcherTimesEachStage: switchboard_delivery_stage_seconds has
// one observation per stage of an attempt, of the time it took: the wait
// since the message was accepted, the send, and the store's commit of
// the result.
func TestDispatcherTimesEachStage(t *testing.T) {
	st := &stalledDelivered{Store: store.NewMemory(), entered: make(chan int64, 1), proceed: make(chan struct{})}
	const queued, sending, recording = 2 * time.Second, 50 * time.Millisecond, 30 * time.Millisecond
	attempt := func(context.Context, store.Message) error {
		time.Sleep(sending)
		return nil
	}
	d := newTestDispatcher(st, attempt, 1)
	ctx := context.Background()
	m := store.Message{Dir: store.ToUser, Chat: "c", CreatedAt: time.Now().Add(-queued)}
	if _, err := st.Enqueue(ctx, &m); err != nil {
		t.Fatal(err)
	}
	stop, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.run(stop, ctx) }()
	<-st.entered
	time.Sleep(recording)
	st.proceed <- struct{}{}
	waitFor(t, "the message delivered", func() bool {
		got, _ := st.Get(ctx, m.ID)
		return got.State == store.Delivered
	})
	cancel()
	<-done

	for _, tt := range []struct {
		stage string
		least time.Duration
	}{{stageQueued, queued}, {stageAttempt, sending}, {stageRecord, recording}} {
		count, sum := stageHistogram(t, d.metrics, dirOut, tt.stage)
		if took := time.Duration(sum * float64(time.Second)); count != 1 || took < tt.least || took > tt.least+5*time.Second {
			t.Errorf("stage %s: %d observations of %v in all, want 1 of at least %v", tt.stage, count, took, tt.least)
		}
		if count, _ := stageHistogram(t, d.metrics, dirIn, tt.stage); count != 0 {
			t.Errorf("stage %s of the other direction: %d observations, want 0", tt.stage, count)
		}
	}
}

// stageHistogram reads the count and sum of one series of
// switchboard_delivery_stage_seconds.
func stageHistogram(t *testing.T, m *Metrics, direction, stage string) (uint64, float64) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_delivery_stage_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range s.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["direction"] == direction && labels["stage"] == stage {
				return s.GetHistogram().GetSampleCount(), s.GetHistogram().GetSampleSum()
			}
		}
	}
	t.Fatalf("no series of switchboard_delivery_stage_seconds{direction=%q,stage=%q}", direction, stage)
	return 0, 0
}
