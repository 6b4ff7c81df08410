package selarti

import (
	"github.com/switchboard-gw/switchboard/core/selarti"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFailNext(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter time.Duration
		wantHeader string
		wantCode   string
	}{
		{name: "429 with retry-after", status: 429, retryAfter: 3 * time.Second, wantHeader: "3", wantCode: "TOO_MANY_REQUESTS"},
		{name: "retry-after rounds up", status: 503, retryAfter: 1500 * time.Millisecond, wantHeader: "2", wantCode: "SERVICE_UNAVAILABLE"},
		{name: "500 without retry-after", status: 500, wantCode: "SERVER_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{})
			c := newClient(t, s, 5*time.Second)
			bearer := c.auth()
			s.FailNext(2, tt.status, tt.retryAfter)
			body := map[string]any{"task_id": testTask, "chat_id": "c1", "message": "hello"}
			// Injected failures come before the token check: even a
			// request without a token gets the injected status.
			for i, token := range []string{bearer, ""} {
				r := c.mustPost("/wf/send_external_message", token, body)
				if r.status != tt.status {
					t.Fatalf("send %d: status %d, want %d", i, r.status, tt.status)
				}
				if got := r.header.Get("Retry-After"); got != tt.wantHeader {
					t.Errorf("send %d: Retry-After = %q, want %q", i, got, tt.wantHeader)
				}
				if code := bubbleStatus(t, r); code != tt.wantCode {
					t.Errorf("send %d: body.status = %q, want %q", i, code, tt.wantCode)
				}
			}
			if n := len(s.Received()); n != 0 {
				t.Fatalf("failed sends were recorded: %d", n)
			}
			// Auth is not a send: it is not affected.
			bearer = c.auth()
			c.send(bearer, "c1", "hello")
			if n := len(s.Received()); n != 1 {
				t.Errorf("Received() has %d messages, want 1", n)
			}
		})
	}
}

func TestSetDown(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth()
	s.SetDown(true)
	requests := []struct {
		name, path, token string
		body              map[string]any
	}{
		{name: "auth", path: "/wf/auth", body: map[string]any{"key": testKey}},
		{name: "send", path: "/wf/send_external_message", token: bearer, body: map[string]any{"task_id": testTask, "chat_id": "c1", "message": "hi"}},
		{name: "unknown workflow", path: "/wf/other", body: map[string]any{}},
	}
	for _, tt := range requests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.mustPost(tt.path, tt.token, tt.body)
			if r.status != http.StatusServiceUnavailable {
				t.Fatalf("status = %d, want 503", r.status)
			}
			bubbleStatus(t, r)
		})
	}
	if s.AuthCount() != 1 || len(s.Received()) != 0 {
		t.Errorf("while down: AuthCount %d, received %d; want 1 and 0", s.AuthCount(), len(s.Received()))
	}
	s.SetDown(false)
	c.send(c.auth(), "c1", "hi")
}

func TestSetDelay(t *testing.T) {
	t.Run("delays the answer", func(t *testing.T) {
		s := startServer(t, Options{})
		c := newClient(t, s, 5*time.Second)
		const d = 150 * time.Millisecond
		s.SetDelay(d)
		start := time.Now()
		bearer := c.auth()
		if el := time.Since(start); el < d {
			t.Errorf("auth answered after %s, want at least %s", el, d)
		}
		s.SetDelay(0)
		c.send(bearer, "c1", "hello")
	})

	t.Run("a client that gives up leaves nothing behind", func(t *testing.T) {
		s := startServer(t, Options{})
		patient := newClient(t, s, 5*time.Second)
		bearer := patient.auth()
		s.SetDelay(time.Minute)
		impatient := newClient(t, s, 100*time.Millisecond)
		_, err := impatient.post("/wf/send_external_message", bearer, map[string]any{
			"task_id": testTask, "chat_id": "c1", "message": "lost",
		})
		if err == nil {
			t.Fatal("send succeeded despite a one-minute delay")
		}
		// The handler must notice the disconnect long before the minute
		// is over, and return without recording anything.
		eventually(t, 2*time.Second, "the delayed handler to return", func() bool {
			for _, g := range ownGoroutines() {
				if strings.Contains(g, "serveAPI") {
					return false
				}
			}
			return true
		})
		s.SetDelay(0)
		patient.send(bearer, "c1", "kept")
		got := s.Received()
		if len(got) != 1 || got[0].Text != "kept" {
			t.Errorf("Received() = %+v, want only the message sent after the delay", got)
		}
	})
}

func TestSetAckDelay(t *testing.T) {
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth()
	s.SetAckDelay(time.Minute)
	impatient := newClient(t, s, 200*time.Millisecond)
	if _, err := impatient.post("/wf/send_external_message", bearer, map[string]any{
		"task_id": testTask, "chat_id": "c1", "message": "hello",
	}); err == nil {
		t.Fatal("send answered despite a one-minute ack delay")
	}
	// The client saw a failure, yet Selarti has the message and answers.
	ctx := ctxTimeout(t, 5*time.Second)
	if err := s.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.Received(); len(got) != 1 {
		t.Fatalf("Received() = %+v, want the message", got)
	}
	got := rc.payloads()
	if len(got) != 2 || got[1]["message_text"] != Reply("hello") {
		t.Errorf("webhooks = %v, want the user message and the reply", got)
	}
}

func TestIdempotencyKeyDropsRepeats(t *testing.T) {
	wire := selarti.DefaultWire()
	wire.IdempotencyKeyField = "client_message_id"
	srv := startServer(t, Options{Wire: wire})
	c := newClient(t, srv, 5*time.Second)
	token := c.auth()
	send := func(text, key string) {
		t.Helper()
		r := c.mustPost(wire.SendPath, token, map[string]any{"task_id": "t", "chat_id": "web:1", "message": text, "client_message_id": key})
		if r.status != http.StatusOK {
			t.Fatalf("send status %d", r.status)
		}
	}
	send("hi", "web:m1")
	send("hi", "web:m1")
	send("hi", "web:m1")
	send("hi again", "web:m2")
	if got := len(srv.Received()); got != 2 {
		t.Fatalf("received %d messages, want 2 (repeats dropped)", got)
	}
	if srv.Repeats() != 2 || srv.Received()[0].IdempotencyKey != "web:m1" {
		t.Fatalf("Repeats() = %d, first key %q; want 2, web:m1", srv.Repeats(), srv.Received()[0].IdempotencyKey)
	}
}
