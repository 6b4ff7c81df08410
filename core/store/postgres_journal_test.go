package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/core/store/storetest"
	"github.com/switchboard-gw/switchboard/internal/pgtest"
)

// TestPostgresJournals runs the journals' conformance suite on two stores
// opened on one schema, as two replicas.
func TestPostgresJournals(t *testing.T) {
	pgtest.Base(t)
	t.Run("Journals", func(t *testing.T) {
		storetest.RunJournals(t, func(t *testing.T) (a, b core.Journals) {
			// Parallel subtests: a few connections per store.
			dsn := pgtest.WithParam(pgtest.DSN(t), "pool_max_conns", "4")
			sa, sb := openPostgres(t, dsn), openPostgres(t, dsn)
			t.Cleanup(func() { sa.Close(); sb.Close() })
			return sa.Journals("web"), sb.Journals("web")
		})
	})
	t.Run("Isolated", func(t *testing.T) {
		storetest.RunJournalsIsolated(t, func(t *testing.T) (web, other core.Journals) {
			dsn := pgtest.DSN(t)
			sa, sb := openPostgres(t, dsn), openPostgres(t, dsn)
			t.Cleanup(func() { sa.Close(); sb.Close() })
			return sa.Journals("web"), sb.Journals("other")
		})
	})
}

// appName returns a fresh application_name for a test's store, so that
// the test can find its connections in pg_stat_activity; the watch's
// listening connection is named after it (see pgWatch.connect).
func appName(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "sbtest-" + hex.EncodeToString(b)
}

// noticeLog records the notices of a Watch running in the background.
type noticeLog struct {
	mu      sync.Mutex
	newest  map[string]int64
	at      map[string]time.Time // when newest last moved
	changed chan struct{}        // closed and replaced at each notice
	done    chan error
}

// watchLog runs j.Watch until the test ends, with a log of its notices.
func watchLog(t *testing.T, j core.Journals) *noticeLog {
	ctx, cancel := context.WithCancel(context.Background())
	l := newNoticeLog()
	go func() { l.done <- j.Watch(ctx, l.record) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-l.done:
			if err != context.Canceled {
				t.Errorf("Watch returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Watch did not end with its context")
		}
	})
	return l
}

func newNoticeLog() *noticeLog {
	return &noticeLog{newest: make(map[string]int64), at: make(map[string]time.Time), changed: make(chan struct{}), done: make(chan error, 1)}
}

// record is the Watch's fn.
func (l *noticeLog) record(key string, seq int64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq > l.newest[key] {
		l.newest[key], l.at[key] = seq, now
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// wait waits up to d for a notice of key at seq or later, and reports
// whether it came.
func (l *noticeLog) wait(key string, seq int64, d time.Duration) bool {
	deadline := time.After(d)
	for {
		l.mu.Lock()
		got, changed := l.newest[key], l.changed
		l.mu.Unlock()
		if got >= seq {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		}
	}
}

func (l *noticeLog) seq(key string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.newest[key]
}

// when is when the newest notice of key came.
func (l *noticeLog) when(key string) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.at[key]
}

// warmUpLog appends to a journal of its own until l is told of it: the
// watch is listening, or has polled.
func warmUpLog(t *testing.T, j core.Journals, l *noticeLog) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		res, err := j.Append(context.Background(), "warm-up", core.JournalEntry{Data: []byte("x")},
			core.AppendOptions{Create: &core.JournalHead{Epoch: "w"}, Keep: 1})
		mustNil(t, err)
		if l.wait("warm-up", res.Seq, 200*time.Millisecond) {
			return
		}
	}
	t.Fatal("the Watch told of nothing within 10s")
}

func appendN(t *testing.T, j core.Journals, key string, n int) int64 {
	t.Helper()
	var last int64
	for range n {
		res, err := j.Append(context.Background(), key, core.JournalEntry{Data: []byte("x")},
			core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}})
		mustNil(t, err)
		last = res.Seq
	}
	return last
}

