package engine

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/kit/clientip"
	"github.com/switchboard-gw/switchboard/kit/logthrottle"
)

// Refusing a connection over a cap. The answer is written straight to the
// socket, before net/http sees the connection: it costs no goroutine of
// the server's and no request parsing.
const (
	// refusal is the whole answer to a connection over a cap.
	refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Retry-After: 5\r\n" +
		"Connection: close\r\n" +
		"Content-Length: 21\r\n" +
		"\r\n" +
		"too many connections\n"
	// maxRefusing bounds the refusals in progress. Beyond it a
	// connection is closed at once, without an answer: a flood must not
	// turn refusals into a file-descriptor leak of their own.
	maxRefusing = 64
	// refuseLinger bounds how long a refused connection is kept open
	// after its answer, reading what the client sent, so that closing it
	// sends a FIN rather than a reset that could destroy the answer
	// before the client reads it.
	refuseLinger = 200 * time.Millisecond
	// refuseHeadWait bounds the wait for a refused connection's request
	// head before the 503 goes out.
	refuseHeadWait = 100 * time.Millisecond
	// refuseDrain bounds what is read from a refused connection.
	refuseDrain = 16 << 10
	// fdReserve is the file descriptors left for everything but
	// incoming connections (the store's files, connections to Selarti and
	// the networks, refusals in progress) when max_conns is lowered to
	// fit the open-file limit.
	fdReserve = 512
)

// Accept-error backoff, as net/http's Serve does it: 5 ms doubling up to
// 1 s, so a process out of file descriptors waits instead of spinning.
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// Connection-refusal reasons, the reason label of
// switchboard_http_connections_refused_total.
const (
	refusedMaxConns      = "max_conns"
	refusedMaxConnsPerIP = "max_conns_per_ip"
)

// connLimiter is the gateway's listener: it caps the connections open at
// once, in all and per client address, answers those beyond with a 503
// and closes them, and rides out accept errors (EMFILE: out of file
// descriptors) with a backoff. A connection counts until it is closed, a
// hijacked one (a WebSocket) included. Per-address counts use the TCP
// peer: a trusted proxy (which carries many clients) is exempt from the
// per-address cap, and only the global one applies to it.
type connLimiter struct {
	net.Listener
	max     int
	perIP   int // 0: no per-address cap
	proxies *clientip.Resolver
	metrics *Metrics
	warn    *logthrottle.Throttle

	refusing chan struct{} // a slot per refusal in progress
	closed   chan struct{}
	close    sync.Once

	mu    sync.Mutex
	open  int
	byKey map[string]int
}

func newConnLimiter(ln net.Listener, maxConns, perIP int, proxies *clientip.Resolver, m *Metrics, log *slog.Logger) *connLimiter {
	return &connLimiter{
		Listener: ln, max: maxConns, perIP: perIP, proxies: proxies, metrics: m,
		warn:     logthrottle.New(log, 0, 0),
		refusing: make(chan struct{}, maxRefusing),
		closed:   make(chan struct{}),
		byKey:    make(map[string]int),
	}
}

// Accept returns the next connection within the caps. Connections over a
// cap are refused here and never returned; a temporary accept error is
// counted, logged (throttled) and retried after a backoff.
func (l *connLimiter) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !isTemporary(err) {
				return nil, err
			}
			l.metrics.acceptErrors.Inc()
			delay = min(max(2*delay, acceptBackoffMin), acceptBackoffMax)
			l.warn.Warn("accept_error", "accept failed, retrying", "wait", delay, "err", err)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.closed:
				t.Stop()
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if lc := l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// Close stops Accept, a backoff in progress included.
func (l *connLimiter) Close() error {
	l.close.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// isTemporary reports whether an accept error is worth retrying: out of
// file descriptors or buffers, a connection reset before it was
// accepted. net/http's Serve tells them apart the same way.
func isTemporary(err error) bool {
	var te interface{ Temporary() bool }
	return !errors.Is(err, net.ErrClosed) && errors.As(err, &te) && te.Temporary()
}

// admit counts c in, or refuses it and returns nil.
func (l *connLimiter) admit(c net.Conn) net.Conn {
	peer := peerAddr(c)
	key := ""
	if l.perIP > 0 && !l.proxies.Trusted(peer) {
		key = clientip.Key(peer)
	}
	l.mu.Lock()
	var reason string
	switch {
	case l.open >= l.max:
		reason = refusedMaxConns
	case key != "" && l.byKey[key] >= l.perIP:
		reason = refusedMaxConnsPerIP
	default:
		l.open++
		if key != "" {
			l.byKey[key]++
		}
	}
	l.mu.Unlock()
	if reason != "" {
		l.refuse(c, reason, peer)
		return nil
	}
	l.metrics.connsOpen.Inc()
	return &limitedConn{Conn: c, l: l, key: key}
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	l.open--
	if key != "" {
		if n := l.byKey[key] - 1; n > 0 {
			l.byKey[key] = n
		} else {
			delete(l.byKey, key)
		}
	}
	l.mu.Unlock()
	l.metrics.connsOpen.Dec()
}

// refuse answers c with a 503 and closes it, on a goroutine of its own
// while fewer than maxRefusing are in progress, else at once without an
// answer.
func (l *connLimiter) refuse(c net.Conn, reason string, peer netip.Addr) {
	l.metrics.connsRefused.WithLabelValues(reason).Inc()
	l.warn.Warn(reason, "connection refused: too many open", "remote", clientip.String(peer),
		"max_conns", l.max, "max_conns_per_ip", l.perIP)
	select {
	case l.refusing <- struct{}{}:
	default:
		_ = c.Close()
		return
	}
	go func() {
		defer func() { <-l.refusing }()
		// The request's head first, briefly: an answer that comes before
		// the client has written its request is, to an HTTP client, an
		// unsolicited response on an idle connection, not a 503.
		_ = c.SetReadDeadline(time.Now().Add(refuseHeadWait))
		readHead(c)
		_ = c.SetDeadline(time.Now().Add(refuseLinger))
		if _, err := io.WriteString(c, refusal); err == nil {
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
			// Read what the client sent (its request), so that Close
			// does not reset the connection under the answer.
			_, _ = io.CopyN(io.Discard, c, refuseDrain)
		}
		_ = c.Close()
	}()
}

// readHead reads from c until the end of an HTTP request head, refuseDrain
// bytes, or an error (the read deadline).
func readHead(c net.Conn) {
	buf := make([]byte, 0, 1024)
	chunk := make([]byte, 1024)
	for len(buf) < refuseDrain {
		n, err := c.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if bytes.Contains(buf, []byte("\r\n\r\n")) || err != nil {
			return
		}
	}
}

// peerAddr is c's remote address.
func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return clientip.Peer(c.RemoteAddr().String())
}

// limitedConn is an admitted connection; closing it frees its place.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	key  string
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// CloseWrite lets net/http half-close the connection after a response
// it must close on (its "lingering close"), so the client reads the
// whole answer before the connection goes.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// effectiveMaxConns is max_conns, lowered if the process's open-file
// limit could not hold that many connections beside fdReserve other
// files: past the limit, accept fails (EMFILE) for everyone, which is
// what the cap is there to prevent.
func effectiveMaxConns(configured int) (int, bool) {
	limit, ok := openFileLimit()
	if !ok || limit <= fdReserve {
		return configured, false
	}
	if room := int(min(limit-fdReserve, 1<<31-1)); room < configured {
		return room, true
	}
	return configured, false
}
