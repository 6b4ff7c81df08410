package typing

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// sends records the indicator's requests.
type sends struct {
	mu   sync.Mutex
	at   map[int][]time.Time
	fail error
}

func (s *sends) send(ctx context.Context, key int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.at == nil {
		s.at = map[int][]time.Time{}
	}
	s.at[key] = append(s.at[key], time.Now())
	return s.fail
}

func (s *sends) count(key int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.at[key])
}

func TestRenewedUntilStop(t *testing.T) {
	s := &sends{}
	ind := New(s.send, Options{Timeout: 5 * time.Second, Every: 20 * time.Millisecond})
	ind.Start(context.Background(), 1)
	testutil.Eventually(t, "renewed", func() bool { return s.count(1) >= 3 })
	ind.Stop(1)
	stoppedAt := time.Now()
	n := s.count(1)
	time.Sleep(80 * time.Millisecond)
	if got := s.count(1); got != n {
		t.Fatalf("%d requests after Stop", got-n)
	}
	s.mu.Lock()
	last := s.at[1][len(s.at[1])-1]
	s.mu.Unlock()
	if last.After(stoppedAt) {
		t.Fatal("a request landed after Stop returned")
	}
	if s.count(2) != 0 {
		t.Fatal("another key was shown typing")
	}
}

func TestEndsWithTimeout(t *testing.T) {
	s := &sends{}
	ind := New(s.send, Options{Timeout: 60 * time.Millisecond, Every: 10 * time.Millisecond})
	ind.Start(context.Background(), 1)
	testutil.Eventually(t, "ended by itself", func() bool {
		ind.mu.Lock()
		defer ind.mu.Unlock()
		return len(ind.jobs) == 0
	})
	n := s.count(1)
	if n < 2 || n > 10 {
		t.Fatalf("%d requests in a 60ms timeout renewed every 10ms", n)
	}
}

func TestEndsOnFailedSend(t *testing.T) {
	s := &sends{fail: errors.New("403 blocked")}
	ind := New(s.send, Options{Timeout: time.Minute, Every: 5 * time.Millisecond})
	ind.Start(context.Background(), 1)
	if err := ind.Wait(contextWithTimeout(t, time.Second)); err != nil {
		t.Fatal("the loop went on after a failed send")
	}
	if s.count(1) != 1 {
		t.Fatalf("%d requests to a chat that refused the first", s.count(1))
	}
}

func TestContextEndsEverything(t *testing.T) {
	s := &sends{}
	ind := New(s.send, Options{Timeout: time.Minute, Every: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	for k := range 5 {
		ind.Start(ctx, k)
	}
	cancel()
	if err := ind.Wait(contextWithTimeout(t, time.Second)); err != nil {
		t.Fatal("indicators outlived their context")
	}
	ind.Start(ctx, 9) // a run that ended starts nothing
	if err := ind.Wait(contextWithTimeout(t, time.Second)); err != nil || s.count(9) != 0 {
		t.Fatal("Start after the run ended showed typing")
	}
}

func TestOffAndBounded(t *testing.T) {
	s := &sends{}
	off := New(s.send, Options{Every: time.Millisecond})
	off.Start(context.Background(), 1)
	time.Sleep(20 * time.Millisecond)
	if s.count(1) != 0 {
		t.Fatal("a zero timeout did not turn the indicator off")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bounded := New(s.send, Options{Timeout: time.Minute, Every: time.Hour, Max: 3})
	for k := 10; k < 20; k++ {
		bounded.Start(ctx, k)
	}
	bounded.mu.Lock()
	n := len(bounded.jobs)
	bounded.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d chats typing, want the bound of 3", n)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestHandovers(t *testing.T) {
	h := NewHandovers(10)
	if h.Human("c") {
		t.Fatal("a new dialog is a human's")
	}
	if !h.Note("c", core.DialogState{Operator: true}) || !h.Human("c") {
		t.Fatal("an operator's dialog not noted")
	}
	if !h.Note("c", core.DialogState{Operator: true, Closed: true}) || h.Human("c") {
		t.Fatal("a closed dialog still a human's, or typing not stopped")
	}
	if h.Note("c", core.DialogState{}) || h.Human("c") {
		t.Fatal("the bot's dialog again: typing stopped, or still a human's")
	}
}
