package webchat

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
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// The mailbox is the durable side of the sessions: one SQLite file,
// <DataDir>/webchat.db, that holds every session's epoch, its last seq and
// its recent history. It is the truth; the sessions in memory are a cache
// of it. A write returns only once it is committed with synchronous=FULL,
// so a message Send accepted survives a crash or a power cut, and its
// seq and its session's epoch survive with it.
//
// Writes go through one goroutine, the committer, which runs the writes
// waiting together in one transaction, each under its own savepoint, and
// commits them with one fsync (group commit, as core/store does): the
// fsync, which costs far more than the statements, is shared by all the
// writers that arrived while the previous commit was syncing. A lone
// writer waits for no one. Reads run on their own connections, beside the
// writes (WAL).

// mailboxFile is the database's name inside the instance's data directory.
const mailboxFile = "webchat.db"

// mailboxSchemaVersion is the schema this code reads and writes, kept in
// the file's user_version. A newer file is refused: this binary would
// misread it.
const mailboxSchemaVersion = 1

// mailboxSchema creates version 1. Times are unix nanoseconds.
var mailboxSchema = []string{
	`CREATE TABLE IF NOT EXISTS sessions (
		id          TEXT    PRIMARY KEY,
		epoch       TEXT    NOT NULL,           -- never changes while the row lives
		last_seq    INTEGER NOT NULL DEFAULT 0, -- seq of the newest entry ever appended
		last_active INTEGER NOT NULL,           -- for session_ttl
		name        TEXT    NOT NULL DEFAULT '' -- the display name the browser gave
	) WITHOUT ROWID`,
	// The janitor looks for idle sessions, oldest first.
	`CREATE INDEX IF NOT EXISTS sessions_last_active ON sessions (last_active)`,
	`CREATE TABLE IF NOT EXISTS history (
		session   TEXT    NOT NULL,
		seq       INTEGER NOT NULL,
		kind      TEXT    NOT NULL CHECK (kind IN ('message', 'event')),
		sender    TEXT    NOT NULL DEFAULT '', -- user, bot or operator; '' for events
		text      TEXT    NOT NULL DEFAULT '',
		ts        INTEGER NOT NULL,
		client_id TEXT    NOT NULL DEFAULT '', -- the browser's id of a user message
		msg_id    TEXT    NOT NULL DEFAULT '', -- Selarti's id of a bot or operator message
		operator  INTEGER NOT NULL DEFAULT 0,  -- event flags
		closed    INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (session, seq)
	) WITHOUT ROWID`,
	// Dedupe: a redelivered Outbound.ID, a re-sent client message id.
	`CREATE UNIQUE INDEX IF NOT EXISTS history_msg_id ON history (session, msg_id) WHERE msg_id <> ''`,
	`CREATE UNIQUE INDEX IF NOT EXISTS history_client_id ON history (session, client_id) WHERE client_id <> ''`,
}

