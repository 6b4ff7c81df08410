package selarti

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testKey  = "test-api-key"
	testTask = "1721129985149x478019552540622850"
)

// fakeClock is a clock tests move forward by hand.
type fakeClock struct{ offset atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// fastRetry keeps the retry tests short.
func fastRetry() retryPolicy {
	return retryPolicy{tries: 5, first: 5 * time.Millisecond, max: 20 * time.Millisecond}
}

// startServer starts a simulator with the test key, closed at cleanup.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	return startServerClock(t, opts, time.Now, fastRetry())
}

func startServerClock(t *testing.T, opts Options, now func() time.Time, retry retryPolicy) *Server {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	s, err := newServer(opts, now, retry)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// receiver is a webhook endpoint that records payloads in arrival order.
type receiver struct {
	srv *httptest.Server
	// status decides the answer to the n-th request (0-based); nil: 200.
	status func(n int, p map[string]any) int

	mu  sync.Mutex
	got []map[string]any
	at  []time.Time
}

func newReceiver(t *testing.T, status func(n int, p map[string]any) int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			t.Errorf("receiver: decode webhook: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("receiver: Content-Type = %q, want application/json", ct)
		}
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, p)
		rc.at = append(rc.at, time.Now())
		rc.mu.Unlock()
		code := http.StatusOK
		if rc.status != nil {
			code = rc.status(n, p)
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) payloads() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]map[string]any, len(rc.got))
	copy(out, rc.got)
	return out
}

// apiClient talks to the simulator like the gateway does.
type apiClient struct {
	t    *testing.T
	s    *Server
	http *http.Client
}

func newClient(t *testing.T, s *Server, timeout time.Duration) *apiClient {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	t.Cleanup(tr.CloseIdleConnections)
	return &apiClient{t: t, s: s, http: &http.Client{Timeout: timeout, Transport: tr}}
}

// response is a decoded API answer.
type response struct {
	status int
	header http.Header
	body   map[string]any
}

// post sends body (marshalled unless it is a []byte) to path under the API
// base, with a bearer token when token != "".
func (c *apiClient) post(path, token string, body any) (response, error) {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatalf("marshal request: %v", err)
		}
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.s.URL()+path, bytes.NewReader(raw))
	if err != nil {
		c.t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	out := response{status: resp.StatusCode, header: resp.Header}
	if err := json.Unmarshal(data, &out.body); err != nil {
		c.t.Errorf("%s answered non-JSON %q: %v", path, data, err)
	}
	return out, nil
}

func (c *apiClient) mustPost(path, token string, body any) response {
	c.t.Helper()
	r, err := c.post(path, token, body)
	if err != nil {
		c.t.Fatalf("POST %s: %v", path, err)
	}
	return r
}

// auth returns an "Authorization" header value for a fresh token.
func (c *apiClient) auth() string {
	c.t.Helper()
	r := c.mustPost("/wf/auth", "", map[string]any{"key": testKey})
	if r.status != http.StatusOK {
		c.t.Fatalf("auth: status %d, body %v", r.status, r.body)
	}
	resp, _ := r.body["response"].(map[string]any)
	token, _ := resp["token"].(string)
	if token == "" {
		c.t.Fatalf("auth: no token in %v", r.body)
	}
	return "Bearer " + token
}

// send posts one user message and fails the test unless it is accepted.
func (c *apiClient) send(bearer, chat, text string) {
	c.t.Helper()
	r := c.mustPost("/wf/send_external_message", bearer, map[string]any{
		"task_id": testTask, "chat_id": chat, "message": text,
	})
	if r.status != http.StatusOK {
		c.t.Fatalf("send %q to %s: status %d, body %v", text, chat, r.status, r.body)
	}
}

// bubbleStatus checks a Bubble error envelope and returns body.status.
func bubbleStatus(t *testing.T, r response) string {
	t.Helper()
	if code, _ := r.body["statusCode"].(float64); int(code) != r.status {
		t.Errorf("statusCode = %v, want %d (body %v)", r.body["statusCode"], r.status, r.body)
	}
	inner, _ := r.body["body"].(map[string]any)
	if msg, _ := inner["message"].(string); msg == "" {
		t.Errorf("error body has no message: %v", r.body)
	}
	st, _ := inner["status"].(string)
	return st
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ownGoroutines returns the stacks of goroutines running this package's
// non-test code, that is, goroutines the simulator started or is serving
// with. Test goroutines are left out.
func ownGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "_test.go") {
			continue
		}
		for _, l := range strings.Split(g, "\n") {
			if strings.Contains(l, "/test/fakes/selarti/") && strings.Contains(l, ".go:") {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
