package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The headers of an Events API request.
const (
	HeaderTimestamp   = "X-Slack-Request-Timestamp"
	HeaderSignature   = "X-Slack-Signature"
	HeaderRetryNum    = "X-Slack-Retry-Num"
	HeaderRetryReason = "X-Slack-Retry-Reason"
	// HeaderNoRetry in an answer (value "1") tells Slack not to retry.
	HeaderNoRetry = "X-Slack-No-Retry"
)

// Kinds of EventPost.
const (
	PostEventCallback   = "event_callback"
	PostURLVerification = "url_verification"
	PostBadSignature    = "bad_signature"
	PostStaleTimestamp  = "stale_timestamp"
	PostRawRequest      = "raw"
)

// Retry reasons of Events API requests, as Slack names them.
const (
	ReasonHTTPTimeout      = "http_timeout"
	ReasonHTTPError        = "http_error"
	ReasonConnectionFailed = "connection_failed"
)

// EventPost is one Events API request the fake made to a request URL, and
// the answer.
type EventPost struct {
	Kind    string // PostEventCallback, PostURLVerification, ...
	EventID string // of an event_callback
	URL     string
	// RetryNum and RetryReason are the X-Slack-Retry-Num and
	// X-Slack-Retry-Reason headers sent: 0 and "" on a first attempt.
	RetryNum    int
	RetryReason string
	Timestamp   string // X-Slack-Request-Timestamp sent
	Signature   string // X-Slack-Signature sent
	Body        []byte
	// Status is the answer's HTTP status; 0 when there was none.
	Status       int
	Answer       string // the answer's body (up to 64 KiB)
	AnswerHeader http.Header
	Err          string // the transport error, if any
	// Failure is why Slack would count the attempt as failed
	// (ReasonHTTPTimeout, ReasonHTTPError, ReasonConnectionFailed); ""
	// for a 2xx answer in time.
	Failure string
	// NoRetry is set when the answer carried X-Slack-No-Retry: 1.
	NoRetry  bool
	Duration time.Duration
	At       time.Time
}

// Sign computes Slack's request signature: "v0=" and the hex HMAC-SHA256,
// keyed with the signing secret, of "v0:{timestamp}:{body}".
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = fmt.Fprintf(mac, "v0:%s:", timestamp)
	_, _ = mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// EventPosts returns every Events API request made to the app, oldest
// first.
func (t *Team) EventPosts() []EventPost {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	out := slices.Clone(t.posts)
	for i := range out {
		out[i].AnswerHeader = out[i].AnswerHeader.Clone()
	}
	return out
}

// EventPostsOf returns the requests that carried one event.
func (t *Team) EventPostsOf(eventID string) []EventPost {
	var out []EventPost
	for _, p := range t.EventPosts() {
		if p.EventID == eventID {
			out = append(out, p)
		}
	}
	return out
}

// WaitEventPosts waits until at least n requests carried an event.
func (t *Team) WaitEventPosts(ctx context.Context, eventID string, n int) error {
	return t.s.Wait(ctx, func() bool { return len(t.EventPostsOf(eventID)) >= n })
}

// PostEvent posts an inner event to url as Slack's Events API does: wrapped
// in an event_callback, signed with the app's signing secret, and retried
// with the same event_id after a failed attempt (an answer other than 2xx,
// no answer within EventsTimeout, or no connection), with
// X-Slack-Retry-Num 1, 2, 3 and X-Slack-Retry-Reason, after
// EventsRetryDelays; not retried after an answer with X-Slack-No-Retry: 1.
// It returns every attempt, and an error when none succeeded.
func (t *Team) PostEvent(ctx context.Context, url string, ev Event) ([]EventPost, error) {
	t.s.mu.Lock()
	ev = maps.Clone(ev)
	if _, ok := ev["event_ts"]; !ok {
		ev["event_ts"] = t.s.nextTSLocked()
	}
	id, payload := t.callbackLocked(ev)
	typ, _ := ev["type"].(string)
	sub, _ := ev["subtype"].(string)
	ch, _ := ev["channel"].(string)
	ts, _ := ev["ts"].(string)
	t.raised = append(t.raised, RaisedEvent{EventID: id, Type: typ, Subtype: sub, Channel: ch, TS: ts, Payload: payload, At: time.Now()})
	t.s.recordLocked()
	t.s.mu.Unlock()
	return t.postWithRetries(ctx, url, id, payload)
}

func (t *Team) postWithRetries(ctx context.Context, url, eventID string, payload []byte) ([]EventPost, error) {
	delays := t.s.opts.EventsRetryDelays
	var out []EventPost
	reason := ""
	for attempt := 0; ; attempt++ {
		p := t.postOnce(ctx, PostEventCallback, url, eventID, payload, time.Now(), t.opts.SigningSecret, attempt, reason)
		out = append(out, p)
		if p.Failure == "" {
			return out, nil
		}
		if p.NoRetry || attempt >= len(delays) || ctx.Err() != nil {
			return out, fmt.Errorf("fake slack: event %s not delivered to %s after %d attempts: %s", eventID, url, len(out), p.Failure)
		}
		reason = p.Failure
		if d := delays[attempt]; d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return out, fmt.Errorf("fake slack: event %s: %w", eventID, ctx.Err())
			}
		}
	}
}

