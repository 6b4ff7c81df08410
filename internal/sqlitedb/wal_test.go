package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func walSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path + "-wal")
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// writeRows commits n rows of size bytes each, one commit per row.
func writeRows(t *testing.T, c *Committer, prefix string, n, size int) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("%s-%05d-%s", prefix, i, strings.Repeat("x", size))
		if err := c.Write(context.Background(), true, func(tx *Tx) error {
			_, err := tx.Exec(qInsert, k)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWALSizeLimit: a WAL that grew while a reader held checkpoints off
// is cut back to WALSizeLimit once a checkpoint lets it start over,
// rather than keep its size on disk for ever.
func TestWALSizeLimit(t *testing.T) {
	c, path := openCommitter(t)
	var limit int64
	if err := c.conn.QueryRowContext(context.Background(), "PRAGMA journal_size_limit").Scan(&limit); err != nil || limit != WALSizeLimit {
		t.Fatalf("journal_size_limit = %d (%v), want %d", limit, err, WALSizeLimit)
	}
	// A reader in a transaction keeps every frame after its snapshot.
	rdb, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rtx, err := rdb.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rtx.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	writeRows(t, c, "a", 300, 40<<10) // about 12 MB
	if s := walSize(t, path); s <= WALSizeLimit {
		t.Fatalf("WAL of %d bytes with a reader holding it: the test needs it past the limit", s)
	}
	rtx.Rollback()
	// SQLite's own checkpoint (at the next commits) completes now, and
	// the write after it starts the WAL over, cut to the limit.
	writeRows(t, c, "b", 5, 10)
	if s := walSize(t, path); s > WALSizeLimit {
		t.Fatalf("WAL of %d bytes after a checkpoint, want at most %d", s, WALSizeLimit)
	}
}

// TestCheckpointTruncates: Checkpoint copies the WAL into the database
// and leaves it empty, without losing a row; writes go on after it.
func TestCheckpointTruncates(t *testing.T) {
	c, path := openCommitter(t)
	writeRows(t, c, "a", 200, 4<<10)
	if walSize(t, path) == 0 {
		t.Fatal("no WAL to checkpoint")
	}
	if err := c.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := walSize(t, path); s != 0 {
		t.Fatalf("WAL of %d bytes after Checkpoint, want 0", s)
	}
	writeRows(t, c, "b", 1, 10)
	if got := len(keys(t, path)); got != 201 {
		t.Fatalf("%d rows after the checkpoint, want 201", got)
	}
	c.Close()
	if err := c.Checkpoint(context.Background()); err == nil {
		t.Fatal("Checkpoint after Close succeeded")
	}
}

// TestCheckpointBusy: a reader that keeps a snapshot keeps the checkpoint
// from finishing; Checkpoint says so soon, and nothing is lost.
func TestCheckpointBusy(t *testing.T) {
	c, path := openCommitter(t)
	writeRows(t, c, "a", 1, 10)
	rdb, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	rtx, err := rdb.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var n int
	if err := rtx.QueryRow(`SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	writeRows(t, c, "b", 3, 10)
	start := time.Now()
	if err := c.Checkpoint(context.Background()); !errors.Is(err, ErrCheckpointBusy) {
		t.Fatalf("Checkpoint with a reader: %v, want ErrCheckpointBusy", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Checkpoint held the writes for %s: it must give up well within the busy timeout", d)
	}
	// The busy timeout for writes is back.
	var ms int
	if err := c.conn.QueryRowContext(context.Background(), "PRAGMA busy_timeout").Scan(&ms); err != nil || ms != int(busyTimeout.Milliseconds()) {
		t.Fatalf("busy_timeout after a checkpoint = %d (%v), want %d", ms, err, busyTimeout.Milliseconds())
	}
	rtx.Rollback()
	if got := len(keys(t, path)); got != 4 {
		t.Fatalf("%d rows, want 4", got)
	}
}