// TestPostgresJournalWatchListens: with polling all but off, a notice
// comes within milliseconds of the append, from another replica as from
// the watch's own: it came by LISTEN. The bound is generous (a loaded
// machine), the polling an hour.
func TestPostgresJournalWatchListens(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() }) // after the watches' cleanups
	// The listening connection pings every 50 ms of quiet: the notices
	// come through those wake-ups.
	store.SetJournalWatch(a, time.Hour, 50*time.Millisecond, nil)
	ja, jb := a.Journals("web"), b.Journals("web")
	l := watchLog(t, ja)
	warmUpLog(t, jb, l)

	const n = 40
	var appends, notices []time.Duration
	for i := range n {
		j := []core.Journals{jb, ja}[i%2]
		start := time.Now()
		seq := appendN(t, j, "s", 1)
		appended := time.Since(start)
		if !l.wait("s", seq, 2*time.Second) {
			t.Fatalf("append %d (seq %d): no notice within 2s (newest %d): is LISTEN working?", i, seq, l.seq("s"))
		}
		appends = append(appends, appended)
		notices = append(notices, l.when("s").Sub(start))
		if i%10 == 9 {
			time.Sleep(120 * time.Millisecond) // quiet: a ping or two
		}
	}
	slices.Sort(appends)
	slices.Sort(notices)
	t.Logf("Append: median %v, p95 %v, max %v", appends[n/2], appends[n*95/100], appends[n-1])
	t.Logf("notice, from the Append's call: median %v, p95 %v, max %v", notices[n/2], notices[n*95/100], notices[n-1])
	if med := notices[n/2]; med > 200*time.Millisecond {
		t.Fatalf("median latency of a notice %v, want well under 200ms", med)
	}
}

