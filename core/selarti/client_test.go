package selarti

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const testKey = "sk-SECRET-key-0123456789"

// reply is one scripted answer of the fake.
type reply struct {
	status int
	header map[string]string
	body   string
	hang   bool // block until the client gives up
	drop   bool // close the connection without an answer
}

// sendRecord is one request to the send path, as the fake saw it.
type sendRecord struct {
	auth        string
	contentType string
	body        map[string]any
	status      int
}

// fake is a minimal Selarti for these tests: auth hands out tok-1, tok-2,
// ...; send answers scripted replies, then 200.
type fake struct {
	srv *httptest.Server

	mu          sync.Mutex
	expires     any // the auth answer's "expires", if non-nil
	authReplies []reply
	sendReplies []reply
	authBodies  []map[string]any
	authN       int
	sends       []sendRecord
	authGate    chan struct{} // if set, auth waits for it to close
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{}
	mux := http.NewServeMux()
	w := DefaultWire()
	mux.HandleFunc("POST /api/1.1"+w.AuthPath, f.auth)
	mux.HandleFunc("POST /api/1.1"+w.SendPath, f.send)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) url() string { return f.srv.URL + "/api/1.1" }

func (f *fake) auth(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	gate := f.authGate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	f.authN++
	n := f.authN
	f.authBodies = append(f.authBodies, body)
	var rep *reply
	if len(f.authReplies) > 0 {
		rep = &f.authReplies[0]
		f.authReplies = f.authReplies[1:]
	}
	expires := f.expires
	f.mu.Unlock()

	if rep != nil {
		write(w, r, *rep)
		return
	}
	if body["key"] != testKey {
		// A careless server echoing the key: it must not reach errors.
		write(w, r, reply{status: 401, body: fmt.Sprintf(`{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"bad key %v"}}`, body["key"])})
		return
	}
	resp := map[string]any{"token": fmt.Sprintf("tok-%d", n), "user_id": "u1"}
	if expires != nil {
		resp["expires"] = expires
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "response": resp})
}

func (f *fake) send(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	f.mu.Lock()
	rec := sendRecord{auth: r.Header.Get("Authorization"), contentType: r.Header.Get("Content-Type"), body: body, status: 200}
	rep := reply{status: 200, body: `{"status":"success","response":{}}`}
	if len(f.sendReplies) > 0 {
		rep = f.sendReplies[0]
		f.sendReplies = f.sendReplies[1:]
	}
	if !rep.hang && !rep.drop {
		rec.status = rep.status
	} else {
		rec.status = 0
	}
	f.sends = append(f.sends, rec)
	f.mu.Unlock()
	write(w, r, rep)
}

func write(w http.ResponseWriter, r *http.Request, rep reply) {
	switch {
	case rep.hang:
		<-r.Context().Done()
		return
	case rep.drop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write([]byte(rep.body))
}

func (f *fake) authCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.authN
}

func (f *fake) sendLog() []sendRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sendRecord(nil), f.sends...)
}

// delivered counts sends that the fake accepted (2xx).
func (f *fake) delivered() int {
	n := 0
	for _, s := range f.sendLog() {
		if s.status >= 200 && s.status <= 299 {
			n++
		}
	}
	return n
}

// syncBuffer collects logs from many goroutines.
type syncBuffer = testutil.SyncBuffer

// observation is one Observe call.
type observation struct{ op, outcome string }

// recorder collects Observe calls.
type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) observe(op, outcome string, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, observation{op, outcome})
}

func (r *recorder) list() []observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]observation(nil), r.obs...)
}

