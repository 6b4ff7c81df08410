// Package discord is a fake of Discord for tests: the REST API (v9 and
// v10 paths) and the gateway WebSocket on loopback, speaking Discord's
// wire protocol so that a real client library (discordgo) is exercised end
// to end: gateway discovery, HELLO, IDENTIFY, READY and GUILD_CREATE,
// heartbeats, dispatches with per-session sequence numbers, RESUME with a
// replay of what the session missed, INVALID_SESSION, RECONNECT and
// Discord's close codes; messages, DMs, replies, threads, typing, history
// with before/after/around, Discord's JSON error bodies and codes, and its
// rate-limit headers and 429s.
//
// One Server hosts any number of bots (applications), guilds, channels and
// users. Tests make users post (Server.UserSays, Server.Post), read what a
// bot did (Bot.Sent, Bot.Typing, Bot.Calls, Bot.Identifies, Bot.Resumes,
// Bot.Hangups) and inject faults (Bot.FailNext for REST; DropSockets,
// CloseSockets, Reconnect and InvalidateSessions for the gateway).
//
// Message content follows Discord's rule: a bot receives a message's
// content, embeds, attachments and components in MESSAGE_CREATE only if it
// identified with the MESSAGE_CONTENT intent, or the message is in a DM
// with it, was sent by it, or mentions it.
//
// # Pointing a client at the fake
//
// The REST API is served at Origin()+"/api/v9" and Origin()+"/api/v10",
// the paths Discord has (discordgo v0.29.0 builds its endpoints at init
// from APIVersion "9"). A discordgo client needs one thing: an http.Client
// (Session.Client) whose Transport rewrites the scheme and host of every
// https://discord.com/... request to the fake's Origin(), leaving the path
// alone (see the package example). Nothing else is rewritten: Open calls
// GET /api/v9/gateway, and the fake answers with its own ws:// URL, which
// discordgo then dials with its own Dialer, appending "?v=9&encoding=json";
// attachment URLs point at the fake as well.
//
// It must not import "testing": demos and benchmarks may run it too.
// Callers import it as fakediscord.
package discord

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. Every field is optional.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// HeartbeatInterval is HELLO's heartbeat_interval; default 41.25s, as
	// Discord. Tests set it small. It is sent in whole milliseconds.
	HeartbeatInterval time.Duration
	// HeartbeatTimeout, when set, closes a connection that sent no
	// heartbeat for that long with 4009 Session timed out (the session is
	// then gone). Zero does not enforce heartbeats.
	HeartbeatTimeout time.Duration
	// ReplayBuffer is how many dispatches a session keeps for RESUME;
	// default 1000. A RESUME from further back gets INVALID_SESSION.
	ReplayBuffer int
	// SessionTTL is how long a disconnected session stays resumable;
	// default 3 minutes ("a few minutes", says Discord).
	SessionTTL time.Duration
	// RouteLimit requests per RouteWindow are allowed per bot, route and
	// channel, as X-RateLimit-* report; more are answered 429 (scope
	// user). Default 1000 per second, which tests do not reach; set for
	// example 5 per 5s (Discord's limit of messages in a channel) to see
	// a client pace itself.
	RouteLimit  int
	RouteWindow time.Duration
	// GlobalLimit, when set, is the requests per second a bot may make
	// (Discord: 50); more are answered with a global 429.
	GlobalLimit int
	// HistoryLimit, when set, is how many messages a channel keeps; older
	// ones are forgotten (a long benchmark's memory stays bounded).
	HistoryLimit int
	// CompressPayloads sends every dispatch as a zlib-compressed binary
	// frame to connections whose IDENTIFY had "compress": true (Discord's
	// payload compression; discordgo sets it by default).
	CompressPayloads bool
	// Logger receives the fake's logs; default discards.
	Logger *slog.Logger
}

