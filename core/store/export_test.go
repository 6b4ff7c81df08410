package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReadDBOf gives the store_test tests the read connections behind s, to
// inspect the schema and the query plans.
func ReadDBOf(s *SQLite) *sql.DB { return s.rdb }

// WithWriteConn runs fn on the store's write connection, between two of
// the committer's commits.
func WithWriteConn(s *SQLite, fn func(*sql.Conn) error) error {
	return s.commits.Conn(context.Background(), fn)
}

// PendingSQL is pendingSQL, for the query-plan test.
const PendingSQL = pendingSQL

// Abandon closes s as a crash leaves it: without recording a clean
// shutdown.
func Abandon(s *SQLite) error {
	lock := s.lock
	s.lock = nil // Close marks only an owner's store clean
	err := s.Close()
	if lerr := lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// PoolOf gives the tests the pool behind p.
func PoolOf(p *Postgres) *pgxpool.Pool { return p.pool }

// PostgresSchemaVersions lists the versions of the embedded PostgreSQL
// migrations.
func PostgresSchemaVersions() []int {
	all, err := pgMigrations()
	if err != nil {
		panic(err)
	}
	var vs []int
	for _, m := range all {
		vs = append(vs, m.version)
	}
	return vs
}

// Redact is what the Postgres store does to its errors, for a store
// opened on dsn.
func Redact(dsn string, err error) error { return newRedactor(dsn).redact(err) }

// BulkLoadPostgres writes, in one transaction, due chats with one fresh
// message each and backoff chats with one message due in a year, and
// their heads rows, as Enqueue would; the benchmarks need 100,000 of them.
func BulkLoadPostgres(p *Postgres, due, backoff int, base time.Time) error {
	waiting, ready := pgReady("created_at", "next_at", "0")
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO messages (dir, chat, payload, state, created_at, next_at)
		SELECT 'to_user', 'bulk:' || i, '', 'pending', $1::bigint, CASE WHEN i < $2::int THEN 0 ELSE $3::bigint END
		FROM generate_series(0, $4::int - 1) i`,
		base.UnixNano(), due, base.Add(365*24*time.Hour).UnixNano(), due+backoff)
	b.Queue(`INSERT INTO heads (dir, chat, msg_id, waiting, ready_at)
		SELECT dir, chat, id, ` + waiting + `, ` + ready + ` FROM messages WHERE state = 'pending'`)
	b.Queue("ANALYZE messages")
	b.Queue("ANALYZE heads")
	return p.pool.SendBatch(context.Background(), b).Close()
}

// SetJournalWatch sets how often the journals' Watch on p polls and how
// long its listening connection may stay quiet before it pings (0: the
// default), and a function its listener calls after it lost its
// connection and before it connects again (nil: none). Call it before
// Watch.
func SetJournalWatch(p *Postgres, poll, ping time.Duration, redial func(ctx context.Context)) {
	p.watchKnobs = pgWatchKnobs{poll: poll, ping: ping, redial: redial}
}
