package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// postSigned posts body to the request URL signed as Slack does, with
// X-Slack-Retry-Num retry (0: none), and returns the status.
func (h *harness) postSigned(t *testing.T, body []byte, retry int) int {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, h.requestURL(), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(fakeslack.HeaderTimestamp, ts)
	req.Header.Set(fakeslack.HeaderSignature, fakeslack.Sign(h.team.SigningSecret(), ts, body))
	if retry > 0 {
		req.Header.Set(fakeslack.HeaderRetryNum, strconv.Itoa(retry))
		req.Header.Set(fakeslack.HeaderRetryReason, fakeslack.ReasonHTTPError)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// imEvent is an event_callback of a user's direct message.
func (h *harness) imEvent(t *testing.T, user int, eventID, ts, text string) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": h.team.ID(), "api_app_id": h.team.AppID(), "event_id": eventID, "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "message", "channel": h.team.IM(h.user(user)).ID, "channel_type": "im", "user": h.user(user).ID,
			"text": text, "ts": ts, "event_ts": ts},
	})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestEventsSignatures: requests with a wrong, stale, malformed or
// missing signature are refused with 401, logged without their body or
// the secret, and never reach the core; a signed one is delivered.
func TestEventsSignatures(t *testing.T) {
	h := newEventsHarness(t, nil)
	h.start(h.a)
	ann := h.user(0)
	im := h.team.IM(ann)
	ctx := ctxTimeout(t)
	ev := fakeslack.Event{"type": "message", "channel": im.ID, "channel_type": "im", "user": ann.ID, "text": "forged secret text", "ts": "1700000000.000100"}
	body := h.imEvent(t, 0, "Ev0FORGED", "1700000000.000200", "forged secret text")
	now := strconv.FormatInt(time.Now().Unix(), 10)
	for name, p := range map[string]fakeslack.EventPost{
		"wrong secret":      h.team.PostBadSignature(ctx, h.requestURL(), ev),
		"stale timestamp":   h.team.PostStale(ctx, h.requestURL(), ev),
		"no headers":        h.team.PostRaw(ctx, h.requestURL(), body, "", ""),
		"no signature":      h.team.PostRaw(ctx, h.requestURL(), body, now, ""),
		"not hex":           h.team.PostRaw(ctx, h.requestURL(), body, now, "v0=zzzz"),
		"another body":      h.team.PostRaw(ctx, h.requestURL(), append(bytes.Clone(body), ' '), now, fakeslack.Sign(h.team.SigningSecret(), now, body)),
		"future timestamp":  h.team.PostRaw(ctx, h.requestURL(), body, strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10), fakeslack.Sign(h.team.SigningSecret(), strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10), body)),
		"another timestamp": h.team.PostRaw(ctx, h.requestURL(), body, strconv.FormatInt(time.Now().Unix()-1, 10), fakeslack.Sign(h.team.SigningSecret(), now, body)),
	} {
		if p.Status != http.StatusUnauthorized {
			t.Errorf("%s: answered %d %q, want 401", name, p.Status, p.Answer)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(h.core.Calls()); n != 0 {
		t.Fatalf("%d forged requests reached the core", n)
	}
	logs := h.logs.String()
	if strings.Count(logs, "events request refused") != 8 || strings.Contains(logs, "forged secret text") || strings.Contains(logs, h.team.SigningSecret()) {
		t.Fatalf("logs:\n%s", logs)
	}
	for _, want := range []string{"bad signature", "timestamp more than five minutes away", "no signature headers", "malformed signature"} {
		if !strings.Contains(logs, want) {
			t.Errorf("no log line says %q", want)
		}
	}
	h.team.UserSaysIM(ann, "a real one")
	eventually(t, "the signed event delivered", func() bool { return slices.Equal(h.core.Texts(), []string{"a real one"}) })
}

// TestEventsURLVerification: Slack's challenge is answered, signed or
// refused like any request.
func TestEventsURLVerification(t *testing.T) {
	h := newEventsHarness(t, nil)
	h.start(h.a)
	if _, err := h.team.PostURLVerification(ctxTimeout(t), h.requestURL()); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"type":"url_verification","token":"x","challenge":"abc"}`)
	if p := h.team.PostRaw(ctxTimeout(t), h.requestURL(), body, "", ""); p.Status != http.StatusUnauthorized {
		t.Fatalf("an unsigned challenge answered %d", p.Status)
	}
}

// TestEventsRetryHandledOnce: a request answered 500 (the core refused
// in time) is retried by Slack with the same event_id and X-Slack-Retry-Num
// 1; it reaches the core once. A retry of an event the core already has
// is answered 200 without a second delivery.
func TestEventsRetryHandledOnce(t *testing.T) {
	h := newEventsHarness(t, nil)
	h.start(h.a)
	h.core.FailWith(func(_ context.Context, call int, _ core.Inbound) error {
		if call == 0 {
			return errors.New("disk full")
		}
		return nil
	})
	r := h.team.UserSaysIM(h.user(0), "hello")
	id := r.EventIDs[0]
	eventually(t, "accepted", func() bool { return len(h.core.Accepted()) == 1 })
	if err := h.team.WaitEventPosts(ctxTimeout(t), id, 2); err != nil {
		t.Fatal(err)
	}
	posts := h.team.EventPostsOf(id)
	if len(posts) != 2 || posts[0].Status != http.StatusInternalServerError || posts[1].Status != http.StatusOK || posts[1].RetryNum != 1 {
		t.Fatalf("posts %+v", posts)
	}
	calls := len(h.core.Calls())
	// Slack retries an event it thinks failed (a timeout on its side).
	if status := h.postSigned(t, h.imEvent(t, 0, id, r.TS, "hello"), 2); status != http.StatusOK {
		t.Fatalf("the retry answered %d", status)
	}
	if n := len(h.core.Calls()); n != calls {
		t.Fatalf("the retry of an accepted event was delivered again (%d calls, was %d)", n, calls)
	}
	if n := len(h.core.Accepted()); n != 1 {
		t.Fatalf("%d accepted", n)
	}
}

// TestEventsLastRetry: Slack's last retry (X-Slack-Retry-Num 3) is answered
// 200 even though the core refused it, and retried in the process.
func TestEventsLastRetry(t *testing.T) {
	h := newEventsHarness(t, nil)
	h.start(h.a)
	h.core.FailWith(func(_ context.Context, call int, _ core.Inbound) error {
		if call < 3 {
			return errors.New("disk full")
		}
		return nil
	})
	body := h.imEvent(t, 0, "Ev0LAST", "1700000000.000100", "the last chance")
	if status := h.postSigned(t, body, 2); status != http.StatusInternalServerError {
		t.Fatalf("retry 2 answered %d, want 500", status)
	}
	if status := h.postSigned(t, body, 3); status != http.StatusOK {
		t.Fatalf("the last retry answered %d, want 200", status)
	}
	eventually(t, "accepted in the process", func() bool { return slices.Contains(h.core.Texts(), "the last chance") })
}

// TestEventsModeMention: in events mode a mention is answered in its
// thread, its message twin acknowledged and ignored.
func TestEventsModeMention(t *testing.T) {
	h := newEventsHarness(t, nil)
	h.start(h.a)
	r := h.team.Mention(h.user(0), h.general, "hi", "")
	eventually(t, "delivered", func() bool { return len(h.core.Accepted()) == 1 })
	for _, id := range r.EventIDs {
		if err := h.team.WaitEventPosts(ctxTimeout(t), id, 1); err != nil {
			t.Fatal(err)
		}
		if p := h.team.EventPostsOf(id); p[0].Status != http.StatusOK {
			t.Fatalf("event %s answered %d", id, p[0].Status)
		}
	}
	if n := len(h.core.Calls()); n != 1 {
		t.Fatalf("%d deliveries", n)
	}
	chat := h.core.Accepted()[0].ChatID
	if err := h.a.Send(ctxTimeout(t), out(chat, "r", "Hello!")); err != nil {
		t.Fatal(err)
	}
	if p := h.team.Posted(h.general.ID); len(p) != 1 || p[0].ThreadTS != r.TS {
		t.Fatalf("posted %+v", p)
	}
}

// TestEventsHandlerEdges: what is not an event request is answered
// sensibly, and nothing reaches the core.
func TestEventsHandlerEdges(t *testing.T) {
	h := newEventsHarness(t, nil)
	body := h.imEvent(t, 0, "Ev0EDGE", "1700000000.000100", "edge")
	// Before Start: Slack is told to send it again.
	if status := h.postSigned(t, body, 0); status != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d", status)
	}
	h.start(h.a)
	resp, err := http.Get(h.requestURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	resp, err = http.Post(h.gw.URL+"/slack/test/other", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another path: %d", resp.StatusCode)
	}
	if status := h.postSigned(t, bytes.Repeat([]byte("x"), maxEventBytes+1), 0); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large: %d", status)
	}
	if status := h.postSigned(t, []byte("not json"), 0); status != http.StatusBadRequest {
		t.Fatalf("not JSON: %d", status)
	}
	unknown := []byte(`{"type":"event_callback","team_id":"` + h.team.ID() + `","event_id":"Ev0X","event":{"type":"no_such_event"}}`)
	if status := h.postSigned(t, unknown, 0); status != http.StatusOK {
		t.Fatalf("an unknown event: %d", status)
	}
	if n := len(h.core.Calls()); n != 0 {
		t.Fatalf("%d calls", n)
	}
}

// TestSocketModeServesNoHTTP: in socket mode the prefix answers 404.
func TestSocketModeServesNoHTTP(t *testing.T) {
	a := newTestAdapter(t, nil)
	rec := &statusRecorder{header: http.Header{}}
	req, _ := http.NewRequest(http.MethodPost, "http://gw/slack/test/events", nil)
	a.ServeHTTP(rec, req)
	if rec.status != http.StatusNotFound {
		t.Fatalf("socket mode served %d", rec.status)
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(s int)           { r.status = s }
