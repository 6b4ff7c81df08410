package discord

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/core/store"
)

// replica builds an adapter for the harness's bot as one gateway replica
// builds its instance "dc" on a shared store: with that store's journals
// and a data directory of its own.
func (h *harness) replica(j core.Journals) *Adapter {
	h.t.Helper()
	cfg := core.RawConfig{"token": h.bot.Token(), "api_url": h.srv.URL(), "typing_timeout": "0s", "request_timeout": "5s"}
	inst, _ := messengertest.Instance(h.t, Kind, cfg)
	inst.Name, inst.Journals = "dc", j
	m, err := New(inst)
	if err != nil {
		h.t.Fatal(err)
	}
	return m.(*Adapter)
}

// receiving is one Receive of a replica, as the core runs it while the
// replica holds the lease.
type receiving struct {
	cancel context.CancelFunc
	done   chan error
	ended  bool
}

func (h *harness) receive(a *Adapter) *receiving {
	ctx, cancel := context.WithCancel(context.Background())
	r := &receiving{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Receive(ctx, h.core.Deliver) }()
	h.t.Cleanup(func() { r.end(h.t) })
	return r
}

// end cancels the Receive's context, as a lost lease does, and waits for
// it to return nil.
func (r *receiving) end(t *testing.T) {
	t.Helper()
	if r.ended {
		return
	}
	r.ended = true
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("Receive = %v when its context ended, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive did not return within 10 s of its context ending")
	}
}

// TestReplicasTakeOverFromTheSharedCheckpoint: two replicas share one
// store; both start the instance (both can send), one receives. It loses
// its lease, users write while nobody receives, and the other takes over:
// its backfill, from the checkpoint the first left in the shared store,
// delivers what was written meanwhile, each message once, in order, in a
// DM and a guild channel. A late flush of the first replica does not move
// the shared checkpoint back. One gateway session is open at a time.
func TestReplicasTakeOverFromTheSharedCheckpoint(t *testing.T) {
	h := newHarness(t, nil)
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	a, b := h.replica(st.Journals("dc")), h.replica(st.Journals("dc"))
	for _, r := range []*Adapter{a, b} {
		if err := r.Start(ctxTimeout(t), h.core.Deliver); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := r.Stop(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	ann, bob := h.user(1), h.user(2)
	dm := h.bot.DMChannel(ann)
	guildChat := h.general.ID + ":" + bob.ID

	// Replica A holds the lease. B stands by: it sends, and is healthy.
	rxA := h.receive(a)
	h.waitSession(a)
	h.srv.UserSays(dm.ID, ann, "dm one")
	h.srv.UserSays(h.general.ID, bob, h.mention("guild one"))
	eventually(t, "A delivers", func() bool { return len(h.core.Accepted()) == 2 })
	if err := b.Send(ctxTimeout(t), out(dm.ID, "from-b", "answered by the standby")); err != nil {
		t.Fatalf("Send on the standby replica: %v", err)
	}
	if err := b.CheckHealth(ctxTimeout(t)); err != nil {
		t.Fatalf("the standby replica is unhealthy without a session: %v", err)
	}

	// A loses the lease; users write while nobody receives.
	rxA.end(t)
	if n := len(h.bot.Sessions()); n != 0 {
		t.Fatalf("%d sessions after A's Receive returned", n)
	}
	h.srv.UserSays(dm.ID, ann, "dm two")
	h.srv.UserSays(h.general.ID, bob, h.mention("guild two"))
	h.srv.UserSays(dm.ID, ann, "dm three")
	time.Sleep(100 * time.Millisecond)
	if n := len(h.core.Calls()); n != 2 {
		t.Fatalf("%d deliveries while nobody received", n)
	}
	if err := a.Send(ctxTimeout(t), out(guildChat, "from-a", "answered by the old receiver")); err != nil {
		t.Fatalf("Send on the replica that lost the lease: %v", err)
	}

	// B takes the lease over and backfills from the shared checkpoint.
	rxB := h.receive(b)
	h.waitSession(b)
	eventually(t, "B backfills what came meanwhile", func() bool { return len(h.core.Accepted()) == 5 })
	h.srv.UserSays(dm.ID, ann, "dm four")
	eventually(t, "B delivers live", func() bool { return len(h.core.Accepted()) == 6 })
	time.Sleep(200 * time.Millisecond)
	if n := len(h.core.Answered()); n != 6 {
		t.Fatalf("%d deliveries for 6 messages: the takeover repeated some", n)
	}

	// B loses the lease too; A flushes late a position older than B's
	// (one it had not written yet when it stopped receiving), then takes
	// the lease back: the shared checkpoint did not move back, so its
	// backfill repeats nothing.
	rxB.end(t)
	dmOne, _ := strconv.ParseUint(h.core.Accepted()[0].ID, 10, 64)
	late := a.runs.Current().Data.cp
	late.Set(positionPrefix+dm.ID, strconv.FormatUint(dmOne-1, 10))
	if err := late.Flush(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	h.receive(a)
	h.waitSession(a)
	h.srv.UserSays(dm.ID, ann, "dm five")
	eventually(t, "A delivers again", func() bool { return len(h.core.Accepted()) == 7 })
	time.Sleep(200 * time.Millisecond)

	byChat := map[string][]string{}
	for _, in := range h.core.Accepted() {
		byChat[in.ChatID] = append(byChat[in.ChatID], in.Text)
	}
	if !slices.Equal(byChat[dm.ID], []string{"dm one", "dm two", "dm three", "dm four", "dm five"}) ||
		!slices.Equal(byChat[guildChat], []string{"guild one", "guild two"}) || len(byChat) != 2 {
		t.Fatalf("delivered by chat %q", byChat)
	}
	if n := len(h.core.Answered()); n != 7 {
		t.Fatalf("%d deliveries for 7 messages: a takeover repeated some", n)
	}
	if n := h.bot.PeakSessions(); n != 1 {
		t.Fatalf("%d gateway sessions were open at once, want 1", n)
	}
	if n := len(h.bot.Identifies()); n != 3 {
		t.Fatalf("%d IDENTIFYs, want one per Receive", n)
	}
	if got := h.sent(dm.ID); !slices.Equal(got, []string{"answered by the standby"}) {
		t.Fatalf("sent in the DM %q", got)
	}
}
