// Package selarti is a local simulator of the Selarti endpoints Switchboard
// uses: auth, "Send external message" and the "All messages" webhook. It
// speaks real HTTP on loopback and answers like Selarti (a Bubble.io app)
// does, with a small rule-based assistant (see Respond) in place of the AI.
//
// It serves both the tests (records and fault injection) and the
// `switchboard demo` command, so it is an ordinary package and must not
// import "testing". Callers import it as fakeselarti.
//
// Paths and field names follow core/selarti's Wire, the same mapping the
// real client uses, so a correction of the wire format reaches both.
package selarti

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

// apiPrefix is Bubble's API root; Wire paths are relative to it.
const apiPrefix = "/api/1.1"

// maxConcurrentPosts bounds the webhook POSTs in flight across all dialogs,
// so a load test with thousands of dialogs does not open thousands of
// sockets at once.
const maxConcurrentPosts = 128

// Options configures a Server.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// APIKey is the only API key auth accepts; required.
	APIKey string
	// WebhookURL is where webhooks are POSTed; it may be set later with
	// SetWebhookURL.
	WebhookURL string
	// Wire names paths and fields; empty fields are taken from
	// selarti.DefaultWire.
	Wire selarti.Wire
	// Tasks lists the known task ids; empty accepts any task id.
	Tasks []string
	// TokenTTL is the token lifetime, reported as "expires" and enforced;
	// 0 means tokens never expire.
	TokenTTL time.Duration
	// ThinkTime is the delay before the bot's reply webhook (the demo uses
	// about 600ms so the chat feels natural; tests use 0).
	ThinkTime time.Duration
	// BoolsAsStrings sends webhook flags as "yes"/"no" instead of JSON
	// booleans. Both shapes are seen from Selarti, so the gateway must
	// accept both.
	BoolsAsStrings bool
	// WebhookTries is how many times a webhook POST is tried before it is
	// given up, backing off from 100ms to at most 2s; default 5 (about
	// 1.5s of retries). Selarti's real policy is not documented: the
	// crash test raises it so that a gateway restarting under load still
	// gets the echoes posted while it was down.
	WebhookTries int
	// HTTPClient posts the webhooks; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives request and webhook logs; default discards.
	Logger *slog.Logger
}

// Server is a running Selarti simulator. All methods are safe for
// concurrent use.
type Server struct {
	wire       selarti.Wire
	authPath   string
	sendPath   string
	tasks      map[string]bool
	opts       Options
	log        *slog.Logger
	client     *http.Client
	ownsClient bool
	ln         net.Listener
	srv        *http.Server
	root       string // "http://127.0.0.1:port"
	ids        accountIDs
	sem        chan struct{}
	now        func() time.Time // a fake clock in tests, to expire tokens
	retry      retryPolicy

	// ctx is cancelled by Close; webhook goroutines and delayed responses
	// watch it so that Close returns promptly.
	ctx    context.Context
	cancel context.CancelFunc

	// handlers and workers are only Add-ed under mu while !closed, so
	// Close's Wait never races with an Add.
	handlers sync.WaitGroup
	workers  sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	webhookURL string
	tokens     map[string]time.Time // token → expiry; zero = never
	faults     faults
	dialogs    map[dialogKey]*dialog
	lastByChat map[string]*dialog // InjectOperator only knows the chat id
	threads    map[string]*dialog // thread id → dialog, for the panel pages
	rec        records
}

// accountIDs are the Bubble ids of the simulated company, reported in every
// webhook and auth answer.
type accountIDs struct {
	company, channel, manager, user string
}

// New starts a simulator: it listens on opts.Addr and serves at once.
func New(opts Options) (*Server, error) {
	retry := defaultRetry()
	if opts.WebhookTries > 0 {
		retry.tries = opts.WebhookTries
	}
	return newServer(opts, time.Now, retry)
}

