package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

var _ Store = (*SQLite)(nil)

// SQLite is the embedded durable Store: one SQLite file, owned by one
// process. Every call that changes a message commits before it returns,
// with synchronous=FULL, so an acknowledged message survives a crash or a
// power cut. Concurrent writes share commits (see sqlite_commit.go); reads
// run in parallel with them on their own connections.
type SQLite struct {
	path   string
	wdb    *sql.DB // one connection, used by the committer only once open
	rdb    *sql.DB // read-only connections for Get, Stats and the like
	wstmts map[string]*sql.Stmt
	rstmts map[string]*sql.Stmt
	lock   *os.File // holds the flock on path+".lock" until Close

	writes   chan *writeReq
	stop     chan struct{} // closed by Close to end the committer
	loopDone chan struct{} // closed by the committer when it ends
	broken   error         // set by the committer only: a sticky write error

	// mu makes Close wait for the calls in progress: the lock file must not
	// be released while a transaction may still write.
	mu     sync.RWMutex
	closed bool
}

// errInUse is what lockFile returns when another process holds the lock.
var errInUse = errors.New("in use by another process")

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// OpenSQLite opens (creating it and its directory if missing) the store at
// path, upgrades its schema, and releases every lease left by an earlier
// process. It fails, without changing the file, when another process has
// it open, when the file is not a SQLite database or is corrupt, and when
// its schema is newer than this binary.
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	return openWrapped(ctx, path, false)
}

// OpenSQLiteShared opens an existing store beside the process that owns
// it, for admin tools (`switchboard deadletters`): it takes no process
// lock and releases no leases, so the running gateway keeps its work.
// SQLite's own locking keeps the two processes' writes apart, and the
// gateway sees a replayed message at its next claim.
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
	if path == "" {
		return nil, errors.New("empty path")
	}
	// The driver reads everything after a '?' as connection parameters.
	if strings.Contains(path, "?") {
		return nil, errors.New("path must not contain '?'")
	}
	abs, err := filepath.Abs(path)
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

	if err := prepareFile(abs); err != nil {
		return nil, err
	}

	// One write connection: SQLite has one writer at a time anyway, and
	// with one connection, used by one goroutine, writes queue in our
	// committer instead of failing with SQLITE_BUSY. Connection parameters,
	// applied to every new connection:
	//   - synchronous=FULL: in WAL mode (set below, after the check, as it
	//     writes to the file) the WAL is fsynced at every commit, so a
	//     committed (acknowledged) message survives a power cut; NORMAL
	//     would only fsync at checkpoints and could lose the last commits.
	//     The committer lowers it for claims only (see sqlite_commit.go);
	//   - busy_timeout: a sqlite3 shell an operator opens on the file makes
	//     us wait rather than fail;
	//   - foreign_keys: enforced, for the migrations that declare some (the
	//     first declares none, see its comments);
	//   - _txlock=immediate: a transaction takes the write lock when it
	//     begins, so it never fails half-way on a lock upgrade.
	dsn := abs + "?_txlock=immediate&_busy_timeout=5000&_foreign_keys=1&_synchronous=FULL"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s.wdb = db
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("not a usable SQLite database: %w", err)
	}
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if err := s.useWAL(ctx); err != nil {
		return nil, err
	}
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	if !shared {
		if err := s.releaseLeases(ctx); err != nil {
			return nil, err
		}
	}
	if s.wstmts, err = prepareAll(ctx, db, writeQueries); err != nil {
		return nil, err
	}

	// WAL lets readers see the last commit while a write is in progress,
	// so reads need not queue behind a commit's fsync. query_only guards
	// against a write slipping onto a connection that does not commit
	// through the committer.
	s.rdb, err = sql.Open("sqlite", abs+"?_busy_timeout=5000&_query_only=1")
	if err != nil {
		return nil, err
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	if s.rstmts, err = prepareAll(ctx, s.rdb, readQueries); err != nil {
		return nil, err
	}

	s.writes = make(chan *writeReq, maxBatch)
	s.stop = make(chan struct{})
	s.loopDone = make(chan struct{})
	go s.commitLoop()
	ok = true
	return s, nil
}

// prepareAll prepares queries on db: parsing SQL costs more than running
// these statements.
func prepareAll(ctx context.Context, db *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
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

// prepareFile refuses a file that is not a SQLite database before SQLite
// opens it, so that nothing (a journal mode, a WAL) is written to it, and
// creates a missing file readable by its owner only (SQLite gives its WAL
// and shared-memory files the same mode).
func prepareFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
		return f.Close()
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Size() == 0 {
		// An empty file is a new database to SQLite.
		return nil
	}
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteMagic)) {
		return errors.New("not a SQLite database (wrong header); refusing to touch it: move it away or give another path")
	}
	return nil
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

// useWAL switches the file to WAL mode, which is persistent: readers don't
// block the writer, and a commit is one append and one fsync of the WAL
// instead of a rollback journal's several.
func (s *SQLite) useWAL(ctx context.Context) error {
	var mode string
	if err := s.wdb.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// WAL needs memory shared between connections, which network
		// filesystems don't give: refuse rather than run unsafely.
		return fmt.Errorf("journal mode is %q, not wal (is the file on a network filesystem?)", mode)
	}
	return nil
}

// releaseLeases ends every lease: this process owns the file, so any lease
// in it was taken by a process that is gone (see Store).
func (s *SQLite) releaseLeases(ctx context.Context) error {
	const q = `UPDATE heads SET lease_id = 0, lease_until = 0,
		waiting = (SELECT CASE WHEN m.next_at <> 0 THEN 1 ELSE 0 END FROM messages m WHERE m.id = heads.msg_id),
		ready_at = (SELECT CASE WHEN m.next_at <> 0 THEN m.next_at ELSE m.created_at END FROM messages m WHERE m.id = heads.msg_id)
		WHERE lease_id <> 0 OR lease_until <> 0`
	if _, err := s.wdb.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
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
	close(s.stop)
	<-s.loopDone
	err := s.rdb.Close()
	if werr := s.wdb.Close(); err == nil {
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
