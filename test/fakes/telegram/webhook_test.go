package telegram

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook endpoint that answers with status(n) for the
// n-th request (from 0) and records what it got.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []Update
	secret []string
}

func newHookReceiver(t *testing.T, status func(n int) int) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var u Update
		if err := json.NewDecoder(r.Body).Decode(&u); err != nil || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		n := len(h.got)
		h.got = append(h.got, u)
		h.secret = append(h.secret, r.Header.Get(SecretTokenHeader))
		h.mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) updates() ([]Update, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got), slices.Clone(h.secret)
}

func TestSetWebhookValidation(t *testing.T) {
	tests := []struct {
		name     string
		insecure bool
		params   map[string]any
		wantDesc string
	}{
		{name: "http is refused", params: map[string]any{"url": "http://gw.example.com/hook"}, wantDesc: "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"},
		{name: "odd port is refused", params: map[string]any{"url": "https://gw.example.com:9000/hook"}, wantDesc: "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"},
		{name: "https on 8443 is fine", params: map[string]any{"url": "https://gw.example.com:8443/hook"}},
		{name: "http allowed when insecure", insecure: true, params: map[string]any{"url": "http://127.0.0.1:9/hook"}},
		{name: "bad secret", insecure: true, params: map[string]any{"url": "http://127.0.0.1:9/hook", "secret_token": "has space"}, wantDesc: "Bad Request: secret token contains unallowed characters"},
		{name: "max connections out of range", params: map[string]any{"url": "https://gw.example.com/hook", "max_connections": 101}, wantDesc: "Bad Request: invalid max_connections specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, b := startBot(t, Options{InsecureWebhooks: tt.insecure})
			a := call(t, s, b.Token(), "setWebhook", tt.params)
			if tt.wantDesc != "" {
				wantError(t, a, 400, tt.wantDesc)
				return
			}
			if !result[bool](t, a) || a.Description != "Webhook was set" {
				t.Fatalf("answer = %+v", a)
			}
		})
	}
}

func TestWebhookDelivery(t *testing.T) {
	s, b := startBot(t, Options{InsecureWebhooks: true, WebhookRetry: 20 * time.Millisecond})
	// The receiver fails the second request once: that update is retried.
	h := newHookReceiver(t, func(n int) int {
		if n == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	id1 := b.SendText(ann, "before the webhook")
	result[bool](t, call(t, s, b.Token(), "setWebhook", map[string]any{
		"url": h.srv.URL + "/hook", "secret_token": "s3cret_-X", "allowed_updates": []string{"message"}, "max_connections": 10}))
	wantError(t, call(t, s, b.Token(), "getUpdates", nil), 409,
		"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
	id2 := b.SendText(ann, "after")
	if err := b.Wait(ctxTimeout(t, 5*time.Second), func() bool { return b.Pending() == 0 }); err != nil {
		t.Fatal(err)
	}
	got, secrets := h.updates()
	if ids := updateIDs(got); !slices.Equal(ids, []int64{id1, id2, id2}) {
		t.Fatalf("webhook got updates %v, want %d, then %d twice (retried after a 500)", ids, id1, id2)
	}
	for _, sec := range secrets {
		if sec != "s3cret_-X" {
			t.Fatalf("secret header = %q", sec)
		}
	}
	att := b.WebhookAttempts()
	if len(att) != 3 || att[1].Status != 500 || att[2].Status != 200 || b.Served(id2) != 2 {
		t.Fatalf("attempts = %+v", att)
	}
	info := result[WebhookInfo](t, call(t, s, b.Token(), "getWebhookInfo", nil))
	if info.URL != h.srv.URL+"/hook" || info.PendingUpdateCount != 0 || info.MaxConnections != 10 ||
		info.LastErrorMessage != "Wrong response from the webhook: 500 Internal Server Error" || info.LastErrorDate == 0 ||
		!slices.Equal(info.AllowedUpdates, []string{"message"}) {
		t.Fatalf("webhook info = %+v", info)
	}

	a := call(t, s, b.Token(), "deleteWebhook", nil)
	if !result[bool](t, a) || a.Description != "Webhook was deleted" {
		t.Fatalf("deleteWebhook = %+v", a)
	}
	if a := call(t, s, b.Token(), "deleteWebhook", nil); a.Description != "Webhook is already deleted" {
		t.Fatalf("second deleteWebhook = %+v", a)
	}
	id3 := b.SendText(ann, "polled again")
	ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", nil))
	if ids := updateIDs(ups); !slices.Equal(ids, []int64{id3}) {
		t.Fatalf("after deleteWebhook getUpdates = %v, want %d", ids, id3)
	}
	if info := result[WebhookInfo](t, call(t, s, b.Token(), "getWebhookInfo", nil)); info.URL != "" || info.PendingUpdateCount != 1 {
		t.Fatalf("webhook info = %+v", info)
	}
}

func TestSetWebhookDropsPending(t *testing.T) {
	s, b := startBot(t, Options{InsecureWebhooks: true})
	b.SendText(ann, "old")
	result[bool](t, call(t, s, b.Token(), "deleteWebhook", map[string]any{"drop_pending_updates": true}))
	if b.Pending() != 0 {
		t.Fatalf("pending = %d after drop_pending_updates", b.Pending())
	}
}
