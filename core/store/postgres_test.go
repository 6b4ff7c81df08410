package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/core/store/storetest"
	"github.com/switchboard-gw/switchboard/internal/pgtest"
)

func openPostgres(t testing.TB, dsn string) *store.Postgres {
	t.Helper()
	s, err := store.OpenPostgres(context.Background(), dsn)
	if err != nil {
		t.Fatalf("OpenPostgres: %v", err)
	}
	return s
}

// pgExec runs q in the schema of dsn (see pgtest.DSN), outside any store.
func pgExec(t testing.TB, dsn, q string, args ...any) {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	mustNil(t, err)
	defer pool.Close()
	if _, err := pool.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestPostgresConformance(t *testing.T) {
	pgtest.Base(t)
	t.Run("Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			// The suite runs its subtests in parallel: a few connections
			// each keep them within the server's max_connections.
			return openPostgres(t, pgtest.WithParam(pgtest.DSN(t), "pool_max_conns", "4"))
		})
	})
	t.Run("Leaser", func(t *testing.T) {
		storetest.RunLeaser(t, func(t *testing.T) store.Leaser { return openPostgres(t, pgtest.DSN(t)) })
	})
	t.Run("Heads", func(t *testing.T) {
		storetest.RunHeads(t, func(t *testing.T) store.Store { return openPostgres(t, pgtest.DSN(t)) })
	})
}

