// Package telegram is a fake of the Telegram Bot API server for tests: real
// HTTP on loopback, the real URL scheme (/bot<token>/<method>) and the real
// JSON shapes ({"ok":true,"result":...} and {"ok":false,"error_code":429,
// "description":"Too Many Requests: retry after 3","parameters":
// {"retry_after":3}}), for the methods Switchboard uses: getMe,
// getUpdates (long polling with offset and timeout semantics, and the
// 409 conflicts), sendMessage (with Telegram's HTML parser and limits),
// sendChatAction, setWebhook, deleteWebhook, getWebhookInfo and getFile.
//
// One Server hosts any number of bots, each with its own token, update
// queue, chats and records, as api.telegram.org does. Tests push user
// updates with Bot.Push (or the helpers), read what the bot did with
// Bot.Sent and Bot.Calls, and inject faults with Bot.FailNext: 429 with
// retry_after, 403 blocked, 5xx, slow responses and dropped connections.
// While a webhook is set, the fake posts updates to it like Telegram does.
//
// It must not import "testing": demos may run it too. Callers import it as
// faketelegram.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. Every field is optional.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0".
	Addr string
	// InsecureWebhooks lets setWebhook take http:// URLs on any port, as
	// a local Bot API server does. Telegram itself wants HTTPS on port
	// 443, 80, 88 or 8443, and so does the fake by default.
	InsecureWebhooks bool
	// WebhookRetry is the wait before a webhook delivery that failed is
	// tried again; default 1s. (Telegram waits longer, and grows it.)
	WebhookRetry time.Duration
	// HTTPClient posts the webhooks; default a client with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives the fake's logs; default discards.
	Logger *slog.Logger
}

// Server is a running fake Bot API server. All methods are safe for
// concurrent use.
type Server struct {
	opts   Options
	log    *slog.Logger
	client *http.Client
	ln     net.Listener
	srv    *http.Server
	root   string

	// ctx is cancelled by Close; long polls, delays and webhook posters
	// watch it so that Close returns promptly.
	ctx    context.Context
	cancel context.CancelFunc

	// workers counts the webhook posters and the serve loop, handlers the
	// requests being answered. Both are only Add-ed under mu while
	// !closed, so Close's Wait never races with an Add.
	workers  sync.WaitGroup
	handlers sync.WaitGroup

	mu     sync.Mutex
	closed bool
	bots   map[string]*Bot // by token
	nextID int64           // bot user ids
}

// New starts a fake server: it listens on opts.Addr and serves at once.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.WebhookRetry <= 0 {
		opts.WebhookRetry = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("start fake telegram: listen on %s: %w", opts.Addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		log:    log,
		client: client,
		ln:     ln,
		root:   "http://" + ln.Addr().String(),
		ctx:    ctx,
		cancel: cancel,
		bots:   make(map[string]*Bot),
		nextID: 7000000000,
	}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	s.workers.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fake telegram stopped serving", "err", err)
		}
	})
	return s, nil
}

// URL returns the API server's base URL, for example
// "http://127.0.0.1:41234": what telego's WithAPIServer and the adapter's
// api_url take.
func (s *Server) URL() string { return s.root }

// Close stops serving, ends long polls and webhook deliveries, and waits
// for them.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	// Every handler and worker watches ctx, so they end at once. The
	// connections are closed rather than drained (http.Server.Shutdown
	// would wait up to 5s for a client's idle connection that never sent
	// a request); the handlers are waited for explicitly instead.
	s.cancel()
	err := s.srv.Close()
	s.handlers.Wait()
	s.workers.Wait()
	return err
}

