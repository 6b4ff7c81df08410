package sqlitedb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// DriverName is the database/sql name of the SQLite driver, for sql.Open:
// modernc.org/sqlite, SQLite translated to Go, so that the binary builds
// without a C compiler. SQLite's C library (mattn/go-sqlite3, cgo) was
// measured beside it and saved no CPU end to end (docs/benchmarks.md).
const DriverName = "sqlite"

// busyTimeout is how long a write waits for another process's lock.
const busyTimeout = 5 * time.Second

// WALSizeLimit is the size a WAL is cut back to (journal_size_limit)
// when a checkpoint lets SQLite start it over: twice what SQLite's own
// checkpoints (every 1000 pages of 4 KiB) let it grow to between two of
// them, so that the usual WAL is reused as it is and only a grown one is
// cut.
const WALSizeLimit = 8 << 20

// OpenWriter opens the write connection to the database file at path (an
// absolute path that PrepareFile has checked) and pings it. extra are more
// connection parameters ("_foreign_keys=1"), applied with the ones below.
// The connection is meant for a Committer, and for the set-up (checks,
// migrations) done before the Committer starts.
//
// One write connection: SQLite has one writer at a time anyway, and with
// one connection, used by one goroutine, writes queue in the Committer
// instead of failing with SQLITE_BUSY. Connection parameters, applied to
// every new connection:
//   - synchronous=FULL: in WAL mode (see UseWAL) the WAL is fsynced at
//     every commit, so a committed (acknowledged) message survives a power
//     cut; NORMAL would only fsync at checkpoints and could lose the last
//     commits. The Committer lowers it for the writes not marked durable
//     only (see commit.go);
//   - busy_timeout: a sqlite3 shell an operator opens on the file makes us
//     wait rather than fail;
//   - _txlock=immediate: a transaction takes the write lock when it
//     begins, so it never fails half-way on a lock upgrade;
//   - journal_size_limit=WALSizeLimit: SQLite never shrinks a WAL on its
//     own, so one that grew (a burst, a reader that held checkpoints off)
//     would keep its size on disk for ever, and on a small disk take
//     back the room that deleting old rows freed. With the limit, the WAL
//     is cut to it each time a checkpoint lets it start over; Committer.
//     Checkpoint cuts it to nothing.
func OpenWriter(ctx context.Context, path string, extra ...string) (*sql.DB, error) {
	params := append([]string{"_txlock=immediate", fmt.Sprintf("_busy_timeout=%d", busyTimeout.Milliseconds()),
		fmt.Sprintf("_pragma=journal_size_limit(%d)", WALSizeLimit)}, extra...)
	params = append(params, "_synchronous=FULL")
	db, err := sql.Open(DriverName, path+"?"+strings.Join(params, "&"))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("not a usable SQLite database: %w", err)
	}
	return db, nil
}

// OpenReader opens read-only connections to the database file at path.
// WAL lets readers see the last commit while a write is in progress, so
// reads need not queue behind a commit's fsync. query_only guards against
// a write slipping onto a connection that does not commit through the
// Committer.
func OpenReader(path string) (*sql.DB, error) {
	db, err := sql.Open(DriverName, path+"?_busy_timeout=5000&_query_only=1")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	return db, nil
}

// UseWAL switches the file to WAL mode, which is persistent: readers don't
// block the writer, and a commit is one append and one fsync of the WAL
// instead of a rollback journal's several.
func UseWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// WAL needs memory shared between connections, which network
		// filesystems don't give: refuse rather than run unsafely.
		return fmt.Errorf("journal mode is %q, not wal (is the file on a network filesystem?)", mode)
	}
	return nil
}

// PrepareAll prepares queries on db, keyed by their text: parsing SQL
// costs more than running these statements.
func PrepareAll(ctx context.Context, db *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		stmts[q] = st
	}
	return stmts, nil
}