// TestPostgresTwoReplicas runs two stores on one database, as two gateway
// replicas, four workers each, over many chats: every message is delivered
// exactly once, a chat never has two messages in flight, and each chat's
// messages go in id order, whichever replica takes them. Then one replica
// dies holding leases: the other takes those chats once the leases run
// out, the messages in doubt.
func TestPostgresTwoReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	replicas := []*store.Postgres{openPostgres(t, dsn), openPostgres(t, dsn)}
	for _, r := range replicas {
		defer r.Close()
	}

	const (
		chats   = 100
		perChat = 20
		total   = chats * perChat
		workers = 4 // per replica
	)
	type chatID struct {
		dir  store.Direction
		chat string
	}
	var (
		mu        sync.Mutex
		inFlight  = map[chatID]int64{}   // message being attempted, per chat
		lastID    = map[chatID]int64{}   // last delivered id, per chat
		delivered = map[int64]int{}      // times each message was delivered
		byReplica = [2]int{}             // deliveries per replica
		enqueued  = map[chatID][]int64{} // ids in enqueue order, per chat
		done      atomic.Int64
		deadline  = time.Now().Add(60 * time.Second)
	)
	// begin records that replica r attempts m, checking the order rules.
	begin := func(r int, m store.Message) {
		mu.Lock()
		defer mu.Unlock()
		key := chatID{m.Dir, m.Chat}
		if other, ok := inFlight[key]; ok {
			t.Errorf("chat %v: replica %d claimed %d while %d is in flight", key, r, m.ID, other)
		}
		if delivered[m.ID] > 0 {
			t.Errorf("message %d claimed after its delivery", m.ID)
		}
		if last := lastID[key]; m.ID <= last {
			t.Errorf("chat %v: message %d after %d", key, m.ID, last)
		}
		if m.InDoubt {
			t.Errorf("message %d in doubt, but no lease ran out", m.ID)
		}
		inFlight[key] = m.ID
	}
	// finish records the delivery, before Delivered commits: the chat
	// stays leased until then.
	finish := func(r int, m store.Message) {
		mu.Lock()
		key := chatID{m.Dir, m.Chat}
		delete(inFlight, key)
		lastID[key] = m.ID
		delivered[m.ID]++
		byReplica[r]++
		mu.Unlock()
		if err := replicas[r].Delivered(ctx, m.ID); err != nil {
			t.Errorf("replica %d: Delivered(%d): %v", r, m.ID, err)
		}
		done.Add(1)
	}

	var wg sync.WaitGroup
	// Producers: one per ten chats, so that each chat's messages are
	// enqueued in order; they alternate between the replicas, and half of
	// them take the message at once when its chat is idle (EnqueueClaim,
	// the router's fast path).
	for p := range chats / 10 {
		wg.Go(func() {
			for i := range perChat * 10 {
				r := i % 2
				c := p*10 + i%10
				dir := store.Directions[c%2]
				m := store.Message{Dir: dir, Chat: fmt.Sprintf("chat-%d", c), Payload: []byte("x")}
				var claimed bool
				var err error
				if p%2 == 0 {
					_, claimed, err = replicas[r].EnqueueClaim(ctx, &m, time.Now(), time.Minute)
				} else {
					_, err = replicas[r].Enqueue(ctx, &m)
				}
				if err != nil {
					t.Errorf("enqueue: %v", err)
					return
				}
				mu.Lock()
				enqueued[chatID{m.Dir, m.Chat}] = append(enqueued[chatID{m.Dir, m.Chat}], m.ID)
				mu.Unlock()
				if claimed {
					begin(r, m)
					finish(r, m)
				}
			}
		})
	}
	for r := range replicas {
		for w := range workers {
			wg.Go(func() {
				dir := store.Directions[w%2]
				for done.Load() < total {
					if time.Now().After(deadline) {
						t.Errorf("replica %d worker %d: %d of %d delivered by the deadline", r, w, done.Load(), total)
						return
					}
					got, err := replicas[r].Claim(ctx, dir, time.Now(), time.Minute, 4)
					if err != nil {
						t.Errorf("replica %d: Claim: %v", r, err)
						return
					}
					if len(got) == 0 {
						time.Sleep(time.Millisecond)
						continue
					}
					for _, m := range got {
						begin(r, m)
					}
					for _, m := range got {
						finish(r, m)
					}
				}
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(delivered) != total {
		t.Fatalf("%d messages delivered, want %d", len(delivered), total)
	}
	for id, n := range delivered {
		if n != 1 {
			t.Fatalf("message %d delivered %d times", id, n)
		}
	}
	for key, ids := range enqueued {
		if !slices.IsSorted(ids) {
			t.Fatalf("chat %v: ids %v not in enqueue order", key, ids)
		}
	}
	t.Logf("deliveries per replica: %v", byReplica)
	if byReplica[0] == 0 || byReplica[1] == 0 {
		t.Errorf("one replica delivered nothing: %v", byReplica)
	}
	for _, dir := range store.Directions {
		if st, err := replicas[0].Stats(ctx, dir); err != nil || st.Pending != 0 {
			t.Fatalf("Stats(%s) = %+v, %v; want nothing pending", dir, st, err)
		}
	}

	// Replica 0 claims the heads of ten chats with a short lease and dies
	// (it never ends the attempts). Replica 1 takes them when the leases
	// run out, and not before; then the chats go on.
	const leaseTTL = 300 * time.Millisecond
	var heads, seconds []store.Message
	for c := range 10 {
		for i := range 2 {
			m := store.Message{Dir: store.ToSelarti, Chat: fmt.Sprintf("dying-%d", c)}
			if _, err := replicas[0].Enqueue(ctx, &m); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				heads = append(heads, m)
			} else {
				seconds = append(seconds, m)
			}
		}
	}
	start := time.Now()
	got, err := replicas[0].Claim(ctx, store.ToSelarti, start, leaseTTL, 100)
	mustNil(t, err)
	wantSameIDs(t, "the dying replica's claim", got, heads)
	var taken []store.Message
	for len(taken) < len(heads) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("replica 1 took %d of the %d chats of the dead replica", len(taken), len(heads))
		}
		now := time.Now()
		got, err := replicas[1].Claim(ctx, store.ToSelarti, now, time.Minute, 100)
		mustNil(t, err)
		if len(got) > 0 && now.Before(start.Add(leaseTTL)) {
			t.Fatalf("replica 1 claimed %d messages %v into replica 0's %v lease", len(got), now.Sub(start), leaseTTL)
		}
		for _, m := range got {
			if !m.InDoubt {
				t.Errorf("message %d taken over after its lease ran out: not in doubt", m.ID)
			}
		}
		taken = append(taken, got...)
		time.Sleep(20 * time.Millisecond)
	}
	wantSameIDs(t, "taken over", taken, heads)
	for _, m := range taken {
		mustNil(t, replicas[1].Delivered(ctx, m.ID))
	}
	// The dead replica's late results find nothing to end.
	if err := replicas[0].Delivered(ctx, heads[0].ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the dead replica's Delivered after the takeover = %v, want ErrNotFound", err)
	}
	got, err = replicas[1].Claim(ctx, store.ToSelarti, time.Now(), time.Minute, 100)
	mustNil(t, err)
	wantSameIDs(t, "the chats' next messages", got, seconds)
	for _, m := range got {
		if m.InDoubt {
			t.Errorf("message %d in doubt, but it was never leased", m.ID)
		}
	}
}

