package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

var _ Store = (*SQLite)(nil)

// SQLite is the embedded durable Store: one SQLite file, owned by one
// process. Every call that changes a message commits before it returns,
// with synchronous=FULL, so an acknowledged message survives a crash or a
// power cut. Concurrent writes share commits (see sqlite_commit.go); reads
// run in parallel with them on their own connections.
type SQLite struct {
	path    string
	wdb     *sql.DB // one connection, used by the committer only once open
	rdb     *sql.DB // read-only connections for Get, Stats and the like
	rstmts  map[string]*sql.Stmt
	lock    *os.File            // holds the flock on path+".lock" until Close
	commits *sqlitedb.Committer // owns wdb once open

	// imu guards pending, the claim order of the pending messages (see
	// pendingIndex), which the committer changes after each commit.
	imu     sync.Mutex
	pending *pendingIndex
	// dataVersion is the database's PRAGMA data_version when pending was
	// last loaded; the committer's only. nextRefresh is when Claim next
	// looks for changes another process made (see refreshIfDue).
	dataVersion int64
	nextRefresh atomic.Int64

	// mu makes Close wait for the calls in progress: the lock file must not
	// be released while a transaction may still write.
	mu     sync.RWMutex
	closed bool
}

// errInUse is what lockFile returns when another process holds the lock.
var errInUse = errors.New("in use by another process")

// OpenSQLite opens (creating it and its directory if missing) the store at
// path, upgrades its schema, and loads the claim order of the pending
// messages, with no lease: those an earlier process held are released. It fails, without changing the file, when another process has
// it open, when the file is not a SQLite database or is corrupt, and when
// its schema is newer than this binary.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openWrapped(ctx, path, false)
}

// OpenSQLiteShared opens an existing store beside the process that owns
// it, for admin tools (`switchboard deadletters`): it takes no process
// lock, and the running gateway keeps its work (its leases are in its
// memory). SQLite's own locking keeps the two processes' writes apart,
// and the gateway sees a replayed message within refreshInterval.
func OpenSQLiteShared(ctx context.Context, path string) (*SQLite, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return openWrapped(ctx, path, true)
}

func openWrapped(ctx context.Context, path string, shared bool) (*SQLite, error) {
	s, err := openSQLite(ctx, path, shared)
	if errors.Is(err, errInUse) {
		return nil, fmt.Errorf("store %s is %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func openSQLite(ctx context.Context, path string, shared bool) (*SQLite, error) {
	abs, err := sqlitedb.AbsPath(path)
	if err != nil {
		return nil, err
	}
	// Owner and group only: the outbox holds users' messages.
	if err := os.MkdirAll(filepath.Dir(abs), 0o750); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}

	// The lock comes first: nothing below may touch a file another
	// process is using.
	var lock *os.File
	if !shared {
		if lock, err = lockFile(abs + ".lock"); err != nil {
			return nil, err
		}
	}
	s := &SQLite{path: path, lock: lock}
	ok := false
	defer func() {
		if !ok {
			for _, db := range []*sql.DB{s.wdb, s.rdb} {
				if db != nil {
					db.Close()
				}
			}
			s.closeLock()
		}
	}()

	if err := sqlitedb.PrepareFile(abs); err != nil {
		return nil, err
	}

	// The write connection commits with synchronous=FULL, so that an
	// acknowledged message survives a power cut (see OpenWriter); the
	// committer lowers it for claims only (see sqlite_commit.go).
	// foreign_keys is enforced, for the migrations that declare some (the
	// first declares none, see its comments).
	db, err := sqlitedb.OpenWriter(ctx, abs, "_foreign_keys=1")
	if err != nil {
		return nil, err
	}
	s.wdb = db

	if err := s.check(ctx); err != nil {
		return nil, err
	}
	// WAL only after the check: switching to it writes to the file.
	if err := sqlitedb.UseWAL(ctx, db); err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	wstmts, err := sqlitedb.PrepareAll(ctx, db, writeQueries)
	if err != nil {
		return nil, err
	}
	if err := s.loadPending(ctx, db); err != nil {
		return nil, err
	}

	// Reads run beside the writes, on their own connections (WAL).
	if s.rdb, err = sqlitedb.OpenReader(abs); err != nil {
		return nil, err
	}
	if s.rstmts, err = sqlitedb.PrepareAll(ctx, s.rdb, readQueries); err != nil {
		return nil, err
	}

	s.commits = sqlitedb.NewCommitter(db, wstmts)
	ok = true
	return s, nil
}

// check runs PRAGMA quick_check, which reads the whole file: a corrupt
// store must stop the start-up, not lose messages later. It is O(size),
// about a second per few hundred MB.
func (s *SQLite) check(ctx context.Context) error {
	const hint = "restore a backup or move it away"
	rows, err := s.wdb.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("check database (corrupt?): %w; %s", err, hint)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("check database (corrupt?): %w; %s", err, hint)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check database (corrupt?): %w; %s", err, hint)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("and %d more", len(problems)-5))
		}
		return fmt.Errorf("database is corrupt (quick_check: %s); %s", strings.Join(problems, "; "), hint)
	}
	return nil
}

// loadPending builds the pending index from the table, in one read
// transaction with the data_version it goes with.
func (s *SQLite) loadPending(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("load pending messages: %w", err)
	}
	defer tx.Rollback() // read only
	version, rows, err := readPending(tx)
	if err != nil {
		return fmt.Errorf("load pending messages: %w", err)
	}
	s.dataVersion = version
	s.pending = buildPending(rows, nil)
	s.nextRefresh.Store(time.Now().Add(refreshInterval).UnixNano())
	return nil
}

// Close implements Store. It waits for the calls in progress, stops the
// committer, closes the database (the last connection checkpoints the WAL)
// and releases the lock.
func (s *SQLite) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// The read connections close first: the last connection closed, the
	// write one, checkpoints the WAL.
	err := s.rdb.Close()
	if werr := s.commits.Close(); err == nil {
		err = werr
	}
	if lerr := s.closeLock(); err == nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// use starts a call: it holds off Close until done is called. It fails
// after Close.
func (s *SQLite) use() (done func(), err error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	return s.mu.RUnlock, nil
}

// closeLock releases the process lock, if this store holds one.
func (s *SQLite) closeLock() error {
	if s.lock == nil {
		return nil
	}
	return s.lock.Close()
}
