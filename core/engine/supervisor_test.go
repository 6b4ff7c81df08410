package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// lifecycleMessenger takes startDelay to start and stopDelay to stop, and
// records whether its lifecycle calls ever overlapped or came in an order
// the contract forbids.
type lifecycleMessenger struct {
	startDelay, stopDelay time.Duration
	startErr              error

	mu       sync.Mutex
	inCall   bool // a Start or Stop is running
	running  bool // Start succeeded and no Stop since
	overlaps int
	starts   int
	stops    int
	cut      int // Stops whose ctx ended before they were done
}

func (m *lifecycleMessenger) enter() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inCall {
		m.overlaps++
	}
	m.inCall = true
}

func (m *lifecycleMessenger) Start(ctx context.Context, _ core.DeliverFunc) error {
	m.enter()
	time.Sleep(m.startDelay) // a slow network, deaf to ctx like a real one may be
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inCall = false
	m.starts++
	if m.startErr != nil {
		return m.startErr
	}
	m.running = true
	return nil
}

func (m *lifecycleMessenger) Stop(ctx context.Context) error {
	m.enter()
	cut := false
	select {
	case <-time.After(m.stopDelay):
	case <-ctx.Done():
		cut = true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cut {
		m.cut++
	}
	m.inCall = false
	m.stops++
	m.running = false
	return nil
}

func (m *lifecycleMessenger) Send(context.Context, core.Outbound) error { return nil }

func (m *lifecycleMessenger) state() (running bool, overlaps, starts, stops int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running, m.overlaps, m.starts, m.stops
}

// lifecycleGateway builds and starts a gateway on a memory store whose
// instances ("a", "b", ...) are the given messengers.
func lifecycleGateway(t *testing.T, shutdown time.Duration, msgrs ...*lifecycleMessenger) *Gateway {
	t.Helper()
	reg := core.NewRegistry()
	var adapters []AdapterConfig
	for i, m := range msgrs {
		kind := string(rune('a' + i))
		reg.Register(kind, func(core.Instance) (core.Messenger, error) { return m, nil })
		adapters = append(adapters, AdapterConfig{Name: kind, Kind: kind, TaskID: "task"})
	}
	cfg := testGatewayConfig(t, adapters...)
	cfg.Server.ShutdownTimeout = shutdown
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw, err := New(cfg, Options{Registry: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: ln, Store: store.NewMemory()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return gw
}

// TestShutdownDuringSlowStart is the race of a Shutdown that arrives while
// the supervisor is still inside Start: Stop must come after Start has
// returned (never at once), and the status must end "stopped", not
// "running".
func TestShutdownDuringSlowStart(t *testing.T) {
	m := &lifecycleMessenger{startDelay: 300 * time.Millisecond}
	gw := lifecycleGateway(t, 5*time.Second, m)
	time.Sleep(20 * time.Millisecond) // the supervisor is inside Start
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	running, overlaps, starts, stops := m.state()
	if running || overlaps != 0 || starts != 1 || stops != 1 {
		t.Fatalf("after Shutdown: running=%v overlaps=%d starts=%d stops=%d; want stopped, no overlap, one Start and one Stop",
			running, overlaps, starts, stops)
	}
	time.Sleep(50 * time.Millisecond) // a late state change would land now
	if s := gw.Statuses()[0]; s.State != StateStopped {
		t.Fatalf("health says %q after Shutdown, want %q", s.State, StateStopped)
	}
}

// TestShutdownDuringStartRetries: a Shutdown while a failed instance waits
// to retry its Start ends the wait at once.
func TestShutdownDuringStartRetries(t *testing.T) {
	m := &lifecycleMessenger{startErr: errors.New("connection refused")}
	gw := lifecycleGateway(t, 5*time.Second, m)
	waitFor(t, "failing", func() bool { return gw.Statuses()[0].State == StateFailing })
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > 500*time.Millisecond {
		t.Fatalf("Shutdown took %s: it waited out the retry's backoff", d)
	}
	if _, overlaps, _, _ := m.state(); overlaps != 0 {
		t.Fatal("Start and Stop overlapped")
	}
	if s := gw.Statuses()[0]; s.State != StateStopped {
		t.Fatalf("state %q, want stopped", s.State)
	}
}

// TestInstancesStopInParallel: three adapters that take 400 ms each to stop
// all stop within a 700 ms shutdown deadline; one after another they
// would need 1.2 s.
func TestInstancesStopInParallel(t *testing.T) {
	var msgrs []*lifecycleMessenger
	for range 3 {
		msgrs = append(msgrs, &lifecycleMessenger{stopDelay: 400 * time.Millisecond})
	}
	gw := lifecycleGateway(t, 700*time.Millisecond, msgrs...)
	waitFor(t, "all running", func() bool {
		for _, s := range gw.Statuses() {
			if s.State != StateRunning {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := gw.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, m := range msgrs {
		running, _, _, stops := m.state()
		m.mu.Lock()
		cut := m.cut
		m.mu.Unlock()
		if running || stops != 1 || cut != 0 {
			t.Errorf("instance %d: running=%v stops=%d, %d cut short by the deadline", i, running, stops, cut)
		}
	}
	for _, s := range gw.Statuses() {
		if s.State != StateStopped {
			t.Errorf("%s: state %q, want stopped", s.Name, s.State)
		}
	}
}

// TestWaitStarted: WaitStarted returns once every instance's first Start
// has returned, with an error naming those that are not running.
func TestWaitStarted(t *testing.T) {
	slow := &lifecycleMessenger{startDelay: 200 * time.Millisecond}
	failing := &lifecycleMessenger{startErr: errors.New("connection refused")}
	gw := lifecycleGateway(t, 5*time.Second, slow, failing)
	t.Cleanup(func() { _ = gw.Shutdown(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := gw.WaitStarted(ctx)
	if running, _, _, _ := slow.state(); !running {
		t.Fatal("WaitStarted returned before the slow instance had started")
	}
	if err == nil || !strings.Contains(err.Error(), "instance b is failing") || strings.Contains(err.Error(), "instance a") {
		t.Fatalf("WaitStarted = %v; want it to name the failing instance b only", err)
	}
}
