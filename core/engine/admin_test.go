package engine

import (
	"context"
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
