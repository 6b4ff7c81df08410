package selarti

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-gw/switchboard/kit/text"
)

// Operations named by APIError.Op and by Config.Observe.
const (
	OpAuth = "auth"
	OpSend = "send"
)

// Outcomes of one HTTP attempt, as passed to Config.Observe.
const (
	// OutcomeOK: the attempt succeeded.
	OutcomeOK = "ok"
	// OutcomeRetry: the attempt failed in a way that retrying may fix
	// (network error, 5xx, 408, 429, a first 401/403 on send).
	OutcomeRetry = "retry"
	// OutcomeError: the attempt failed in a way that retrying now cannot
	// fix (another 4xx, a malformed answer, the caller gave up).
	OutcomeError = "error"
)

// ErrInvalidMessage is returned by Send, without any I/O, for a Message
// that lacks a task id, chat id or text. IsPermanent reports true for it.
var ErrInvalidMessage = errors.New("invalid message")

// ErrOutcomeUnknown marks a send whose request went out whole and got no
// answer (a timeout, a connection that broke while waiting, the caller
// giving up): Selarti may or may not have the message. Send returns it at
// once, without retrying, when Config.StopOnUnknownOutcome is set, so that
// the caller can look for proof of delivery (the user echo of the "All
// messages" webhook) before it sends again. IsPermanent reports false.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// maxErrorMessage bounds APIError.Message: enough to read Bubble's
// explanation, not enough to drag a whole HTML error page into the logs.
const maxErrorMessage = 200

// APIError is a non-2xx answer from Selarti (or a 2xx answer that cannot
// be used, such as an auth answer without a token).
type APIError struct {
	// Op is OpAuth or OpSend.
	Op string
	// Status is the HTTP status code.
	Status int
	// Message is Bubble's explanation, truncated; it never contains the
	// API key, the bearer token or the chat id of the message sent.
	Message string
	// RetryAfter is the wait Selarti asked for with a Retry-After header
	// (on 429 or 503); zero if none.
	RetryAfter time.Duration
}

// Error returns e.g. "selarti send: status 503: service unavailable".
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "selarti %s: status %d", e.Op, e.Status)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// IsPermanent reports whether retrying the same message cannot help: an
// APIError from send with a 4xx status other than 401, 403, 408 and 429,
// or ErrInvalidMessage. Network errors, 5xx and auth failures are not
// permanent: a wrong API key is fixed by an operator, and the messages
// waiting for that fix must not be dead-lettered meanwhile.
func IsPermanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	var e *APIError
	if !errors.As(err, &e) || e.Op == OpAuth {
		return false
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

// RetryAfter returns the wait Selarti asked for (the Retry-After header of
// a 429 or 503 that Send could not wait for within its budget), and
// whether there was one. The caller's durable queue should not try again
// sooner.
func RetryAfter(err error) (time.Duration, bool) {
	var e *APIError
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// transientStatus reports whether an HTTP status is worth retrying.
func transientStatus(status int) bool {
	return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests
}

// maxRetryAfter keeps an absurd Retry-After from overflowing a Duration;
// any value this large is far beyond a Send's budget anyway.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date (RFC 9110 §10.2.3). It returns 0 for a missing, malformed or
// past value.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}

// errorMessage extracts a short human explanation from an error body:
// Bubble's {"statusCode":400,"body":{"status":"MISSING_DATA","message":"..."}},
// a flat {"status":"...","message":"..."}, or plain text. Every secret
// (the key, the token) is cut out before truncation so that no prefix of
// one can survive either.
func errorMessage(body []byte, status int, secrets ...string) string {
	msg := bubbleMessage(body)
	if msg == "" {
		msg = string(body)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	// One line, printable: the message ends up in logs.
	msg = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, " "))
	msg = strings.Join(strings.Fields(msg), " ")
	if msg == "" {
		msg = strings.ToLower(http.StatusText(status))
	}
	return text.Shorten(msg, maxErrorMessage)
}

// bubbleMessage returns "STATUS: message" from Bubble's error envelope,
// or "" if body is not one.
func bubbleMessage(body []byte) string {
	type detail struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	var env struct {
		Body *detail `json:"body"`
		detail
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	d := env.detail
	if env.Body != nil {
		d = *env.Body
	}
	switch {
	case d.Status != "" && d.Message != "":
		return d.Status + ": " + d.Message
	case d.Message != "":
		return d.Message
	default:
		return d.Status
	}
}