// newServer is New with the clock and the webhook retry policy as
// parameters, so tests can expire tokens and exhaust retries quickly.
func newServer(opts Options, now func() time.Time, retry retryPolicy) (*Server, error) {
	if opts.APIKey == "" {
		return nil, errors.New("start selarti simulator: api key is required")
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, owns := opts.HTTPClient, false
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Keep enough idle connections to the one webhook host that a
		// load test reuses them instead of exhausting ephemeral ports.
		tr.MaxIdleConns = maxConcurrentPosts
		tr.MaxIdleConnsPerHost = maxConcurrentPosts
		client, owns = &http.Client{Timeout: 10 * time.Second, Transport: tr}, true
	}
	wire := opts.Wire.WithDefaults()
	tasks := make(map[string]bool, len(opts.Tasks))
	for _, t := range opts.Tasks {
		tasks[t] = true
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start selarti simulator: listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		wire:       wire,
		authPath:   apiPrefix + leadingSlash(wire.AuthPath),
		sendPath:   apiPrefix + leadingSlash(wire.SendPath),
		tasks:      tasks,
		opts:       opts,
		log:        log,
		client:     client,
		ownsClient: owns,
		ln:         ln,
		root:       "http://" + ln.Addr().String(),
		ids: accountIDs{
			company: newBubbleID(),
			channel: newBubbleID(),
			manager: newBubbleID(),
			user:    newBubbleID(),
		},
		sem:        make(chan struct{}, maxConcurrentPosts),
		now:        now,
		retry:      retry,
		ctx:        ctx,
		cancel:     cancel,
		webhookURL: opts.WebhookURL,
		tokens:     make(map[string]time.Time),
		dialogs:    make(map[dialogKey]*dialog),
		lastByChat: make(map[string]*dialog),
		threads:    make(map[string]*dialog),
		rec:        records{changed: make(chan struct{})},
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.workers.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("selarti simulator stopped serving", "err", err)
		}
	})
	s.log.Info("selarti simulator listening", "url", s.URL())
	return s, nil
}

// URL returns the API base URL, including "/api/1.1", for example
// "http://127.0.0.1:41234/api/1.1".
func (s *Server) URL() string { return s.root + apiPrefix }

// SetWebhookURL sets where webhooks are POSTed from now on; webhooks
// already queued use the new URL too.
func (s *Server) SetWebhookURL(u string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = u
}

// Close stops the listener, cancels pending webhooks and their retries, and
// waits for every goroutine the server started. Calling it again is a no-op.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.rec.notifyLocked() // wake WaitReceived / WaitIdle callers
	s.mu.Unlock()

	// Close the connections first, so that a request cut short by the
	// cancel below cannot still get an answer out.
	err := s.srv.Close()
	s.cancel()
	s.handlers.Wait()
	s.workers.Wait()
	if s.ownsClient {
		s.client.CloseIdleConnections()
	}
	s.log.Info("selarti simulator stopped")
	if err != nil {
		return fmt.Errorf("close selarti simulator: %w", err)
	}
	return nil
}

// serveHTTP counts the request as in flight (so Close can wait for it),
// dispatches it and logs the outcome. Keys and tokens are never logged.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeBubbleError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "server is shutting down", 0)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()

	start := time.Now()
	rw := &recorder{ResponseWriter: w}
	switch {
	case strings.HasPrefix(r.URL.Path, apiPrefix+"/"):
		s.serveAPI(rw, r)
	case r.Method == http.MethodGet && (strings.HasPrefix(r.URL.Path, panelPrefix) || strings.HasPrefix(r.URL.Path, sharePrefix)):
		s.servePanel(rw, r)
	case strings.HasPrefix(r.URL.Path, operatorPrefix):
		s.serveOperator(rw, r)
	default:
		writeBubbleError(rw, http.StatusNotFound, "NOT_FOUND", "page not found", 0)
	}
	s.log.Debug("selarti request", "method", r.Method, "path", r.URL.Path,
		"status", rw.status, "chat", rw.chat, "dur", time.Since(start))
}

// serveAPI applies the global faults (delay, down) and routes the request
// to a workflow.
func (s *Server) serveAPI(w *recorder, r *http.Request) {
	body, bodyErr := readBody(w, r)
	s.mu.Lock()
	delay := s.faults.delay
	s.mu.Unlock()
	if delay > 0 && !s.wait(r.Context(), delay) {
		// The client gave up (nothing happened, nobody to answer) or we
		// are closing.
		if s.ctx.Err() != nil {
			writeBubbleError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "server is shutting down", 0)
		}
		return
	}

	s.mu.Lock()
	down := s.faults.down
	s.mu.Unlock()
	if down {
		writeBubbleError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "Bubble is temporarily unavailable", 0)
		return
	}

	switch r.URL.Path {
	case s.authPath, s.sendPath:
	default:
		writeBubbleError(w, http.StatusNotFound, "NOT_FOUND", "Workflow not found "+strings.TrimPrefix(r.URL.Path, apiPrefix), 0)
		return
	}
	if r.Method != http.MethodPost {
		writeBubbleError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "workflows accept POST only", 0)
		return
	}
	if r.URL.Path == s.authPath {
		s.handleAuth(w, body)
		return
	}
	s.handleSend(w, r, body, bodyErr)
}

// wait sleeps for d; it reports false when ctx or the server is done first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.ctx.Done():
		return false
	}
}

// recorder remembers the status and chat id for the request log line.
type recorder struct {
	http.ResponseWriter
	status int
	chat   string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer to flush.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func leadingSlash(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	return "/" + p
}