// testClient builds a client for f with fast retries, a debug log
// captured in logs, and Observe recorded in obs.
func testClient(t *testing.T, f *fake, mod func(*Config)) (c *Client, logs *syncBuffer, obs *recorder) {
	t.Helper()
	logs, obs = &syncBuffer{}, &recorder{}
	cfg := Config{
		BaseURL:    f.url() + "/",
		APIKey:     testKey,
		Timeout:    2 * time.Second,
		MaxElapsed: 5 * time.Second,
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Observe:    obs.observe,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c.initial = 10 * time.Millisecond
	t.Cleanup(func() {
		// Whatever a test did, neither secret may have reached the logs.
		if s := logs.String(); strings.Contains(s, testKey) {
			t.Errorf("log output contains the api key:\n%s", s)
		}
	})
	return c, logs, obs
}

var testMsg = Message{TaskID: "1721129985149x478019552540622850", ChatID: "webchat:abc123", Text: "Hello <b>&"}

func TestSendBody(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want map[string]any
	}{
		{
			name: "required fields only",
			msg:  testMsg,
			want: map[string]any{"task_id": testMsg.TaskID, "chat_id": "webchat:abc123", "message": "Hello <b>&"},
		},
		{
			name: "all fields",
			msg:  Message{TaskID: "t1", ChatID: "tg-sales:42", Text: "hi", Name: "Ann Lee", Username: "ann", Phone: "123456789"},
			want: map[string]any{"task_id": "t1", "chat_id": "tg-sales:42", "message": "hi", "name": "Ann Lee", "username": "ann", "phone": "123456789"},
		},
		{
			name: "some optional fields",
			msg:  Message{TaskID: "t1", ChatID: "c", Text: "hi", Username: "ann"},
			want: map[string]any{"task_id": "t1", "chat_id": "c", "message": "hi", "username": "ann"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c, _, _ := testClient(t, f, nil)
			if err := c.Send(context.Background(), tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			sends := f.sendLog()
			if len(sends) != 1 {
				t.Fatalf("got %d send requests, want 1", len(sends))
			}
			if got := sends[0].auth; got != "Bearer tok-1" {
				t.Errorf("Authorization = %q, want %q", got, "Bearer tok-1")
			}
			if got := sends[0].contentType; got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			if !reflect.DeepEqual(sends[0].body, tt.want) {
				t.Errorf("body = %v, want %v", sends[0].body, tt.want)
			}
			if got, want := f.authBodies[0], map[string]any{"key": testKey}; !reflect.DeepEqual(got, want) {
				t.Errorf("auth body = %v, want the key under %q", got, "key")
			}
		})
	}
}

func TestSendCustomWire(t *testing.T) {
	f := newFake(t)
	var got map[string]any
	mux := http.NewServeMux()
	mux.HandleFunc("POST /base/login", f.auth)
	mux.HandleFunc("POST /base/msg", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL + "/base", APIKey: testKey, Wire: Wire{AuthPath: "login", SendPath: "/msg", TextField: "text"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(context.Background(), testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got["text"] != testMsg.Text || got["chat_id"] != testMsg.ChatID {
		t.Errorf("body = %v, want text under %q and default names elsewhere", got, "text")
	}
}

func TestTokenCachedAcrossSends(t *testing.T) {
	f := newFake(t)
	c, _, _ := testClient(t, f, nil)
	for i := range 5 {
		if err := c.Send(context.Background(), testMsg); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if n := f.authCount(); n != 1 {
		t.Errorf("auth calls = %d, want 1", n)
	}
	for i, s := range f.sendLog() {
		if s.auth != "Bearer tok-1" {
			t.Errorf("send %d: Authorization = %q", i, s.auth)
		}
	}
}

func TestReauthOnRefusal(t *testing.T) {
	for _, status := range []int{401, 403} {
		t.Run(fmt.Sprintf("%d once", status), func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = []reply{{status: status, body: `{"statusCode":401,"body":{"status":"UNAUTHORIZED","message":"expired"}}`}}
			c, _, obs := testClient(t, f, nil)
			if err := c.Send(context.Background(), testMsg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if n := f.authCount(); n != 2 {
				t.Errorf("auth calls = %d, want 2", n)
			}
			if n := f.delivered(); n != 1 {
				t.Errorf("delivered %d times, want exactly 1", n)
			}
			sends := f.sendLog()
			if last := sends[len(sends)-1].auth; last != "Bearer tok-2" {
				t.Errorf("retry used %q, want the fresh token", last)
			}
			want := []observation{{OpAuth, OutcomeOK}, {OpSend, OutcomeRetry}, {OpAuth, OutcomeOK}, {OpSend, OutcomeOK}}
			if got := obs.list(); !reflect.DeepEqual(got, want) {
				t.Errorf("observations = %v, want %v", got, want)
			}
		})
		t.Run(fmt.Sprintf("%d twice", status), func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = []reply{{status: status}, {status: status}, {status: status}}
			c, _, _ := testClient(t, f, nil)
			err := c.Send(context.Background(), testMsg)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != status || apiErr.Op != OpSend {
				t.Fatalf("err = %v, want APIError send %d", err, status)
			}
			if IsPermanent(err) {
				t.Error("IsPermanent = true for a refused token, want false")
			}
			if n := len(f.sendLog()); n != 2 {
				t.Errorf("send requests = %d, want 2 (one retry only)", n)
			}
			if n := f.authCount(); n != 2 {
				t.Errorf("auth calls = %d, want 2", n)
			}
		})
	}
}

func TestProactiveRefresh(t *testing.T) {
	tests := []struct {
		name    string
		expires any
	}{
		{"number", 100},
		{"numeric string", "100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.expires = tt.expires
			c, _, _ := testClient(t, f, nil)
			var mu sync.Mutex
			now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

			steps := []struct {
				advance   time.Duration
				wantAuths int
			}{
				{0, 1},
				{89 * time.Second, 1}, // 89% of the lifetime: keep the token
				{2 * time.Second, 2},  // 91%: refresh before it expires
				{89 * time.Second, 2},
				{2 * time.Second, 3},
			}
			for i, s := range steps {
				advance(s.advance)
				if err := c.Send(context.Background(), testMsg); err != nil {
					t.Fatalf("step %d: Send: %v", i, err)
				}
				if n := f.authCount(); n != s.wantAuths {
					t.Fatalf("step %d: auth calls = %d, want %d", i, n, s.wantAuths)
				}
			}
			sends := f.sendLog()
			if got := sends[len(sends)-1].auth; got != "Bearer tok-3" {
				t.Errorf("last send used %q, want tok-3", got)
			}
		})
	}
}

func TestNoExpiresMeansNoRefresh(t *testing.T) {
	f := newFake(t)
	f.expires = "soon" // unusable: treated as no announced lifetime
	c, _, _ := testClient(t, f, nil)
	now := time.Now()
	c.now = func() time.Time { return now }
	for range 2 {
		if err := c.Send(context.Background(), testMsg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		now = now.Add(365 * 24 * time.Hour)
	}
	if n := f.authCount(); n != 1 {
		t.Errorf("auth calls = %d, want 1", n)
	}
}

func TestConcurrentSendsShareOneAuth(t *testing.T) {
	f := newFake(t)
	gate := make(chan struct{})
	f.authGate = gate
	c, _, _ := testClient(t, f, nil)

	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- c.Send(context.Background(), testMsg) })
	}
	// Hold the auth answer back for a moment so that the senders pile up
	// behind it; the assertion below holds whatever the timing, the delay
	// only makes a stampede (if there were one) visible.
	time.AfterFunc(100*time.Millisecond, func() { close(gate) })
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Send: %v", err)
		}
	}
	if got := f.authCount(); got != 1 {
		t.Errorf("auth calls = %d, want 1", got)
	}
	if got := f.delivered(); got != n {
		t.Errorf("delivered = %d, want %d", got, n)
	}
}

