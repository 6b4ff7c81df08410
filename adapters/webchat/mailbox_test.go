package webchat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

// openTestMailbox opens a mailbox at path, closed when the test ends.
func openTestMailbox(t *testing.T, path string, historyLimit int) *mailbox {
	t.Helper()
	mb, err := openMailbox(context.Background(), path, historyLimit)
	if err != nil {
		t.Fatalf("openMailbox: %v", err)
	}
	t.Cleanup(func() {
		if err := mb.close(); err != nil {
			t.Errorf("close mailbox: %v", err)
		}
	})
	return mb
}

// put appends e to session id (creating it with epoch "e1" if missing),
// failing the test on error.
func put(t *testing.T, mb *mailbox, id string, e entry) appended {
	t.Helper()
	if e.ts.IsZero() {
		e.ts = time.Now()
	}
	res, err := mb.append(context.Background(), appendReq{session: id, e: e, newEpoch: "e1"})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// rowCount counts the rows of table for session id, straight from the file.
func rowCount(t *testing.T, mb *mailbox, table, id string) int {
	t.Helper()
	col := "session"
	if table == "sessions" {
		col = "id"
	}
	var n int
	if err := mb.rdb.QueryRow("SELECT COUNT(*) FROM "+table+" WHERE "+col+" = ?", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMailboxAppendDedupes(t *testing.T) {
	tests := []struct {
		name     string
		first    entry
		firstIn  string // session of the first entry
		second   entry
		wantDup  bool
		wantSeq2 int64
	}{
		{name: "same Selarti id", first: entry{from: fromBot, id: "m1"}, second: entry{from: fromBot, id: "m1"}, wantDup: true, wantSeq2: 1},
		{name: "same Selarti id from the operator", first: entry{from: fromBot, id: "m1"}, second: entry{from: fromOperator, id: "m1"}, wantDup: true, wantSeq2: 1},
		{name: "other Selarti id", first: entry{from: fromBot, id: "m1"}, second: entry{from: fromBot, id: "m2"}, wantSeq2: 2},
		{name: "same client id", first: entry{from: fromUser, id: "c1"}, second: entry{from: fromUser, id: "c1"}, wantDup: true, wantSeq2: 1},
		{name: "client id equal to a Selarti id", first: entry{from: fromBot, id: "x"}, second: entry{from: fromUser, id: "x"}, wantSeq2: 2},
		{name: "no id is never a duplicate", first: entry{from: fromBot}, second: entry{from: fromBot}, wantSeq2: 2},
		{name: "events are never duplicates", first: entry{event: true, operator: true}, second: entry{event: true, operator: true}, wantSeq2: 2},
		{name: "same id in another session", first: entry{from: fromBot, id: "m1"}, firstIn: "other", second: entry{from: fromBot, id: "m1"}, wantSeq2: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
			in := tt.firstIn
			if in == "" {
				in = "s"
			}
			if res := put(t, mb, in, tt.first); res.seq != 1 || res.dup || res.epoch != "e1" {
				t.Fatalf("first append = %+v, want seq 1 in epoch e1", res)
			}
			res := put(t, mb, "s", tt.second)
			if res.dup != tt.wantDup || res.seq != tt.wantSeq2 || res.epoch != "e1" {
				t.Fatalf("second append = %+v, want dup %v, seq %d", res, tt.wantDup, tt.wantSeq2)
			}
			want := 2
			if tt.wantDup || tt.firstIn != "" {
				want = 1
			}
			if n := rowCount(t, mb, "history", "s"); n != want {
				t.Fatalf("%d rows in session s, want %d", n, want)
			}
		})
	}
}

func TestMailboxRoundTrip(t *testing.T) {
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	ts := time.Unix(1700000000, 123456789)
	want := []entry{
		{seq: 1, from: fromUser, id: "c1", text: "hello", ts: ts},
		{seq: 2, from: fromBot, id: "m1", text: "**hi**", ts: ts.Add(time.Second)},
		{seq: 3, event: true, operator: true, closed: true, ts: ts.Add(2 * time.Second)},
		{seq: 4, from: fromOperator, text: "operator here", ts: ts.Add(3 * time.Second)},
	}
	for _, e := range want {
		put(t, mb, "s", e)
	}
	st, ok, err := mb.load(context.Background(), "s")
	if err != nil || !ok {
		t.Fatalf("load = %v, %v", ok, err)
	}
	if st.epoch != "e1" || st.lastSeq != 4 || !st.lastActive.Equal(want[3].ts) || len(st.history) != len(want) {
		t.Fatalf("loaded %+v", st)
	}
	for i, e := range st.history {
		if !e.ts.Equal(want[i].ts) {
			t.Fatalf("entry %d ts = %v, want %v", i, e.ts, want[i].ts)
		}
		e.ts = want[i].ts
		if e != want[i] {
			t.Fatalf("entry %d = %+v, want %+v", i, e, want[i])
		}
	}
}

func TestMailboxMissingSession(t *testing.T) {
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	res, err := mb.append(context.Background(), appendReq{session: "s", e: entry{event: true, closed: true, ts: time.Now()}})
	if err != nil || !res.missing {
		t.Fatalf("append without newEpoch = %+v, %v; want missing", res, err)
	}
	if _, ok, err := mb.load(context.Background(), "s"); ok || err != nil {
		t.Fatalf("load = %v, %v; want no session", ok, err)
	}
}

func TestMailboxSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), mailboxFile)
	ctx := context.Background()
	mb, err := openMailbox(ctx, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	epoch, _, err := mb.create(ctx, "s", "first", "Ann", time.Now())
	if err != nil || epoch != "first" {
		t.Fatalf("create = %q, %v", epoch, err)
	}
	put(t, mb, "s", entry{from: fromBot, id: "m1", text: "one"})
	put(t, mb, "s", entry{from: fromUser, id: "c1", text: "two"})
	if err := mb.close(); err != nil {
		t.Fatal(err)
	}
	if err := mb.close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, _, err := mb.load(ctx, "s"); !errors.Is(err, errMailboxClosed) {
		t.Fatalf("load after close = %v, want errMailboxClosed", err)
	}
	if _, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromBot}, newEpoch: "x"}); !errors.Is(err, errMailboxClosed) {
		t.Fatalf("append after close = %v, want errMailboxClosed", err)
	}

	mb = openTestMailbox(t, path, 10)
	// The epoch is the stored one, whatever a caller proposes.
	if epoch, last, err := mb.create(ctx, "s", "second", "", time.Now()); err != nil || epoch != "first" || last != 2 {
		t.Fatalf("create after reopen = %q, %d, %v; want the stored epoch and last_seq 2", epoch, last, err)
	}
	tests := []struct {
		name    string
		e       entry
		wantSeq int64
		wantDup bool
	}{
		{name: "redelivered Selarti id", e: entry{from: fromBot, id: "m1"}, wantSeq: 1, wantDup: true},
		{name: "re-sent client id", e: entry{from: fromUser, id: "c1"}, wantSeq: 2, wantDup: true},
		{name: "new message continues the seqs", e: entry{from: fromBot, id: "m2"}, wantSeq: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := put(t, mb, "s", tt.e)
			if res.seq != tt.wantSeq || res.dup != tt.wantDup || res.epoch != "first" {
				t.Fatalf("append = %+v, want seq %d, dup %v, epoch first", res, tt.wantSeq, tt.wantDup)
			}
		})
	}
}

func TestMailboxHistoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), mailboxFile)
	ctx := context.Background()
	mb, err := openMailbox(ctx, path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		put(t, mb, "s", entry{from: fromBot, id: fmt.Sprint("m", i), text: fmt.Sprint(i)})
	}
	if n := rowCount(t, mb, "history", "s"); n != 3 {
		t.Fatalf("%d rows kept, want 3", n)
	}
	// A trimmed id is forgotten: it is stored again (the core's own
	// dedupe covers late redeliveries).
	if res := put(t, mb, "s", entry{from: fromBot, id: "m1"}); res.dup || res.seq != 8 {
		t.Fatalf("append of a trimmed id = %+v, want a new entry with seq 8", res)
	}
	if err := mb.close(); err != nil {
		t.Fatal(err)
	}
	// A lower limit applies at once on load.
	mb = openTestMailbox(t, path, 2)
	st, _, err := mb.load(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.history) != 2 || st.history[0].seq != 7 || st.history[1].seq != 8 {
		t.Fatalf("history after lowering the limit = %+v, want seqs 7 and 8", st.history)
	}
}

func TestMailboxExpire(t *testing.T) {
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	ctx := context.Background()
	t0 := time.Unix(1700000000, 0)
	for i, id := range []string{"a", "b", "c"} {
		put(t, mb, id, entry{from: fromBot, text: "x", ts: t0.Add(time.Duration(i) * time.Hour)})
		put(t, mb, id, entry{from: fromBot, text: "y", ts: t0.Add(time.Duration(i) * time.Hour)})
	}
	ids, err := mb.idle(ctx, t0.Add(90*time.Minute), 10)
	if err != nil || strings.Join(ids, ",") != "a,b" {
		t.Fatalf("idle = %v, %v; want a,b (oldest first)", ids, err)
	}
	if ids, _ := mb.idle(ctx, t0.Add(90*time.Minute), 1); len(ids) != 1 || ids[0] != "a" {
		t.Fatalf("idle with limit 1 = %v, want [a]", ids)
	}
	if err := mb.expire(ctx, []string{"a"}, t0.Add(90*time.Minute), map[string]time.Time{"b": t0.Add(5 * time.Hour), "c": t0}); err != nil {
		t.Fatal(err)
	}
	if rowCount(t, mb, "sessions", "a") != 0 || rowCount(t, mb, "history", "a") != 0 {
		t.Fatal("expired session a or its history is still stored")
	}
	if rowCount(t, mb, "history", "b") != 2 {
		t.Fatal("touched session b lost its history")
	}
	st, _, _ := mb.load(ctx, "b")
	if !st.lastActive.Equal(t0.Add(5 * time.Hour)) {
		t.Fatalf("b last active %v, want t0+5h", st.lastActive)
	}
	// Touching never moves last_active back.
	st, _, _ = mb.load(ctx, "c")
	if !st.lastActive.Equal(t0.Add(2 * time.Hour)) {
		t.Fatalf("c last active %v, want t0+2h", st.lastActive)
	}
	if ids, _ := mb.idle(ctx, t0.Add(90*time.Minute), 10); len(ids) != 0 {
		t.Fatalf("idle after expire = %v, want none", ids)
	}
}

