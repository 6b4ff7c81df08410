package core

import (
	"errors"
	"fmt"
	"time"
)

// ErrUnknownChat means the chat does not exist (any more) on the network,
// or was never seen by the gateway. Retrying cannot help.
var ErrUnknownChat = errors.New("unknown chat")

// ErrNotConnected means the Messenger is not (yet, or no longer) connected.
// The core retries.
var ErrNotConnected = errors.New("not connected")

// RetryAfterError says the remote side asked us to wait before trying
// again: Telegram's retry_after, Discord's 429 retry_after, Slack's and
// Selarti's Retry-After.
type RetryAfterError struct {
	Wait time.Duration
	Err  error
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("retry after %s: %v", e.Wait, e.Err)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// PermanentError wraps an error that retrying cannot fix: the user blocked
// the bot, the token was revoked, the request is invalid.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }

func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err in a *PermanentError; it returns nil for nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err (or an error it wraps) is a
// *PermanentError or ErrUnknownChat.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p) || errors.Is(err, ErrUnknownChat)
}

// RetryAfter returns the wait asked for by a *RetryAfterError in err's
// chain, and whether there was one.
func RetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.Wait, true
	}
	return 0, false
}
