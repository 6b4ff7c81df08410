package webchat

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

// BenchmarkSend measures Send, which commits every message to the mailbox
// (synchronous=FULL) before it returns: one session at a time, and many
// sessions at once, whose commits the committer shares; and one session
// with an open tab that reads every reply pushed to it.
func BenchmarkSend(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel int // goroutines per GOMAXPROCS; 0: serial
		sessions int
		tab      bool // an open tab on the (one) session reads each reply
	}{
		{name: "serial", sessions: 1},
		{name: "serial-connected", sessions: 1, tab: true},
		{name: "parallel-64-sessions", parallel: 32, sessions: 64},
		{name: "parallel-1000-sessions", parallel: 64, sessions: 1000},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bs := startBenchServer(b, nil)
			ids := make([]string, bc.sessions)
			for i := range ids {
				ids[i] = newSessionID()
			}
			var tab *rawWS
			if bc.tab {
				tab = bs.dialHello(b, ids[0], "", 0)
			}
			var n atomic.Int64
			send := func() {
				i := n.Add(1)
				err := bs.a.Send(context.Background(), core.Outbound{ChatID: ids[int(i)%len(ids)], ID: fmt.Sprint("m", i), Text: benchReply, From: core.SenderBot})
				if err != nil {
					b.Error(err)
				}
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			b.ResetTimer()
			if bc.parallel == 0 {
				for b.Loop() {
					send()
					if tab != nil {
						if _, err := tab.readData(); err != nil {
							b.Fatal(err)
						}
					}
				}
				return
			}
			b.SetParallelism(bc.parallel)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					send()
				}
			})
		})
	}
}

