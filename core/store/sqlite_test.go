package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/core/store/storetest"
	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

func openSQLite(t testing.TB, path string) *store.SQLite {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), path)
	if err != nil {
		t.Fatalf("OpenSQLite: %v", err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		// A directory that does not exist yet: OpenSQLite creates it.
		return openSQLite(t, filepath.Join(t.TempDir(), "data", "store.db"))
	})
}

func TestSQLiteSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	pending := store.Message{Dir: store.ToUser, Chat: "tg:1", DedupeKey: "k1", Payload: []byte{0, 1, 2, 255}, CreatedAt: created}
	dead := store.Message{Dir: store.ToSelarti, Chat: "tg:2", Payload: []byte("x")}
	delivered := store.Message{Dir: store.ToUser, Chat: "tg:3", DedupeKey: "k3"}
	for _, m := range []*store.Message{&pending, &dead, &delivered} {
		if _, err := s.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	next := created.Add(time.Hour)
	mustNil(t, s.Retry(ctx, pending.ID, next, "rate limited"))
	mustNil(t, s.Kill(ctx, dead.ID, "bad request"))
	mustNil(t, s.Delivered(ctx, delivered.ID))
	mustNil(t, s.SetDialogFlags(ctx, "tg:2", 7))
	mustNil(t, s.Close())

	s = openSQLite(t, path)
	defer s.Close()
	got, err := s.Get(ctx, pending.ID)
	mustNil(t, err)
	if got.State != store.Pending || got.Attempts != 1 || got.LastError != "rate limited" || !got.NextAt.Equal(next) ||
		!got.CreatedAt.Equal(created) || !bytes.Equal(got.Payload, pending.Payload) || got.DedupeKey != "k1" || got.Chat != "tg:1" {
		t.Fatalf("pending message after reopen: %+v", got)
	}
	dl, err := s.DeadLetters(ctx, 10)
	mustNil(t, err)
	if len(dl) != 1 || dl[0].ID != dead.ID || dl[0].LastError != "bad request" || dl[0].Attempts != 1 {
		t.Fatalf("dead letters after reopen: %+v", dl)
	}
	if got, err := s.Get(ctx, delivered.ID); err != nil || got.State != store.Delivered {
		t.Fatalf("delivered message after reopen: %+v, %v", got, err)
	}
	if c, err := s.Chat(ctx, "tg:2"); err != nil || c != (store.ChatInfo{Known: true, Flags: 7}) {
		t.Fatalf("Chat after reopen = %+v, %v; want known, flags 7", c, err)
	}
	if dup, err := s.Enqueue(ctx, &store.Message{Dir: store.ToUser, Chat: "tg:9", DedupeKey: "k3"}); err != nil || !dup {
		t.Fatalf("dedupe after reopen: dup %v, %v", dup, err)
	}
	// The retried head still holds its chat back, and is due at NextAt.
	if got, _ := s.Claim(ctx, store.ToUser, next.Add(-time.Second), time.Minute, 10); len(got) != 0 {
		t.Fatalf("claimed %+v before NextAt", got)
	}
	if got, _ := s.Claim(ctx, store.ToUser, next, time.Minute, 10); len(got) != 1 || got[0].ID != pending.ID {
		t.Fatalf("claim at NextAt after reopen: %+v", got)
	}
	// New ids stay above the old ones.
	m := store.Message{Dir: store.ToUser, Chat: "tg:1"}
	if _, err := s.Enqueue(ctx, &m); err != nil || m.ID <= delivered.ID {
		t.Fatalf("new id %d after reopen (%v), want above %d", m.ID, err, delivered.ID)
	}
}