// Server is a running fake Discord. All methods are safe for concurrent
// use.
type Server struct {
	opts   Options
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server
	origin string // "http://127.0.0.1:port"
	wsBase string // "ws://127.0.0.1:port"

	ctx    context.Context
	cancel context.CancelFunc
	// handlers counts requests and gateway connections being served;
	// workers the serve loop and connection writers. Both are Add-ed under
	// mu while !closed.
	handlers sync.WaitGroup
	workers  sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	changed  chan struct{} // closed and replaced on every record or state change
	lastID   uint64
	bots     map[string]*Bot // by token
	revoked  map[string]*Bot // revoked tokens, to record their attempts
	botsByID map[string]*Bot
	users    map[string]User // every user by id, bots included
	guilds   []*Guild
	channels map[string]*channel
	conns    map[*gwConn]struct{}
	calls    []Call
	// strangers are IDENTIFYs with an unknown token.
	strangers []Identify
	faults    map[string][]Fault // server-wide, by route; "" any
	files     map[string]*Attachment
	buckets   map[string]*window
	globals   map[string]*window
	noACKs    bool
	// unrecorded stops the records of calls and of what bots did.
	unrecorded bool
}

// New starts a fake Discord: it listens on opts.Addr and serves at once.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = 41250 * time.Millisecond
	}
	if opts.ReplayBuffer <= 0 {
		opts.ReplayBuffer = 1000
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 3 * time.Minute
	}
	if opts.RouteLimit <= 0 {
		opts.RouteLimit = 1000
	}
	if opts.RouteWindow <= 0 {
		opts.RouteWindow = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start fake discord: listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:     opts,
		log:      log,
		ln:       ln,
		origin:   "http://" + ln.Addr().String(),
		wsBase:   "ws://" + ln.Addr().String(),
		ctx:      ctx,
		cancel:   cancel,
		changed:  make(chan struct{}),
		bots:     make(map[string]*Bot),
		revoked:  make(map[string]*Bot),
		botsByID: make(map[string]*Bot),
		users:    make(map[string]User),
		channels: make(map[string]*channel),
		conns:    make(map[*gwConn]struct{}),
		faults:   make(map[string][]Fault),
		files:    make(map[string]*Attachment),
		buckets:  make(map[string]*window),
		globals:  make(map[string]*window),
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.workers.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake discord stopped serving", "err", err)
		}
	})
	return s, nil
}

// URL returns the REST API base, "http://127.0.0.1:<port>/api/v10".
func (s *Server) URL() string { return s.origin + "/api/v10" }

// Origin returns "http://127.0.0.1:<port>": what a client's transport puts
// in place of https://discord.com (the fake serves /api/v9 and /api/v10
// below it, as Discord does).
func (s *Server) Origin() string { return s.origin }

// GatewayURL returns the gateway's WebSocket URL, as GET /gateway reports
// it: "ws://127.0.0.1:<port>/gateway".
func (s *Server) GatewayURL() string { return s.wsBase + "/gateway" }

// resumeURL is READY's resume_gateway_url. It is served like the gateway;
// records tell which one a client used.
func (s *Server) resumeURL() string { return s.wsBase + "/resume" }

// Close stops serving, closes every gateway connection without a close
// frame, and waits for the handlers.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	conns := make([]*gwConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Close()
	for _, c := range conns {
		_ = c.ws.CloseNow()
	}
	s.handlers.Wait()
	s.workers.Wait()
	return err
}

// AddBot creates a bot user and its application (same id, as for apps
// made since 2022) with the given token (any string without spaces; see
// TestToken) and username (default "test_bot"). Every privileged intent
// is enabled for it, as if switched on in the developer portal.
func (s *Server) AddBot(token, username string) (*Bot, error) {
	if token == "" || strings.ContainsAny(token, " \t\r\n") {
		return nil, errors.New("add fake discord bot: token must be non-empty without spaces")
	}
	if strings.HasPrefix(token, "Bot ") {
		return nil, errors.New(`add fake discord bot: give the token without "Bot "`)
	}
	if username == "" {
		username = "test_bot"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("add fake discord bot: server closed")
	}
	if _, dup := s.bots[token]; dup {
		return nil, errors.New("add fake discord bot: token already in use")
	}
	delete(s.revoked, token)
	id := s.newIDLocked()
	b := newBot(s, token, User{ID: id, Username: username, Bot: true})
	s.bots[token] = b
	s.botsByID[id] = b
	s.users[id] = b.user
	s.broadcastLocked()
	return b, nil
}

