// Package slack is a fake of Slack for tests: real HTTP and WebSocket on
// loopback, speaking the wire protocols that slack-go (its Web API client
// and its socketmode package) speaks to slack.com, so that an adapter
// built on slack-go is exercised end to end.
//
// It serves:
//
//   - the Web API at URL() ("http://127.0.0.1:<port>/api/", what
//     slack.OptionAPIURL takes): auth.test, chat.postMessage, users.info,
//     conversations.info and apps.connections.open, with Slack's JSON
//     envelopes ({"ok":true,...} and {"ok":false,"error":"..."}), its
//     token rules (Authorization: Bearer, or a token field in a form
//     body), its error codes, and its HTTP-level answers (429 with
//     Retry-After, 5xx);
//   - Socket Mode at /link/: the hello message, events_api envelopes that
//     must be acknowledged within a deadline or are redelivered with
//     retry_attempt and retry_reason "timeout", disconnect messages,
//     WebSocket pings, up to ten connections per app with envelopes spread
//     over them, and a queue for events raised while no connection is up;
//   - the Events API over HTTP, the other way round: it posts signed event
//     callbacks to a request URL (the gateway) and retries them as Slack
//     does (X-Slack-Retry-Num, X-Slack-Retry-Reason);
//   - file downloads (url_private) that need the bot token.
//
// One Server hosts any number of workspaces (Team), each with the one app
// under test installed: a bot user with its bot token (xoxb-), the app's
// app-level token (xapp-) and signing secret. Tests add users and
// channels, make users speak (UserSaysIM, Say, Mention, EditMessage,
// JoinChannel, OtherBotSays, ShareFile, RaiseEvent), read what the app did
// (Posted, Calls, Envelopes, Acks, Connections, EventPosts), and inject
// faults (FailNext, RateLimit, Disconnect, DropSockets).
//
// Like Slack, the fake sends the app's own messages back to it as message
// events (with bot_id), so that loop prevention can be tested.
//
// slack-go is pointed at the fake with two options; nothing else changes
// (the WebSocket URL that apps.connections.open returns is the fake's):
//
//	srv, _ := fakeslack.New(fakeslack.Options{AckTimeout: 200 * time.Millisecond})
//	team, _ := srv.AddTeam(fakeslack.TeamOptions{})
//	api := slack.New(team.BotToken(),
//		slack.OptionAPIURL(srv.URL()),                // "http://127.0.0.1:<port>/api/"
//		slack.OptionAppLevelToken(team.AppToken()))  // for apps.connections.open
//	sm := socketmode.New(api)                         // sm.RunContext(ctx) connects to the fake
//	ann := team.AddUser("ann", "Ann Lee")
//	team.UserSaysIM(ann, "hello")                     // an events_api envelope to sm
//
// It must not import "testing": demos may run it too. Callers import it
// as fakeslack.
package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Slack's documented defaults, which Options start from.
const (
	// DefaultAckTimeout is how long Slack waits for a Socket Mode
	// envelope to be acknowledged: three seconds.
	DefaultAckTimeout = 3 * time.Second
	// DefaultEventsTimeout is how long Slack waits for a request URL to
	// answer an Events API request: three seconds.
	DefaultEventsTimeout = 3 * time.Second
	// DefaultMaxConnections is the number of Socket Mode connections
	// Slack allows an app at once.
	DefaultMaxConnections = 10
	// DefaultPingInterval is how often the fake pings each Socket Mode
	// connection. slack-go's socketmode client reconnects when it sees no
	// ping for 30s (OptionPingInterval), so it must be shorter than that.
	DefaultPingInterval = 10 * time.Second
	// DefaultDisconnectGrace is how long the fake keeps a connection open
	// after sending it a refresh_requested or link_disabled disconnect
	// message, before closing it.
	DefaultDisconnectGrace = time.Second
	// MaxMessageLength is the longest text chat.postMessage takes, in
	// characters (Unicode code points).
	MaxMessageLength = 40000
)