func TestMailboxOpenRefuses(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		wantErr string
	}{
		{
			name: "a newer schema",
			prepare: func(t *testing.T, path string) {
				db, err := sql.Open(sqlitedb.DriverName, path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", mailboxSchemaVersion+1)); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "newer than this binary",
		},
		{
			name: "a file that is not a database",
			prepare: func(t *testing.T, path string) {
				if err := os.WriteFile(path, []byte("not a database at all, but long enough"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "not a SQLite database",
		},
		{
			name: "a directory",
			prepare: func(t *testing.T, path string) {
				if err := os.Mkdir(path, 0o700); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "is a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), mailboxFile)
			tt.prepare(t, path)
			before, _ := os.ReadFile(path)
			mb, err := openMailbox(context.Background(), path, 10)
			if err == nil {
				mb.close()
				t.Fatal("open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("open = %v, want an error naming the path and %q", err, tt.wantErr)
			}
			if after, _ := os.ReadFile(path); string(after) != string(before) {
				t.Fatal("the refused file was changed")
			}
		})
	}
}

func TestMailboxSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), mailboxFile)
	mb := openTestMailbox(t, path, 10)
	var mode string
	var sync, version int
	// The settings of the write connection itself, which the committer
	// holds.
	err := mb.commits.Conn(context.Background(), func(conn *sql.Conn) error {
		ctx := context.Background()
		if err := conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
			return err
		}
		if err := conn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
			return err
		}
		return conn.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version)
	})
	if err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	// 2 is FULL: a commit is synced before append returns.
	if sync != 2 {
		t.Fatalf("synchronous = %d; want 2 (FULL)", sync)
	}
	if version != mailboxSchemaVersion {
		t.Fatalf("user_version = %d; want %d", version, mailboxSchemaVersion)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

// TestMailboxConcurrentAppends runs appends from many goroutines, which
// the committer batches into shared transactions, and checks that each
// session's seqs run 1, 2, 3... in the order each goroutine sent them.
func TestMailboxConcurrentAppends(t *testing.T) {
	const sessions, perSession = 16, 15
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 1000)
	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("s", s)
			for i := 1; i <= perSession; i++ {
				res, err := mb.append(context.Background(), appendReq{session: id, e: entry{from: fromBot, id: fmt.Sprint(i), text: "x", ts: time.Now()}, newEpoch: "e"})
				if err != nil || res.seq != int64(i) {
					t.Errorf("%s: append %d = %+v, %v", id, i, res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for s := 0; s < sessions; s++ {
		if n := rowCount(t, mb, "history", fmt.Sprint("s", s)); n != perSession {
			t.Fatalf("s%d has %d rows, want %d", s, n, perSession)
		}
	}
}

func TestMailboxWriteHonoursContext(t *testing.T) {
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromBot, ts: time.Now()}, newEpoch: "e"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("append with a done ctx = %v, want context.Canceled", err)
	}
	if rowCount(t, mb, "sessions", "s") != 0 {
		t.Fatal("a cancelled append wrote")
	}
}

// withBootID makes the mailbox see id as the machine's boot id until the
// test ends ("" for a machine whose boot id cannot be read).
func withBootID(t *testing.T, id string) {
	t.Helper()
	old := bootID
	bootID = func() string { return id }
	t.Cleanup(func() { bootID = old })
}

func TestMailboxDedupeUsesIndexes(t *testing.T) {
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	for q, index := range map[string]string{
		qGetSessionMsgID:    "history_msg_id",
		qGetSessionClientID: "history_client_id",
		qFindClientID:       "history_client_id",
	} {
		rows, err := mb.rdb.Query("EXPLAIN QUERY PLAN "+q, "s", "id")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		// Without the index a look-up reads the session's whole history.
		if !strings.Contains(strings.Join(plan, "; "), index) {
			t.Errorf("plan of %s = %q, want it to use %s", q, plan, index)
		}
	}
}

func TestMailboxUnsyncedAppend(t *testing.T) {
	withBootID(t, "boot-a")
	ctx := context.Background()
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), 10)
	if !mb.lazy {
		t.Fatal("mailbox does not allow unsynced writes although the boot id is known")
	}
	lazy, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromUser, id: "c1", text: "hi", ts: time.Now()}, newEpoch: "e1", lazy: true})
	if err != nil || lazy.synced || lazy.seq != 1 {
		t.Fatalf("unsynced append = %+v, %v; want seq 1, not synced", lazy, err)
	}
	if mb.isSynced(lazy.ticket) {
		t.Fatal("an unsynced write counts as synced")
	}
	// A re-send writes nothing, so its commit syncs nothing either.
	dup, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromUser, id: "c1", text: "hi", ts: time.Now()}, newEpoch: "e1"})
	if err != nil || !dup.dup || dup.synced || mb.isSynced(lazy.ticket) {
		t.Fatalf("re-sent append = %+v, %v; want a duplicate that syncs nothing", dup, err)
	}
	// A synced commit after it syncs it too.
	synced := put(t, mb, "other", entry{from: fromBot, id: "m1", text: "hello"})
	if !synced.synced || !mb.isSynced(lazy.ticket) {
		t.Fatalf("synced append = %+v; the unsynced write before it is synced = %v, want both", synced, mb.isSynced(lazy.ticket))
	}
}