// wantSameIDs checks that got and want hold the same messages, in any order.
func wantSameIDs(t *testing.T, what string, got, want []store.Message) {
	t.Helper()
	ids := func(ms []store.Message) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.ID)
		}
		slices.Sort(out)
		return out
	}
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		t.Fatalf("%s: ids %v, want %v", what, g, w)
	}
}

// TestPostgresMigrationsOnce opens the store from several processes at once
// on an empty schema: every open succeeds, and each migration is applied
// once. A schema newer than the binary is refused.
func TestPostgresMigrationsOnce(t *testing.T) {
	dsn := pgtest.DSN(t)
	const opens = 6
	var wg sync.WaitGroup
	stores := make([]*store.Postgres, opens)
	errs := make([]error, opens)
	start := make(chan struct{})
	for i := range opens {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = store.OpenPostgres(context.Background(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d of %d at once: %v", i+1, opens, err)
			continue
		}
		mustNil(t, stores[i].Close())
	}
	if t.Failed() {
		return
	}
	if got, want := pgVersions(t, dsn), store.PostgresSchemaVersions(); !slices.Equal(got, want) {
		t.Fatalf("schema_migrations after %d opens at once: %v, want each of %v once", opens, got, want)
	}

	pgExec(t, dsn, "INSERT INTO schema_migrations (version, applied_at) VALUES (99, 0)")
	_, err := store.OpenPostgres(context.Background(), dsn)
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("open of a newer schema = %v, want a newer-schema error", err)
	}
}