// DefaultRetryDelays is Slack's documented retry schedule for events that
// were not acknowledged: three retries, "nearly immediately", after one
// minute and after five minutes.
var DefaultRetryDelays = []time.Duration{0, time.Minute, 5 * time.Minute}

// Options configures a Server. Every field is optional.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string

	// AckTimeout is how long a Socket Mode envelope may go unacknowledged
	// before it counts as failed; default DefaultAckTimeout. Tests set it
	// small.
	AckTimeout time.Duration
	// RetryDelays are the waits, after each failed delivery of an event
	// over Socket Mode, before it is delivered again; its length is the
	// number of retries. nil means DefaultRetryDelays; an empty, non-nil
	// slice means no retries.
	RetryDelays []time.Duration
	// PingInterval is how often each Socket Mode connection is pinged;
	// default DefaultPingInterval.
	PingInterval time.Duration
	// DisconnectGrace is how long a connection stays open after a
	// refresh_requested or link_disabled disconnect message; default
	// DefaultDisconnectGrace.
	DisconnectGrace time.Duration
	// MaxConnections is the number of Socket Mode connections an app may
	// have open at once; default DefaultMaxConnections.
	MaxConnections int

	// EventsTimeout is how long a request URL has to answer an Events API
	// request before it counts as http_timeout; default
	// DefaultEventsTimeout.
	EventsTimeout time.Duration
	// EventsRetryDelays are the waits before each retry of a failed Events
	// API request; nil means DefaultRetryDelays, an empty non-nil slice no
	// retries.
	EventsRetryDelays []time.Duration

	// TruncateLongMessages makes chat.postMessage cut text longer than
	// MaxMessageLength characters down to it, as Slack's documentation
	// says it does, instead of refusing it with msg_too_long.
	TruncateLongMessages bool

	// HTTPClient posts the Events API requests; default a client that
	// does not follow redirects. The fake applies EventsTimeout itself.
	HTTPClient *http.Client
	// Logger receives the fake's logs; default discards.
	Logger *slog.Logger
}

// Server is a running fake Slack. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
	ln     net.Listener
	srv    *http.Server
	root   string // http://127.0.0.1:port

	ctx    context.Context
	cancel context.CancelFunc

	// workers counts the background goroutines (delivery loops, pingers,
	// event posters), handlers the requests being served. Both are only
	// Add-ed under mu while !closed, so Close's Wait never races an Add.
	workers  sync.WaitGroup
	handlers sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	teams   []*Team
	tokens  map[string]tokenRef // bot and app tokens
	tickets map[string]*Team    // unused apps.connections.open tickets
	faults  map[string][]Fault  // by lowercased method; "" matches any
	calls   []Call
	changed chan struct{} // closed and replaced on every new record
	seq     int64         // ids
	lastTS  int64         // the last message ts handed out, in µs
	timers  map[*time.Timer]struct{}
	sockets map[*sockConn]struct{} // every open WebSocket, for Close
}

// New starts a fake Slack: it listens on opts.Addr and serves at once.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.RetryDelays == nil {
		opts.RetryDelays = DefaultRetryDelays
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.DisconnectGrace <= 0 {
		opts.DisconnectGrace = DefaultDisconnectGrace
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = DefaultMaxConnections
	}
	if opts.EventsTimeout <= 0 {
		opts.EventsTimeout = DefaultEventsTimeout
	}
	if opts.EventsRetryDelays == nil {
		opts.EventsRetryDelays = DefaultRetryDelays
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start fake slack: listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    opts,
		log:     log,
		client:  client,
		ln:      ln,
		root:    "http://" + ln.Addr().String(),
		ctx:     ctx,
		cancel:  cancel,
		tokens:  make(map[string]tokenRef),
		tickets: make(map[string]*Team),
		faults:  make(map[string][]Fault),
		changed: make(chan struct{}),
		timers:  make(map[*time.Timer]struct{}),
		sockets: make(map[*sockConn]struct{}),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.workers.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake slack stopped serving", "err", err)
		}
	})
	return s, nil
}

