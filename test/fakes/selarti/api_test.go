package selarti

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

var bubbleIDPattern = regexp.MustCompile(`^\d{13}x\d{18}$`)

func TestNewRequiresKey(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without an API key succeeded")
	}
}

func TestURL(t *testing.T) {
	s := startServer(t, Options{})
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/api/1\.1$`).MatchString(s.URL()) {
		t.Errorf("URL() = %q", s.URL())
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name        string
		ttl         time.Duration
		body        any
		wantStatus  int
		wantExpires float64
	}{
		{name: "right key", body: map[string]any{"key": testKey}, wantStatus: 200, wantExpires: 31536000},
		{name: "right key with ttl", ttl: 90 * time.Minute, body: map[string]any{"key": testKey}, wantStatus: 200, wantExpires: 5400},
		{name: "wrong key", body: map[string]any{"key": "nope"}, wantStatus: 401},
		{name: "missing key", body: map[string]any{"api_key": testKey}, wantStatus: 401},
		{name: "key of wrong type", body: map[string]any{"key": 42}, wantStatus: 401},
		{name: "not json", body: []byte("key=" + testKey), wantStatus: 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Options{TokenTTL: tt.ttl})
			r := newClient(t, s, 5*time.Second).mustPost("/wf/auth", "", tt.body)
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %v)", r.status, tt.wantStatus, r.body)
			}
			if s.AuthCount() != 1 {
				t.Errorf("AuthCount() = %d, want 1", s.AuthCount())
			}
			if tt.wantStatus != 200 {
				inner, _ := r.body["body"].(map[string]any)
				if st := bubbleStatus(t, r); st != "UNAUTHORIZED" || inner["message"] != "Invalid API key" {
					t.Errorf("error body = %v", r.body)
				}
				return
			}
			if r.body["status"] != "success" {
				t.Errorf("status field = %v, want success", r.body["status"])
			}
			resp, _ := r.body["response"].(map[string]any)
			if tok, _ := resp["token"].(string); len(tok) < 20 {
				t.Errorf("token = %q, want a long random string", tok)
			}
			if uid, _ := resp["user_id"].(string); !bubbleIDPattern.MatchString(uid) {
				t.Errorf("user_id = %q, want a Bubble id", uid)
			}
			if resp["expires"] != tt.wantExpires {
				t.Errorf("expires = %v, want %v", resp["expires"], tt.wantExpires)
			}
		})
	}
}

func TestSendRejectsBadToken(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s, 5*time.Second)
	good := c.auth()
	token := strings.TrimPrefix(good, "Bearer ")
	tests := []struct{ name, header string }{
		{name: "no header", header: ""},
		{name: "unknown token", header: "Bearer 0123456789abcdef"},
		{name: "wrong scheme", header: "Basic " + token},
		{name: "empty token", header: "Bearer "},
		{name: "token without scheme", header: token},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.mustPost("/wf/send_external_message", tt.header, map[string]any{
				"task_id": testTask, "chat_id": "c1", "message": "hello",
			})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", r.status)
			}
			if st := bubbleStatus(t, r); st != "UNAUTHORIZED" {
				t.Errorf("body.status = %q, want UNAUTHORIZED", st)
			}
		})
	}
	if n := len(s.Received()); n != 0 {
		t.Errorf("Received() has %d messages after only rejected sends", n)
	}
	c.send(good, "c1", "hello") // the real token still works
}

func TestTokenExpiry(t *testing.T) {
	tests := []struct {
		name   string
		ttl    time.Duration
		expire func(s *Server, clock *fakeClock)
	}{
		{name: "ttl passes", ttl: time.Hour, expire: func(_ *Server, c *fakeClock) { c.advance(time.Hour) }},
		{name: "ExpireTokens", ttl: 0, expire: func(s *Server, c *fakeClock) {
			c.advance(10 * 365 * 24 * time.Hour) // without a TTL, time alone expires nothing
			s.ExpireTokens()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &fakeClock{}
			s := startServerClock(t, Options{TokenTTL: tt.ttl}, clock.now, fastRetry())
			c := newClient(t, s, 5*time.Second)
			old := c.auth()
			c.send(old, "c1", "one")

			clock.advance(tt.ttl - time.Second)
			c.send(old, "c1", "still valid just before expiry")
			clock.advance(time.Second)
			tt.expire(s, clock)

			r := c.mustPost("/wf/send_external_message", old, map[string]any{
				"task_id": testTask, "chat_id": "c1", "message": "two",
			})
			if r.status != http.StatusUnauthorized {
				t.Fatalf("send with expired token: status %d, want 401", r.status)
			}
			fresh := c.auth()
			if fresh == old {
				t.Fatal("re-auth returned the expired token")
			}
			c.send(fresh, "c1", "three")
			if got := s.AuthCount(); got != 2 {
				t.Errorf("AuthCount() = %d, want 2", got)
			}
			var texts []string
			for _, m := range s.ReceivedFor("c1") {
				texts = append(texts, m.Text)
			}
			if want := "one|still valid just before expiry|three"; strings.Join(texts, "|") != want {
				t.Errorf("received %q, want %q", texts, want)
			}
		})
	}
}

func TestSendValidation(t *testing.T) {
	s := startServer(t, Options{Tasks: []string{testTask}})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth()
	valid := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"task_id": testTask, "chat_id": "c1", "message": "hello"}
		edit(m)
		return m
	}
	tests := []struct {
		name string
		body any
	}{
		{name: "missing task", body: valid(func(m map[string]any) { delete(m, "task_id") })},
		{name: "missing chat", body: valid(func(m map[string]any) { delete(m, "chat_id") })},
		{name: "missing text", body: valid(func(m map[string]any) { delete(m, "message") })},
		{name: "blank text", body: valid(func(m map[string]any) { m["message"] = " \n " })},
		{name: "null chat", body: valid(func(m map[string]any) { m["chat_id"] = nil })},
		{name: "unknown task", body: valid(func(m map[string]any) { m["task_id"] = "1x2" })},
		{name: "object where text expected", body: valid(func(m map[string]any) { m["phone"] = map[string]any{"n": 1} })},
		{name: "not json", body: []byte("task_id=1&chat_id=2")},
		{name: "json array", body: []byte(`["hello"]`)},
		{name: "body over 1 MiB", body: valid(func(m map[string]any) { m["message"] = strings.Repeat("a", 1<<20) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.mustPost("/wf/send_external_message", bearer, tt.body)
			if r.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400 (body %v)", r.status, r.body)
			}
			if st := bubbleStatus(t, r); st != "MISSING_DATA" {
				t.Errorf("body.status = %q, want MISSING_DATA", st)
			}
		})
	}
	if n := len(s.Received()); n != 0 {
		t.Fatalf("Received() has %d messages after only invalid sends", n)
	}

	t.Run("numbers and optional fields are accepted", func(t *testing.T) {
		r := c.mustPost("/wf/send_external_message", bearer, map[string]any{
			"task_id": testTask, "chat_id": "c1", "message": "hello",
			"phone": 123456789, "name": "Ann Lee", "username": "ann",
		})
		if r.status != http.StatusOK || r.body["status"] != "success" {
			t.Fatalf("status %d, body %v", r.status, r.body)
		}
		if resp, ok := r.body["response"].(map[string]any); !ok || len(resp) != 0 {
			t.Errorf("response = %v, want {}", r.body["response"])
		}
		got := s.ReceivedFor("c1")
		want := Received{TaskID: testTask, ChatID: "c1", Text: "hello", Name: "Ann Lee", Username: "ann", Phone: "123456789"}
		if len(got) != 1 {
			t.Fatalf("ReceivedFor = %+v", got)
		}
		if got[0].At.IsZero() {
			t.Error("Received.At is zero")
		}
		got[0].At = time.Time{}
		if got[0] != want {
			t.Errorf("received %+v, want %+v", got[0], want)
		}
	})
}

func TestCustomWire(t *testing.T) {
	s := startServer(t, Options{Wire: selarti.Wire{SendPath: "/wf/custom_send", TextField: "text"}})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth() // auth keeps its default path and field
	body := map[string]any{"task_id": testTask, "chat_id": "c1", "text": "hello"}

	if r := c.mustPost("/wf/send_external_message", bearer, body); r.status != http.StatusNotFound {
		t.Errorf("default send path: status %d, want 404", r.status)
	} else if st := bubbleStatus(t, r); st != "NOT_FOUND" {
		t.Errorf("body.status = %q, want NOT_FOUND", st)
	}
	if r := c.mustPost("/wf/custom_send", bearer, body); r.status != http.StatusOK {
		t.Fatalf("custom send path: status %d, body %v", r.status, r.body)
	}
	if got := s.Received(); len(got) != 1 || got[0].Text != "hello" {
		t.Errorf("Received() = %+v", got)
	}
}

func TestMethodAndPath(t *testing.T) {
	s := startServer(t, Options{})
	tests := []struct {
		name, method, path string
		want               int
	}{
		{name: "GET on a workflow", method: http.MethodGet, path: "/api/1.1/wf/auth", want: http.StatusMethodNotAllowed},
		{name: "unknown workflow", method: http.MethodPost, path: "/api/1.1/wf/nope", want: http.StatusNotFound},
		{name: "outside the api", method: http.MethodGet, path: "/", want: http.StatusNotFound},
		{name: "unknown dialog page", method: http.MethodGet, path: "/share/123x456", want: http.StatusNotFound},
	}
	root := strings.TrimSuffix(s.URL(), "/api/1.1")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, root+tt.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
