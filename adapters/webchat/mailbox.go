package webchat

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

// The mailbox is the durable side of the sessions: one SQLite file,
// <DataDir>/webchat.db, that holds every session's epoch, its last seq and
// its recent history. It is the truth; the sessions in memory are a cache
// of it. A write returns only once it is committed with synchronous=FULL,
// so a message Send accepted survives a crash or a power cut, and its
// seq and its session's epoch survive with it.
//
// Writes go through one goroutine, the committer (internal/sqlitedb's
// Committer, as in core/store), which runs the writes waiting together in
// one transaction, each under its own savepoint, and commits them with one
// fsync: the fsync, which costs far more than the statements, is shared by
// all the writers that arrived while the previous commit was syncing. A
// lone writer waits for no one. Every write is durable. Reads run on their
// own connections, beside the writes (WAL).

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

// mailbox is the durable session store. Its methods are safe for
// concurrent use, but the caller must serialise the calls that concern one
// session (sessions does, with each session's lock): a session's seqs are
// read and advanced in separate statements.
type mailbox struct {
	path         string
	historyLimit int
	wdb          *sql.DB // one connection, used by the committer once open
	rdb          *sql.DB // read-only connections
	rstmts       map[string]*sql.Stmt
	commits      *sqlitedb.Committer // owns wdb once open

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
	abs, err := sqlitedb.AbsPath(path)
	if err != nil {
		return nil, err
	}
	if err := sqlitedb.PrepareFile(abs); err != nil {
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

	// The write connection commits with synchronous=FULL (see
	// OpenWriter), so a message Send accepted survives a power cut. No
	// process lock: the core already runs one process per data directory
	// (its store's lock).
	if m.wdb, err = sqlitedb.OpenWriter(ctx, abs); err != nil {
		return nil, err
	}
	if err := m.migrate(ctx); err != nil {
		return nil, err
	}
	if err := sqlitedb.UseWAL(ctx, m.wdb); err != nil {
		return nil, err
	}
	wstmts, err := sqlitedb.PrepareAll(ctx, m.wdb, mailboxWrites)
	if err != nil {
		return nil, err
	}
	if m.rdb, err = sqlitedb.OpenReader(abs); err != nil {
		return nil, err
	}
	if m.rstmts, err = sqlitedb.PrepareAll(ctx, m.rdb, mailboxReads); err != nil {
		return nil, err
	}

	m.commits = sqlitedb.NewCommitter(m.wdb, wstmts)
	return m, nil
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
	// The read connections close first: the last connection closed, the
	// write one, checkpoints the WAL.
	err := m.rdb.Close()
	if werr := m.commits.Close(); err == nil {
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
	err = m.write(ctx, func(t *sqlitedb.Tx) error {
		if _, err := t.Exec(qCreateSession, id, epoch, now.UnixNano(), name); err != nil {
			return err
		}
		return t.QueryRow(qGetSession, id).Scan(&epochOut, &lastSeq)
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
	err := m.write(ctx, func(t *sqlitedb.Tx) error {
		if r.e.id != "" {
			find, id := qFindMsgID, r.e.id
			if r.e.from == fromUser {
				find = qFindClientID
			}
			err := t.QueryRow(find, r.session, id).Scan(&out.seq)
			if err == nil {
				out.dup = true
				return t.QueryRow(qGetSession, r.session).Scan(&out.epoch, new(int64))
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		now := r.e.ts.UnixNano()
		var last int64
		err := t.QueryRow(qGetSession, r.session).Scan(&out.epoch, &last)
		if errors.Is(err, sql.ErrNoRows) {
			if r.newEpoch == "" {
				out.missing = true
				return nil
			}
			if _, err := t.Exec(qCreateSession, r.session, r.newEpoch, now, r.name); err != nil {
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
		if _, err := t.Exec(qInsertEntry, r.session, out.seq, kind, r.e.from, r.e.text, now,
			clientID, msgID, r.e.operator, r.e.closed); err != nil {
			return err
		}
		if _, err := t.Exec(qAdvance, out.seq, now, r.name, r.name, r.session); err != nil {
			return err
		}
		if cut := out.seq - int64(m.historyLimit); cut > 0 {
			if _, err := t.Exec(qTrim, r.session, cut); err != nil {
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
	err := m.write(ctx, func(t *sqlitedb.Tx) error {
		for _, id := range del {
			if _, err := t.Exec(qDeleteHistory, id); err != nil {
				return err
			}
			if _, err := t.Exec(qDeleteSession, id); err != nil {
				return err
			}
		}
		for id, at := range touch {
			if _, err := t.Exec(qTouch, at.UnixNano(), id); err != nil {
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

// write runs fn in a committed, durable transaction, through the
// committer. Once the committer has taken the write, the caller waits for
// its outcome even if ctx ends, so that nil always means committed and an
// error (almost always) means not written.
func (m *mailbox) write(ctx context.Context, fn func(t *sqlitedb.Tx) error) error {
	done, err := m.use()
	if err != nil {
		return err
	}
	defer done()
	return m.commits.Write(ctx, true, fn)
}