// Write statements, prepared once on the write connection.
const (
	qFindMsgID     = `SELECT seq FROM history WHERE session = ? AND msg_id = ?`
	qFindClientID  = `SELECT seq FROM history WHERE session = ? AND client_id = ?`
	qGetSession    = `SELECT epoch, last_seq FROM sessions WHERE id = ?`
	qCreateSession = `INSERT INTO sessions (id, epoch, last_seq, last_active, name) VALUES (?, ?, 0, ?, ?)
		ON CONFLICT (id) DO NOTHING`
	qInsertEntry = `INSERT INTO history (session, seq, kind, sender, text, ts, client_id, msg_id, operator, closed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qAdvance = `UPDATE sessions SET last_seq = ?, last_active = ?,
		name = CASE WHEN ? <> '' THEN ? ELSE name END WHERE id = ?`
	qTrim          = `DELETE FROM history WHERE session = ? AND seq <= ?`
	qTouch         = `UPDATE sessions SET last_active = MAX(last_active, ?) WHERE id = ?`
	qDeleteHistory = `DELETE FROM history WHERE session = ?`
	qDeleteSession = `DELETE FROM sessions WHERE id = ?`
)

var mailboxWrites = []string{
	qFindMsgID, qFindClientID, qGetSession, qCreateSession, qInsertEntry,
	qAdvance, qTrim, qTouch, qDeleteHistory, qDeleteSession,
}

// Read statements, prepared once on the read connections.
const (
	qLoadSession = `SELECT epoch, last_seq, last_active FROM sessions WHERE id = ?`
	qLoadHistory = `SELECT seq, kind, sender, text, ts, client_id, msg_id, operator, closed
		FROM history WHERE session = ? AND seq > ? ORDER BY seq`
	qIdle = `SELECT id FROM sessions WHERE last_active < ? ORDER BY last_active LIMIT ?`
)

var mailboxReads = []string{qLoadSession, qLoadHistory, qIdle}

// errMailboxClosed is returned by calls after close. It is transient to
// the core: the message is retried after the next Start.
var errMailboxClosed = errors.New("webchat mailbox is closed")

// maxCommitBatch bounds the writes in one transaction, and so how long
// one transaction holds the database.
const maxCommitBatch = 128

// mailbox is the durable session store. Its methods are safe for
// concurrent use, but the caller must serialise the calls that concern one
// session (sessions does, with each session's lock): a session's seqs are
// read and advanced in separate statements.
type mailbox struct {
	path         string
	historyLimit int
	wdb          *sql.DB // one connection, used by the committer once open
	rdb          *sql.DB // read-only connections
	wstmts       map[string]*sql.Stmt
	rstmts       map[string]*sql.Stmt

	writes   chan *mbWrite
	stop     chan struct{} // closed by close to end the committer
	loopDone chan struct{} // closed by the committer when it ends

	// mu makes close wait for the calls in progress.
	mu     sync.RWMutex
	closed bool
}

// openMailbox opens (creating it if missing) the mailbox at path, keeping
// at most historyLimit entries per session. It refuses a file that is not
// a SQLite database and one whose schema is newer than this code.
func openMailbox(ctx context.Context, path string, historyLimit int) (*mailbox, error) {
	m, err := openMailboxFile(ctx, path, historyLimit)
	if err != nil {
		return nil, fmt.Errorf("open webchat mailbox %s: %w", path, err)
	}
	return m, nil
}

func openMailboxFile(ctx context.Context, path string, historyLimit int) (_ *mailbox, err error) {
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
	if err := prepareMailboxFile(abs); err != nil {
		return nil, err
	}
	m := &mailbox{path: path, historyLimit: historyLimit}
	defer func() {
		if err != nil {
			for _, db := range []*sql.DB{m.rdb, m.wdb} {
				if db != nil {
					_ = db.Close()
				}
			}
		}
	}()

	// One write connection: SQLite has one writer at a time anyway, and
	// with one connection, used by the committer only, writes queue in
	// the committer instead of failing with SQLITE_BUSY. Parameters,
	// applied to every new connection:
	//   - synchronous=FULL: in WAL mode the WAL is fsynced at every
	//     commit, so a message Send accepted survives a power cut;
	//     NORMAL would only fsync at checkpoints;
	//   - busy_timeout: a sqlite3 shell an operator opens on the file
	//     makes us wait rather than fail;
	//   - _txlock=immediate: a transaction takes the write lock when it
	//     begins, so it never fails half-way on a lock upgrade.
	// No process lock: the core already runs one process per data
	// directory (its store's lock).
	m.wdb, err = sql.Open("sqlite", abs+"?_txlock=immediate&_busy_timeout=5000&_synchronous=FULL")
	if err != nil {
		return nil, err
	}
	m.wdb.SetMaxOpenConns(1)
	m.wdb.SetMaxIdleConns(1)
	m.wdb.SetConnMaxLifetime(0)
	m.wdb.SetConnMaxIdleTime(0)
	if err := m.wdb.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("not a usable SQLite database: %w", err)
	}
	if err := m.migrate(ctx); err != nil {
		return nil, err
	}
	if err := m.useWAL(ctx); err != nil {
		return nil, err
	}
	if m.wstmts, err = prepareStmts(ctx, m.wdb, mailboxWrites); err != nil {
		return nil, err
	}
	// query_only guards against a write slipping past the committer.
	m.rdb, err = sql.Open("sqlite", abs+"?_busy_timeout=5000&_query_only=1")
	if err != nil {
		return nil, err
	}
	m.rdb.SetMaxOpenConns(4)
	m.rdb.SetMaxIdleConns(4)
	if m.rstmts, err = prepareStmts(ctx, m.rdb, mailboxReads); err != nil {
		return nil, err
	}

	m.writes = make(chan *mbWrite, maxCommitBatch)
	m.stop = make(chan struct{})
	m.loopDone = make(chan struct{})
	go m.commitLoop()
	return m, nil
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// prepareMailboxFile refuses a file that is not a SQLite database before
// SQLite opens it (and writes a WAL beside it), and creates a missing file
// readable by its owner only: it holds users' conversations. SQLite gives
// its WAL and shared-memory files the same mode.
func prepareMailboxFile(path string) error {
	f, err := os.Open(path)
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
		return nil // a new database to SQLite
	}
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || !bytes.Equal(head, []byte(sqliteHeader)) {
		return errors.New("not a SQLite database (wrong header); refusing to touch it: move it away")
	}
	return nil
}

// migrate creates the schema in a fresh file and checks the version of an
// existing one.
func (m *mailbox) migrate(ctx context.Context) error {
	var version int
	if err := m.wdb.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > mailboxSchemaVersion {
		return fmt.Errorf("schema version %d is newer than this binary's %d: run a newer switchboard", version, mailboxSchemaVersion)
	}
	if version == mailboxSchemaVersion {
		return nil
	}
	tx, err := m.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, q := range mailboxSchema {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	// user_version lives in the file header, which the transaction
	// covers: the schema and its version commit together.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", mailboxSchemaVersion)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// useWAL switches the file to WAL mode (which persists in the file):
// reads don't block the writer, and a commit is one append and one fsync.
func (m *mailbox) useWAL(ctx context.Context) error {
	var mode string
	if err := m.wdb.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		// WAL needs memory shared between connections, which network
		// filesystems don't give: refuse rather than run unsafely.
		return fmt.Errorf("journal mode is %q, not wal (is the file on a network filesystem?)", mode)
	}
	return nil
}

// prepareStmts prepares queries on db: parsing SQL costs more than running
// these statements.
func prepareStmts(ctx context.Context, db *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
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

// close waits for the calls in progress, stops the committer and closes
// the database (the last connection checkpoints the WAL). It is safe to
// call twice.
func (m *mailbox) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.stop)
	<-m.loopDone
	err := m.rdb.Close()
	if werr := m.wdb.Close(); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("close webchat mailbox %s: %w", m.path, err)
	}
	return nil
}

// use starts a call: it holds off close until done is called.
func (m *mailbox) use() (done func(), err error) {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return nil, errMailboxClosed
	}
	return m.mu.RUnlock, nil
}

// storedSession is what the mailbox holds of one session.
type storedSession struct {
	epoch      string
	lastSeq    int64
	lastActive time.Time
	history    []entry // the newest historyLimit entries at most, oldest first
}

// load reads session id. ok is false when the mailbox does not hold it.
func (m *mailbox) load(ctx context.Context, id string) (st storedSession, ok bool, err error) {
	done, err := m.use()
	if err != nil {
		return st, false, err
	}
	defer done()
	var active int64
	err = m.rstmts[qLoadSession].QueryRowContext(ctx, id).Scan(&st.epoch, &st.lastSeq, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load session: %w", err)
	}
	st.lastActive = time.Unix(0, active)
	// Bounded by the seq rather than a LIMIT: trimming is done at insert,
	// so a history_limit lowered since then still applies here.
	rows, err := m.rstmts[qLoadHistory].QueryContext(ctx, id, st.lastSeq-int64(m.historyLimit))
	if err != nil {
		return st, false, fmt.Errorf("load history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e entry
		var kind, clientID, msgID string
		var ts int64
		if err := rows.Scan(&e.seq, &kind, &e.from, &e.text, &ts, &clientID, &msgID, &e.operator, &e.closed); err != nil {
			return st, false, fmt.Errorf("load history: %w", err)
		}
		e.event = kind == kindEvent
		e.id = clientID
		if e.from != fromUser {
			e.id = msgID
		}
		e.ts = time.Unix(0, ts)
		st.history = append(st.history, e)
	}
	if err := rows.Err(); err != nil {
		return st, false, fmt.Errorf("load history: %w", err)
	}
	return st, true, nil
}

// Values of history.kind.
const (
	kindMessage = "message"
	kindEvent   = "event"
)

// create stores a new session id with epoch, unless the mailbox holds it
// already. It returns the session as stored: its epoch is the existing
// one if there was one.
func (m *mailbox) create(ctx context.Context, id, epoch, name string, now time.Time) (epochOut string, lastSeq int64, err error) {
	err = m.write(ctx, func(t *mbTx) error {
		if _, err := t.exec(qCreateSession, id, epoch, now.UnixNano(), name); err != nil {
			return err
		}
		return t.queryRow(qGetSession, id).Scan(&epochOut, &lastSeq)
	})
	if err != nil {
		return "", 0, fmt.Errorf("create session: %w", err)
	}
	return epochOut, lastSeq, nil
}

// appendReq is one entry to add to a session's history.
type appendReq struct {
	session string
	e       entry // seq is assigned by append
	// newEpoch creates the session with this epoch if the mailbox does
	// not hold it; "" adds nothing to a missing session.
	newEpoch string
	name     string // the user's display name, for user messages
}

// appended is the outcome of append.
type appended struct {
	seq     int64  // the entry's seq (the earlier copy's for a duplicate)
	epoch   string // the session's epoch
	dup     bool   // the entry's id was in the history already: nothing added
	missing bool   // no such session, and newEpoch was ""
}

// append adds r.e to its session's history with the session's next seq,
// in one transaction with everything else it takes: the session's row
// (created if missing and r.newEpoch is set), and the removal of entries
// beyond historyLimit. An entry whose id (the client's for user messages,
// Selarti's for the others) is in the history already is not added again;
// its seq is returned with dup set.
func (m *mailbox) append(ctx context.Context, r appendReq) (appended, error) {
	var out appended
	err := m.write(ctx, func(t *mbTx) error {
		if r.e.id != "" {
			find, id := qFindMsgID, r.e.id
			if r.e.from == fromUser {
				find = qFindClientID
			}
			err := t.queryRow(find, r.session, id).Scan(&out.seq)
			if err == nil {
				out.dup = true
				return t.queryRow(qGetSession, r.session).Scan(&out.epoch, new(int64))
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := r.e.ts.UnixNano()
		var last int64
		err := t.queryRow(qGetSession, r.session).Scan(&out.epoch, &last)
		if errors.Is(err, sql.ErrNoRows) {
			if r.newEpoch == "" {
				out.missing = true
				return nil
			}
			if _, err := t.exec(qCreateSession, r.session, r.newEpoch, now, r.name); err != nil {
				return err
			}
			out.epoch, last, err = r.newEpoch, 0, nil
		}
		if err != nil {
			return err
		}
		out.seq = last + 1
		kind, clientID, msgID := kindMessage, "", ""
		switch {
		case r.e.event:
			kind = kindEvent
		case r.e.from == fromUser:
			clientID = r.e.id
		default:
			msgID = r.e.id
		}
		if _, err := t.exec(qInsertEntry, r.session, out.seq, kind, r.e.from, r.e.text, now,
			clientID, msgID, r.e.operator, r.e.closed); err != nil {
			return err
		}
		if _, err := t.exec(qAdvance, out.seq, now, r.name, r.name, r.session); err != nil {
			return err
		}
		if cut := out.seq - int64(m.historyLimit); cut > 0 {
			if _, err := t.exec(qTrim, r.session, cut); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return appended{}, fmt.Errorf("store entry: %w", err)
	}
	return out, nil
}

// idle returns up to limit ids of sessions last active before cutoff,
// the longest idle first.
func (m *mailbox) idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	done, err := m.use()
	if err != nil {
		return nil, err
	}
	defer done()
	rows, err := m.rstmts[qIdle].QueryContext(ctx, cutoff.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("find idle sessions: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find idle sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find idle sessions: %w", err)
	}
	return ids, nil
}

// expire deletes the sessions del with their history, and records that
// the sessions in touch were active at the given times, in one
// transaction.
func (m *mailbox) expire(ctx context.Context, del []string, touch map[string]time.Time) error {
	if len(del) == 0 && len(touch) == 0 {
		return nil
	}
	err := m.write(ctx, func(t *mbTx) error {
		for _, id := range del {
			if _, err := t.exec(qDeleteHistory, id); err != nil {
				return err
			}
			if _, err := t.exec(qDeleteSession, id); err != nil {
				return err
			}
		}
		for id, at := range touch {
			if _, err := t.exec(qTouch, at.UnixNano(), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("expire sessions: %w", err)
	}
	return nil
}

// Group commit.

// Write states: queued until the committer takes it, or abandoned by a
// caller whose context ended first.
const (
	mbQueued int32 = iota
	mbTaken
	mbAbandoned
)

// mbWrite is one call's write, waiting for the committer.
type mbWrite struct {
	fn    func(t *mbTx) error
	state atomic.Int32
	done  chan error // buffered: the committer never blocks on it
}

// mbTx is what a write sees of the shared transaction. Its statements run
// without the caller's context: cancelling a statement inside a shared
// transaction could roll back the other callers' writes.
type mbTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *mbTx) exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmts[q]; st != nil {
		return t.tx.Stmt(st).Exec(args...)
	}
	return t.tx.Exec(q, args...)
}

func (t *mbTx) queryRow(q string, args ...any) *sql.Row {
	if st := t.stmts[q]; st != nil {
		return t.tx.Stmt(st).QueryRow(args...)
	}
	return t.tx.QueryRow(q, args...)
}

// write runs fn in a committed transaction, through the committer. Once
// the committer has taken the write, the caller waits for its outcome even if ctx ends, so that nil always means
// committed and an error (almost always) means not written.
func (m *mailbox) write(ctx context.Context, fn func(t *mbTx) error) error {
	done, err := m.use()
	if err != nil {
		return err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return err
	}
	w := &mbWrite{fn: fn, done: make(chan error, 1)}
	select {
	case m.writes <- w:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		if w.state.CompareAndSwap(mbQueued, mbAbandoned) {
			return ctx.Err()
		}
		return <-w.done
	}
}

// commitLoop is the committer. It runs until stop is closed.
func (m *mailbox) commitLoop() {
	defer close(m.loopDone)
	batch := make([]*mbWrite, 0, maxCommitBatch)
	for {
		select {
		case w := <-m.writes:
			batch = append(batch[:0], w)
		case <-m.stop:
			return
		}
		// Whatever queued up while the last commit was syncing.
	gather:
		for len(batch) < maxCommitBatch {
			select {
			case w := <-m.writes:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		live := batch[:0]
		for _, w := range batch {
			if w.state.CompareAndSwap(mbQueued, mbTaken) {
				live = append(live, w)
			}
		}
		if len(live) == 0 {
			continue
		}
		errs, err := m.runBatch(live)
		for i, w := range live {
			if errs[i] != nil {
				w.done <- errs[i]
			} else {
				w.done <- err
			}
		}
	}
}

// runBatch runs the writes of one batch in one transaction, each under a
// savepoint so that one failing write does not undo the others. errs holds
// each write's own error; err is the transaction's, which applies to the
// writes without one.
func (m *mailbox) runBatch(live []*mbWrite) (errs []error, err error) {
	errs = make([]error, len(live))
	tx, err := m.wdb.BeginTx(context.Background(), nil)
	if err != nil {
		return errs, err
	}
	t := &mbTx{tx: tx, stmts: m.wstmts}
	if len(live) == 1 {
		// The usual case under light load: no savepoint needed.
		if errs[0] = live[0].fn(t); errs[0] != nil {
			_ = tx.Rollback()
			return errs, nil
		}
		return errs, tx.Commit()
	}
	for i, w := range live {
		if _, err := t.exec("SAVEPOINT w"); err != nil {
			_ = tx.Rollback()
			return errs, err
		}
		if errs[i] = w.fn(t); errs[i] != nil {
			if _, err := t.exec("ROLLBACK TO w"); err != nil {
				_ = tx.Rollback()
				return errs, err
			}
		}
		if _, err := t.exec("RELEASE w"); err != nil {
			_ = tx.Rollback()
			return errs, err
		}
	}
	return errs, tx.Commit()
}
