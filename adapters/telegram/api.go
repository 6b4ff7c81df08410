package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mymmrac/telego"
	ta "github.com/mymmrac/telego/telegoapi"

	"github.com/switchboard-gw/switchboard/core"
)

// maxResponseBytes bounds a Bot API answer read into memory. The largest
// answers are getUpdates batches of 100 updates.
const maxResponseBytes = 16 << 20

// newBot builds the telego client. telego's own transport is fasthttp and
// its logger prints the request URL, which holds the token; instead it
// gets apiCaller (net/http through the gateway's transport, errors that
// never show the token) and the discard logger, and requestConstructor
// encodes its requests.
func newBot(cfg *Config, transport http.RoundTripper) (*telego.Bot, error) {
	caller := &apiCaller{
		// No client timeout: every call carries a context deadline that
		// fits it (request_timeout, or poll_timeout plus that for the
		// long poll).
		client: &http.Client{Transport: transport},
		token:  cfg.Token.Reveal(),
	}
	bot, err := telego.NewBot(cfg.Token.Reveal(),
		telego.WithAPIServer(cfg.APIURL),
		telego.WithAPICaller(caller),
		telego.WithRequestConstructor(requestConstructor{}),
		telego.WithDiscardLogger(),
	)
	if err != nil {
		// telego's errors name the option, never the token.
		return nil, fmt.Errorf("config.token: %w", err)
	}
	return bot, nil
}

// apiCaller is telego's transport (a telegoapi.Caller) over net/http.
type apiCaller struct {
	client *http.Client
	token  string
}

// Call posts one Bot API request. A Bot API answer, success or error, is
// returned as a telegoapi.Response, so telego turns errors into
// *telegoapi.Error with Telegram's error_code and parameters. Anything
// else, a network failure or an answer that is not the Bot API's JSON (a
// proxy's 502 page), is a *callError that says whether the request had
// been sent when it failed.
func (c *apiCaller) Call(ctx context.Context, u string, data *ta.RequestData) (*ta.Response, error) {
	method := path.Base(u)
	var body io.Reader
	switch {
	case data.BodyRaw != nil:
		body = bytes.NewReader(data.BodyRaw)
	case data.BodyStream != nil:
		body = data.BodyStream
	default:
		return nil, &callError{method: method, err: errors.New("no request body")}
	}
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			sent.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, u, body)
	if err != nil {
		return nil, c.fail(method, false, 0, err)
	}
	req.Header.Set(ta.ContentTypeHeader, data.ContentType)
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, c.fail(method, sent.Load(), 0, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, c.fail(method, true, resp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	var r ta.Response
	if err := json.Unmarshal(raw, &r); err != nil || (!r.Ok && r.Error == nil) {
		return nil, c.fail(method, true, resp.StatusCode, fmt.Errorf("http status %d, not a Bot API answer", resp.StatusCode))
	}
	if !r.Ok && r.Error.ErrorCode == 0 {
		r.Error.ErrorCode = resp.StatusCode
	}
	return &r, nil
}

// fail builds a callError. A *url.Error quotes the request URL, which
// holds the token: only its cause is kept, and the token is scrubbed from
// the message for good measure.
func (c *apiCaller) fail(method string, sent bool, status int, err error) *callError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	msg := err.Error()
	if c.token != "" {
		msg = strings.ReplaceAll(msg, c.token, "<token>")
	}
	return &callError{method: method, sent: sent, status: status, msg: msg, err: err}
}

// callError is a Bot API request that got no Bot API answer.
type callError struct {
	method string
	// sent is set when the whole request had been written: Telegram may
	// have acted on it even though the answer was lost.
	sent   bool
	status int // the HTTP status, when there was an answer at all
	msg    string
	err    error
}

func (e *callError) Error() string {
	m := e.msg
	if m == "" && e.err != nil {
		m = e.err.Error()
	}
	return e.method + ": " + m
}

func (e *callError) Unwrap() error { return e.err }

// apiErr returns the Bot API error in err's chain, if any.
func apiErr(err error) (*ta.Error, bool) {
	var e *ta.Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// retryAfter returns the wait a 429 asks for.
func retryAfter(err error) (time.Duration, bool) {
	e, ok := apiErr(err)
	if !ok || e.ErrorCode != http.StatusTooManyRequests {
		return 0, false
	}
	wait := time.Second
	if e.Parameters != nil && e.Parameters.RetryAfter > 0 {
		wait = time.Duration(e.Parameters.RetryAfter) * time.Second
	}
	return wait, true
}

// isParseError reports whether Telegram refused a message's formatting.
func isParseError(err error) bool {
	e, ok := apiErr(err)
	return ok && e.ErrorCode == http.StatusBadRequest && strings.Contains(strings.ToLower(e.Description), "can't parse entities")
}

// isTokenRefused reports whether Telegram refused the bot token: 401 for
// a revoked token, 404 for one that never existed.
func isTokenRefused(err error) bool {
	e, ok := apiErr(err)
	return ok && (e.ErrorCode == http.StatusUnauthorized || e.ErrorCode == http.StatusNotFound)
}

// isAmbiguous reports whether a failed request may nevertheless have been
// carried out by Telegram: it was sent, and no answer came back (or a
// success status whose body was lost).
func isAmbiguous(err error) bool {
	var ce *callError
	return errors.As(err, &ce) && ce.sent && (ce.status == 0 || ce.status/100 == 2)
}

// errBlocked marks a chat the bot may not write to any more.
var errBlocked = errors.New("the user blocked the bot, or the bot was removed from the chat")

// classifySend maps the error of a send to chat to what the core's
// outbox does with it (see core.Messenger):
//
//   - 429: a *core.RetryAfterError with Telegram's retry_after.
//   - 403 (blocked, deactivated, kicked) and 400 "chat not found" or a
//     group migrated to a supergroup: permanent; retrying cannot help.
//     The caller remembers 403 chats so later sends fail fast.
//   - other 400s: permanent, the request itself is wrong.
//   - 401 and 404 (the token was revoked), 409, 5xx, network errors and
//     timeouts: transient, the outbox retries with backoff. The token
//     case is transient on purpose: every chat fails alike, and the
//     messages should go out once the token is fixed, not die.
//
// A request that was sent but got no answer is ambiguous: Telegram may
// have delivered the message. It is reported as transient all the same
// (the message is sent again), because the Bot API has no idempotency
// key and a reply sent twice is better than a reply lost.
func classifySend(err error) error {
	if err == nil {
		return nil
	}
	if wait, ok := retryAfter(err); ok {
		return &core.RetryAfterError{Wait: wait, Err: err}
	}
	e, ok := apiErr(err)
	if !ok {
		return err
	}
	desc := strings.ToLower(e.Description)
	switch {
	case e.ErrorCode == http.StatusForbidden:
		return core.Permanent(fmt.Errorf("%w: %w", errBlocked, err))
	case e.ErrorCode == http.StatusBadRequest && e.Parameters != nil && e.Parameters.MigrateToChatID != 0:
		return core.Permanent(fmt.Errorf("the group became supergroup %d: %w", e.Parameters.MigrateToChatID, err))
	case e.ErrorCode == http.StatusBadRequest && (strings.Contains(desc, "chat not found") || strings.Contains(desc, "peer_id_invalid")):
		return fmt.Errorf("%w: %w", core.ErrUnknownChat, err)
	case e.ErrorCode == http.StatusBadRequest:
		return core.Permanent(err)
	}
	return err
}
