package selarti

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// refreshFraction of a token's announced lifetime passes before we fetch a
// new one: refreshing a little early means a send never races the expiry.
const refreshFraction = 0.9

// authCall is one auth request in flight; every caller that needs a token
// meanwhile waits for it instead of starting its own (no stampede).
type authCall struct {
	done  chan struct{} // closed when token and err are set
	token string
	err   error
}

// tokenState is the cached bearer token, guarded by Client.mu.
type tokenState struct {
	token     string
	refreshAt time.Time // zero: no announced lifetime, use until a 401/403
	inflight  *authCall
}

// token returns a bearer token: the cached one if it is fresh, otherwise
// the result of an auth request (joining one already in flight). A cached
// token equal to avoid is not used: a send has just been refused with it.
// force skips the cache altogether (Authenticate).
func (c *Client) token(ctx context.Context, avoid string, force bool) (string, error) {
	if err := context.Cause(ctx); err != nil {
		// Don't start a detached auth request for a caller that is gone.
		return "", fmt.Errorf("selarti auth: %w", err)
	}
	c.mu.Lock()
	st := &c.tok
	if !force && st.inflight == nil && st.token != "" && st.token != avoid &&
		(st.refreshAt.IsZero() || c.now().Before(st.refreshAt)) {
		tok := st.token
		c.mu.Unlock()
		return tok, nil
	}
	call := st.inflight
	if call == nil {
		call = &authCall{done: make(chan struct{})}
		st.inflight = call
		// The request runs detached from this caller's cancellation:
		// other callers may be waiting for it, and one of them giving up
		// must not fail the rest. c.timeout still bounds it.
		go c.runAuth(context.WithoutCancel(ctx), call)
	}
	c.mu.Unlock()

	select {
	case <-call.done:
		return call.token, call.err
	case <-ctx.Done():
		return "", fmt.Errorf("selarti auth: %w", context.Cause(ctx))
	}
}

// runAuth performs one auth request for call and publishes its result.
func (c *Client) runAuth(ctx context.Context, call *authCall) {
	tok, ttl, err := c.authenticateOnce(ctx)

	c.mu.Lock()
	if err == nil {
		c.tok.token = tok
		c.tok.refreshAt = time.Time{}
		if ttl > 0 {
			c.tok.refreshAt = c.now().Add(time.Duration(float64(ttl) * refreshFraction))
		}
	}
	c.tok.inflight = nil
	c.mu.Unlock()

	call.token, call.err = tok, err
	close(call.done)
}

// dropToken forgets tok if it is still the cached token, so that the next
// send authenticates again. A newer token fetched meanwhile is kept.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	if c.tok.token == tok {
		c.tok.token = ""
		c.tok.refreshAt = time.Time{}
	}
	c.mu.Unlock()
}

// authResponse is Bubble's envelope around the auth workflow's result.
type authResponse struct {
	Status   string `json:"status"`
	Response struct {
		Token string `json:"token"`
		// Expires is the token's lifetime in seconds; optional, and
		// read leniently (a number or a numeric string) because Bubble's
		// typing of it is not documented.
		Expires json.RawMessage `json:"expires"`
	} `json:"response"`
}

// authenticateOnce exchanges the API key for a token: one HTTP attempt,
// no retry (the caller's retry loop decides). It returns the token and
// its announced lifetime (0 if none).
func (c *Client) authenticateOnce(ctx context.Context) (string, time.Duration, error) {
	body, err := json.Marshal(map[string]string{c.wire.AuthKeyField: c.key})
	if err != nil {
		return "", 0, fmt.Errorf("selarti auth: encode request: %w", err)
	}
	res, err := c.do(ctx, OpAuth, c.authURL, "", body)
	if err != nil {
		c.observe(OpAuth, outcomeOf(ctx), res.elapsed)
		return "", 0, err
	}
	if res.status < 200 || res.status > 299 {
		apiErr := c.apiError(OpAuth, res, "")
		outcome := OutcomeError
		if transientStatus(res.status) {
			outcome = OutcomeRetry
		} else {
			// A refused key needs an operator; say so loudly, once per
			// refusal (the key itself is never part of apiErr).
			c.log.Error("selarti authentication refused", "status", res.status, "err", apiErr)
		}
		c.observe(OpAuth, outcome, res.elapsed)
		return "", 0, apiErr
	}

	if res.bodyErr != nil {
		c.observe(OpAuth, outcomeOf(ctx), res.elapsed)
		return "", 0, fmt.Errorf("selarti auth: read answer: %w", res.bodyErr)
	}
	var ar authResponse
	if err := json.Unmarshal(res.body, &ar); err != nil || ar.Response.Token == "" {
		apiErr := &APIError{Op: OpAuth, Status: res.status, Message: "answer carries no token"}
		c.log.Error("selarti authentication answer unusable", "status", res.status, "err", apiErr)
		c.observe(OpAuth, OutcomeError, res.elapsed)
		return "", 0, apiErr
	}
	ttl := parseExpires(ar.Response.Expires)
	c.observe(OpAuth, OutcomeOK, res.elapsed)
	c.log.Debug("selarti authenticated", "expires", ttl)
	return ar.Response.Token, ttl, nil
}

// maxTokenLifetime caps an announced lifetime so that a silly value
// cannot overflow a Duration; a token is re-fetched at least this often.
const maxTokenLifetime = 30 * 24 * time.Hour

// parseExpires reads the auth answer's "expires" (seconds) from a JSON
// number or a numeric string. Anything else means "no announced
// lifetime": the token is then used until a send is refused with it.
func parseExpires(raw json.RawMessage) time.Duration {
	var n json.Number
	if len(raw) == 0 || json.Unmarshal(raw, &n) != nil {
		return 0
	}
	secs, err := n.Float64()
	if err != nil || secs <= 0 {
		return 0
	}
	if secs >= maxTokenLifetime.Seconds() {
		return maxTokenLifetime
	}
	return time.Duration(secs * float64(time.Second))
}

// isAuthRefusal reports whether status means the token was not accepted.
func isAuthRefusal(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
