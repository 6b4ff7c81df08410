package slack

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/core"
)

// authCodes are Slack's answers to a token it does not take: wrong,
// revoked, expired, or of a deactivated account.
var authCodes = map[string]bool{
	"invalid_auth":     true,
	"not_authed":       true,
	"token_revoked":    true,
	"token_expired":    true,
	"account_inactive": true,
}

// transientCodes are Slack's error codes that a later attempt may not
// get: Slack's own trouble, and (for Send only) a refused token, which
// fails every chat alike until an operator fixes it, when the messages
// should still go out.
var transientCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
	"team_added_to_org":   true,
	"invalid_auth":        true,
	"not_authed":          true,
	"token_revoked":       true,
	"token_expired":       true,
	"account_inactive":    true,
}

// slackCode returns the error code of an {"ok":false} answer, or "".
func slackCode(err error) string {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return se.Err
	}
	return ""
}

// isAuthRefused reports whether Slack refused the token: permanent at
// Start, where nothing works without it.
func isAuthRefused(err error) bool { return authCodes[slackCode(err)] }

// classifySend maps the error of a post to channel to what the core's
// outbox does with it (see core.Messenger):
//
//   - 429: a *core.RetryAfterError with Slack's Retry-After (a second
//     when it gives none).
//   - channel_not_found: core.ErrUnknownChat (the channel was deleted, or
//     it is private and the app is not in it).
//   - not_in_channel: permanent, logged once per channel with how to fix
//     it (invite the app): retrying cannot help until someone does.
//   - missing_scope: permanent, logged once with the scope Slack wants.
//   - is_archived, msg_too_long, restricted_action, invalid_blocks,
//     no_text and any other refusal of the request itself: permanent.
//   - invalid_auth, token_revoked, account_inactive (the token was
//     revoked or the app uninstalled), Slack's internal errors, HTTP
//     5xx, network errors and timeouts: transient, retried with backoff.
func (a *Adapter) classifySend(channel string, err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &core.RetryAfterError{Wait: max(rl.RetryAfter, time.Second), Err: err}
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		if sc.Code == http.StatusTooManyRequests {
			return &core.RetryAfterError{Wait: time.Second, Err: err}
		}
		return err // 5xx: Slack's front end
	}
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		return err // network, timeout
	}
	switch code := se.Err; {
	case code == "ratelimited":
		return &core.RetryAfterError{Wait: time.Second, Err: err}
	case code == "channel_not_found":
		return fmt.Errorf("%w: %w", core.ErrUnknownChat, err)
	case code == "not_in_channel":
		a.logOnce("not_in_channel/"+channel, "the app is not in this channel: invite it there (/invite @<app name>, or the channel's settings → Integrations → Add apps); answers to it are dead-lettered until then",
			"channel", channel)
		return core.Permanent(err)
	case code == "missing_scope":
		a.logOnce("missing_scope", "the bot token lacks a scope: add it under OAuth & Permissions → Bot Token Scopes and reinstall the app",
			"needed", se.Needed, "provided", se.Provided)
		return core.Permanent(err)
	case authCodes[code]:
		a.logOnce("auth/"+code, "Slack refused the bot token; was the app uninstalled or the token revoked? Answers wait until it is fixed", "err", code)
		return err
	case transientCodes[code]:
		return err
	}
	return core.Permanent(err)
}

// logOnce logs an error once per key for an hour: hints about what an
// operator must fix, which every message would repeat otherwise.
func (a *Adapter) logOnce(key, msg string, args ...any) {
	if a.logged.Has(key) {
		return
	}
	a.logged.Put(key, struct{}{})
	a.log.Error(msg, args...)
}