// After a crash, the due head of each chat, in each direction, may have
// been in flight: reopening marks exactly those in doubt. After a clean
// shutdown nothing new is.
func TestSQLiteCrashMarksDueHeadsInDoubt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	add := func(dir store.Direction, chat string) store.Message {
		m := store.Message{Dir: dir, Chat: chat}
		if _, err := s.Enqueue(ctx, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	a1, a2 := add(store.ToSelarti, "a"), add(store.ToSelarti, "a")
	b1 := add(store.ToSelarti, "b")
	c1 := add(store.ToUser, "c")
	now := time.Now()
	if got, err := s.Claim(ctx, store.ToSelarti, now, time.Hour, 10); err != nil || len(got) != 2 {
		t.Fatalf("Claim = %v, %v", got, err)
	}
	mustNil(t, s.Retry(ctx, b1.ID, now.Add(time.Hour), "later")) // waiting: not in flight
	mustNil(t, store.Abandon(s))

	s = openSQLite(t, path)
	if n := s.InDoubtAtOpen(); n != 2 {
		t.Errorf("InDoubtAtOpen = %d, want 2", n)
	}
	for _, c := range []struct {
		m    store.Message
		want bool
	}{{a1, true}, {a2, false}, {b1, false}, {c1, true}} {
		got, err := s.Get(ctx, c.m.ID)
		if err != nil || got.InDoubt != c.want {
			t.Errorf("message %d (%s %s) after the crash: InDoubt %v, %v; want %v", c.m.ID, c.m.Dir, c.m.Chat, got.InDoubt, err, c.want)
		}
	}
	// In doubt stays in doubt across a clean restart; nothing else joins it.
	mustNil(t, s.Close())
	s = openSQLite(t, path)
	defer s.Close()
	if n := s.InDoubtAtOpen(); n != 0 {
		t.Errorf("InDoubtAtOpen after a clean shutdown = %d, want 0", n)
	}
	got, err := s.Claim(ctx, store.ToSelarti, now, time.Hour, 10)
	if err != nil || len(got) != 1 || got[0].ID != a1.ID || !got[0].InDoubt {
		t.Fatalf("Claim after a clean restart = %+v, %v; want message %d, in doubt", got, err, a1.ID)
	}
}

func TestSQLiteReopenReleasesLeases(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	var ids []int64
	for _, chat := range []string{"a", "b"} {
		m := store.Message{Dir: store.ToUser, Chat: chat}
		if _, err := s.Enqueue(ctx, &m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	now := time.Now()
	got, err := s.Claim(ctx, store.ToUser, now, time.Hour, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("Claim = %v, %v", got, err)
	}
	mustNil(t, s.Retry(ctx, ids[1], now.Add(time.Hour), "later"))
	mustNil(t, s.Close()) // as if the process died with a1 leased

	s = openSQLite(t, path)
	defer s.Close()
	got, err = s.Claim(ctx, store.ToUser, now, time.Hour, 10)
	if err != nil || len(got) != 1 || got[0].ID != ids[0] {
		t.Fatalf("Claim after reopen = %+v, %v; want message %d again", got, err, ids[0])
	}
	// A retried head's NextAt is not a lease: it still holds.
	mustNil(t, s.Delivered(ctx, ids[0]))
	if got, _ := s.Claim(ctx, store.ToUser, now.Add(time.Hour), time.Hour, 10); len(got) != 1 || got[0].ID != ids[1] {
		t.Fatalf("claim of the retried message: %+v", got)
	}
}

// TestSQLiteCloseDuringWrites closes the store while goroutines write:
// each write either fails with ErrClosed or is on disk after a reopen.
func TestSQLiteCloseDuringWrites(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	var mu sync.Mutex
	var ids []int64
	var started, wg sync.WaitGroup
	for g := range 8 {
		started.Add(1)
		wg.Go(func() {
			for i := 0; ; i++ {
				m := store.Message{Dir: store.ToSelarti, Chat: fmt.Sprintf("g%d", g)}
				_, err := s.Enqueue(ctx, &m)
				if i == 0 {
					started.Done()
				}
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				mu.Lock()
				ids = append(ids, m.ID)
				mu.Unlock()
			}
		})
	}
	started.Wait() // every goroutine has written once
	mustNil(t, s.Close())
	wg.Wait()

	s = openSQLite(t, path)
	defer s.Close()
	for _, id := range ids {
		if _, err := s.Get(ctx, id); err != nil {
			t.Fatalf("acknowledged message %d after reopen: %v", id, err)
		}
	}
	if st, _ := s.Stats(ctx, store.ToSelarti); st.Pending != len(ids) {
		t.Fatalf("%d pending after reopen, want the %d acknowledged", st.Pending, len(ids))
	}
}

// TestSQLiteSurvivesCrash runs a process that enqueues, claims and exits
// without closing the store, as a crash would; the data must be there,
// the lease released and the lock gone.
func TestSQLiteSurvivesCrash(t *testing.T) {
	if path := os.Getenv("STORE_CRASH_PATH"); path != "" {
		crashHelper(path)
		return
	}
	path := filepath.Join(t.TempDir(), "store.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteSurvivesCrash$")
	cmd.Env = append(os.Environ(), "STORE_CRASH_PATH="+path)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("helper: %v, want exit status 3; output:\n%s", err, out)
	}

	ctx := context.Background()
	s := openSQLite(t, path) // the dead process's lock is gone
	defer s.Close()
	if st, err := s.Stats(ctx, store.ToUser); err != nil || st.Pending != 3 {
		t.Fatalf("Stats after crash = %+v, %v; want 3 pending", st, err)
	}
	// The helper claimed chat a's head with a one-hour lease; it died,
	// so the head is claimable at once.
	got, err := s.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10)
	mustNil(t, err)
	if len(got) != 2 || got[0].Chat != "a" || got[1].Chat != "b" {
		t.Fatalf("claim after crash: %+v, want the heads of a and b", got)
	}
}

// crashHelper is the crashing process of TestSQLiteSurvivesCrash.
func crashHelper(path string) {
	ctx := context.Background()
	s, err := store.OpenSQLite(ctx, path)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for _, chat := range []string{"a", "a", "b"} {
		if _, err := s.Enqueue(ctx, &store.Message{Dir: store.ToUser, Chat: chat}); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
	}
	if got, err := s.Claim(ctx, store.ToUser, time.Now(), time.Hour, 1); err != nil || len(got) != 1 {
		fmt.Println("claim:", got, err)
		os.Exit(1)
	}
	os.Exit(3) // no Close: the WAL is not checkpointed, the lock not released
}

func TestSQLiteInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	_, err := store.OpenSQLite(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second open = %v, want an in-use error", err)
	}
	// The failed open did not disturb the first.
	m := store.Message{Dir: store.ToUser, Chat: "c"}
	if _, err := s.Enqueue(context.Background(), &m); err != nil {
		t.Fatalf("Enqueue on the first store after a failed second open: %v", err)
	}
	mustNil(t, s.Close())
	s = openSQLite(t, path)
	mustNil(t, s.Close())
}