// TestMailboxUnsyncedMarker checks how a run that may have written
// entries without syncing them is recognised at the next open: after a
// machine crash (another boot id, or none to read) every session's seqs
// skip past what may be lost; after a process crash, or a clean close,
// they carry on.
func TestMailboxUnsyncedMarker(t *testing.T) {
	tests := []struct {
		name       string
		lastBoot   string // the marker's boot id; "" for no marker (clean close)
		boot       string // the boot id at the next open
		wantSkip   bool
		wantMarker bool // a marker after the open
	}{
		{name: "clean close", boot: "boot-a", wantMarker: true},
		{name: "process crash", lastBoot: "boot-a", boot: "boot-a", wantMarker: true},
		{name: "machine crash", lastBoot: "boot-a", boot: "boot-b", wantSkip: true, wantMarker: true},
		{name: "no boot id, clean close", boot: ""},
		{name: "no boot id, unclean stop", lastBoot: "boot-a", boot: "", wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), mailboxFile)
			marker := path + unsyncedSuffix
			withBootID(t, "boot-a")
			mb, err := openMailbox(ctx, path, 100)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(got)) != "boot-a" {
				t.Fatalf("marker while open = %q, %v; want the boot id", got, err)
			}
			for i := range 3 {
				if _, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromUser, id: fmt.Sprint("c", i), text: "x", ts: time.Now()}, newEpoch: "e1", lazy: true}); err != nil {
					t.Fatal(err)
				}
			}
			if err := mb.close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("marker after a clean close: %v, want none", err)
			}
			if tt.lastBoot != "" {
				// The run did not get to close.
				if err := os.WriteFile(marker, []byte(tt.lastBoot+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}

			withBootID(t, tt.boot)
			mb = openTestMailbox(t, path, 100)
			st, ok, err := mb.load(ctx, "s")
			if err != nil || !ok {
				t.Fatalf("load: %v, %v", ok, err)
			}
			wantLast := int64(3)
			if tt.wantSkip {
				wantLast += maxUnsynced
			}
			if st.lastSeq != wantLast || st.epoch != "e1" || len(st.history) != 3 {
				t.Fatalf("after reopen: last_seq %d, epoch %s, %d entries; want last_seq %d, the same epoch and the 3 entries", st.lastSeq, st.epoch, len(st.history), wantLast)
			}
			if res := put(t, mb, "s", entry{from: fromBot, id: "m1", text: "reply"}); res.seq != wantLast+1 {
				t.Fatalf("next seq = %d, want %d", res.seq, wantLast+1)
			}
			got, err := os.ReadFile(marker)
			if tt.wantMarker != (err == nil) || (tt.wantMarker && strings.TrimSpace(string(got)) != tt.boot) {
				t.Fatalf("marker after reopen = %q, %v; want present: %v, with this boot's id", got, err, tt.wantMarker)
			}
			if mb.lazy != (tt.boot != "") {
				t.Fatalf("unsynced writes allowed = %v with boot id %q", mb.lazy, tt.boot)
			}
			if !mb.lazy {
				res, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromUser, id: "late", text: "x", ts: time.Now()}, lazy: true})
				if err != nil || !res.synced {
					t.Fatalf("append asking for no sync without a boot id = %+v, %v; want it synced", res, err)
				}
			}
		})
	}
}