// URL returns the Web API's base URL, "http://127.0.0.1:<port>/api/":
// what slack.OptionAPIURL takes (with the trailing slash, as slack-go
// appends the method name to it).
func (s *Server) URL() string { return s.root + "/api/" }

// Root returns the server's origin, "http://127.0.0.1:<port>".
func (s *Server) Root() string { return s.root }

// Close stops serving, closes every Socket Mode connection without a close
// frame, stops redeliveries and Events API posts, and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	s.timers = nil
	var socks []*sockConn
	for c := range s.sockets {
		socks = append(socks, c)
	}
	s.recordLocked()
	s.mu.Unlock()
	s.cancel()
	for _, c := range socks {
		_ = c.ws.CloseNow()
	}
	// Close, not Shutdown: a client's idle keep-alive connection would
	// hold Shutdown for seconds. Handlers are waited for explicitly.
	err := s.srv.Close()
	s.handlers.Wait()
	s.workers.Wait()
	return err
}

// spawnLocked runs f as a worker unless the server is closed.
func (s *Server) spawnLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.workers.Go(f)
	return true
}

// afterLocked runs f after d, unless the server is closed first. f is
// called with no lock held.
func (s *Server) afterLocked(d time.Duration, f func()) *time.Timer {
	if s.closed {
		return nil
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		delete(s.timers, t)
		s.mu.Unlock()
		f()
	})
	s.timers[t] = struct{}{}
	return t
}

func (s *Server) stopTimerLocked(t *time.Timer) {
	if t == nil {
		return
	}
	t.Stop()
	if s.timers != nil {
		delete(s.timers, t)
	}
}

// recordLocked wakes everyone waiting in Wait.
func (s *Server) recordLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait blocks until cond (called with no lock held) is true, re-checking
// whenever the server records something (a call, a post, an envelope, an
// ack, a connection, an Events API attempt), or until ctx is done.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for fake slack: %w", ctx.Err())
		}
	}
}

// serveHTTP routes the Web API, Socket Mode, file downloads and the
// sign-in page that a download without a token is redirected to.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "server closed", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/api/"):
		s.serveAPI(w, r, strings.TrimPrefix(path, "/api/"))
	case path == "/link" || path == "/link/":
		s.serveLink(w, r)
	case strings.HasPrefix(path, "/files-pri/"):
		s.serveFile(w, r)
	case path == "/" && r.URL.Query().Get("redir") != "":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in to your workspace</body></html>")
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("fake slack: marshal: " + err.Error())
	}
	return b
}

// nextIDLocked returns a Slack-looking id: prefix and ten upper-case
// letters and digits, unique on this server.
func (s *Server) nextIDLocked(prefix string) string {
	s.seq++
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	n := s.seq + 36*36*36*36*36*36 // at least seven digits
	var b []byte
	for n > 0 {
		b = append(b, digits[n%36])
		n /= 36
	}
	for len(b) < 10 {
		b = append(b, '0')
	}
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return prefix + string(b)
}

// nextTSLocked returns a message timestamp, "1700000000.000100": the
// current time in seconds and microseconds, strictly increasing on this
// server, as Slack's ts are unique in a channel.
func (s *Server) nextTSLocked() string {
	now := time.Now().UnixMicro()
	if now <= s.lastTS {
		now = s.lastTS + 1
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now/1e6, now%1e6)
}

// uuidLocked returns a UUID-shaped id, unique on this server, as Slack's
// envelope ids and tickets are.
func (s *Server) uuidLocked() string {
	s.seq++
	n := s.seq
	return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", uint32(n*2654435761), n&0xffff, (n>>4)&0xfff, (n>>8)&0xfff, n*0x9e3779b9&0xffffffffffff)
}

// closeSocketNow closes a WebSocket without a close frame.
func closeSocketNow(ws *websocket.Conn) { _ = ws.CloseNow() }