func TestSQLiteRejectsNonDatabase(t *testing.T) {
	random := make([]byte, 8192)
	rand.Read(random)
	tests := []struct {
		name     string
		contents []byte
		wantErr  string
	}{
		{"random bytes", random, "not a SQLite database"},
		{"text", []byte("adapters:\n  - name: tg\n"), "not a SQLite database"},
		{"shorter than a header", []byte("SQLite"), "not a SQLite database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "store.db")
			mustNil(t, os.WriteFile(path, tt.contents, 0o600))
			_, err := store.OpenSQLite(context.Background(), path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("OpenSQLite = %v, want an error naming %s and containing %q", err, path, tt.wantErr)
			}
			got, err := os.ReadFile(path)
			mustNil(t, err)
			if !bytes.Equal(got, tt.contents) {
				t.Fatal("the file was changed")
			}
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				if _, err := os.Stat(path + suffix); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a refused open (%v)", path+suffix, err)
				}
			}
		})
	}
}

func TestSQLiteRejectsCorrupt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	s := openSQLite(t, path)
	for i := range 200 {
		m := store.Message{Dir: store.ToUser, Chat: "c", Payload: bytes.Repeat([]byte{byte(i)}, 500)}
		if _, err := s.Enqueue(ctx, &m); err != nil {
			t.Fatal(err)
		}
	}
	mustNil(t, s.Close())

	// Keep the header (page 1) and scribble over the rest: the b-trees.
	data, err := os.ReadFile(path)
	mustNil(t, err)
	if len(data) < 8*4096 {
		t.Fatalf("database is only %d bytes", len(data))
	}
	junk := make([]byte, len(data)-4096)
	rand.Read(junk)
	copy(data[4096:], junk)
	mustNil(t, os.WriteFile(path, data, 0o600))

	_, err = store.OpenSQLite(ctx, path)
	if err == nil {
		t.Fatal("OpenSQLite of a corrupt database succeeded")
	}
	t.Logf("open error: %v", err)
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") && !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("OpenSQLite = %v, want an error naming the file and saying it is corrupt", err)
	}
	got, err := os.ReadFile(path)
	mustNil(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("the corrupt file was changed")
	}
}

func TestSQLiteMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	for range 3 { // the first open applies; the next ones find nothing to do
		mustNil(t, openSQLite(t, path).Close())
	}
	versions := func() []int {
		db, err := sql.Open(sqlitedb.DriverName, path)
		mustNil(t, err)
		defer db.Close()
		rows, err := db.Query("SELECT version FROM schema_migrations ORDER BY version")
		mustNil(t, err)
		defer rows.Close()
		var vs []int
		for rows.Next() {
			var v int
			mustNil(t, rows.Scan(&v))
			vs = append(vs, v)
		}
		mustNil(t, rows.Err())
		return vs
	}
	if got := versions(); !slices.Equal(got, []int{1, 2, 3, 4}) {
		t.Fatalf("schema_migrations after three opens: %v, want [1 2 3 4]", got)
	}

	// A newer binary has been here.
	db, err := sql.Open(sqlitedb.DriverName, path)
	mustNil(t, err)
	_, err = db.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
	mustNil(t, err)
	mustNil(t, db.Close())
	_, err = store.OpenSQLite(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("open of a newer schema = %v, want a newer-schema error", err)
	}
}

func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	mustNil(t, openSQLite(t, path).Close())
	fi, err := os.Stat(path)
	mustNil(t, err)
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("database file mode %v, want 0600: it holds users' messages", mode)
	}
}

// TestSQLitePendingPlan guards the load of the pending index, at every
// open and after another process's commit: it must walk an index to the
// pending messages of a direction, never scan the table, which holds the
// delivered messages of the whole retention period too.
func TestSQLitePendingPlan(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "store.db"))
	defer s.Close()
	rows, err := store.ReadDBOf(s).Query("EXPLAIN QUERY PLAN "+store.PendingSQL, "to_user")
	mustNil(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		mustNil(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	mustNil(t, rows.Err())
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "SEARCH messages USING INDEX messages_dir_state_created (dir=? AND state=?)") {
		t.Errorf("the pending messages are not read along messages_dir_state_created:\n%s", text)
	}
	if strings.Contains(text, "SCAN") {
		t.Errorf("reading the pending messages scans:\n%s", text)
	}
	t.Logf("pending plan:\n%s", text)
}

