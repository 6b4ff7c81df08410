package selarti

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
)

// Defaults for Config.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMaxElapsed = 30 * time.Second
	// DefaultMaxIdleConns matches the gateway's default number of
	// delivery workers (delivery.workers).
	DefaultMaxIdleConns = 16
)

// Retry pacing of one Send. Bubble answers 429 at about 1,000 requests a
// minute per app, so the backoff starts small but backs off fast, and
// never waits longer than maxInterval between two attempts.
const (
	initialInterval = 200 * time.Millisecond
	maxInterval     = 5 * time.Second
	multiplier      = 2
	jitter          = 0.5
)

// maxBody bounds how much of a response we read: Selarti's answers are
// tiny, and a misbehaving proxy must not make us buffer gigabytes.
const maxBody = 1 << 20

// Config configures a Client. Only BaseURL and APIKey are required.
type Config struct {
	// BaseURL is Selarti's API root, e.g. "https://selarti.com/api/1.1".
	// A trailing slash is tolerated.
	BaseURL string
	// APIKey is exchanged for a bearer token. It is never logged and
	// never part of an error string.
	APIKey string
	// Wire names paths and fields; empty fields take DefaultWire's.
	Wire Wire
	// Timeout bounds each HTTP attempt; default DefaultTimeout.
	Timeout time.Duration
	// MaxElapsed is the total retry budget of one Send; default
	// DefaultMaxElapsed. A Send may still run up to Timeout past it
	// (the budget is checked before each wait, not during an attempt).
	MaxElapsed time.Duration
	// HTTPClient sends the requests. The default has no global timeout,
	// since Timeout bounds each attempt through its context. A client on
	// the default transport (Transport nil or http.DefaultTransport) is
	// copied onto a transport of this Client's own, tuned by MaxIdleConns;
	// a client with any other Transport is used as it is.
	HTTPClient *http.Client
	// MaxIdleConns is how many idle connections to Selarti are kept for
	// reuse: set it to the number of Sends that run in parallel (the
	// gateway's delivery workers), or each burst beyond it opens new
	// connections. It does not cap the connections open at once. Default
	// DefaultMaxIdleConns; negative is an error.
	MaxIdleConns int
	// StopOnUnknownOutcome makes Send end at once with an error wrapping
	// ErrOutcomeUnknown when an attempt's request went out and got no
	// answer, instead of retrying it: a retry would duplicate the message
	// if Selarti had taken it. Failures before the request went out, and
	// every answered failure, are retried as usual. The gateway sets it
	// when it reconciles sends by Selarti's echoes; without an idempotency
	// key, leaving it unset makes Send at least once.
	StopOnUnknownOutcome bool
	// Logger receives warnings and errors; default: discard.
	Logger *slog.Logger
	// Observe, if set, is called once per HTTP attempt, for metrics: op
	// is OpAuth or OpSend, outcome is OutcomeOK, OutcomeRetry (transient
	// failure) or OutcomeError (permanent failure), d is the attempt's
	// duration. It must be fast and safe for concurrent use.
	Observe func(op, outcome string, d time.Duration)
}

// LogValue keeps the API key out of logs even if the whole Config is
// logged by mistake.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("base_url", core.RedactURL(c.BaseURL)),
		slog.String("api_key", "[REDACTED]"),
		slog.Duration("timeout", c.Timeout),
		slog.Duration("max_elapsed", c.MaxElapsed),
	)
}

// String keeps the API key out of fmt output (%v, %+v) of a Config.
func (c Config) String() string {
	return fmt.Sprintf("selarti.Config{BaseURL: %q, APIKey: [REDACTED], Timeout: %s, MaxElapsed: %s}", core.RedactURL(c.BaseURL), c.Timeout, c.MaxElapsed)
}

// GoString keeps the API key out of %#v output of a Config.
func (c Config) GoString() string { return c.String() }

// Message is one user message for Selarti's "Send external message".
type Message struct {
	// TaskID is the Selarti task (a Web task) the dialog belongs to.
	TaskID string
	// ChatID is the namespaced chat id ("webchat:abc123"); Selarti keeps
	// one dialog per chat id and sends it back as external_chat_id.
	ChatID string
	// Text is the message text.
	Text string
	// Name, Username and Phone describe the user; each is sent only when
	// non-empty.
	Name, Username, Phone string
	// IdempotencyKey is the same for every send of one message; it is sent
	// in Wire.IdempotencyKeyField when that is set.
	IdempotencyKey string
}

