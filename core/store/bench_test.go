package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/pgtest"
)

// benchChats is how many chats the enqueue-claim-deliver benchmarks write
// to, round-robin.
const benchChats = 1000

// benchStores are the stores the benchmarks run on, one sub-benchmark
// each. postgres runs in a schema of its own in the database
// SWITCHBOARD_TEST_PG_DSN names (scripts/with-postgres.sh makes one), and
// skips without it.
var benchStores = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"memory", func(*testing.B) store.Store { return store.NewMemory() }},
	{"sqlite", func(b *testing.B) store.Store { return openSQLite(b, filepath.Join(b.TempDir(), "store.db")) }},
	{"postgres", func(b *testing.B) store.Store { return openPostgres(b, pgtest.DSN(b)) }},
}

// benchEachStore runs bench on each of benchStores.
func benchEachStore(b *testing.B, bench func(b *testing.B, st store.Store)) {
	for _, s := range benchStores {
		b.Run(s.name, func(b *testing.B) { bench(b, s.open(b)) })
	}
}

func BenchmarkEnqueueClaimDeliver(b *testing.B) {
	benchEachStore(b, benchEnqueueClaimDeliver)
}

func BenchmarkEnqueueClaimDeliverParallel(b *testing.B) {
	benchEachStore(b, benchEnqueueClaimDeliverParallel)
}

func BenchmarkEnqueueClaimedDeliverParallel(b *testing.B) {
	benchEachStore(b, benchEnqueueClaimedParallel)
}

// benchEnqueueClaimedParallel measures the router's fast path (see
// Store.EnqueueClaim): each op enqueues a message to a chat of its own
// goroutine, leased in the same commit, and marks it delivered. It
// reports the process's CPU time per message besides the wall time,
// since the commits wait for the disk in parallel.
func benchEnqueueClaimedParallel(b *testing.B, st store.Store) {
	defer st.Close()
	ctx := context.Background()
	payload := make([]byte, 256)
	var seq, goroutines atomic.Int64
	cpu0 := processCPU(b)
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		g := goroutines.Add(1)
		for i := 0; pb.Next(); i++ {
			seq.Add(1)
			// Chats of one goroutine only, so that each is idle when its
			// next message comes and the lease is always taken.
			m := store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("bench:%d:%d", g, i%benchChats), Payload: payload}
			_, claimed, err := st.EnqueueClaim(ctx, &m, time.Now(), time.Minute)
			if err != nil || !claimed {
				b.Errorf("EnqueueClaim = %v, %v", claimed, err)
				return
			}
			if err := st.Delivered(ctx, m.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	n := float64(seq.Load())
	b.ReportMetric(n/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(processCPU(b)-cpu0)/n, "cpu-ns/msg")
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchEnqueueClaimDeliver measures one message's life: each op enqueues a
// message, claims it and marks it delivered.
func benchEnqueueClaimDeliver(b *testing.B, st store.Store) {
	defer st.Close()
	ctx := context.Background()
	payload := make([]byte, 256)
	i := 0
	for b.Loop() {
		m := store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("bench:%d", i%benchChats), Payload: payload}
		i++
		if _, err := st.Enqueue(ctx, &m); err != nil {
			b.Fatal(err)
		}
		got, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 1)
		if err != nil || len(got) != 1 {
			b.Fatalf("Claim = %d messages, %v", len(got), err)
		}
		if err := st.Delivered(ctx, got[0].ID); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "msgs/s")
}