// TestSQLiteUpgradeFromVersion1: a store written by the first schema,
// whose claim order lived in the heads table, opens with its pending
// messages claimable in order and its leases released, and without the
// heads table.
func TestSQLiteUpgradeFromVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	v1, err := os.ReadFile("migrations/0001_init.sql")
	mustNil(t, err)
	db, err := sql.Open(sqlitedb.DriverName, path)
	mustNil(t, err)
	for _, q := range []string{
		"PRAGMA journal_mode = WAL",
		string(v1),
		"CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
		"INSERT INTO schema_migrations VALUES (1, 0)",
		// Chat a: a leased head and a later message; chat b: delivered.
		`INSERT INTO messages (id, dir, chat, payload, state, created_at) VALUES
			(1, 'to_user', 'web:a', x'61', 'pending', 10),
			(2, 'to_user', 'web:a', x'62', 'pending', 20),
			(3, 'to_user', 'web:b', x'63', 'delivered', 5)`,
		"INSERT INTO heads (dir, chat, msg_id, waiting, ready_at, lease_id, lease_until) VALUES ('to_user', 'web:a', 1, 1, 99, 1, 99)",
		"INSERT INTO chats (chat, last_seen, dialog_flags, flags_at) VALUES ('web:a', 10, 5, 10)",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("build a version-1 store: %v", err)
		}
	}
	mustNil(t, db.Close())

	s := openSQLite(t, path)
	defer s.Close()
	got, err := s.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10)
	if err != nil || len(got) != 1 || got[0].ID != 1 || string(got[0].Payload) != "a" {
		t.Fatalf("claim after the upgrade = %+v, %v; want message 1", got, err)
	}
	mustNil(t, s.Delivered(ctx, 1))
	if got, _ := s.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10); len(got) != 1 || got[0].ID != 2 {
		t.Fatalf("second claim after the upgrade = %+v; want message 2", got)
	}
	if c, err := s.Chat(ctx, "web:a"); err != nil || c != (store.ChatInfo{Known: true, Flags: 5}) {
		t.Fatalf("chat after the upgrade = %+v, %v; want known, flags 5", c, err)
	}
	var n int
	mustNil(t, store.ReadDBOf(s).QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('heads', 'heads_claim', 'messages_pending_chat')").Scan(&n))
	if n != 0 {
		t.Fatalf("%d of the claim order's old tables and indexes are left after the upgrade", n)
	}
}

func mustNil(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteSharedOpenBesideOwner: an admin tool opens the store while the
// gateway has it, replays a dead letter, and the owner claims it; the
// owner's leases survive the admin's open.
func TestSQLiteSharedOpenBesideOwner(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "store.db")
	owner := openSQLite(t, path)
	defer owner.Close()

	dead := &store.Message{Dir: store.ToUser, Chat: "web:a", Payload: []byte("x")}
	if _, err := owner.Enqueue(ctx, dead); err != nil {
		t.Fatal(err)
	}
	leased := &store.Message{Dir: store.ToUser, Chat: "web:b", Payload: []byte("y")}
	if _, err := owner.Enqueue(ctx, leased); err != nil {
		t.Fatal(err)
	}
	got, err := owner.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("claim = %v, %v", got, err)
	}
	mustNil(t, owner.Kill(ctx, dead.ID, "blocked"))

	if _, err := store.OpenSQLiteShared(ctx, filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Fatal("OpenSQLiteShared created a store that did not exist")
	}
	admin, err := store.OpenSQLiteShared(ctx, path)
	if err != nil {
		t.Fatalf("shared open beside the owner: %v", err)
	}
	dl, err := admin.DeadLetters(ctx, 10)
	if err != nil || len(dl) != 1 || dl[0].LastError != "blocked" {
		t.Fatalf("admin dead letters = %+v, %v", dl, err)
	}
	mustNil(t, admin.Replay(ctx, dead.ID))
	mustNil(t, admin.Close())

	// The owner's lease on web:b is intact; the replayed web:a becomes
	// claimable once the owner notices the other process's commit.
	deadline := time.Now().Add(5 * time.Second)
	for {
		again, err := owner.Claim(ctx, store.ToUser, time.Now(), time.Minute, 10)
		mustNil(t, err)
		if len(again) == 1 && again[0].ID == dead.ID {
			break
		}
		if len(again) != 0 || time.Now().After(deadline) {
			t.Fatalf("owner claim after replay = %+v; want only the replayed message, within a few seconds", again)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
