package lifecycle

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestBeginOnce(t *testing.T) {
	var r Runs[int]
	if r.Current() != nil {
		t.Fatal("a zero Runs has a run")
	}
	run, err := r.Begin(7)
	if err != nil || run.Data != 7 || r.Current() != run {
		t.Fatalf("Begin = %v, %v", run, err)
	}
	if _, err := r.Begin(8); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Begin = %v, want ErrStarted", err)
	}
}

func TestEndWaitsForGoroutinesAndWork(t *testing.T) {
	var r Runs[struct{}]
	run, _ := r.Begin(struct{}{})
	var finished atomic.Int32
	run.Go(func(ctx context.Context) {
		<-ctx.Done()
		time.Sleep(30 * time.Millisecond)
		finished.Add(1)
	})
	w, ok := r.Enter()
	if !ok {
		t.Fatal("Enter failed in a run")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		finished.Add(1)
		w.Leave()
	}()
	beforeWaitSaw := false
	ended, err := r.End(context.Background(), func(run *Run[struct{}]) {
		beforeWaitSaw = run.Context().Err() != nil
	})
	if err != nil || ended != run {
		t.Fatalf("End = %v, %v", ended, err)
	}
	if finished.Load() != 2 {
		t.Fatalf("End returned before %d of 2 pieces of work ended", 2-finished.Load())
	}
	if !beforeWaitSaw {
		t.Fatal("beforeWait ran before the context was cancelled")
	}
	if r.Current() != nil {
		t.Fatal("Current after End")
	}
}

func TestEndTwiceAndAfterNothing(t *testing.T) {
	var r Runs[int]
	if run, err := r.End(context.Background(), nil); run != nil || err != nil {
		t.Fatalf("End without a run = %v, %v", run, err)
	}
	r.Begin(1)
	r.End(context.Background(), nil)
	if run, err := r.End(context.Background(), nil); run != nil || err != nil {
		t.Fatalf("second End = %v, %v", run, err)
	}
	if _, err := r.Begin(2); err != nil {
		t.Fatalf("Begin after End: %v", err)
	}
}

func TestEndGivesUpWithCtx(t *testing.T) {
	var r Runs[int]
	run, _ := r.Begin(1)
	release := make(chan struct{})
	run.Go(func(context.Context) { <-release }) // deaf to the context
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := r.End(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("End = %v, want the deadline", err)
	}
	// The next run does not mix with the one that would not end.
	next, err := r.Begin(2)
	if err != nil || next.Context().Err() != nil {
		t.Fatalf("Begin after a stuck End = %v, %v", next, err)
	}
}

func TestNoWorkAfterEnd(t *testing.T) {
	var r Runs[int]
	run, _ := r.Begin(1)
	r.End(context.Background(), nil)
	if run.Go(func(context.Context) { t.Error("ran after End") }) {
		t.Fatal("Go accepted work after End")
	}
	if _, ok := r.Enter(); ok {
		t.Fatal("Enter succeeded after End")
	}
	time.Sleep(10 * time.Millisecond)
}

func TestSleep(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("a short sleep did not pass")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if Sleep(ctx, time.Hour) || time.Since(start) > time.Second {
		t.Fatal("Sleep outlived its context")
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Every(ctx, 5*time.Millisecond, func() { calls <- struct{}{} })
	}()
	for range 3 {
		select {
		case <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("fn not called every interval")
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Every did not return when ctx ended")
	}
}
