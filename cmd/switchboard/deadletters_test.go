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
)

func TestDeadLettersCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`
selarti:
  api_key: k
  webhook_secret: 0123456789abcdef0123456789abcdef
store:
  path: %q
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// A store with two dead letters, as a gateway would leave it; it stays
	// open, as a running gateway's would.
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "data", engine.StoreFile))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []int64
	for i, text := range []string{`{"id":"m1","t":"first reply","f":"bot","d":0}`, `{"id":"m2","t":"second reply","f":"operator","d":2}`} {
		m := &store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("web:s%d", i), DedupeKey: fmt.Sprint("k", i), Payload: []byte(text)}
		if _, err := st.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	if _, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := st.Kill(ctx, id, "permanent: bot was blocked by the user"); err != nil {
			t.Fatal(err)
		}
	}

	out, err := run("deadletters", "list", "-c", cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web:s0", "web:s1", "first reply", "blocked by the user"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
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
