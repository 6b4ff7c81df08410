package engine

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
)

// The bot's "connecting you" carries the operator flag; its note must
// reach the user after it, even when the adapter is slow to send it, and
// a later change with no message of its own (the user's echo closing the
// dialog) after both.
func TestRouterDialogNoteAfterItsMessage(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s", "m1", "operator please")
	rec := f.msgrs["web"]
	rec.fail = func(core.Outbound) error { time.Sleep(80 * time.Millisecond); return nil }
	ctx := context.Background()
	op := webhook("web:s", "a", selarti.TypeBot, "connecting")
	op.Operator = true
	if err := f.router.HandleWebhook(ctx, op); err != nil {
		t.Fatal(err)
	}
	closed := webhook("web:s", "b", selarti.TypeUser, "bye")
	closed.Operator, closed.Close = true, true
	if err := f.router.HandleWebhook(ctx, closed); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message and two notes", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.order) == 3 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{"msg:connecting", "note:operator=true,closed=false", "note:operator=true,closed=true"}
	if !slices.Equal(rec.order, want) {
		t.Fatalf("order = %q, want %q", rec.order, want)
	}
}

// A message given up as a dead letter still lets its change be shown:
// the user should know a human has the dialog.
func TestRouterDialogNoteAfterDeadMessage(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s", "m1", "operator please")
	rec := f.msgrs["web"]
	rec.fail = func(core.Outbound) error { return core.Permanent(errors.New("refused")) }
	op := webhook("web:s", "a", selarti.TypeBot, "connecting")
	op.Operator = true
	if err := f.router.HandleWebhook(context.Background(), op); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the note", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.events) == 1 })
}

// A message this replica never hears done (another replica delivered it)
// holds the chat's later changes no longer than holdMax.
func TestRouterDialogNoteHeldAtMostHoldMax(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.router.notes.holdMax = 50 * time.Millisecond
	f.userSays(t, "web", "s", "m1", "hi")
	f.router.notes.wait("web:s") // a rider another replica delivers
	closed := webhook("web:s", "b", selarti.TypeUser, "bye")
	closed.Close = true
	if err := f.router.HandleWebhook(context.Background(), closed); err != nil {
		t.Fatal(err)
	}
	rec := f.msgrs["web"]
	waitFor(t, "the held note", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.events) == 1 })
}