// benchEnqueueClaimDeliverParallel is the same with GOMAXPROCS goroutines
// (times -cpu), as the router's workers: a goroutine may claim another's
// message, so each delivers what it claims and the last ones drain.
func benchEnqueueClaimDeliverParallel(b *testing.B, st store.Store) {
	defer st.Close()
	ctx := context.Background()
	payload := make([]byte, 256)
	var seq, delivered atomic.Int64
	b.SetParallelism(4) // several workers per CPU, as the router runs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := seq.Add(1)
			m := store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("bench:%d", n%benchChats), Payload: payload}
			if _, err := st.Enqueue(ctx, &m); err != nil {
				b.Error(err)
				return
			}
			got, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 1)
			if err != nil {
				b.Error(err)
				return
			}
			for _, c := range got {
				if err := st.Delivered(ctx, c.ID); err != nil {
					b.Error(err)
					return
				}
				delivered.Add(1)
			}
		}
	})
	// Drain what the goroutines left (another goroutine held the chat).
	for delivered.Load() < seq.Load() {
		got, err := st.Claim(ctx, store.ToUser, time.Now(), time.Minute, 100)
		if err != nil || len(got) == 0 {
			b.Fatalf("drain: %d of %d delivered, claim: %d, %v", delivered.Load(), seq.Load(), len(got), err)
		}
		for _, c := range got {
			if err := st.Delivered(ctx, c.ID); err != nil {
				b.Fatal(err)
			}
			delivered.Add(1)
		}
	}
	b.ReportMetric(float64(seq.Load())/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkClaimManyChats measures one Claim of 16 heads as the number of
// chats with pending messages grows, in the two shapes that hurt a naive
// Claim: many chats due at once (a backlog), and many chats backing off (a
// messenger is down) while others flow. Each op claims with a 1ns lease at
// a clock that moves on by 1µs, so the claimed heads are due again at the
// next op and the number of due chats stays the same. (Their leases ran
// out, so the messages are in doubt from their second claim on: each
// store marks a message once, and the benchmark measures the steady
// state.)
func BenchmarkClaimManyChats(b *testing.B) {
	shapes := []struct {
		name         string
		due, backoff int
	}{
		{"due=1k", 1_000, 0},
		{"due=100k", 100_000, 0},
		{"due=1k/backoff=100k", 1_000, 100_000},
	}
	stores := []struct {
		name string
		open func(b *testing.B, due, backoff int, base time.Time) store.Store
	}{
		{"memory", func(b *testing.B, due, backoff int, base time.Time) store.Store {
			st := store.NewMemory()
			ctx := context.Background()
			for i := range due + backoff {
				m := store.Message{Dir: store.ToUser, Chat: fmt.Sprintf("bulk:%d", i), CreatedAt: base}
				if i >= due {
					m.NextAt = base.Add(365 * 24 * time.Hour)
				}
				if _, err := st.Enqueue(ctx, &m); err != nil {
					b.Fatal(err)
				}
			}
			return st
		}},
		{"sqlite", func(b *testing.B, due, backoff int, base time.Time) store.Store {
			path := filepath.Join(b.TempDir(), "store.db")
			st := openSQLite(b, path)
			bulkLoad(b, st, due, backoff, base)
			if err := st.Close(); err != nil {
				b.Fatal(err)
			}
			return openSQLite(b, path) // which loads the claim order
		}},
		{"postgres", func(b *testing.B, due, backoff int, base time.Time) store.Store {
			st := openPostgres(b, pgtest.DSN(b))
			if err := store.BulkLoadPostgres(st, due, backoff, base); err != nil {
				b.Fatal(err)
			}
			return st
		}},
	}
	for _, s := range stores {
		for _, shape := range shapes {
			b.Run(s.name+"/"+shape.name, func(b *testing.B) {
				base := time.Now()
				st := s.open(b, shape.due, shape.backoff, base)
				defer st.Close()
				ctx := context.Background()
				now := base
				for b.Loop() {
					now = now.Add(time.Microsecond)
					got, err := st.Claim(ctx, store.ToUser, now, time.Nanosecond, 16)
					if err != nil || len(got) != 16 {
						b.Fatalf("Claim = %d messages, %v", len(got), err)
					}
				}
			})
		}
	}
}

// bulkLoad writes due chats with one fresh message each and backoff chats
// with one message due in a year, in one transaction: Enqueue, one commit
// each, would take minutes. The store sees them once it is opened again.
func bulkLoad(b *testing.B, st *store.SQLite, due, backoff int, base time.Time) {
	later := base.Add(365 * 24 * time.Hour).UnixNano()
	const q = `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?)
			INSERT INTO messages (dir, chat, payload, state, created_at, next_at)
			SELECT 'to_user', 'bulk:' || i, x'', 'pending', ?, CASE WHEN i < ? THEN 0 ELSE ? END FROM n`
	err := store.WithWriteConn(st, func(conn *sql.Conn) error {
		_, err := conn.ExecContext(context.Background(), q, due+backoff, base.UnixNano(), due, later)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkFsync is the floor under the SQLite numbers: one small write
// and fsync of a file in the same temporary directory. A durable write
// costs at least one of these; one goroutine's enqueue+claim+deliver
// costs one (the commits of Claim and Delivered are not synced).
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, err := f.WriteAt(buf, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsyncs/s")
}
