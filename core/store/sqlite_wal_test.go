package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

// TestSQLiteCheckpointShrinksWAL: after messages are delivered and pruned,
// Checkpoint leaves the WAL empty, so the room they took goes back to the
// filesystem rather than stay in the WAL; the store works on.
func TestSQLiteCheckpointShrinksWAL(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "switchboard.db")
	s := openSQLite(t, path)
	defer s.Close()
	payload := bytes.Repeat([]byte("x"), 4<<10)
	for i := range 300 {
		m := &store.Message{Dir: store.ToSelarti, Chat: fmt.Sprintf("web:c%d", i), Payload: payload}
		if _, claimed, err := s.EnqueueClaim(ctx, m, time.Now(), time.Minute); err != nil || !claimed {
			t.Fatalf("enqueue: claimed %v, %v", claimed, err)
		}
		if err := s.Delivered(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Prune(ctx, time.Now().Add(time.Hour), time.Time{}); err != nil || n != 300 {
		t.Fatalf("Prune: %d, %v", n, err)
	}
	wal := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if wal() == 0 {
		t.Fatal("no WAL: the test needs one")
	}
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if n := wal(); n != 0 {
		t.Fatalf("WAL of %d bytes after Checkpoint, want 0", n)
	}
	m := &store.Message{Dir: store.ToSelarti, Chat: "web:after", Payload: []byte("{}")}
	if _, err := s.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, m.ID); err != nil || got.State != store.Pending {
		t.Fatalf("after the checkpoint: %+v, %v", got, err)
	}
	s.Close()
	if err := s.Checkpoint(ctx); err == nil {
		t.Fatal("Checkpoint after Close succeeded")
	}
}
