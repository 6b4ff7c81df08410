package engine

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"github.com/switchboard-gw/switchboard/kit/clientip"
)

func testMetrics() *Metrics { return newMetrics(func() store.Store { return nil }) }

// metricValue is the value of the counter or gauge name whose labels
// include the given name, value pairs; 0 if there is none.
func metricValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, met := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range met.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return met.GetCounter().GetValue() + met.GetGauge().GetValue()
		}
	}
	return 0
}

// serveLimited serves 200 "ok" behind a connLimiter on loopback and
// returns its address.
func serveLimited(t *testing.T, maxConns, perIP int, trusted ...string) (string, *connLimiter, *Metrics) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxies, err := clientip.NewResolver(trusted)
	if err != nil {
		t.Fatal(err)
	}
	m := testMetrics()
	l := newConnLimiter(ln, maxConns, perIP, proxies, m, slog.New(slog.DiscardHandler))
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), l, m
}

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// get sends one GET on c and returns the status line of the answer.
func get(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "write: " + err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "read: " + err.Error()
	}
	return strings.TrimSpace(line)
}

// refused reads what a connection over a cap gets, without sending
// anything: the 503, then the end of the connection.
func refused(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read the refusal: %v (got %q)", err, b)
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 503 Service Unavailable\r\n") || !strings.Contains(string(b), "Connection: close") {
		t.Fatalf("refusal = %q, want a 503 with Connection: close", b)
	}
}

func TestConnLimiterPerIP(t *testing.T) {
	addr, l, m := serveLimited(t, 100, 2)
	a1, a2 := dialFrom(t, "127.0.0.2", addr), dialFrom(t, "127.0.0.2", addr)
	if got := get(t, a1); got != "HTTP/1.1 200 OK" {
		t.Fatalf("first connection: %q", got)
	}
	if got := get(t, a2); got != "HTTP/1.1 200 OK" {
		t.Fatalf("second connection: %q", got)
	}
	refused(t, dialFrom(t, "127.0.0.2", addr))
	if n := metricValue(t, m, "switchboard_http_connections_refused_total", "reason", refusedMaxConnsPerIP); n != 1 {
		t.Fatalf("refusals counted: %v, want 1", n)
	}
	// Another address is served meanwhile.
	if got := get(t, dialFrom(t, "127.0.0.3", addr)); got != "HTTP/1.1 200 OK" {
		t.Fatalf("other address: %q", got)
	}
	if n := metricValue(t, m, "switchboard_http_connections_open"); n != 3 {
		t.Fatalf("open connections gauge %v, want 3", n)
	}
	// A connection closed frees its place.
	_ = a1.Close()
	testutil.Eventually(t, "place freed", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.byKey["127.0.0.2"] == 1
	})
	if got := get(t, dialFrom(t, "127.0.0.2", addr)); got != "HTTP/1.1 200 OK" {
		t.Fatalf("after a close: %q", got)
	}
}

func TestConnLimiterGlobal(t *testing.T) {
	addr, _, m := serveLimited(t, 2, 0)
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		if got := get(t, dialFrom(t, src, addr)); got != "HTTP/1.1 200 OK" {
			t.Fatalf("from %s: %q", src, got)
		}
	}
	refused(t, dialFrom(t, "127.0.0.4", addr))
	if n := metricValue(t, m, "switchboard_http_connections_refused_total", "reason", refusedMaxConns); n != 1 {
		t.Fatalf("refusals counted: %v, want 1", n)
	}
}

// A trusted proxy carries many clients: only the global cap applies to it.
func TestConnLimiterTrustedProxyExempt(t *testing.T) {
	addr, _, _ := serveLimited(t, 100, 1, "127.0.0.5")
	for i := range 3 {
		if got := get(t, dialFrom(t, "127.0.0.5", addr)); got != "HTTP/1.1 200 OK" {
			t.Fatalf("proxy connection %d: %q", i, got)
		}
	}
	dialFrom(t, "127.0.0.6", addr)
	refused(t, dialFrom(t, "127.0.0.6", addr))
}

// A client whose request is already in when it is refused still reads
// the 503: the refusal reads the request, so that closing the connection
// does not reset it (and the answer with it).
func TestConnLimiterRefusalAfterRequest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A cap of 0 refuses everything; Accept, which never returns, runs
	// only once the request has arrived.
	l := newConnLimiter(ln, 0, 0, &clientip.Resolver{}, testMetrics(), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = l.Close() })
	c := dialFrom(t, "127.0.0.2", ln.Addr().String())
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n"+strings.Repeat("X-Pad: 0123456789\r\n", 100)+"\r\n"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the request is in the server's socket buffer
	go func() { _, _ = l.Accept() }()
	refused(t, c)
}

// fakeListener fails every Accept with err until stop is closed.
type fakeListener struct {
	net.Listener
	err   error
	calls atomic.Int64
	done  chan struct{}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.calls.Add(1)
	select {
	case <-f.done:
		return nil, net.ErrClosed
	default:
		return nil, f.err
	}
}

func (f *fakeListener) Close() error { close(f.done); return nil }

// Out of file descriptors, Accept waits with a backoff instead of
// spinning, counts every failure, and ends promptly on Close.
func TestConnLimiterAcceptErrorBackoff(t *testing.T) {
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	fl := &fakeListener{err: emfile, done: make(chan struct{})}
	m := testMetrics()
	l := newConnLimiter(fl, 10, 0, &clientip.Resolver{}, m, slog.New(slog.DiscardHandler))
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	testutil.Eventually(t, "a few failed accepts", func() bool { return fl.calls.Load() >= 4 })
	_ = l.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after Close")
	}
	calls := fl.calls.Load()
	// 5, 10, 20, 40 ms...: a spinning loop would have made millions.
	if calls > 50 {
		t.Fatalf("%d accept calls: the errors were not backed off", calls)
	}
	if n := metricValue(t, m, "switchboard_http_accept_errors_total"); n != float64(calls) && n != float64(calls-1) {
		t.Fatalf("%v accept errors counted for %d failed calls", n, calls)
	}
}

// A permanent error is returned at once.
func TestConnLimiterPermanentError(t *testing.T) {
	fl := &fakeListener{err: errors.New("listener broken"), done: make(chan struct{})}
	l := newConnLimiter(fl, 10, 0, &clientip.Resolver{}, testMetrics(), slog.New(slog.DiscardHandler))
	if _, err := l.Accept(); err == nil || err.Error() != "listener broken" {
		t.Fatalf("Accept = %v", err)
	}
}

func TestEffectiveMaxConns(t *testing.T) {
	limit, ok := openFileLimit()
	if !ok {
		t.Skip("no open-file limit on this system")
	}
	got, lowered := effectiveMaxConns(1 << 30)
	if uint64(1<<30) > limit-fdReserve && (!lowered || uint64(got) != limit-fdReserve) {
		t.Fatalf("max_conns %d (lowered %v) with an open-file limit of %d", got, lowered, limit)
	}
	if got, lowered := effectiveMaxConns(10); got != 10 || lowered {
		t.Fatalf("a small max_conns was changed: %d", got)
	}
}
