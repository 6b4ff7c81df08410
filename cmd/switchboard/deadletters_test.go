package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/pgtest"
)

// TestDeadLettersCommands runs the commands beside a store that stays
// open, as a running gateway's would: the embedded one, and the one
// replicas share.
func TestDeadLettersCommands(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testDeadLetters(t, "", func(dir string) (store.Store, error) {
			return store.OpenSQLite(context.Background(), filepath.Join(dir, "data", engine.StoreFile))
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		testDeadLetters(t, fmt.Sprintf("  driver: postgres\n  dsn: %q\n", dsn), func(string) (store.Store, error) {
			return store.OpenPostgres(context.Background(), dsn)
		})
	})
}

func testDeadLetters(t *testing.T, storeConfig string, open func(dir string) (store.Store, error)) {
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`
selarti:
  api_key: k
  webhook_secret: 0123456789abcdef0123456789abcdef
store:
%s  path: %q
adapters:
  - name: web
    kind: webchat
    task_id: t1
  - name: tg
    kind: telegram
    task_id: t2
    config:
      token: "123456:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
`, storeConfig, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// A store with two dead letters, as a gateway would leave it; it stays
	// open, as a running gateway's would.
	st, err := open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []int64
	// A webchat chat, whose session id is a credential, a Telegram chat,
	// and one of an instance gone from the config.
	const session = "Q2hhdCB3aXRoIHVzIQxyzA"
	chats := []string{"web:" + session, "tg:42", "old:" + session}
	for i, text := range []string{`{"id":"m1","t":"first reply","f":"bot","d":0}`, `{"id":"m2","t":"second reply","f":"operator","d":2}`, `{"id":"m3","t":"third reply","f":"bot","d":0}`} {
		m := &store.Message{Dir: store.ToUser, Chat: chats[i], DedupeKey: fmt.Sprint("k", i), Payload: []byte(text)}
		if _, err := st.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if err := st.Kill(ctx, id, "permanent: chat "+strings.TrimPrefix(chats[i], "web:")+": bot was blocked by the user"); err != nil {
			t.Fatal(err)
		}
	}

	out, err := run("deadletters", "list", "-c", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web:Q2hhdC…", "tg:42", "old:Q2hhdC…", "first reply", "blocked by the user"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, session) {
		t.Errorf("list shows a full session id:\n%s", out)
	}
	out, err = run("deadletters", "list", "--json", "-c", cfgPath)
	if err != nil || strings.Contains(out, session) || !strings.Contains(out, `"chat": "web:Q2hhdC…"`) || !strings.Contains(out, `"last_error": "permanent: chat Q2hhdC…: bot`) {
		t.Errorf("list --json (%v) shows a session id, or not the short one:\n%s", err, out)
	}
	out, err = run("deadletters", "show", fmt.Sprint(ids[0]), "-c", cfgPath)
	if err != nil || strings.Contains(out, session) || !strings.Contains(out, "web:Q2hhdC…") {
		t.Errorf("show (%v) shows a session id, or not the short one:\n%s", err, out)
	}

	out, err = run("deadletters", "show", fmt.Sprint(ids[1]), "-c", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var v engine.MessageView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("show is not JSON: %v\n%s", err, out)
	}
	if v.Text != "second reply" || v.From != "operator" || v.State != "dead" || v.Direction != "out" {
		t.Fatalf("show = %+v", v)
	}

	if _, err := run("deadletters", "replay", fmt.Sprint(ids[0]), "-c", cfgPath); err != nil {
		t.Fatal(err)
	}
	if _, err := run("deadletters", "drop", fmt.Sprint(ids[1]), "-c", cfgPath); err != nil {
		t.Fatal(err)
	}
	if m, err := st.Get(ctx, ids[0]); err != nil || m.State != store.Pending {
		t.Fatalf("replayed message: %+v, %v; want pending", m, err)
	}
	if _, err := st.Get(ctx, ids[1]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dropped message still there: %v", err)
	}
	if _, err := run("deadletters", "replay", "999999", "-c", cfgPath); err == nil {
		t.Fatal("replay of an unknown id succeeded")
	}
	if _, err := run("deadletters", "replay", "abc", "-c", cfgPath); err == nil || !strings.Contains(err.Error(), "not a message id") {
		t.Fatalf("replay abc: %v", err)
	}
}