// Client talks to Selarti's HTTP API. It is safe for concurrent use.
//
// Delivery is at-least-once: Selarti documents no idempotency key, so when
// an attempt times out after the request was written, Send cannot know
// whether Selarti took the message, and its retry may duplicate it. Set
// Wire.IdempotencyKeyField if your Selarti drops repeats by a key.
type Client struct {
	authURL       string
	sendURL       string
	key           string
	wire          Wire
	timeout       time.Duration
	maxElapsed    time.Duration
	http          *http.Client
	log           *slog.Logger
	observeFn     func(op, outcome string, d time.Duration)
	stopOnUnknown bool
	now           func() time.Time // a seam for tests of token expiry
	initial       time.Duration    // first retry interval; a seam for tests

	mu  sync.Mutex
	tok tokenState
}

// New validates cfg and returns a Client. It does no I/O: the first Send
// (or Authenticate) fetches a token.
func New(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.APIKey == "" {
		return nil, errors.New("selarti config: api key is required")
	}
	if cfg.Timeout < 0 || cfg.MaxElapsed < 0 {
		return nil, errors.New("selarti config: timeout and max elapsed must not be negative")
	}
	if cfg.MaxIdleConns < 0 {
		return nil, errors.New("selarti config: max idle conns must not be negative")
	}
	idle := cfg.MaxIdleConns
	if idle == 0 {
		idle = DefaultMaxIdleConns
	}
	wire := cfg.Wire.WithDefaults()
	if err := checkWire(wire); err != nil {
		return nil, err
	}
	c := &Client{
		authURL:       joinURL(base, wire.AuthPath),
		sendURL:       joinURL(base, wire.SendPath),
		key:           cfg.APIKey,
		wire:          wire,
		timeout:       cfg.Timeout,
		maxElapsed:    cfg.MaxElapsed,
		http:          httpClient(cfg.HTTPClient, idle),
		log:           cfg.Logger,
		observeFn:     cfg.Observe,
		stopOnUnknown: cfg.StopOnUnknownOutcome,
		now:           time.Now,
		initial:       initialInterval,
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxElapsed == 0 {
		c.maxElapsed = DefaultMaxElapsed
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// parseBaseURL checks that raw is an absolute http(s) URL and returns it
// without a trailing slash.
func parseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("selarti config: base url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes raw, credentials and all.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", fmt.Errorf("selarti config: base url %q: %w", core.RedactURL(raw), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("selarti config: base url %q: must be an absolute http or https url", core.RedactURL(raw))
	}
	return strings.TrimRight(raw, "/"), nil
}

// joinURL tolerates a path written with or without its leading slash.
func joinURL(base, path string) string {
	return base + "/" + strings.TrimLeft(path, "/")
}

// checkWire rejects send fields that collide: two values written to one
// JSON field would silently lose one of them.
func checkWire(w Wire) error {
	seen := map[string]bool{}
	for _, f := range []string{w.TaskIDField, w.ChatIDField, w.TextField, w.NameField, w.UsernameField, w.PhoneField, w.IdempotencyKeyField} {
		if f == "" {
			continue // only the optional idempotency field may be empty
		}
		if seen[f] {
			return fmt.Errorf("selarti config: wire: send field %q is used twice", f)
		}
		seen[f] = true
	}
	return nil
}

// Authenticate fetches a fresh token now, replacing the cached one (or
// joins an auth request already in flight). It makes one attempt and does
// not retry, which suits a readiness check.
func (c *Client) Authenticate(ctx context.Context) error {
	_, err := c.token(ctx, "", true)
	return err
}

// Send posts one user message to Selarti, authenticating first when no
// valid token is cached. Transient failures (network errors, timeouts,
// 5xx, 408, 429) are retried with exponential backoff and jitter within
// Config.MaxElapsed, honouring Retry-After. A Retry-After longer than what
// is left of the budget ends Send at once with an *APIError whose
// RetryAfter says when to try again.
//
// Errors: *APIError for Selarti's answers (see IsPermanent and
// RetryAfter), ErrInvalidMessage for an incomplete m, the context's error
// when ctx ends first, otherwise a network error (transient).
//
// Send is at-least-once: a retry after a timeout may duplicate the
// message at Selarti, which documents no idempotency key, unless
// Config.StopOnUnknownOutcome hands that case to the caller (an error
// wrapping ErrOutcomeUnknown).
func (c *Client) Send(ctx context.Context, m Message) error {
	body, err := c.encode(m)
	if err != nil {
		return err
	}
	var (
		st      = sendState{chat: m.ChatID}
		lastErr error
	)
	attempt := func() (struct{}, error) {
		lastErr = c.sendAttempt(ctx, body, &st)
		return struct{}{}, lastErr
	}
	_, err = backoff.Retry(ctx, attempt,
		backoff.WithBackOff(&backoff.ExponentialBackOff{
			InitialInterval:     c.initial,
			RandomizationFactor: jitter,
			Multiplier:          multiplier,
			MaxInterval:         maxInterval,
		}),
		backoff.WithMaxElapsedTime(c.maxElapsed),
		backoff.WithNotify(func(err error, wait time.Duration) {
			c.log.Warn("selarti send retry", "wait", wait, "err", err)
		}),
	)
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil && err == cause {
		// backoff returns the bare cause; keep the last real failure too,
		// it is what an operator needs to see.
		if lastErr != nil && !errors.Is(lastErr, cause) {
			return fmt.Errorf("selarti send: %w (last error: %w)", cause, stripHint(lastErr))
		}
		return fmt.Errorf("selarti send: %w", cause)
	}
	return stripHint(err)
}

// encode validates m and builds the JSON body of "Send external message".
func (c *Client) encode(m Message) ([]byte, error) {
	var missing []string
	if m.TaskID == "" {
		missing = append(missing, "task id")
	}
	if m.ChatID == "" {
		missing = append(missing, "chat id")
	}
	if m.Text == "" {
		missing = append(missing, "text")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("selarti send: %w: missing %s", ErrInvalidMessage, strings.Join(missing, ", "))
	}
	var buf [7]member // room for all of Wire's send fields
	fields := append(buf[:0],
		member{c.wire.TaskIDField, m.TaskID},
		member{c.wire.ChatIDField, m.ChatID},
		member{c.wire.TextField, m.Text})
	for _, f := range [...]member{
		{c.wire.NameField, m.Name},
		{c.wire.UsernameField, m.Username},
		{c.wire.PhoneField, m.Phone},
		{c.wire.IdempotencyKeyField, m.IdempotencyKey},
	} {
		if f.key != "" && f.value != "" {
			fields = append(fields, f)
		}
	}
	size := 3 // {}\n
	for _, f := range fields {
		size += len(f.key) + len(f.value) + 6 // quotes, colon, comma
	}
	// The text goes to an AI, not into HTML: <, > and & stay as they are.
	return appendObject(make([]byte, 0, size+size/8), fields), nil
}

// sendState is what one Send remembers across its attempts.
type sendState struct {
	// reauthed: the one re-authentication after a 401/403 was spent.
	reauthed bool
	// refused is the token Selarti refused, never to be used again.
	refused string
	// chat is the message's chat id, which an answer's error message may
	// quote: it is cut from the error (a webchat chat id is a credential,
	// and the caller knows the chat anyway).
	chat string
}

// sendAttempt is one attempt of Send: get a token, post the message, and
// after a first 401/403 re-authenticate and post once more. Errors that
// retrying cannot fix are wrapped in backoff.Permanent to stop the loop.
func (c *Client) sendAttempt(ctx context.Context, body []byte, st *sendState) error {
	tok, err := c.token(ctx, st.refused, false)
	if err != nil {
		return authStep(err)
	}
	res, err := c.do(ctx, OpSend, c.sendURL, tok, body)
	if err != nil {
		c.observe(OpSend, outcomeOf(ctx), res.elapsed)
		if res.wrote {
			err = fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			if c.stopOnUnknown {
				return backoff.Permanent(err)
			}
		}
		return err
	}
	switch s := res.status; {
	case s >= 200 && s <= 299:
		c.observe(OpSend, OutcomeOK, res.elapsed)
		return nil
	case isAuthRefusal(s):
		apiErr := c.apiError(OpSend, res, tok, st.chat)
		if st.reauthed {
			c.observe(OpSend, OutcomeError, res.elapsed)
			return backoff.Permanent(apiErr)
		}
		c.observe(OpSend, OutcomeRetry, res.elapsed)
		c.log.Debug("selarti token refused, authenticating again", "status", s)
		st.reauthed, st.refused = true, tok
		c.dropToken(tok)
		return c.sendAttempt(ctx, body, st)
	case transientStatus(s):
		c.observe(OpSend, OutcomeRetry, res.elapsed)
		return withHint(c.apiError(OpSend, res, tok, st.chat))
	default:
		c.observe(OpSend, OutcomeError, res.elapsed)
		return backoff.Permanent(c.apiError(OpSend, res, tok, st.chat))
	}
}

// authStep decides whether a failed auth inside Send is worth retrying
// within this Send: a network error or a 5xx/408/429 is, a refused key is
// not (only an operator can fix it; the caller's queue retries later,
// since IsPermanent is false for auth errors).
func authStep(err error) error {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	if transientStatus(apiErr.Status) {
		return withHint(apiErr)
	}
	return backoff.Permanent(err)
}

// jsonMIME is the Content-Type and Accept of every request. Read-only.
var jsonMIME = []string{"application/json"}

// httpResult is one HTTP exchange.
type httpResult struct {
	status  int
	header  http.Header
	body    []byte // at most maxBody bytes
	bodyErr error  // reading the body failed part-way
	elapsed time.Duration
	// wrote: the whole request went out (on a failure: Selarti may have
	// taken it).
	wrote bool
}

// do POSTs body to url as JSON, bounded by c.timeout. A non-nil error is a
// transport failure (no status); every status comes back in httpResult.
func (c *Client) do(ctx context.Context, op, url, token string, body []byte) (httpResult, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return httpResult{}, fmt.Errorf("selarti %s: build request: %w", op, err)
	}
	// Canonical keys set directly, and a value slice shared by every
	// request: net/http only reads a request's headers.
	req.Header["Content-Type"] = jsonMIME
	req.Header["Accept"] = jsonMIME
	if token != "" {
		req.Header["Authorization"] = []string{"Bearer " + token}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		res := httpResult{elapsed: time.Since(start), wrote: wrote.Load()}
		if ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
			return res, fmt.Errorf("selarti %s: attempt timed out after %s: %w", op, c.timeout, err)
		}
		return res, fmt.Errorf("selarti %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return httpResult{
		status:  resp.StatusCode,
		header:  resp.Header,
		body:    b,
		bodyErr: err,
		elapsed: time.Since(start),
	}, nil
}

// apiError builds the error for a non-2xx answer; token is redacted from
// the message along with the API key, and so is the chat id of the
// message sent, if any.
func (c *Client) apiError(op string, res httpResult, token string, chat ...string) *APIError {
	e := &APIError{Op: op, Status: res.status, Message: errorMessage(res.body, res.status, append([]string{c.key, token}, chat...)...)}
	if res.status == http.StatusTooManyRequests || res.status == http.StatusServiceUnavailable {
		e.RetryAfter = parseRetryAfter(res.header.Get("Retry-After"), c.now())
	}
	return e
}

// observe reports one HTTP attempt to Config.Observe, if set.
func (c *Client) observe(op, outcome string, d time.Duration) {
	if c.observeFn != nil {
		c.observeFn(op, outcome, d)
	}
}

// outcomeOf classifies a transport failure: transient, unless the caller
// itself gave up (then nothing will retry it).
func outcomeOf(ctx context.Context) string {
	if ctx.Err() != nil {
		return OutcomeError
	}
	return OutcomeRetry
}

// retryAfterHint carries an *APIError through backoff.Retry together with
// a *backoff.RetryAfterError, so that backoff waits what Selarti asked and
// gives up when that is beyond the budget. Send strips it again.
type retryAfterHint struct {
	err  *APIError
	wait *backoff.RetryAfterError
}

func (h *retryAfterHint) Error() string   { return h.err.Error() }
func (h *retryAfterHint) Unwrap() []error { return []error{h.err, h.wait} }

// withHint wraps e for backoff when it asks for a wait.
func withHint(e *APIError) error {
	if e.RetryAfter > 0 {
		return &retryAfterHint{err: e, wait: &backoff.RetryAfterError{Duration: e.RetryAfter}}
	}
	return e
}

// stripHint undoes withHint.
func stripHint(err error) error {
	if h, ok := err.(*retryAfterHint); ok {
		return h.err
	}
	return err
}