// TestPostgresJournalWatchReconnects kills the watch's listening
// connection; the appends made while it is down are told once it is back
// (by the poll that follows a reconnection: the regular polling is an
// hour), and the notices come by LISTEN again after.
func TestPostgresJournalWatchReconnects(t *testing.T) {
	base := pgtest.DSN(t)
	app := appName(t)
	a := openPostgres(t, pgtest.WithParam(base, "application_name", app))
	b := openPostgres(t, base)
	t.Cleanup(func() { a.Close(); b.Close() }) // after the watches' cleanups
	down := make(chan struct{}, 10)
	release := make(chan struct{})
	store.SetJournalWatch(a, time.Hour, 0, func(ctx context.Context) {
		down <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	ja, jb := a.Journals("web"), b.Journals("web")
	l := watchLog(t, ja)
	warmUpLog(t, jb, l)

	killed := pgTerminate(t, base, app+" journal watch")
	if killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	select {
	case <-down:
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not notice its connection was killed")
	}
	// Down: these appends' notices go nowhere.
	sSeq := appendN(t, jb, "s", 3)
	tSeq := appendN(t, ja, "t", 2)
	if l.wait("s", 1, 300*time.Millisecond) || l.wait("t", 1, 0) {
		t.Fatalf("told of an append while the listener was down (s %d, t %d): the test's polling is off", l.seq("s"), l.seq("t"))
	}
	close(release)
	for key, seq := range map[string]int64{"s": sSeq, "t": tSeq} {
		if !l.wait(key, seq, 10*time.Second) {
			t.Fatalf("no notice of %s at seq %d after the reconnection (newest %d): no catch-up", key, seq, l.seq(key))
		}
	}
	// Listening again.
	seq := appendN(t, jb, "s", 1)
	if !l.wait("s", seq, 5*time.Second) {
		t.Fatalf("no notice of s at seq %d after the reconnection: not listening again", seq)
	}
	if got := pgCount(t, base, app+" journal watch", 1); got != 1 {
		t.Fatalf("%d listening connections after the reconnection, want 1", got)
	}
}

// TestPostgresJournalWatchPolls: with the listening connection killed
// again and again and no catch-up on reconnection to rely on (a
// reconnection is held up), the regular polling tells of every append.
func TestPostgresJournalWatchPolls(t *testing.T) {
	base := pgtest.DSN(t)
	app := appName(t)
	a := openPostgres(t, pgtest.WithParam(base, "application_name", app))
	b := openPostgres(t, base)
	t.Cleanup(func() { a.Close(); b.Close() }) // after the watches' cleanups
	hold := make(chan struct{})
	defer close(hold)
	store.SetJournalWatch(a, 100*time.Millisecond, 0, func(ctx context.Context) {
		select {
		case <-hold:
		case <-ctx.Done():
		}
	})
	ja, jb := a.Journals("web"), b.Journals("web")
	l := watchLog(t, ja)
	warmUpLog(t, jb, l)
	if killed := pgTerminate(t, base, app+" journal watch"); killed != 1 {
		t.Fatalf("terminated %d listening connections, want 1", killed)
	}
	time.Sleep(100 * time.Millisecond)
	for i := range 5 {
		seq := appendN(t, jb, fmt.Sprint("p", i), i+1)
		if !l.wait(fmt.Sprint("p", i), seq, 5*time.Second) {
			t.Fatalf("no notice of p%d at seq %d by polling", i, seq)
		}
	}
}

// TestPostgresJournalWatchLateCommit: an append whose rev was taken
// before another's but that commits after it, and whose notice is lost,
// is still found by the polls, which look back past the highest rev they
// saw. The late append is made by hand, without a notice.
func TestPostgresJournalWatchLateCommit(t *testing.T) {
	dsn := pgtest.DSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	t.Cleanup(func() { a.Close(); b.Close() })
	store.SetJournalWatch(a, 100*time.Millisecond, 0, nil)
	ja, jb := a.Journals("web"), b.Journals("web")
	appendN(t, jb, "late", 1)
	l := watchLog(t, ja)
	warmUpLog(t, jb, l)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	mustNil(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	mustNil(t, err)
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE journals SET last_seq = last_seq + 1, rev = nextval('journal_revs')
		WHERE instance = 'web' AND key = 'late'`); err != nil {
		t.Fatal(err)
	}
	// A later rev, committed first and seen (by a notice and the polls).
	seq := appendN(t, jb, "early", 1)
	if !l.wait("early", seq, 5*time.Second) {
		t.Fatal("no notice of the early append")
	}
	time.Sleep(300 * time.Millisecond) // a few polls past it
	mustNil(t, tx.Commit(ctx))
	if !l.wait("late", 2, 5*time.Second) {
		t.Fatalf("no notice of the late commit (newest %d): the polls did not look back", l.seq("late"))
	}
}

// TestPostgresJournalWatchSurvivesPool: the pool's connections killed
// too (the watch's poll meets a dead connection), the watch goes on.
func TestPostgresJournalWatchSurvivesPool(t *testing.T) {
	base := pgtest.DSN(t)
	app := appName(t)
	a := openPostgres(t, pgtest.WithParam(base, "application_name", app))
	b := openPostgres(t, base)
	t.Cleanup(func() { a.Close(); b.Close() }) // after the watches' cleanups
	store.SetJournalWatch(a, 200*time.Millisecond, 0, nil)
	ja, jb := a.Journals("web"), b.Journals("web")
	l := watchLog(t, ja)
	warmUpLog(t, jb, l)
	for round := range 3 {
		// The listener back, and a connection in the pool, idle, to kill.
		if n := pgCount(t, base, app+" journal watch", 1); n != 1 {
			t.Fatalf("round %d: %d listening connections, want 1", round, n)
		}
		if _, _, err := ja.Head(context.Background(), "s"); err != nil {
			t.Fatal(err)
		}
		if killed := pgTerminate(t, base, app, app+" journal watch"); killed < 2 {
			t.Fatalf("round %d: terminated %d connections, want the pool's and the listener's", round, killed)
		}
		seq := appendN(t, jb, "s", 2)
		if !l.wait("s", seq, 10*time.Second) {
			t.Fatalf("round %d: no notice of s at seq %d after the connections were killed", round, seq)
		}
	}
}

// TestPostgresJournalWatchEndsOnClose: Close ends the watches at once,
// with ErrClosed, and closes their connections.
func TestPostgresJournalWatchEndsOnClose(t *testing.T) {
	base := pgtest.DSN(t)
	app := appName(t)
	a := openPostgres(t, pgtest.WithParam(base, "application_name", app))
	b := openPostgres(t, base)
	defer b.Close()
	ja := a.Journals("web")
	l := newNoticeLog()
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- ja.Watch(context.Background(), l.record) }()
	}
	warmUpLog(t, b.Journals("web"), l)
	start := time.Now()
	mustNil(t, a.Close())
	for range 2 {
		select {
		case err := <-errs:
			if !errors.Is(err, store.ErrClosed) {
				t.Fatalf("Watch after Close = %v, want ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Watch did not end with the store")
		}
	}
	t.Logf("Close and the watches' ends took %v", time.Since(start))
	if got := pgCount(t, base, app+" journal watch", 0); got != 0 {
		t.Fatalf("%d listening connections after Close, want 0", got)
	}
	if err := ja.Watch(context.Background(), func(string, int64) {}); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("Watch on a closed store = %v, want ErrClosed", err)
	}
}

// pgTerminate ends the test database's connections named by apps, and
// says how many it ended.
func pgTerminate(t *testing.T, dsn string, apps ...string) int {
	t.Helper()
	return pgQueryInt(t, dsn, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = ANY($1) AND pid <> pg_backend_pid()`, apps)
}

// pgCount counts the test database's connections named app, waiting up
// to a few seconds for there to be want of them (one that is closing may
// linger a moment).
func pgCount(t *testing.T, dsn, app string, want int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := pgQueryInt(t, dsn, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, app)
		if n == want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgQueryInt runs q, which returns one number, outside any store.
func pgQueryInt(t *testing.T, dsn, q string, args ...any) int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	mustNil(t, err)
	defer pool.Close()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// journalStores are the stores that keep journals, for the benchmarks:
// two handles on one store's instance, as two replicas have them.
var journalStores = []struct {
	name string
	open func(tb *testing.B) (a, b core.Journals)
}{
	{"memory", func(b *testing.B) (core.Journals, core.Journals) {
		s := store.NewMemory()
		b.Cleanup(func() { s.Close() })
		return s.Journals("web"), s.Journals("web")
	}},
	{"postgres", func(b *testing.B) (core.Journals, core.Journals) {
		dsn := pgtest.DSN(b)
		sa, sb := openPostgres(b, dsn), openPostgres(b, dsn)
		b.Cleanup(func() { sa.Close(); sb.Close() })
		return sa.Journals("web"), sb.Journals("web")
	}},
}

// BenchmarkJournalAppend appends to 100 journals in turn, keeping 50
// entries each, as a webchat's sessions do.
func BenchmarkJournalAppend(b *testing.B) {
	for _, s := range journalStores {
		b.Run(s.name, func(b *testing.B) {
			j, _ := s.open(b)
			ctx := context.Background()
			data := make([]byte, 300)
			i := 0
			for b.Loop() {
				key := fmt.Sprint("s", i%100)
				if _, err := j.Append(ctx, key, core.JournalEntry{Key: fmt.Sprint("m", i), Data: data},
					core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}, Keep: 50}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkJournalAppendParallel appends from both replicas at once, to
// journals of their own (spread) or all to one (one journal).
func BenchmarkJournalAppendParallel(b *testing.B) {
	for _, s := range journalStores {
		for _, spread := range []bool{true, false} {
			name := s.name + "/one_journal"
			if spread {
				name = s.name + "/spread"
			}
			b.Run(name, func(b *testing.B) {
				ja, jb := s.open(b)
				var n atomic.Int64
				b.SetParallelism(2) // goroutines per CPU: a few, within the pools
				b.RunParallel(func(pb *testing.PB) {
					w := n.Add(1)
					j := []core.Journals{ja, jb}[w%2]
					key := "one"
					if spread {
						key = fmt.Sprint("w", w)
					}
					for pb.Next() {
						if _, err := j.Append(context.Background(), key, core.JournalEntry{Data: []byte("x")},
							core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}, Keep: 50}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// BenchmarkJournalNotice is an append on one replica until the other's
// Watch is told of it: the latency of a notice, with the append's.
func BenchmarkJournalNotice(b *testing.B) {
	for _, s := range journalStores {
		b.Run(s.name, func(b *testing.B) {
			ja, jb := s.open(b)
			ctx, cancel := context.WithCancel(context.Background())
			told := make(chan int64, 1024)
			done := make(chan error, 1)
			go func() { done <- ja.Watch(ctx, func(_ string, seq int64) { told <- seq }) }()
			b.Cleanup(func() { cancel(); <-done })
			// Warm up: until the Watch hears.
			for seen := false; !seen; {
				res, err := jb.Append(ctx, "s", core.JournalEntry{Data: []byte("x")}, core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}, Keep: 1})
				if err != nil {
					b.Fatal(err)
				}
				select {
				case seq := <-told:
					seen = seq >= res.Seq
				case <-time.After(200 * time.Millisecond):
				}
			}
			for b.Loop() {
				res, err := jb.Append(ctx, "s", core.JournalEntry{Data: []byte("x")}, core.AppendOptions{Keep: 1})
				if err != nil {
					b.Fatal(err)
				}
				for seq := int64(0); seq < res.Seq; {
					select {
					case seq = <-told:
					case <-time.After(10 * time.Second):
						b.Fatalf("no notice of seq %d", res.Seq)
					}
				}
			}
		})
	}
}