// BenchmarkInbound measures the path of a user's message: a message frame
// from the browser, DeliverFunc, the mailbox, and the echo and the ack
// back to the tab. One tab at a time, and 64 tabs (of 64 sessions) at
// once.
func BenchmarkInbound(b *testing.B) {
	for _, bc := range []struct {
		name string
		tabs int
	}{
		{name: "serial", tabs: 1},
		{name: "parallel-64-tabs", tabs: 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			bs := startBenchServer(b, nil)
			tabs := make(chan *rawWS, bc.tabs)
			for range bc.tabs {
				tabs <- bs.dialHello(b, newSessionID(), "", 0)
			}
			var n atomic.Int64
			roundTrip := func(tab *rawWS) {
				id := fmt.Sprint("u", n.Add(1))
				tab.buf = append(append(append(tab.buf[:0], `{"type":"message","id":"`...), id...), `","text":"`+benchUserText+`"}`...)
				if err := tab.writeText(tab.buf); err != nil {
					b.Fatal(err)
				}
				// The echo to every tab, then the ack.
				for range 2 {
					f, err := tab.readData()
					if err != nil {
						b.Fatal(err)
					}
					if !bytes.Contains(f, []byte(id)) {
						b.Fatalf("unexpected frame %s", f)
					}
				}
			}
			b.ReportAllocs()
			defer reportCPU(b)()
			b.ResetTimer()
			if bc.tabs == 1 {
				tab := <-tabs
				for b.Loop() {
					roundTrip(tab)
				}
				return
			}
			b.SetParallelism((bc.tabs + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.RunParallel(func(pb *testing.PB) {
				tab := <-tabs
				defer func() { tabs <- tab }()
				for pb.Next() {
					roundTrip(tab)
				}
			})
		})
	}
}

// BenchmarkConnections measures what a WebSocket connection costs.
//
// "hello-close" is the whole life of a short connection on a session with
// a history (as a page that reconnects for each message has): dial,
// hello with the epoch and last seq, welcome, close.
//
// "held-N" opens N connections on N stored sessions, each with a short
// history, and keeps them open: heap-B/conn, stack-B/conn and
// goroutines/conn are what the process holds per open connection once
// the garbage is collected (the benchmark's own raw clients hold about
// 1 KB each of it; SQLite's page cache is not in the Go heap).
func BenchmarkConnections(b *testing.B) {
	b.Run("hello-close", func(b *testing.B) {
		bs := startBenchServer(b, nil)
		ids, epoch := bs.storeSessions(b, 64, benchHistory)
		b.ReportAllocs()
		report := reportCPU(b)
		i := 0
		for b.Loop() {
			tab := bs.dialHello(b, ids[i%len(ids)], epoch, benchHistory)
			i++
			tab.close()
		}
		bs.waitNoClients(b) // the server's side of the close is part of the cost
		report()
	})
	for _, n := range []int{1000} {
		b.Run(fmt.Sprintf("held-%d", n), func(b *testing.B) {
			bs := startBenchServer(b, nil)
			ids, epoch := bs.storeSessions(b, n, benchHistory)
			var m memDelta
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				m.begin()
				b.StartTimer()
				tabs := make([]*rawWS, n)
				parallelDo(n, 16, func(i int) { tabs[i] = bs.dialHello(b, ids[i], epoch, benchHistory) })
				b.StopTimer()
				m.end(n)
				for _, tab := range tabs {
					tab.close()
				}
				bs.waitNoClients(b)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/conn")
			m.report(b, "conn")
		})
	}
}

// BenchmarkIdleSessions measures what a session that has no open tab
// costs in memory: N stored sessions with a short history are each
// opened once (hello, welcome, close), which leaves them as the cache
// keeps them. heap-B/session is the Go heap held per such session.
func BenchmarkIdleSessions(b *testing.B) {
	for _, n := range []int{2000} {
		b.Run(fmt.Sprintf("visited-%d", n), func(b *testing.B) {
			bs := startBenchServer(b, nil)
			ids, epoch := bs.storeSessions(b, n, benchHistory)
			var m memDelta
			for b.Loop() {
				b.StopTimer()
				m.begin()
				b.StartTimer()
				parallelDo(n, 16, func(i int) { bs.dialHello(b, ids[i], epoch, benchHistory).close() })
				bs.waitNoClients(b)
				b.StopTimer()
				m.end(n)
				// Forget them again for the next round.
				run := bs.a.current()
				run.sessions.mu.Lock()
				for _, id := range ids {
					if s, ok := run.sessions.byID[id]; ok && s.refs == 0 {
						run.sessions.remove(s)
					}
				}
				run.sessions.mu.Unlock()
				b.StartTimer()
			}
			m.report(b, "session")
		})
	}
}

// reportCPU starts measuring the process's CPU time; the function it
// returns reports it per op as cpu-ns/op, which, unlike ns/op, leaves out
// the time spent waiting for the disk or for other processes.
func reportCPU(b *testing.B) func() {
	start := processCPU()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// Texts of a typical size for the benchmarks.
const (
	benchUserText = "Hello, what does the premium plan cost per month?"
	benchReply    = "The premium plan costs **$20 a month**, billed yearly, or $24 month to month. It includes everything in the basic plan, plus priority support."
	benchHistory  = 10 // entries in each stored session's history
)

// benchServer is a started adapter behind an httptest server, whose core
// accepts everything.
type benchServer struct {
	a    *Adapter
	addr string // host:port

	mu   sync.Mutex
	open map[*rawWS]struct{} // tabs not closed yet
}

func startBenchServer(b *testing.B, raw core.RawConfig) *benchServer {
	b.Helper()
	if raw == nil {
		raw = core.RawConfig{}
	}
	raw["rate_limit"] = 1 << 30
	// Every benchmark client is 127.0.0.1: no per-address limits.
	raw["ip_rate_limit"], raw["ip_session_limit"] = 0, 0
	a := newTestAdapter(b, raw)
	a.log = slog.New(slog.DiscardHandler) // measure the adapter, not the test's log buffer
	var delivered atomic.Int64
	deliver := func(context.Context, core.Inbound) error { delivered.Add(1); return nil }
	if err := a.Start(context.Background(), deliver); err != nil {
		b.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(a)
	b.Cleanup(srv.Close)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			b.Errorf("Stop: %v", err)
		}
	})
	bs := &benchServer{a: a, addr: strings.TrimPrefix(srv.URL, "http://"), open: make(map[*rawWS]struct{})}
	// Before Stop, which would wait for close handshakes that these
	// clients never answer.
	b.Cleanup(func() {
		bs.mu.Lock()
		tabs := make([]*rawWS, 0, len(bs.open))
		for tab := range bs.open {
			tabs = append(tabs, tab)
		}
		bs.mu.Unlock()
		for _, tab := range tabs {
			tab.close()
		}
	})
	return bs
}

