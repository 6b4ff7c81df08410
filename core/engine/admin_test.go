package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// TestAdminShowsOnlyDeadLetters: GET /admin/deadletters/<id> answers for a
// dead letter and 404 for a message in any other state, delivered or
// pending, as for one that does not exist.
func TestAdminShowsOnlyDeadLetters(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	ids := map[store.State]int64{}
	for i, state := range []store.State{store.Delivered, store.Dead, store.Pending} {
		m := &store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("tg:%d", i), Payload: []byte(`{"id":"x","t":"secret talk","f":"bot","d":0}`)}
		if _, err := st.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids[state] = m.ID
		if state == store.Pending {
			continue
		}
		if _, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10); err != nil {
			t.Fatal(err)
		}
		var err error
		if state == store.Delivered {
			err = st.Delivered(ctx, m.ID)
		} else {
			err = st.Kill(ctx, m.ID, "blocked")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	token := strings.Repeat("x", 40)
	e := echo.New()
	(&adminAPI{token: core.Secret(token), store: func() store.Store { return st }, privacy: ChatPrivacy{public: map[string]bool{"tg": true}}}).mount(e)
	get := func(id int64) (int, string) {
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/admin/deadletters/%d", id), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get(ids[store.Dead]); code != http.StatusOK || !strings.Contains(body, `"state":"dead"`) {
		t.Fatalf("dead letter: %d %s", code, body)
	}
	for _, state := range []store.State{store.Delivered, store.Pending} {
		if code, body := get(ids[state]); code != http.StatusNotFound || strings.Contains(body, "secret talk") {
			t.Errorf("%s message: %d %s, want 404 without its text", state, code, body)
		}
	}
	if code, _ := get(999); code != http.StatusNotFound {
		t.Errorf("unknown id: %d, want 404", code)
	}
}

// TestAdminOutboxSnakeCase: /admin/outbox shows the figures as /readyz
// does, snake_case with the oldest pending message's age in seconds, not
// the store's Go field names and a zero time.
func TestAdminOutboxSnakeCase(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	m := &store.Message{Dir: store.ToSelarti, Chat: "tg:1", Payload: []byte(`{}`)}
	if _, err := st.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("x", 40)
	e := echo.New()
	(&adminAPI{token: core.Secret(token), store: func() store.Store { return st }}).mount(e)
	req := httptest.NewRequest(http.MethodGet, "/admin/outbox", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, rec.Body)
	}
	want := map[string]bool{"pending": true, "dead": true, "oldest_pending_seconds": true}
	for _, dir := range []string{"in", "out"} {
		if len(got[dir]) != len(want) {
			t.Errorf("%s: keys %v, want %v", dir, got[dir], want)
		}
		for k, v := range got[dir] {
			if !want[k] {
				t.Errorf("%s: key %q, want only %v", dir, k, want)
			}
			if _, ok := v.(float64); !ok {
				t.Errorf("%s.%s = %v (%T), want a number", dir, k, v, v)
			}
		}
	}
	if got["in"]["pending"] != 1.0 || got["out"]["pending"] != 0.0 {
		t.Errorf("pending: in %v, out %v; want 1 and 0", got["in"]["pending"], got["out"]["pending"])
	}
	if age, _ := got["in"]["oldest_pending_seconds"].(float64); age < 0 || age > 60 {
		t.Errorf("in.oldest_pending_seconds = %v, want a small age", age)
	}
}
