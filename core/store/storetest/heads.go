package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

// RunHeads checks the Heads contract. open returns a new, empty store
// that implements store.Heads; RunHeads closes it.
func RunHeads(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	st := open(t)
	t.Cleanup(func() { st.Close() })
	h, ok := st.(store.Heads)
	if !ok {
		t.Fatalf("%T does not implement store.Heads", st)
	}
	head := func(what string, dir store.Direction, chat string, want int64) {
		t.Helper()
		m, err := h.Head(ctx, dir, chat)
		if want == 0 {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s: Head(%s, %s) = %+v, %v; want ErrNotFound", what, dir, chat, m, err)
			}
			return
		}
		if err != nil || m.ID != want || m.State != store.Pending || m.Chat != chat || m.Dir != dir {
			t.Fatalf("%s: Head(%s, %s) = %+v, %v; want pending message %d", what, dir, chat, m, err, want)
		}
	}
	head("an empty store", store.ToSelarti, "w:a", 0)
	a1 := enqueue(t, st, msg{chat: "w:a", key: "a1", dir: store.ToSelarti})
	a2 := enqueue(t, st, msg{chat: "w:a", key: "a2", dir: store.ToSelarti})
	b1 := enqueue(t, st, msg{chat: "w:b", key: "b1", dir: store.ToSelarti})
	head("the oldest of a chat", store.ToSelarti, "w:a", a1.ID)
	head("another chat", store.ToSelarti, "w:b", b1.ID)
	head("the other direction", store.ToUser, "w:a", 0)

	now := time.Now()
	claimed := claimDir(t, st, store.ToSelarti, now, 10)
	wantIDs(t, "claim", claimed, a1, b1)
	head("leased: still the head", store.ToSelarti, "w:a", a1.ID)
	if got, _ := h.Head(ctx, store.ToSelarti, "w:a"); got.DedupeKey != "a1" || len(got.Payload) == 0 {
		t.Fatalf("Head = %+v, want the whole message a1", got)
	}
	must(t, "deliver a1", st.Delivered(ctx, a1.ID))
	head("after the head was delivered, the next", store.ToSelarti, "w:a", a2.ID)
	must(t, "kill b1", st.Kill(ctx, b1.ID, "gone"))
	head("a dead letter is not a head", store.ToSelarti, "w:b", 0)
	must(t, "replay b1", st.Replay(ctx, b1.ID))
	head("replayed: the head again", store.ToSelarti, "w:b", b1.ID)
}
