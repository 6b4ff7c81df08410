package outbound

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

func TestSendPartsResumes(t *testing.T) {
	p := NewProgress(10, time.Hour)
	var sent []int
	failAt := 2
	send := func(_ context.Context, i int) error {
		if i == failAt {
			return errors.New("503")
		}
		sent = append(sent, i)
		return nil
	}
	from, err := p.SendParts(context.Background(), "m1", 4, send)
	var pe *PartError
	if from != 0 || !errors.As(err, &pe) || pe.Part != 2 || pe.Parts != 4 || err.Error() != "part 3 of 4: 503" {
		t.Fatalf("first attempt = %d, %v", from, err)
	}
	failAt = -1
	from, err = p.SendParts(context.Background(), "m1", 4, send)
	if from != 2 || err != nil {
		t.Fatalf("retry = %d, %v; want to resume at part 2", from, err)
	}
	if !slices.Equal(sent, []int{0, 1, 2, 3}) {
		t.Fatalf("sent %v: a part was repeated or lost", sent)
	}
	// Done: a later redelivery of m1 (it should not happen) starts over.
	if from, _ := p.SendParts(context.Background(), "m1", 4, func(context.Context, int) error { return nil }); from != 0 {
		t.Fatalf("progress kept after success: from %d", from)
	}
}

func TestSendPartsWithoutID(t *testing.T) {
	p := NewProgress(10, time.Hour)
	calls := 0
	_, _ = p.SendParts(context.Background(), "", 3, func(_ context.Context, i int) error {
		calls++
		if i == 1 {
			return errors.New("x")
		}
		return nil
	})
	from, _ := p.SendParts(context.Background(), "", 3, func(context.Context, int) error { calls++; return nil })
	if from != 0 || calls != 5 {
		t.Fatalf("from %d after %d calls: no id, nothing to resume by", from, calls)
	}
}

func TestSinglePartErrorReadsPlain(t *testing.T) {
	p := NewProgress(1, time.Hour)
	_, err := p.SendParts(context.Background(), "x", 1, func(context.Context, int) error { return errors.New("403 blocked") })
	if err.Error() != "403 blocked" {
		t.Fatalf("err = %q", err)
	}
}

func TestNoticesBounded(t *testing.T) {
	var runs lifecycle.Runs[struct{}]
	run, _ := runs.Begin(struct{}{})
	n := NewNotices(2)
	release := make(chan struct{})
	var mu sync.Mutex
	ran := 0
	send := func(context.Context) {
		<-release
		mu.Lock()
		ran++
		mu.Unlock()
	}
	if !n.Go(run, send) || !n.Go(run, send) {
		t.Fatal("room for 2, refused")
	}
	if n.Go(run, send) {
		t.Fatal("a third notice ran past the bound of 2")
	}
	close(release)
	if _, err := runs.End(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if ran != 2 {
		t.Fatalf("%d notices ran", ran)
	}
	if n.Go(run, send) {
		t.Fatal("a notice ran after the run ended")
	}
	if len(n.slots) != 0 {
		t.Fatal("a refused notice kept its slot")
	}
}