// storedSession is what the mailbox holds of one session (tests).
type storedSession struct {
	sessionMeta
	history []entry // the newest historyLimit entries at most, oldest first
}

// loadSession is mb's load (see mailbox.load).
func loadSession(ctx context.Context, mb sessionStore, id string) (storedSession, bool, error) {
	return mb.(interface {
		load(context.Context, string) (storedSession, bool, error)
	}).load(ctx, id)
}

// load reads session id with its history, for tests to compare with
// what the cache and the tabs show. ok is false when the mailbox
// does not hold it.
func (m *mailbox) load(ctx context.Context, id string) (st storedSession, ok bool, err error) {
	st.sessionMeta, ok, err = m.meta(ctx, id)
	if err != nil || !ok {
		return st, ok, err
	}
	// Bounded by the seq rather than a LIMIT: trimming is done at insert,
	// so a history_limit lowered since then still applies here.
	st.history, err = m.history(ctx, id, st.lastSeq-int64(m.historyLimit))
	if err != nil {
		return st, false, err
	}
	return st, true, nil
}

// TestMailboxCheckpointShrinksWAL: the janitor's checkpoint leaves the
// mailbox's WAL empty, and the mailbox works on.
func TestMailboxCheckpointShrinksWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webchat.db")
	mb := openTestMailbox(t, path, 1000)
	for i := range 200 {
		put(t, mb, "sess", entry{from: fromBot, text: strings.Repeat("x", 4<<10), id: fmt.Sprint("m", i)})
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
	if err := mb.checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := wal(); n != 0 {
		t.Fatalf("WAL of %d bytes after the checkpoint, want 0", n)
	}
	if res := put(t, mb, "sess", entry{from: fromBot, text: "after", id: "after"}); res.seq != 201 {
		t.Fatalf("append after the checkpoint: %+v, want seq 201", res)
	}
}
