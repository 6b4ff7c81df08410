package engine

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/core/store"
)

// replicaPair is two replicas' routers on one shared store, with echo
// reconciliation on. a's sends to Selarti block until release is closed
// and then end with an unknown outcome (a timeout after the request went
// out); b receives Selarti's webhooks.
type replicaPair struct {
	shared  *store.Memory
	a, b    *routerFixture
	sends   atomic.Int32 // a's and b's send attempts
	release chan struct{}
}

func newReplicaPair(t *testing.T) *replicaPair {
	t.Helper()
	p := &replicaPair{shared: store.NewMemory(), release: make(chan struct{})}
	setup := func(r *Router) {
		r.echoes = newEchoReconciler(5 * time.Second)
		r.heads = p.shared
	}
	p.a = newRouterFixtureOn(t, p.shared, setup, "web")
	p.b = newRouterFixtureOn(t, p.shared, setup, "web")
	block := func(selarti.Message) error {
		p.sends.Add(1)
		<-p.release
		return fmt.Errorf("read the answer: %w", selarti.ErrOutcomeUnknown)
	}
	p.a.selarti.fail, p.b.selarti.fail = block, block
	t.Cleanup(func() {
		select {
		case <-p.release:
		default:
			close(p.release)
		}
	})
	return p
}

// message returns message id, in whatever state.
func (p *replicaPair) message(t *testing.T, id int64) store.Message {
	t.Helper()
	m, err := p.shared.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEchoOnAnotherReplicaSettlesTheSend: replica a sends a user's
// message and gets no answer; Selarti's echo of it comes to replica b,
// which records the message delivered at once, so that neither replica
// sends it again. An echo of another text settles nothing.
func TestEchoOnAnotherReplicaSettlesTheSend(t *testing.T) {
	p := newReplicaPair(t)
	ctx := context.Background()
	p.a.userSays(t, "web", "s1", "m1", "where is my order?")
	waitFor(t, "a's send under way", func() bool { return p.sends.Load() == 1 })
	head, err := p.shared.Head(ctx, store.ToSelarti, "web:s1")
	if err != nil {
		t.Fatal(err)
	}

	if err := p.b.router.HandleWebhook(ctx, webhook("web:s1", "e0", selarti.TypeUser, "something else")); err != nil {
		t.Fatal(err)
	}
	if m := p.message(t, head.ID); m.State != store.Pending {
		t.Fatalf("an echo of another text settled the message: %+v", m)
	}
	if err := p.b.router.HandleWebhook(ctx, webhook("web:s1", "e1", selarti.TypeUser, " where is my order? ")); err != nil {
		t.Fatal(err)
	}
	if m := p.message(t, head.ID); m.State != store.Delivered {
		t.Fatalf("the echo on replica b did not settle replica a's send: %+v", m)
	}

	close(p.release) // a's send ends, its outcome unknown
	time.Sleep(500 * time.Millisecond)
	if n := p.sends.Load(); n != 1 {
		t.Fatalf("%d sends to Selarti, want 1: the message was sent again", n)
	}
	if m := p.message(t, head.ID); m.State != store.Delivered {
		t.Fatalf("after a's send ended: %+v", m)
	}
}

// TestEchoOnAnotherReplicaAmbiguous: when the chat delivered the same
// text a moment ago, an echo that replica b did not expect may be that
// message's late echo, not the proof of the one in flight: b leaves the
// head pending (a sends it again after its echo window: at least once).
func TestEchoOnAnotherReplicaAmbiguous(t *testing.T) {
	p := newReplicaPair(t)
	ctx := context.Background()
	p.a.selarti.fail = nil // the first message goes through
	p.a.userSays(t, "web", "s1", "m1", "yes")
	waitFor(t, "the first message delivered", func() bool { return len(p.a.selarti.messages()) == 1 })
	waitFor(t, "recorded", func() bool {
		_, err := p.shared.Head(ctx, store.ToSelarti, "web:s1")
		return err != nil
	})
	p.a.selarti.mu.Lock()
	p.a.selarti.fail = func(selarti.Message) error {
		p.sends.Add(1)
		<-p.release
		return fmt.Errorf("read the answer: %w", selarti.ErrOutcomeUnknown)
	}
	p.a.selarti.mu.Unlock()
	p.a.userSays(t, "web", "s1", "m2", "yes")
	waitFor(t, "a's second send under way", func() bool { return p.sends.Load() == 1 })
	head, err := p.shared.Head(ctx, store.ToSelarti, "web:s1")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.b.router.HandleWebhook(ctx, webhook("web:s1", "e1", selarti.TypeUser, "yes")); err != nil {
		t.Fatal(err)
	}
	if m := p.message(t, head.ID); m.State != store.Pending {
		t.Fatalf("an echo that may be the first message's settled the second: %+v", m)
	}
}