// pgVersions lists schema_migrations' versions, each once per row.
func pgVersions(t testing.TB, dsn string) []int {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	mustNil(t, err)
	defer pool.Close()
	rows, err := pool.Query(context.Background(), "SELECT version FROM schema_migrations ORDER BY version")
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

// TestPostgresSurvivesReopen: a schema made from nothing by the first
// open keeps its messages, chats and leases across a reopen, which
// migrates nothing. Unlike SQLite, a reopen releases no lease: other
// replicas may hold them.
func TestPostgresSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := openPostgres(t, dsn)
	created := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	pending := store.Message{Dir: store.ToUser, Chat: "tg:1", DedupeKey: "k1", Payload: []byte{0, 1, 2, 255}, CreatedAt: created}
	dead := store.Message{Dir: store.ToSelarti, Chat: "tg:2", Payload: []byte("x")}
	delivered := store.Message{Dir: store.ToUser, Chat: "tg:3", DedupeKey: "k3"}
	leased := store.Message{Dir: store.ToUser, Chat: "tg:4"}
	for _, m := range []*store.Message{&pending, &dead, &delivered, &leased} {
		if _, err := s.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	if got, err := s.Claim(ctx, store.ToUser, now, time.Hour, 10); err != nil || len(got) != 3 {
		t.Fatalf("Claim = %+v, %v; want 3 heads", got, err)
	}
	next := created.Add(time.Hour)
	mustNil(t, s.Retry(ctx, pending.ID, next, "rate limited"))
	mustNil(t, s.Kill(ctx, dead.ID, "bad request"))
	mustNil(t, s.Delivered(ctx, delivered.ID))
	mustNil(t, s.SetDialogFlags(ctx, "tg:2", 7))
	if held, _, err := s.AcquireLease(ctx, "rx:tg", "replica-a", now, time.Hour); err != nil || !held {
		t.Fatalf("AcquireLease = %v, %v", held, err)
	}
	mustNil(t, s.Close())

	s = openPostgres(t, dsn)
	defer s.Close()
	if got, want := pgVersions(t, dsn), store.PostgresSchemaVersions(); !slices.Equal(got, want) {
		t.Fatalf("schema_migrations after a reopen: %v, want %v", got, want)
	}
	got, err := s.Get(ctx, pending.ID)
	mustNil(t, err)
	if got.State != store.Pending || got.Attempts != 1 || got.LastError != "rate limited" || !got.NextAt.Equal(next) ||
		!got.CreatedAt.Equal(created) || string(got.Payload) != string(pending.Payload) || got.DedupeKey != "k1" || got.Chat != "tg:1" {
		t.Fatalf("pending message after reopen: %+v", got)
	}
	dl, err := s.DeadLetters(ctx, 10)
	mustNil(t, err)
	if len(dl) != 1 || dl[0].ID != dead.ID || dl[0].LastError != "bad request" || dl[0].Attempts != 1 {
		t.Fatalf("dead letters after reopen: %+v", dl)
	}
	if c, err := s.Chat(ctx, "tg:2"); err != nil || c != (store.ChatInfo{Known: true, Flags: 7}) {
		t.Fatalf("Chat after reopen = %+v, %v; want known, flags 7", c, err)
	}
	if dup, err := s.Enqueue(ctx, &store.Message{Dir: store.ToUser, Chat: "tg:9", DedupeKey: "k3"}); err != nil || !dup {
		t.Fatalf("dedupe after reopen: dup %v, %v", dup, err)
	}
	// The lease on tg:4's head was the closed store's: it ended with it
	// (see postgres_heartbeat.go), in doubt; the retried head waits for
	// its NextAt.
	if got, err := s.Claim(ctx, store.ToUser, next.Add(-time.Second), time.Minute, 10); err != nil || len(got) != 1 || got[0].ID != leased.ID || !got[0].InDoubt {
		t.Fatalf("Claim after reopen = %+v, %v; want the closed store's leased head, in doubt (the other waits)", got, err)
	}
	got2, err := s.Claim(ctx, store.ToUser, next.Add(time.Second), time.Minute, 10)
	if err != nil || len(got2) != 1 || got2[0].ID != pending.ID || got2[0].InDoubt {
		t.Fatalf("Claim after the retry's wait = %+v, %v; want the retried head", got2, err)
	}
	if held, _, err := s.AcquireLease(ctx, "rx:tg", "replica-b", now.Add(time.Minute), time.Hour); err != nil || held {
		t.Fatalf("AcquireLease of a lease held before the reopen = %v, %v; want not held", held, err)
	}
	m := store.Message{Dir: store.ToUser, Chat: "tg:1"}
	if _, err := s.Enqueue(ctx, &m); err != nil || m.ID <= leased.ID {
		t.Fatalf("new id %d after reopen (%v), want above %d", m.ID, err, leased.ID)
	}
}

// TestPostgresPoolSize: the pool holds 8 connections unless the DSN says.
func TestPostgresPoolSize(t *testing.T) {
	dsn := pgtest.DSN(t)
	for _, tt := range []struct {
		dsn  string
		want int32
	}{
		{dsn, 8},
		{pgtest.WithParam(dsn, "pool_max_conns", "3"), 3},
	} {
		s := openPostgres(t, tt.dsn)
		if got := store.PoolOf(s).Config().MaxConns; got != tt.want {
			t.Errorf("MaxConns = %d, want %d", got, tt.want)
		}
		mustNil(t, s.Close())
	}
}

// TestOpenPostgresKeepsSecrets: an open that fails says why without the
// DSN or its password, for DSNs that do not parse and servers that do not
// answer. It needs no server.
func TestOpenPostgresKeepsSecrets(t *testing.T) {
	const pw = "Sw0rdf1sh-pw"
	tests := []struct {
		name, dsn string
		secrets   []string
	}{
		{"url, nothing listening", "postgres://gw:" + pw + "@127.0.0.1:1/sb?connect_timeout=2", []string{pw}},
		{"url, bad port", "postgres://gw:" + pw + "@127.0.0.1:notaport/sb", []string{pw}},
		{"url, escaped password", "postgres://gw:" + url.PathEscape(pw+"?#") + "@127.0.0.1:1/sb?connect_timeout=2", []string{pw}},
		{"url, password parameter", "postgres://gw@127.0.0.1:1/sb?connect_timeout=2&password=" + pw, []string{pw}},
		{"url, malformed", "postgres://gw:" + pw + "@[::1/sb", []string{pw}},
		{"key=value", "host=127.0.0.1 port=1 user=gw password=" + pw + " dbname=sb connect_timeout=2", []string{pw}},
		{"key=value, quoted", "host=127.0.0.1 port=1 user=gw password='" + pw + " x' dbname=sb connect_timeout=2", []string{pw}},
		{"key=value, bad", "host=127.0.0.1 port=x user=gw password=" + pw, []string{pw}},
		{"bad pool size", "postgres://gw:" + pw + "@127.0.0.1:1/sb?pool_max_conns=lots", []string{pw}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.OpenPostgres(context.Background(), tt.dsn)
			if err == nil {
				s.Close()
				t.Fatal("OpenPostgres succeeded")
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, secret := range append(tt.secrets, tt.dsn) {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q contains %q", msg, secret)
				}
			}
			if !strings.HasPrefix(msg, "open postgres store: ") {
				t.Errorf("error %q does not say what failed", msg)
			}
		})
	}
}