// postOnce makes one signed request and records it.
func (t *Team) postOnce(ctx context.Context, kind, target, eventID string, body []byte, at time.Time, secret string, retryNum int, retryReason string) EventPost {
	ts := strconv.FormatInt(at.Unix(), 10)
	return t.post(ctx, kind, target, eventID, body, ts, Sign(secret, ts, body), retryNum, retryReason)
}

func (t *Team) post(ctx context.Context, kind, target, eventID string, body []byte, ts, sig string, retryNum int, retryReason string) EventPost {
	p := EventPost{Kind: kind, EventID: eventID, URL: target, RetryNum: retryNum, RetryReason: retryReason,
		Timestamp: ts, Signature: sig, Body: body, At: time.Now()}
	rctx, cancel := context.WithTimeout(ctx, t.s.opts.EventsTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		p.Err, p.Failure = err.Error(), ReasonConnectionFailed
		return t.recordPost(p)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	req.Header.Set("Accept", "*/*")
	if ts != "" {
		req.Header.Set(HeaderTimestamp, ts)
	}
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	if retryNum > 0 {
		req.Header.Set(HeaderRetryNum, strconv.Itoa(retryNum))
		req.Header.Set(HeaderRetryReason, retryReason)
	}
	resp, err := t.s.client.Do(req)
	if err == nil {
		var raw []byte
		raw, err = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		p.Status, p.Answer, p.AnswerHeader = resp.StatusCode, string(raw), resp.Header
		p.NoRetry = resp.Header.Get(HeaderNoRetry) == "1"
	}
	p.Duration = time.Since(p.At)
	switch {
	case err != nil && (errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil):
		p.Err, p.Failure = err.Error(), ReasonHTTPTimeout
	case err != nil && p.Status == 0:
		p.Err, p.Failure = err.Error(), ReasonConnectionFailed
	case err != nil:
		// The body did not arrive in time.
		p.Err, p.Failure = err.Error(), ReasonHTTPTimeout
	case p.Status < 200 || p.Status > 299:
		p.Failure = ReasonHTTPError
	}
	return t.recordPost(p)
}

func (t *Team) recordPost(p EventPost) EventPost {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.posts = append(t.posts, p)
	t.s.recordLocked()
	return p
}

// PostURLVerification posts the url_verification challenge Slack sends
// when a request URL is configured, signed. It returns an error unless the
// answer is 200 and echoes the challenge (as plain text, as JSON
// {"challenge": ...} or as a form), which is what Slack accepts.
func (t *Team) PostURLVerification(ctx context.Context, url string) (EventPost, error) {
	t.s.mu.Lock()
	challenge := strings.ReplaceAll(t.s.uuidLocked(), "-", "") + t.s.nextIDLocked("")
	t.s.mu.Unlock()
	body := mustJSON(map[string]any{"token": t.opts.VerificationToken, "challenge": challenge, "type": "url_verification"})
	p := t.postOnce(ctx, PostURLVerification, url, "", body, time.Now(), t.opts.SigningSecret, 0, "")
	if p.Status != http.StatusOK {
		return p, fmt.Errorf("fake slack: url_verification: answer %d %q, want 200 with the challenge", p.Status, p.Answer)
	}
	if !echoesChallenge(p.Answer, challenge) {
		return p, fmt.Errorf("fake slack: url_verification: answer %q does not echo the challenge %q", p.Answer, challenge)
	}
	return p, nil
}

func echoesChallenge(answer, challenge string) bool {
	if strings.TrimSpace(answer) == challenge {
		return true
	}
	var js struct {
		Challenge string `json:"challenge"`
	}
	if json.Unmarshal([]byte(answer), &js) == nil && js.Challenge == challenge {
		return true
	}
	form, err := url.ParseQuery(answer)
	return err == nil && form.Get("challenge") == challenge
}

// PostBadSignature posts an event signed with the wrong secret, once. A
// gateway must refuse it.
func (t *Team) PostBadSignature(ctx context.Context, url string, ev Event) EventPost {
	id, body := t.forge(ev)
	return t.postOnce(ctx, PostBadSignature, url, id, body, time.Now(), t.opts.SigningSecret+"-wrong", 0, "")
}

// PostStale posts a correctly signed event whose timestamp is six minutes
// old, once. Slack's guidance, and slack-go's SecretsVerifier, refuse
// timestamps more than five minutes away.
func (t *Team) PostStale(ctx context.Context, url string, ev Event) EventPost {
	id, body := t.forge(ev)
	return t.postOnce(ctx, PostStaleTimestamp, url, id, body, time.Now().Add(-6*time.Minute), t.opts.SigningSecret, 0, "")
}

// PostRaw posts body to url once with the given timestamp and signature
// headers (either may be empty to leave it out), for forgeries the other
// helpers do not cover.
func (t *Team) PostRaw(ctx context.Context, url string, body []byte, timestamp, signature string) EventPost {
	return t.post(ctx, PostRawRequest, url, "", body, timestamp, signature, 0, "")
}

func (t *Team) forge(ev Event) (string, []byte) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	ev = maps.Clone(ev)
	if _, ok := ev["event_ts"]; !ok {
		ev["event_ts"] = t.s.nextTSLocked()
	}
	return t.callbackLocked(ev)
}