func TestTransientThenSuccess(t *testing.T) {
	tests := []struct {
		name    string
		replies []reply
	}{
		{"5xx", []reply{{status: 500, body: "oops"}, {status: 502}, {status: 503}}},
		{"408", []reply{{status: 408}}},
		{"429 without Retry-After", []reply{{status: 429}}},
		{"connection dropped", []reply{{drop: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = tt.replies
			c, logs, obs := testClient(t, f, nil)
			if err := c.Send(context.Background(), testMsg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got, want := len(f.sendLog()), len(tt.replies)+1; got != want {
				t.Errorf("send requests = %d, want %d", got, want)
			}
			if f.delivered() != 1 {
				t.Errorf("delivered = %d, want 1", f.delivered())
			}
			want := []observation{{OpAuth, OutcomeOK}}
			for range tt.replies {
				want = append(want, observation{OpSend, OutcomeRetry})
			}
			want = append(want, observation{OpSend, OutcomeOK})
			if got := obs.list(); !reflect.DeepEqual(got, want) {
				t.Errorf("observations = %v, want %v", got, want)
			}
			if got := strings.Count(logs.String(), "selarti send retry"); got != len(tt.replies) {
				t.Errorf("logged %d retries, want %d", got, len(tt.replies))
			}
		})
	}
}

func TestAuthTransientThenSuccess(t *testing.T) {
	f := newFake(t)
	f.authReplies = []reply{{status: 503}, {drop: true}}
	c, _, obs := testClient(t, f, nil)
	if err := c.Send(context.Background(), testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	want := []observation{{OpAuth, OutcomeRetry}, {OpAuth, OutcomeRetry}, {OpAuth, OutcomeOK}, {OpSend, OutcomeOK}}
	if got := obs.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("observations = %v, want %v", got, want)
	}
}

func TestRetryAfterWaited(t *testing.T) {
	f := newFake(t)
	f.sendReplies = []reply{{status: 429, header: map[string]string{"Retry-After": "1"}}}
	c, _, _ := testClient(t, f, nil)
	start := time.Now()
	if err := c.Send(context.Background(), testMsg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("Send returned after %s, want at least the 1s Retry-After", el)
	}
	if f.delivered() != 1 || len(f.sendLog()) != 2 {
		t.Errorf("requests = %d, delivered = %d; want 2 and 1", len(f.sendLog()), f.delivered())
	}
}

func TestRetryAfterBeyondBudget(t *testing.T) {
	date := time.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name    string
		status  int
		header  string
		minWait time.Duration
	}{
		{"429 seconds", 429, "120", 120 * time.Second},
		{"503 seconds", 503, "60", 60 * time.Second},
		{"429 http-date", 429, date, 2*time.Hour - time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = []reply{{status: tt.status, header: map[string]string{"Retry-After": tt.header}}}
			c, _, _ := testClient(t, f, func(cfg *Config) { cfg.MaxElapsed = 3 * time.Second })
			start := time.Now()
			err := c.Send(context.Background(), testMsg)
			if el := time.Since(start); el > time.Second {
				t.Errorf("Send took %s; want it to give up at once", el)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != tt.status {
				t.Fatalf("err = %v (%T), want *APIError %d", err, err, tt.status)
			}
			wait, ok := RetryAfter(err)
			if !ok || wait < tt.minWait || wait > tt.minWait+2*time.Minute {
				t.Errorf("RetryAfter = %s, %v; want about %s", wait, ok, tt.minWait)
			}
			if IsPermanent(err) {
				t.Error("IsPermanent = true, want false")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("selarti send: status %d", tt.status)) {
				t.Errorf("error text %q", err)
			}
			if n := len(f.sendLog()); n != 1 {
				t.Errorf("send requests = %d, want 1", n)
			}
		})
	}
}

func TestPermanentStatusNoRetry(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		wantMsg string
	}{
		{"400 bubble envelope", 400, `{"statusCode":400,"body":{"status":"MISSING_DATA","message":"Missing parameter for workflow send_external_message: parameter chat_id"}}`, "MISSING_DATA: Missing parameter for workflow send_external_message: parameter chat_id"},
		{"404 plain text", 404, "Not Found\n", "Not Found"},
		{"422 empty body", 422, "", "unprocessable entity"},
		{"400 flat json", 400, `{"status":"ERROR","message":"bad task"}`, "ERROR: bad task"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = []reply{{status: tt.status, body: tt.body}}
			c, _, obs := testClient(t, f, nil)
			err := c.Send(context.Background(), testMsg)
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v, want *APIError", err)
			}
			if apiErr.Status != tt.status || apiErr.Op != OpSend || apiErr.Message != tt.wantMsg {
				t.Errorf("APIError = %+v, want status %d message %q", apiErr, tt.status, tt.wantMsg)
			}
			if !IsPermanent(err) {
				t.Error("IsPermanent = false, want true")
			}
			if _, ok := RetryAfter(err); ok {
				t.Error("RetryAfter reported a wait")
			}
			if n := len(f.sendLog()); n != 1 {
				t.Errorf("send requests = %d, want 1", n)
			}
			want := []observation{{OpAuth, OutcomeOK}, {OpSend, OutcomeError}}
			if got := obs.list(); !reflect.DeepEqual(got, want) {
				t.Errorf("observations = %v, want %v", got, want)
			}
		})
	}
}