// TestToken returns a bot token of Discord's shape (base64 of an id, a
// timestamp part and an HMAC part) derived from n.
func TestToken(n int) string {
	id := base64.RawStdEncoding.EncodeToString([]byte(strconv.Itoa(1200000000000000000 + n)))
	return fmt.Sprintf("%s.GfAkE%d.%038d", id, n%10, n)
}

// NewUser creates a person with a fresh id. globalName is the display
// name ("" for none).
func (s *Server) NewUser(username, globalName string) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := User{ID: s.newIDLocked(), Username: username, GlobalName: globalName}
	s.users[u.ID] = u
	return u
}

// Bot returns the bot with the given user id.
func (s *Server) Bot(id string) (*Bot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.botsByID[id]
	return b, ok
}

// newIDLocked returns a fresh snowflake: the time since Discord's epoch in
// its top 42 bits, strictly greater than every id given out before.
func (s *Server) newIDLocked() string {
	ms := uint64(time.Now().UnixMilli() - discordEpoch)
	id := ms<<22 | 1<<17 // worker 1, process 0, increment 0
	if id <= s.lastID {
		id = s.lastID + 1
	}
	s.lastID = id
	return strconv.FormatUint(id, 10)
}

// broadcastLocked wakes every Wait.
func (s *Server) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait blocks until cond (called with no lock held) is true, re-checking
// whenever the fake records something or a session changes, or until ctx
// is done.
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
			return fmt.Errorf("wait for fake discord: %w", ctx.Err())
		}
	}
}

// Calls returns every REST request received, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// FailNext queues faults for the next REST requests of route (a template
// such as "POST /channels/{id}/messages"; "" matches any), whoever makes
// them. Bot.FailNext limits faults to one bot. Each is used once, in
// order.
func (s *Server) FailNext(route string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], faults...)
}

// StopRecording stops keeping the records of REST calls and of what bots
// sent, edited, deleted, typed and reacted (Calls, Sent, Edits, Typing,
// ...): a benchmark's memory then does not grow with them. What was kept
// stays readable; Observe still sees every message sent; history, sessions
// and faults work as before (see Options.HistoryLimit for the history).
func (s *Server) StopRecording() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unrecorded = true
}

// WithholdHeartbeatACKs makes the gateway stop (or resume) answering
// heartbeats with op 11: the connection looks "zombied" to the client.
func (s *Server) WithholdHeartbeatACKs(withhold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noACKs = withhold
}

// serveHTTP routes the REST API, the gateway and attachment downloads.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, http.StatusBadGateway, errorBody(http.StatusBadGateway, 0, "502: Bad Gateway", nil))
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	path := r.URL.Path
	switch {
	case path == "/gateway" || path == "/gateway/" || path == "/resume" || path == "/resume/":
		s.serveGateway(w, r)
	case strings.HasPrefix(path, "/api/"):
		s.serveREST(w, r)
	case strings.HasPrefix(path, "/attachments/"):
		s.serveAttachment(w, r)
	default:
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, 0, "404: Not Found", nil))
	}
}

// serveAttachment serves /attachments/{channel}/{id}/{filename}, the path
// of Discord's CDN, on the fake.
func (s *Server) serveAttachment(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/attachments/"), "/")
	if len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	a := s.files[parts[1]]
	s.mu.Unlock()
	if a == nil || a.Filename != parts[2] {
		http.NotFound(w, r)
		return
	}
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Data)))
	_, _ = w.Write(a.Data)
}

// randomHex returns n random bytes in hex (session ids are 32 characters).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// idLess compares two snowflakes numerically.
func idLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// isSnowflake reports whether s is a decimal id.
func isSnowflake(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}
