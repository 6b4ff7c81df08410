package mychat

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeMyChat is MyChat's API on loopback: a bot, a queue of updates that
// the long poll returns until a later offset acknowledges them, and the
// messages the bot sent. The conformance suite drives it.
type fakeMyChat struct {
	srv   *httptest.Server
	token string

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when updates arrive
	updates []update
	acked   int64 // every update id below it was acknowledged
	nextID  int64
	sent    map[string][]string // chat → texts
	limit   time.Duration       // the next send is answered 429 with it
}

const botID = "bot-1"

func newFake(t *testing.T) *fakeMyChat {
	f := &fakeMyChat{token: "secret-token", changed: make(chan struct{}), sent: map[string][]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /me", f.auth(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"id": botID})
	}))
	mux.HandleFunc("GET /updates", f.auth(f.getUpdates))
	mux.HandleFunc("POST /messages", f.auth(f.postMessage))
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeMyChat) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

// push queues an update and returns its id.
func (f *fakeMyChat) push(chat, from, text string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.updates = append(f.updates, update{ID: f.nextID, ChatID: chat, From: from, Name: "User " + from, Text: text})
	close(f.changed)
	f.changed = make(chan struct{})
	return f.nextID
}

func (f *fakeMyChat) isAcked(id int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return id < f.acked
}

func (f *fakeMyChat) getUpdates(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	timeout, _ := strconv.Atoi(r.URL.Query().Get("timeout"))
	deadline := time.After(time.Duration(timeout) * time.Second)
	for {
		f.mu.Lock()
		f.acked = max(f.acked, offset) // asking for offset acknowledges what is below it
		var out []update
		for _, u := range f.updates {
			if u.ID >= offset {
				out = append(out, u)
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if len(out) > 0 {
			_ = json.NewEncoder(w).Encode(out)
			return
		}
		select {
		case <-changed:
		case <-deadline:
			_, _ = w.Write([]byte("[]"))
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeMyChat) postMessage(w http.ResponseWriter, r *http.Request) {
	var m struct{ Chat, Text string }
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limit > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.limit/time.Second)))
		w.WriteHeader(http.StatusTooManyRequests)
		f.limit = 0
		return
	}
	known := false
	for _, u := range f.updates {
		known = known || u.ChatID == m.Chat
	}
	if !known {
		http.Error(w, "chat not found", http.StatusNotFound)
		return
	}
	f.sent[m.Chat] = append(f.sent[m.Chat], m.Text)
	_, _ = w.Write([]byte(`{"ok":true}`))
}