func TestContextCancelStopsRetries(t *testing.T) {
	f := newFake(t)
	for range 100 {
		f.sendReplies = append(f.sendReplies, reply{status: 503, body: "busy"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var failed int
	c, _, _ := testClient(t, f, func(cfg *Config) {
		cfg.MaxElapsed = time.Minute
		// Cancel once the second 503 is in: Observe runs after the
		// answer was read, so the cancel cannot hit a request in flight.
		cfg.Observe = func(op, outcome string, _ time.Duration) {
			if op == OpSend && outcome == OutcomeRetry {
				if failed++; failed == 2 {
					cancel()
				}
			}
		}
	})
	start := time.Now()
	err := c.Send(ctx, testMsg)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Send took %s after cancel", el)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !strings.Contains(err.Error(), "status 503: busy") {
		t.Errorf("err = %q, want the last failure mentioned", err)
	}
	if n := len(f.sendLog()); n != 2 {
		t.Errorf("send requests = %d, want 2", n)
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	t.Run("hang then success", func(t *testing.T) {
		f := newFake(t)
		f.sendReplies = []reply{{hang: true}}
		c, _, obs := testClient(t, f, func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
		if err := c.Send(context.Background(), testMsg); err != nil {
			t.Fatalf("Send: %v", err)
		}
		want := []observation{{OpAuth, OutcomeOK}, {OpSend, OutcomeRetry}, {OpSend, OutcomeOK}}
		if got := obs.list(); !reflect.DeepEqual(got, want) {
			t.Errorf("observations = %v, want %v", got, want)
		}
	})
	t.Run("always hanging", func(t *testing.T) {
		f := newFake(t)
		for range 50 {
			f.sendReplies = append(f.sendReplies, reply{hang: true})
		}
		c, _, _ := testClient(t, f, func(cfg *Config) {
			cfg.Timeout = 100 * time.Millisecond
			cfg.MaxElapsed = 500 * time.Millisecond
		})
		start := time.Now()
		err := c.Send(context.Background(), testMsg)
		if el := time.Since(start); el > 2*time.Second {
			t.Errorf("Send took %s, want about MaxElapsed", el)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
			t.Errorf("err = %v, want an attempt timeout", err)
		}
		if IsPermanent(err) {
			t.Error("IsPermanent = true for a timeout")
		}
		if n := len(f.sendLog()); n < 2 {
			t.Errorf("send requests = %d, want retries", n)
		}
	})
}

func TestAuthRefused(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		reply  *reply
		status int
	}{
		{name: "wrong key echoed back", key: "sk-SECRET-wrong-key-42", status: 401},
		{name: "400 echoing the key", key: testKey, reply: &reply{status: 400, body: `{"statusCode":400,"body":{"status":"MISSING_DATA","message":"key ` + testKey + ` rejected"}}`}, status: 400},
		{name: "2xx without token", key: testKey, reply: &reply{status: 200, body: `{"status":"success","response":{}}`}, status: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			if tt.reply != nil {
				f.authReplies = []reply{*tt.reply, *tt.reply}
			}
			c, logs, obs := testClient(t, f, func(cfg *Config) { cfg.APIKey = tt.key })
			err := c.Send(context.Background(), testMsg)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Op != OpAuth || apiErr.Status != tt.status {
				t.Fatalf("err = %v, want APIError auth %d", err, tt.status)
			}
			if IsPermanent(err) {
				t.Error("IsPermanent = true for an auth failure; messages must wait for the operator")
			}
			if strings.Contains(err.Error(), tt.key) || strings.Contains(logs.String(), tt.key) {
				t.Errorf("the key leaked: err %q, logs %q", err, logs.String())
			}
			if n := f.authCount(); n != 1 {
				t.Errorf("auth calls = %d, want 1 (no retry within Send)", n)
			}
			if n := len(f.sendLog()); n != 0 {
				t.Errorf("send requests = %d, want 0", n)
			}
			if n := strings.Count(logs.String(), "level=ERROR"); n != 1 {
				t.Errorf("error log lines = %d, want 1:\n%s", n, logs.String())
			}
			if got, want := obs.list(), []observation{{OpAuth, OutcomeError}}; !reflect.DeepEqual(got, want) {
				t.Errorf("observations = %v, want %v", got, want)
			}

			// Authenticate reports the same failure.
			if err := c.Authenticate(context.Background()); err == nil || IsPermanent(err) {
				t.Errorf("Authenticate = %v, want a non-permanent error", err)
			}
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	f := newFake(t)
	// Selarti echoing the token and the key in a send error.
	f.sendReplies = []reply{{status: 400, body: "token tok-1 and key " + testKey + " are wrong"}}
	c, logs, _ := testClient(t, f, nil)
	err := c.Send(context.Background(), testMsg)
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	for _, secret := range []string{testKey, "tok-1"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q contains %q", err, secret)
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("logs contain %q", secret)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %q: want the redaction marker", err)
	}
	// A Config logged by mistake does not show the key either.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", Config{BaseURL: "https://x", APIKey: testKey})
	if strings.Contains(buf.String(), testKey) {
		t.Errorf("logged Config shows the key: %s", buf.String())
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		if s := fmt.Sprintf(format, Config{BaseURL: "https://x", APIKey: testKey}); strings.Contains(s, testKey) {
			t.Errorf("%s of a Config shows the key: %s", format, s)
		}
	}
}

// TestChatIDNotInErrors: a Selarti error that quotes the chat id sent
// (a webchat chat id is a credential) does not carry it into the error,
// nor into the retry's log line.
func TestChatIDNotInErrors(t *testing.T) {
	f := newFake(t)
	msg := testMsg
	msg.ChatID = "web:Q2hhdCB3aXRoIHVzIQxyz"
	f.sendReplies = []reply{
		{status: 503, body: `{"body":{"status":"BUSY","message":"chat ` + msg.ChatID + ` is busy"}}`},
		{status: 400, body: "no dialog for " + msg.ChatID},
	}
	c, logs, _ := testClient(t, f, nil)
	err := c.Send(context.Background(), msg)
	if err == nil {
		t.Fatal("Send succeeded, want an error")
	}
	if strings.Contains(err.Error(), "Q2hhdCB3aXRoIHVzIQ") || strings.Contains(logs.String(), "Q2hhdCB3aXRoIHVzIQ") {
		t.Fatalf("the chat id is in the error %q or the logs:\n%s", err, logs.String())
	}
	if !strings.Contains(err.Error(), "no dialog for [REDACTED]") || !strings.Contains(logs.String(), "chat [REDACTED] is busy") {
		t.Fatalf("error %q, logs %s: want the messages with the chat id cut out", err, logs.String())
	}
}

func TestAuthenticateForcesFreshToken(t *testing.T) {
	f := newFake(t)
	c, _, _ := testClient(t, f, nil)
	ctx := context.Background()
	for i := range 2 {
		if err := c.Authenticate(ctx); err != nil {
			t.Fatalf("Authenticate %d: %v", i, err)
		}
	}
	if err := c.Send(ctx, testMsg); err != nil {
		t.Fatal(err)
	}
	if n := f.authCount(); n != 2 {
		t.Errorf("auth calls = %d, want 2", n)
	}
	if got := f.sendLog()[0].auth; got != "Bearer tok-2" {
		t.Errorf("send used %q, want the token from the last Authenticate", got)
	}
}

func TestSendCancelledBeforeStart(t *testing.T) {
	f := newFake(t)
	c, _, _ := testClient(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Send(ctx, testMsg); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if f.authCount() != 0 || len(f.sendLog()) != 0 {
		t.Errorf("requests made for a cancelled Send: %d auth, %d send", f.authCount(), len(f.sendLog()))
	}
}

func TestInvalidMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
	}{
		{"no task", Message{ChatID: "c", Text: "t"}},
		{"no chat", Message{TaskID: "t", Text: "t"}},
		{"no text", Message{TaskID: "t", ChatID: "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c, _, _ := testClient(t, f, nil)
			err := c.Send(context.Background(), tt.msg)
			if !errors.Is(err, ErrInvalidMessage) || !IsPermanent(err) {
				t.Errorf("err = %v, want a permanent ErrInvalidMessage", err)
			}
			if f.authCount() != 0 || len(f.sendLog()) != 0 {
				t.Error("an invalid message caused requests")
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"ok", Config{BaseURL: "https://selarti.com/api/1.1", APIKey: "k"}, ""},
		{"ok trailing slash", Config{BaseURL: "http://127.0.0.1:1/api/1.1/", APIKey: "k"}, ""},
		{"no base", Config{APIKey: "k"}, "base url is required"},
		{"bad scheme", Config{BaseURL: "ftp://selarti.com", APIKey: "k"}, "must be an absolute http or https url"},
		{"relative", Config{BaseURL: "/api/1.1", APIKey: "k"}, "must be an absolute http or https url"},
		{"credentials redacted", Config{BaseURL: "ftp://u:hunter2@x", APIKey: "k"}, "xxxxx"},
		{"no key", Config{BaseURL: "https://selarti.com"}, "api key is required"},
		{"negative timeout", Config{BaseURL: "https://selarti.com", APIKey: "k", Timeout: -1}, "negative"},
		{"colliding fields", Config{BaseURL: "https://selarti.com", APIKey: "k", Wire: Wire{NameField: "chat_id"}}, `"chat_id" is used twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if strings.Contains(c.sendURL, "//wf") || !strings.HasSuffix(c.sendURL, "/api/1.1/wf/send_external_message") {
					t.Errorf("sendURL = %q", c.sendURL)
				}
				if c.timeout != DefaultTimeout || c.maxElapsed != DefaultMaxElapsed {
					t.Errorf("defaults not applied: %s, %s", c.timeout, c.maxElapsed)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err %q shows a password", err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 3 ", 3 * time.Second},
		{"0", 0},
		{"-5", 0},
		{"1.5", 0},
		{"soon", 0},
		{"99999999999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	long := strings.Repeat("é", 300)
	tests := []struct {
		name    string
		body    string
		secrets []string
		want    string
	}{
		{"bubble", `{"statusCode":400,"body":{"status":"MISSING_DATA","message":"no chat"}}`, nil, "MISSING_DATA: no chat"},
		{"bubble status only", `{"statusCode":400,"body":{"status":"NOT_FOUND"}}`, nil, "NOT_FOUND"},
		{"plain", "upstream\r\n  down\x00!", nil, "upstream down !"},
		{"empty", "", nil, "service unavailable"},
		{"redacted", `{"body":{"message":"key abc and token xyz"}}`, []string{"abc", "xyz"}, "key [REDACTED] and token [REDACTED]"},
		{"invalid utf8", "bad \xff byte", nil, "bad byte"},
		{"truncated", long, nil, strings.Repeat("é", 100) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorMessage([]byte(tt.body), 503, tt.secrets...); got != tt.want {
				t.Errorf("errorMessage = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&APIError{Op: OpSend, Status: 400}, true},
		{fmt.Errorf("wrapped: %w", &APIError{Op: OpSend, Status: 404}), true},
		{&APIError{Op: OpSend, Status: 401}, false},
		{&APIError{Op: OpSend, Status: 403}, false},
		{&APIError{Op: OpSend, Status: 408}, false},
		{&APIError{Op: OpSend, Status: 429}, false},
		{&APIError{Op: OpSend, Status: 500}, false},
		{&APIError{Op: OpAuth, Status: 400}, false},
		{errors.New("connection reset"), false},
		{ErrInvalidMessage, true},
		{nil, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// With StopOnUnknownOutcome, a request that went out and got no answer
// ends Send at once with ErrOutcomeUnknown (a retry could duplicate it);
// a failure before the request went out, and an answered one, are still
// retried. Without it, Send retries the unknown case too.
func TestStopOnUnknownOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []reply
		stop    bool
		unknown bool // Send returns ErrOutcomeUnknown
		sends   int  // requests the fake saw
	}{
		{"hang, stop", []reply{{hang: true}}, true, true, 1},
		{"dropped connection, stop", []reply{{drop: true}}, true, true, 1},
		{"hang, retry", []reply{{hang: true}}, false, false, 2},
		{"answered 503, stop", []reply{{status: 503, body: `{}`}}, true, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.sendReplies = tc.replies
			c, _, _ := testClient(t, f, func(cfg *Config) {
				cfg.Timeout = 100 * time.Millisecond
				cfg.StopOnUnknownOutcome = tc.stop
			})
			err := c.Send(context.Background(), testMsg)
			if got := errors.Is(err, ErrOutcomeUnknown); got != tc.unknown {
				t.Errorf("Send = %v; ErrOutcomeUnknown %v, want %v", err, got, tc.unknown)
			}
			if tc.unknown && IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = true", err)
			}
			if n := len(f.sendLog()); n != tc.sends {
				t.Errorf("send requests = %d, want %d", n, tc.sends)
			}
		})
	}
	t.Run("refused connection, stop", func(t *testing.T) {
		// Nothing went out: a retry is safe, and the error is not unknown.
		f := newFake(t)
		c, _, _ := testClient(t, f, func(cfg *Config) {
			cfg.StopOnUnknownOutcome = true
			cfg.MaxElapsed = 300 * time.Millisecond
			// No idle connection to reuse: a request written into one the
			// server had closed would be unknown, rightly.
			cfg.HTTPClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		})
		if err := c.Authenticate(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.srv.Close()
		err := c.Send(context.Background(), testMsg)
		if err == nil || errors.Is(err, ErrOutcomeUnknown) {
			t.Errorf("Send to a closed server = %v, want a plain network error", err)
		}
	})
}

// A base URL's credentials never show: not in the Config's String,
// GoString or LogValue, nor in New's errors.
func TestBaseURLCredentialsRedacted(t *testing.T) {
	cfg := Config{BaseURL: "https://alice:hunter2@selarti.example/api/1.1", APIKey: "k"}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "selarti", cfg)
	for _, s := range []string{cfg.String(), fmt.Sprintf("%#v", cfg), logs.String()} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "alice:xxxxx@selarti.example") {
			t.Errorf("credentials not redacted: %s", s)
		}
	}
	for _, bad := range []string{"ftp://alice:hunter2@selarti.example", "https://alice:hunter2@[selarti/api"} {
		_, err := New(Config{BaseURL: bad, APIKey: "k"})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("New(%q) error = %v, want one without the password", bad, err)
		}
	}
}
