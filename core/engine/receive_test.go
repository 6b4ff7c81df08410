package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// receivers counts the Receives running across replicas, and the most
// that ever ran at once.
type receivers struct {
	now, most atomic.Int32
	calls     atomic.Int32
}

// exclusiveMessenger is an ExclusiveReceiver whose Receive runs until its
// context ends.
type exclusiveMessenger struct {
	exclusive bool
	rx        *receivers
	receiving atomic.Bool
}

func (m *exclusiveMessenger) Start(context.Context, core.DeliverFunc) error { return nil }
func (m *exclusiveMessenger) Stop(context.Context) error {
	if m.receiving.Load() {
		return errors.New("Stop while Receive runs")
	}
	return nil
}
func (m *exclusiveMessenger) Send(context.Context, core.Outbound) error { return nil }
func (m *exclusiveMessenger) Exclusive() bool                           { return m.exclusive }

func (m *exclusiveMessenger) Receive(ctx context.Context, _ core.DeliverFunc) error {
	m.rx.calls.Add(1)
	m.receiving.Store(true)
	n := m.rx.now.Add(1)
	for {
		most := m.rx.most.Load()
		if n <= most || m.rx.most.CompareAndSwap(most, n) {
			break
		}
	}
	<-ctx.Done()
	m.rx.now.Add(-1)
	m.receiving.Store(false)
	return nil
}

// replicaStore is one replica's view of a store shared in memory: its
// leases can be cut off, as if the replica froze or lost the database.
type replicaStore struct {
	store.Store
	leaser store.Leaser
	dead   atomic.Bool
}

var errCutOff = errors.New("store unreachable")

func (r *replicaStore) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, string, error) {
	if r.dead.Load() {
		return false, "", errCutOff
	}
	return r.leaser.AcquireLease(ctx, name, owner, now, ttl)
}

func (r *replicaStore) ReleaseLease(ctx context.Context, name, owner string) error {
	if r.dead.Load() {
		return errCutOff
	}
	return r.leaser.ReleaseLease(ctx, name, owner)
}

// replicaGateway starts one replica "id" with one instance "rx" of m, on
// the shared store.
func replicaGateway(t *testing.T, id string, shared *store.Memory, ttl time.Duration, m core.Messenger) (*Gateway, *replicaStore) {
	t.Helper()
	reg := core.NewRegistry()
	reg.Register("rx", func(core.Instance) (core.Messenger, error) { return m, nil })
	cfg := testGatewayConfig(t, AdapterConfig{Name: "rx", Kind: "rx", TaskID: "task"}) // each replica on its own data directory
	cfg.Replica = ReplicaConfig{ID: id, LeaseTTL: ttl}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st := &replicaStore{Store: shared, leaser: shared}
	gw, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: ln, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { _ = gw.Shutdown(context.Background()) }) })
	return gw, st
}

func receiveState(gw *Gateway) string { return gw.Statuses()[0].Receive }

// TestExclusiveReceiverOneReplicaAtATime: of two replicas on one store,
// one receives and the other stands by, both send; when the receiving one
// loses the store it stops receiving before its lease runs out, and the
// other takes over within the lease's time and a third; a replica that
// shuts down gives the lease up at once. Two never receive at once.
func TestExclusiveReceiverOneReplicaAtATime(t *testing.T) {
	const ttl = 600 * time.Millisecond
	shared := store.NewMemory()
	rx := &receivers{}
	m1, m2 := &exclusiveMessenger{exclusive: true, rx: rx}, &exclusiveMessenger{exclusive: true, rx: rx}
	g1, s1 := replicaGateway(t, "r1", shared, ttl, m1)
	waitFor(t, "r1 receiving", func() bool { return receiveState(g1) == ReceiveActive })
	g2, _ := replicaGateway(t, "r2", shared, ttl, m2)
	waitFor(t, "r2 standing by", func() bool { return receiveState(g2) == ReceiveStandby })
	for _, g := range []*Gateway{g1, g2} {
		if s := g.Statuses()[0]; s.State != StateRunning {
			t.Fatalf("%+v: want running on both replicas (Send works on each)", s)
		}
	}

	// r1 loses the store: it stops receiving before its lease can have run
	// out, and r2 takes over once it has.
	cut := time.Now()
	s1.dead.Store(true)
	waitFor(t, "r2 receiving", func() bool { return receiveState(g2) == ReceiveActive })
	takeover := time.Since(cut)
	if receiveState(g1) != ReceiveStandby || m1.receiving.Load() {
		t.Fatal("r1 still receives after losing the store")
	}
	if limit := ttl + ttl/3 + 200*time.Millisecond; takeover > limit {
		t.Errorf("takeover after %s, want within %s", takeover, limit)
	}
	t.Logf("takeover after the owner lost the store: %s (lease %s)", takeover.Round(time.Millisecond), ttl)

	// r1 is back; r2 shuts down and hands over at once.
	s1.dead.Store(false)
	begin := time.Now()
	if err := g2.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "r1 receiving again", func() bool { return receiveState(g1) == ReceiveActive })
	if d := time.Since(begin); d > ttl/3+300*time.Millisecond {
		t.Errorf("handover after a shutdown took %s, want about a third of the lease", d)
	}
	if most := rx.most.Load(); most != 1 {
		t.Errorf("%d replicas received at once, want 1", most)
	}
}

// TestNotExclusiveNeverReceives: Exclusive() false means Start receives as
// usual; Receive is never called.
func TestNotExclusiveNeverReceives(t *testing.T) {
	rx := &receivers{}
	gw, _ := replicaGateway(t, "r1", store.NewMemory(), time.Second, &exclusiveMessenger{rx: rx})
	waitFor(t, "running", func() bool { return gw.Statuses()[0].State == StateRunning })
	time.Sleep(100 * time.Millisecond)
	if n := rx.calls.Load(); n != 0 || receiveState(gw) != "" {
		t.Fatalf("Receive called %d times, receive state %q; want never, empty", n, receiveState(gw))
	}
}