// storeSessions writes n sessions, each with entries history entries
// (user messages and replies in turn), straight into the mailbox in one
// transaction, and returns their ids and their (common) epoch.
func (bs *benchServer) storeSessions(b *testing.B, n, entries int) ([]string, string) {
	b.Helper()
	const epoch = "benchEp0"
	ids := make([]string, n)
	now := time.Now().UnixNano()
	err := bs.a.current().mb.(*mailbox).commits.Write(context.Background(), true, func(t *sqlitedb.Tx) error {
		for i := range ids {
			ids[i] = newSessionID()
			if _, err := t.Exec(qCreateSession, ids[i], epoch, now, "Ann"); err != nil {
				return err
			}
			for seq := int64(1); seq <= int64(entries); seq++ {
				sender, text, clientID, msgID := fromUser, benchUserText, fmt.Sprint("c", seq), ""
				if seq%2 == 0 {
					sender, text, clientID, msgID = fromBot, benchReply, "", fmt.Sprint("b", seq)
				}
				if _, err := t.Exec(qInsertEntry, ids[i], seq, kindMessage, sender, text, now, clientID, msgID, false, false); err != nil {
					return err
				}
			}
			if _, err := t.Exec(qAdvance, entries, now, "", "", ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("store sessions: %v", err)
	}
	return ids, epoch
}

// dialHello opens a raw connection, says hello for session with epoch
// and lastSeq, and reads the welcome and the replayed entries.
func (bs *benchServer) dialHello(b *testing.B, session, epoch string, lastSeq int64) *rawWS {
	b.Helper()
	tab, err := dialRaw(bs.addr, bs.a.cfg.Path+"ws")
	if err != nil {
		b.Fatalf("dial: %v", err)
	}
	bs.mu.Lock()
	bs.open[tab] = struct{}{}
	tab.bs = bs
	bs.mu.Unlock()
	hello := fmt.Appendf(nil, `{"type":"hello","session":%q,"epoch":%q,"last_seq":%d}`, session, epoch, lastSeq)
	if err := tab.writeText(hello); err != nil {
		b.Fatalf("hello: %v", err)
	}
	w, err := tab.readData()
	if err != nil || !bytes.HasPrefix(w, []byte(`{"type":"welcome"`)) {
		b.Fatalf("welcome: %q, %v", w, err)
	}
	return tab
}

// waitNoClients waits until the adapter has let go of every connection.
func (bs *benchServer) waitNoClients(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		cs := bs.a.current().clients
		cs.mu.Lock()
		n := len(cs.m)
		cs.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d connections still open", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// parallelDo runs f(0..n-1) on workers goroutines.
func parallelDo(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	wg.Wait()
}

// memDelta measures what the process holds between begin and end, after
// garbage collection.
type memDelta struct {
	before     runtime.MemStats
	goroutines int
	// Sums over the rounds, per item.
	heap, stack, routines, rounds float64
}

func (m *memDelta) begin() {
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m.before)
	m.goroutines = runtime.NumGoroutine()
}

// end records the difference since begin, per one of n items.
func (m *memDelta) end(n int) {
	runtime.GC()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	m.heap += (float64(after.HeapAlloc) - float64(m.before.HeapAlloc)) / float64(n)
	m.stack += (float64(after.StackInuse) - float64(m.before.StackInuse)) / float64(n)
	m.routines += float64(runtime.NumGoroutine()-m.goroutines) / float64(n)
	m.rounds++
}

func (m *memDelta) report(b *testing.B, unit string) {
	if m.rounds == 0 {
		return
	}
	b.ReportMetric(m.heap/m.rounds, "heap-B/"+unit)
	b.ReportMetric(m.stack/m.rounds, "stack-B/"+unit)
	b.ReportMetric(m.routines/m.rounds, "goroutines/"+unit)
}

// rawWS is a minimal WebSocket client for the benchmarks, so that they
// measure the server rather than a client library: text frames out
// (masked with a zero key, which leaves the payload as it is), data
// frames in, pings answered.
type rawWS struct {
	bs  *benchServer // that tracks it, if any
	c   net.Conn
	br  *bufio.Reader
	hdr [14]byte
	rd  []byte // the last frame read
	buf []byte // for the caller's frames
}

var errClosedByServer = errors.New("closed by the server")

func dialRaw(addr, path string) (*rawWS, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(waitTimeout))
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	w := &rawWS{c: c, br: bufio.NewReaderSize(c, 256)}
	status, err := w.br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q, %v", status, err)
	}
	for {
		line, err := w.br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	return w, nil
}

func (w *rawWS) writeFrame(op byte, p []byte) error {
	h := w.hdr[:0]
	h = append(h, 0x80|op)
	switch {
	case len(p) < 126:
		h = append(h, 0x80|byte(len(p)))
	case len(p) < 1<<16:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(len(p)))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, uint64(len(p)))
	}
	h = append(h, 0, 0, 0, 0) // the mask key
	_ = w.c.SetWriteDeadline(time.Now().Add(waitTimeout))
	bufs := net.Buffers{h, p}
	_, err := bufs.WriteTo(w.c)
	return err
}

func (w *rawWS) writeText(p []byte) error { return w.writeFrame(0x1, p) }

// readData returns the payload of the next data frame, valid until the
// next call, answering pings on the way.
func (w *rawWS) readData() ([]byte, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(waitTimeout))
	for {
		var h [2]byte
		if _, err := io.ReadFull(w.br, h[:]); err != nil {
			return nil, err
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(w.br, l[:]); err != nil {
				return nil, err
			}
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		if cap(w.rd) < n {
			w.rd = make([]byte, n)
		}
		w.rd = w.rd[:n]
		if _, err := io.ReadFull(w.br, w.rd); err != nil {
			return nil, err
		}
		switch h[0] & 0x0f {
		case 0x8:
			return nil, errClosedByServer
		case 0x9:
			if err := w.writeFrame(0xA, w.rd); err != nil {
				return nil, err
			}
		case 0xA:
		default:
			return w.rd, nil
		}
	}
}

// close sends a close frame and closes the socket without waiting for the
// server's answer: the server's side of the close is what is measured.
func (w *rawWS) close() {
	_ = w.writeFrame(0x8, []byte{0x03, 0xe8})
	_ = w.c.Close()
	if w.bs != nil {
		w.bs.mu.Lock()
		delete(w.bs.open, w)
		w.bs.mu.Unlock()
	}
}