func TestPostgresClosedContext(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.OpenPostgres(ctx, dsn); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenPostgres with a cancelled context = %v, want context.Canceled", err)
	}
}

// TestPostgresRedactsErrors: whatever an error from pgx or the server
// says, the DSN and its password do not leave the store; the context
// errors are still recognised.
func TestPostgresRedactsErrors(t *testing.T) {
	const pw = "p4ss:w/rd"
	for _, dsn := range []string{
		"postgres://gw:" + url.PathEscape(pw) + "@db.example:5432/sb?sslmode=disable",
		"host=db.example user=gw password='" + pw + "' dbname=sb",
		"postgresql://gw@db.example/sb?password=" + url.QueryEscape(pw),
	} {
		err := fmt.Errorf("server said: %s (for %s): %w", pw, dsn, context.Canceled)
		got := store.Redact(dsn, err)
		if msg := got.Error(); strings.Contains(msg, pw) || strings.Contains(msg, dsn) || !strings.Contains(msg, "server said: xxxxx") {
			t.Errorf("redacted error for %q: %q", dsn, msg)
		}
		if !errors.Is(got, context.Canceled) {
			t.Errorf("redacted error for %q is no longer context.Canceled", dsn)
		}
		if plain := errors.New("no secret here"); store.Redact(dsn, plain) != plain {
			t.Errorf("an error without secrets was changed")
		}
	}
}

// TestPostgresDeadStoreLeases: the chats a store leased stay its own
// while it beats, however long their leases, and are claimed by another
// store, in doubt, once it has not beaten for pgHeartbeatTTL (it died).
func TestPostgresDeadStoreLeases(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	a, b := openPostgres(t, dsn), openPostgres(t, dsn)
	defer a.Close()
	defer b.Close()
	m := store.Message{Dir: store.ToSelarti, Chat: "web:s1"}
	if _, err := a.Enqueue(ctx, &m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if got, err := a.Claim(ctx, store.ToSelarti, now, time.Hour, 10); err != nil || len(got) != 1 {
		t.Fatalf("a's Claim = %+v, %v", got, err)
	}
	if got, err := b.Claim(ctx, store.ToSelarti, now.Add(time.Minute), time.Hour, 10); err != nil || len(got) != 0 {
		t.Fatalf("b's Claim while a beats = %+v, %v; want nothing", got, err)
	}
	// a's last beat, long ago: as if it died.
	pgExec(t, dsn, "UPDATE store_heartbeats SET seen_at = clock_timestamp() - interval '1 minute'")
	got, err := b.Claim(ctx, store.ToSelarti, now.Add(time.Minute), time.Hour, 10)
	if err != nil || len(got) != 1 || got[0].ID != m.ID || !got[0].InDoubt {
		t.Fatalf("b's Claim after a stopped beating = %+v, %v; want a's leased head, in doubt", got, err)
	}
}