// tokenRE is the shape of a bot token: the bot's id, a colon and 35
// characters.
var tokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{35}$`)

// AddBot creates a bot with the given token (it must look like a real
// one: "<digits>:<35 characters>") and username (without "@"; default
// "test_bot").
func (s *Server) AddBot(token, username string) (*Bot, error) {
	if !tokenRE.MatchString(token) {
		return nil, errors.New("add fake bot: token must look like 123456:ABC... (digits, a colon and 35 characters)")
	}
	if username == "" {
		username = "test_bot"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("add fake bot: server closed")
	}
	if _, dup := s.bots[token]; dup {
		return nil, errors.New("add fake bot: token already in use")
	}
	s.nextID++
	b := newBot(s, token, s.nextID, username)
	s.bots[token] = b
	return b, nil
}

// TestToken returns a well-formed bot token derived from n, for tests.
func TestToken(n int) string {
	return fmt.Sprintf("%d:AAH%032d", 100000+n, n)
}

// spawn runs f as a worker unless the server is closed.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.workers.Go(f)
	return true
}

func (s *Server) bot(token string) *Bot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bots[token]
}

// serveHTTP routes /bot<token>/<method> and /file/bot<token>/<path>.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeError(w, apiError{code: http.StatusBadGateway, desc: "Bad Gateway"})
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()
	defer s.handlers.Done()
	path := r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/file/bot"); ok {
		token, file, _ := strings.Cut(rest, "/")
		b := s.bot(token)
		if b == nil {
			writeError(w, apiError{code: http.StatusUnauthorized, desc: "Unauthorized"})
			return
		}
		b.serveFile(w, file)
		return
	}
	rest, ok := strings.CutPrefix(path, "/bot")
	if !ok {
		writeError(w, apiError{code: http.StatusNotFound, desc: "Not Found"})
		return
	}
	token, method, _ := strings.Cut(rest, "/")
	b := s.bot(token)
	if b == nil {
		writeError(w, apiError{code: http.StatusUnauthorized, desc: "Unauthorized"})
		return
	}
	b.serveMethod(w, r, method)
}

// apiError is a Bot API error answer.
type apiError struct {
	code       int
	desc       string
	retryAfter int
	migrateTo  int64
}

func (e apiError) Error() string { return fmt.Sprintf("%d %s", e.code, e.desc) }

// errBadRequest is a 400 with Telegram's "Bad Request: " prefix.
func errBadRequest(msg string) apiError {
	return apiError{code: http.StatusBadRequest, desc: "Bad Request: " + msg}
}

func writeError(w http.ResponseWriter, e apiError) {
	body := map[string]any{"ok": false, "error_code": e.code, "description": e.desc}
	params := map[string]any{}
	if e.retryAfter > 0 {
		params["retry_after"] = e.retryAfter
		w.Header().Set("Retry-After", fmt.Sprint(e.retryAfter))
	}
	if e.migrateTo != 0 {
		params["migrate_to_chat_id"] = e.migrateTo
	}
	if len(params) > 0 {
		body["parameters"] = params
	}
	writeJSON(w, e.code, body)
}

func writeResult(w http.ResponseWriter, result any, description string) {
	body := map[string]any{"ok": true, "result": result}
	if description != "" {
		body["description"] = description
	}
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// maxRequestBytes bounds a request body (a sendMessage is a few KB; the
// fake takes no uploads).
const maxRequestBytes = 10 << 20

// params are a request's parameters, from the query string, a form
// (urlencoded or multipart) or a JSON body, as the Bot API accepts all
// four. Form values are strings; JSON values keep their JSON types.
type params map[string]any

func parseParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = v[0]
	}
	if r.Method != http.MethodPost || r.Body == nil {
		return p, nil
	}
	body := http.MaxBytesReader(nil, r.Body, maxRequestBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		raw, err := io.ReadAll(body)
		if err != nil {
			return nil, err
		}
		if len(strings.TrimSpace(string(raw))) == 0 {
			return p, nil
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("can't parse JSON object: %w", err)
		}
		for k, v := range m {
			p[k] = v
		}
	case "application/x-www-form-urlencoded":
		r.Body = body
		if err := r.ParseForm(); err != nil {
			return nil, err
		}
		for k, v := range r.PostForm {
			p[k] = v[0]
		}
	case "multipart/form-data":
		r.Body = body
		if err := r.ParseMultipartForm(maxRequestBytes); err != nil {
			return nil, err
		}
		for k, v := range r.MultipartForm.Value {
			p[k] = v[0]
		}
	}
	return p, nil
}

// str returns a parameter as a string ("" when absent).
func (p params) str(key string) string {
	switch v := p[key].(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	case nil:
		return ""
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// has reports whether a parameter was given.
func (p params) has(key string) bool { _, ok := p[key]; return ok }

// int returns an integer parameter; absent is 0, and a value that is not
// an integer is an error naming the parameter.
func (p params) int(key string) (int64, error) {
	s := p.str(key)
	if s == "" {
		return 0, nil
	}
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != s {
		return 0, errBadRequest(fmt.Sprintf("invalid %s specified", key))
	}
	return n, nil
}

// bool returns a boolean parameter.
func (p params) bool(key string) bool {
	switch v := p[key].(type) {
	case bool:
		return v
	case string:
		return v == "true" || v == "1" || v == "True"
	}
	return false
}

// object decodes a parameter that is a JSON object or array, given either
// as JSON (in a JSON body) or as a JSON-encoded string (in a form).
func (p params) object(key string, out any) error {
	v, ok := p[key]
	if !ok || v == nil {
		return nil
	}
	var raw []byte
	if s, isString := v.(string); isString {
		raw = []byte(s)
	} else {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			return errBadRequest("can't parse " + key)
		}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return errBadRequest("can't parse " + key + " JSON object")
	}
	return nil
}

// webhookURLOK checks a webhook URL as Telegram does: HTTPS on port 443,
// 80, 88 or 8443, unless the server was told to be lenient.
func (s *Server) webhookURLOK(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errBadRequest("bad webhook: Failed to resolve host: Name or service not known")
	}
	if s.opts.InsecureWebhooks {
		if u.Scheme != "http" && u.Scheme != "https" {
			return errBadRequest("bad webhook: An HTTPS URL must be provided for webhook")
		}
		return nil
	}
	if u.Scheme != "https" {
		return errBadRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	switch u.Port() {
	case "", "443", "80", "88", "8443":
		return nil
	}
	return errBadRequest("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
}
