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
	// inDoubtAtOpen: see recoverFromCrash.
	inDoubtAtOpen int64

	// mu makes Close wait for the calls in progress: the lock file must not
	// be released while a transaction may still write.
	mu     sync.RWMutex
	closed bool
}

// errInUse is what lockFile returns when another process holds the lock.
var errInUse = errors.New("in use by another process")

// OpenSQLite opens (creating it and its directory if missing) the store at
// path, upgrades its schema, and loads the claim order of the pending
// messages, with no lease: those an earlier process held are released.
// When that process did not Close the store (it crashed), the due head of
// each chat to Selarti is marked InDoubt first, since it may have been in
// flight. It fails, without changing the file, when another process has
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
	if !shared {
		if err := s.recoverFromCrash(ctx, db); err != nil {
			return nil, err
		}
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

	if s.commits, err = sqlitedb.NewCommitter(ctx, db, writeQueries); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Statements of the clean-shutdown marker (see the meta table in
// migrations/0004_in_doubt.sql).
const (
	cleanSQL    = "SELECT value FROM meta WHERE key = 'clean'"
	setCleanSQL = `INSERT INTO meta (key, value) VALUES ('clean', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`
	// inDoubtSQL marks the due head of every chat, in each direction:
	// after a crash, any of them may have been in flight. Only heads are
	// ever leased, and a head waiting for its retry time was not.
	inDoubtSQL = `UPDATE messages SET in_doubt = 1
		WHERE next_at <= ? AND id IN (
			SELECT MIN(id) FROM messages WHERE state = 'pending' GROUP BY dir, chat)`
)

// recoverFromCrash runs at an owner's open, before anything else writes:
// when the last process to own the store did not close it (it crashed, or
// the machine did), the messages that may have been in flight are marked
// in doubt. Then the store is marked open, in one durable transaction.
func (s *SQLite) recoverFromCrash(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("recover from crash: %w", err)
	}
	defer tx.Rollback()
	var clean int64
	err = tx.QueryRowContext(ctx, cleanSQL).Scan(&clean)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("recover from crash: %w", err)
	}
	// No marker: a store older than the marker, or a new one (which has
	// nothing to mark). Either way, marking is the safe side.
	if clean != 1 {
		res, err := tx.ExecContext(ctx, inDoubtSQL, nanos(time.Now()))
		if err != nil {
			return fmt.Errorf("recover from crash: mark in-doubt messages: %w", err)
		}
		s.inDoubtAtOpen, _ = res.RowsAffected()
	}
	if _, err := tx.ExecContext(ctx, setCleanSQL, 0); err != nil {
		return fmt.Errorf("recover from crash: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("recover from crash: %w", err)
	}
	return nil
}

// InDoubtAtOpen is how many messages the open found in doubt after a
// crash (see recoverFromCrash), for the start-up log.
func (s *SQLite) InDoubtAtOpen() int64 { return s.inDoubtAtOpen }

// markClean records a clean shutdown, durably: the next open has nothing
// to recover. Close calls it before it closes the database.
func (s *SQLite) markClean(ctx context.Context) error {
	return s.writeThen(ctx, true, func(t *txn) error {
		_, err := t.Exec(setCleanSQL, 1)
		return err
	}, nil)
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
	var markErr error
	if s.lock != nil { // the owner, not an admin tool beside it
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		markErr = s.markClean(ctx)
		cancel()
		if errors.Is(markErr, ErrClosed) {
			markErr = nil // closed already
		}
	}
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
	if err == nil && markErr != nil {
		err = fmt.Errorf("record the clean shutdown (the next start checks for messages in doubt): %w", markErr)
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
