package sqlitedb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	qCreate = `CREATE TABLE kv (k TEXT PRIMARY KEY)`
	qInsert = `INSERT INTO kv (k) VALUES (?)`
)

var errBoom = errors.New("boom")

// openCommitter opens a fresh database with one table, kv, and a committer
// on it. It returns the file's path too, to reopen it.
func openCommitter(t *testing.T) (*Committer, string) {
	t.Helper()
	return openCommitterWith(t, []string{qInsert})
}

// openCommitterWith is openCommitter, with queries prepared.
func openCommitterWith(t *testing.T, queries []string) (*Committer, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "test.db")
	if err := PrepareFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := OpenWriter(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := UseWAL(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, qCreate); err != nil {
		t.Fatal(err)
	}
	c, err := NewCommitter(ctx, db, queries)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

// keys returns the keys stored in the file at path, sorted, read on a
// connection of its own.
func keys(t *testing.T, path string) []string {
	t.Helper()
	db, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT k FROM kv ORDER BY k`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds, or fails the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// block occupies the committer with a write of key k that waits inside its
// transaction until release is called. done gets that write's outcome.
func block(t *testing.T, c *Committer, k string) (release func(), done <-chan error) {
	t.Helper()
	started := make(chan struct{})
	gate := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		out <- c.Write(context.Background(), true, func(tx *Tx) error {
			close(started)
			<-gate
			_, err := tx.Exec(qInsert, k)
			return err
		})
	}()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the blocking write never started")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	return release, out
}

// queued is how many writes wait for the committer.
func queued(c *Committer) int { return len(c.writes) }

// TestCommitterBatches: the writes that queue while a commit is running
// share the next transaction, at most maxBatch to a transaction, and all
// commit.
func TestCommitterBatches(t *testing.T) {
	for _, n := range []int{2, 10, maxBatch + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, path := openCommitter(t)
			release, first := block(t, c, "first")
			var mu sync.Mutex
			perTx := map[*Tx]int{}
			errs := make(chan error, n)
			for i := range n {
				go func() {
					errs <- c.Write(context.Background(), true, func(tx *Tx) error {
						mu.Lock()
						perTx[tx]++
						mu.Unlock()
						_, err := tx.Exec(qInsert, fmt.Sprintf("k%03d", i))
						return err
					})
				}()
			}
			waitFor(t, "the writes to queue", func() bool { return queued(c) == min(n, maxBatch) })
			release()
			if err := <-first; err != nil {
				t.Fatalf("blocking write: %v", err)
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			// All n were queued when the first write ended, or (beyond
			// maxBatch) waiting to be: they share one transaction, or fill
			// one and spill into the next.
			largest := 0
			for _, k := range perTx {
				largest = max(largest, k)
			}
			if n <= maxBatch && len(perTx) != 1 {
				t.Errorf("%d writes ran in %d transactions, want 1", n, len(perTx))
			}
			if n > maxBatch && (largest != maxBatch || len(perTx) < 2) {
				t.Errorf("%d writes ran in %d transactions, the largest of %d, want it full (%d)", n, len(perTx), largest, maxBatch)
			}
			if got := len(keys(t, path)); got != n+1 {
				t.Errorf("%d rows stored, want %d", got, n+1)
			}
		})
	}
}

// TestCommitterSavepoints: a write that fails is undone alone; the other
// writes of its transaction commit.
func TestCommitterSavepoints(t *testing.T) {
	tests := []struct {
		name    string
		batched bool // run with two good writes in one transaction
		bad     func(tx *Tx) error
		wantErr string
	}{
		{
			name:    "fn fails after writing",
			batched: true,
			bad: func(tx *Tx) error {
				if _, err := tx.Exec(qInsert, "bad"); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom.Error(),
		},
		{
			name:    "statement fails",
			batched: true,
			bad: func(tx *Tx) error {
				if _, err := tx.Exec(qInsert, "bad"); err != nil {
					return err
				}
				_, err := tx.Exec(qInsert, "bad") // duplicate key
				return err
			},
			wantErr: "UNIQUE constraint failed",
		},
		{
			name: "lone write fails",
			bad: func(tx *Tx) error {
				if _, err := tx.Exec(qInsert, "bad"); err != nil {
					return err
				}
				return errBoom
			},
			wantErr: errBoom.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path := openCommitter(t)
			release, first := block(t, c, "first")
			var good []string
			if tt.batched {
				good = []string{"a", "c"}
			}
			errs := make(chan error, len(good))
			for _, k := range good {
				go func() {
					errs <- c.Write(context.Background(), true, func(tx *Tx) error {
						_, err := tx.Exec(qInsert, k)
						return err
					})
				}()
			}
			bad := make(chan error, 1)
			go func() { bad <- c.Write(context.Background(), true, tt.bad) }()
			waitFor(t, "the writes to queue", func() bool { return queued(c) == len(good)+1 })
			release()
			if err := <-first; err != nil {
				t.Fatalf("blocking write: %v", err)
			}
			for range good {
				if err := <-errs; err != nil {
					t.Errorf("good write: %v", err)
				}
			}
			err := <-bad
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("bad write returned %v, want %q", err, tt.wantErr)
			}
			if tt.wantErr == errBoom.Error() && !errors.Is(err, errBoom) {
				t.Errorf("bad write returned %v, not fn's error", err)
			}
			want := append([]string{"first"}, good...)
			slices.Sort(want)
			if got := keys(t, path); !slices.Equal(got, want) {
				t.Errorf("stored %v, want %v", got, want)
			}
		})
	}
}

// syncLevel is what PRAGMA synchronous reads inside tx: 1 NORMAL, 2 FULL.
func syncLevel(tx *Tx) (int, error) {
	var level int
	err := tx.QueryRow("PRAGMA synchronous").Scan(&level)
	return level, err
}

// TestCommitterDurable: a durable write commits with synchronous=FULL, and
// the writes batched with it share its transaction; a batch of writes
// that are not durable commits with NORMAL; FULL is back for the next
// durable write.
func TestCommitterDurable(t *testing.T) {
	tests := []struct {
		name    string
		durable []bool // the writes, queued together unless only one
	}{
		{"durable alone", []bool{true}},
		{"not durable alone", []bool{false}},
		{"not durable then durable", []bool{false, true}},
		{"mixed batch", []bool{true, false, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, path := openCommitter(t)
			release, first := block(t, c, "first")
			type seen struct {
				tx      *Tx
				level   int
				durable bool
				order   int
			}
			var mu sync.Mutex
			var got []seen
			errs := make(chan error, len(tt.durable))
			for i, durable := range tt.durable {
				go func() {
					errs <- c.Write(context.Background(), durable, func(tx *Tx) error {
						level, err := syncLevel(tx)
						if err != nil {
							return err
						}
						mu.Lock()
						got = append(got, seen{tx: tx, level: level, durable: durable, order: len(got)})
						mu.Unlock()
						_, err = tx.Exec(qInsert, fmt.Sprint(i))
						return err
					})
				}()
			}
			waitFor(t, "the writes to queue", func() bool { return queued(c) == len(tt.durable) })
			release()
			if err := <-first; err != nil {
				t.Fatalf("blocking write: %v", err)
			}
			for range tt.durable {
				if err := <-errs; err != nil {
					t.Fatalf("write: %v", err)
				}
			}
			want := 1 // NORMAL, unless a write of the batch is durable
			if slices.Contains(tt.durable, true) {
				want = 2
			}
			for _, s := range got {
				if s.level != want {
					t.Errorf("durable=%v write of the batch %v ran with synchronous=%d, want %d", s.durable, tt.durable, s.level, want)
				}
				if s.tx != got[0].tx {
					t.Errorf("the writes of one batch ran in two transactions: %+v", got)
				}
			}
			// FULL again afterwards.
			var after int
			if err := c.Write(context.Background(), true, func(tx *Tx) error {
				var err error
				after, err = syncLevel(tx)
				return err
			}); err != nil || after != 2 {
				t.Errorf("next durable write: synchronous=%d, %v; want 2", after, err)
			}
			if n := len(keys(t, path)); n != len(tt.durable)+1 {
				t.Errorf("%d rows stored, want %d", n, len(tt.durable)+1)
			}
		})
	}
}

// TestCommitterClose: Close lets the running write commit, closes the
// connection, and turns later writes away; a write queued meanwhile either
// commits or fails with ErrClosed, and its row says which.
func TestCommitterClose(t *testing.T) {
	c, path := openCommitter(t)
	release, first := block(t, c, "first")
	queuedErr := make(chan error, 1)
	go func() {
		queuedErr <- c.Write(context.Background(), true, func(tx *Tx) error {
			_, err := tx.Exec(qInsert, "queued")
			return err
		})
	}()
	waitFor(t, "the write to queue", func() bool { return queued(c) == 1 })
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a write was running", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-first; err != nil {
		t.Errorf("running write: %v", err)
	}
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	qerr := <-queuedErr
	if qerr != nil && !errors.Is(qerr, ErrClosed) {
		t.Errorf("queued write: %v, want nil or ErrClosed", qerr)
	}
	want := []string{"first"}
	if qerr == nil {
		want = append(want, "queued")
	}
	if got := keys(t, path); !slices.Equal(got, want) {
		t.Errorf("stored %v, want %v (queued write returned %v)", got, want, qerr)
	}
	if err := c.db.Ping(); err == nil {
		t.Error("the write connection is still open after Close")
	}
	ran := false
	err := c.Write(context.Background(), true, func(*Tx) error { ran = true; return nil })
	if !errors.Is(err, ErrClosed) || ran {
		t.Errorf("Write after Close: %v (ran %v), want ErrClosed", err, ran)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCommitterContext: a caller whose context ends while its write is
// queued gets the context's error and its write never runs; one whose
// context ends once the write is taken waits for the commit.
func TestCommitterContext(t *testing.T) {
	t.Run("ended before", func(t *testing.T) {
		c, path := openCommitter(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		ran := false
		err := c.Write(ctx, true, func(*Tx) error { ran = true; return nil })
		if !errors.Is(err, context.Canceled) || ran {
			t.Errorf("Write: %v (ran %v), want context.Canceled", err, ran)
		}
		if got := keys(t, path); len(got) != 0 {
			t.Errorf("stored %v", got)
		}
	})
	t.Run("ended while queued", func(t *testing.T) {
		c, path := openCommitter(t)
		release, first := block(t, c, "first")
		ctx, cancel := context.WithCancel(context.Background())
		var ran sync.Mutex // locked once the abandoned write runs
		abandoned := make(chan error, 1)
		go func() {
			abandoned <- c.Write(ctx, true, func(tx *Tx) error {
				ran.Lock()
				_, err := tx.Exec(qInsert, "abandoned")
				return err
			})
		}()
		waitFor(t, "the write to queue", func() bool { return queued(c) == 1 })
		cancel()
		select {
		case err := <-abandoned:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("abandoned write: %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the abandoned write's caller still waits for the committer")
		}
		release()
		if err := <-first; err != nil {
			t.Fatalf("blocking write: %v", err)
		}
		// The committer goes on with the next write, the abandoned one skipped.
		if err := c.Write(context.Background(), true, func(tx *Tx) error {
			_, err := tx.Exec(qInsert, "next")
			return err
		}); err != nil {
			t.Fatalf("next write: %v", err)
		}
		if !ran.TryLock() {
			t.Error("the abandoned write ran")
		}
		if got, want := keys(t, path), []string{"first", "next"}; !slices.Equal(got, want) {
			t.Errorf("stored %v, want %v", got, want)
		}
	})
	t.Run("ended while running", func(t *testing.T) {
		c, path := openCommitter(t)
		ctx, cancel := context.WithCancel(context.Background())
		err := c.Write(ctx, true, func(tx *Tx) error {
			cancel()
			_, err := tx.Exec(qInsert, "running")
			return err
		})
		if err != nil {
			t.Errorf("Write: %v, want nil: it was taken, so it commits", err)
		}
		if got, want := keys(t, path), []string{"running"}; !slices.Equal(got, want) {
			t.Errorf("stored %v, want %v", got, want)
		}
	})
}

// TestCommitterWriteThen: then runs after its write's transaction has
// committed (a connection of its own sees the row), in the order the
// writes ran, and never for a write that failed.
func TestCommitterWriteThen(t *testing.T) {
	c, path := openCommitter(t)
	release, first := block(t, c, "first")
	var mu sync.Mutex
	var order []string
	var seen [][]string
	insertThen := func(k string, fail bool) chan error {
		out := make(chan error, 1)
		go func() {
			out <- c.WriteThen(context.Background(), true, func(tx *Tx) error {
				if _, err := tx.Exec(qInsert, k); err != nil {
					return err
				}
				if fail {
					return errBoom
				}
				return nil
			}, func() {
				mu.Lock()
				defer mu.Unlock()
				order = append(order, k)
				seen = append(seen, keys(t, path))
			})
		}()
		return out
	}
	a := insertThen("a", false)
	waitFor(t, "a to queue", func() bool { return queued(c) == 1 })
	bad := insertThen("bad", true)
	waitFor(t, "bad to queue", func() bool { return queued(c) == 2 })
	b := insertThen("b", false)
	waitFor(t, "b to queue", func() bool { return queued(c) == 3 })
	release()
	if err := <-first; err != nil {
		t.Fatalf("blocking write: %v", err)
	}
	for _, ch := range []chan error{a, b} {
		if err := <-ch; err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	if err := <-bad; !errors.Is(err, errBoom) {
		t.Fatalf("failing write = %v, want errBoom", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(order, []string{"a", "b"}) {
		t.Fatalf("then ran for %v, want a, b in that order (never for the failed write)", order)
	}
	for i, got := range seen {
		if want := []string{"a", "b", "first"}; !slices.Equal(got, want) {
			t.Fatalf("then %d saw %v on another connection, want the committed %v", i, got, want)
		}
	}
}

// TestCommitterPreparesTheSavepoints: the statements around every
// transaction and around every write of a batch (the savepoints) are
// prepared with the caller's, which may list one of them again.
func TestCommitterPreparesTheSavepoints(t *testing.T) {
	c, _ := openCommitterWith(t, []string{qInsert, savepointSQL})
	for _, q := range []string{beginSQL, commitSQL, rollbackSQL, "SAVEPOINT w", "RELEASE w", "ROLLBACK TO w", qInsert} {
		if c.stmts[q] == nil {
			t.Errorf("%q not prepared", q)
		}
	}
}
