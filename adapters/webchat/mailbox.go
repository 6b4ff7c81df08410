package webchat

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

// The mailbox is the durable side of the sessions: one SQLite file,
// <DataDir>/webchat.db, that holds every session's epoch, its last seq and
// its recent history. It is the truth; the sessions in memory are a cache
// of it. A write returns only once it is committed, and most are synced
// too (synchronous=FULL), so a message Send accepted survives a crash or
// a power cut, and its seq and its session's epoch survive with it.
//
// Two kinds of writes are committed without a sync of their own. The
// copy of a user's own message: the core's outbox has synced the message
// itself already, before the ack (see sessions.appendUser). And the last
// activity of sessions dropped from memory. A process crash loses neither:
// the commit is in the operating system's hands. A machine crash can lose
// them, but only the writes since the last synced commit (the WAL is
// append-only, so that commit syncs them too); the unsynced marker below
// bounds and skips what that loses.
//
// Writes go through one goroutine, the committer (internal/sqlitedb's
// Committer, as in core/store), which runs the writes waiting together in
// one transaction, each under its own savepoint, and commits them with one
// fsync: the fsync, which costs far more than the statements, is shared by
// all the writers that arrived while the previous commit was syncing. A
// lone writer waits for no one. Reads run on their own connections,
// beside the writes (WAL).

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
		sender    TEXT    NOT NULL DEFAULT '', -- user, bot or operator; '' for events, 'status' for delivery statuses
		text      TEXT    NOT NULL DEFAULT '', -- a delivery status: its JSON
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

// Write statements, prepared once on the write connection. A session's
// history rows exist only while its row does.
const (
	// The "<> ''" terms repeat the partial indexes' conditions: without
	// them SQLite cannot use those indexes for a bound id, and scans the
	// session's whole history instead. The session and the copy of an
	// entry already stored are read in one statement.
	qGetSessionMsgID = `SELECT epoch, last_seq,
		(SELECT seq FROM history WHERE session = ?1 AND msg_id = ?2 AND msg_id <> '')
		FROM sessions WHERE id = ?1`
	qGetSessionClientID = `SELECT epoch, last_seq,
		(SELECT seq FROM history WHERE session = ?1 AND client_id = ?2 AND client_id <> '')
		FROM sessions WHERE id = ?1`
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
	qGetSessionMsgID, qGetSessionClientID, qGetSession, qCreateSession, qInsertEntry,
	qAdvance, qTrim, qTouch, qDeleteHistory, qDeleteSession,
}

// Read statements, prepared once on the read connections.
const (
	qFindClientID = `SELECT seq FROM history WHERE session = ? AND client_id = ? AND client_id <> ''`
	// The seqs and ids of the session's user messages come along, from
	// the index, for sessions.userMessageSeq. Client ids hold no spaces.
	qLoadSession = `SELECT epoch, last_seq, last_active,
		(SELECT group_concat(seq || ' ' || client_id, ' ') FROM history WHERE session = ?1 AND client_id <> '')
		FROM sessions WHERE id = ?1`
	qLoadHistory = `SELECT seq, kind, sender, text, ts, client_id, msg_id, operator, closed
		FROM history WHERE session = ? AND seq > ? ORDER BY seq`
	qIdle = `SELECT id FROM sessions WHERE last_active < ? ORDER BY last_active LIMIT ?`
)

var mailboxReads = []string{qLoadSession, qLoadHistory, qIdle, qFindClientID}

// maxUnsynced bounds the entries of one session written without a sync
// and not yet followed by a synced commit (sessions.appendUser syncs the
// next one otherwise): a machine crash loses at most this many of a
// session's entries, and their seqs are skipped after it.
const maxUnsynced = 8

// unsyncedSuffix names the marker file, beside the database, of a run
// that may write entries without syncing them. It holds the boot id of
// the machine that ran it, and is removed once a clean close has synced
// everything. Found at open with another boot id, it means that the
// machine went down under a run: entries may be lost, and their seqs must
// not be given to new entries, which browsers would take for ones they
// had seen.
const unsyncedSuffix = "-unsynced"

// bootID returns the running kernel's boot id, or "" where there is none
// to read. Tests replace it.
var bootID = func() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

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

	// lazy is set when writes may skip their sync: the marker file is
	// written, so that a machine crash is noticed at the next open.
	lazy   bool
	marker string
	// ticket numbers the writes in the order the committer runs them.
	// synced is the highest ticket of a synced commit that changed the
	// file, and unsynced the highest of a write committed without a sync:
	// a write whose ticket is at most synced is synced (a later commit's
	// fsync covers the WAL before it).
	ticket, synced, unsynced atomic.Int64

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
	// (its lock, store.LockDir). OpenWriter also bounds the WAL left on
	// disk (journal_size_limit), and the janitor checkpoints it.
	if m.wdb, err = sqlitedb.OpenWriter(ctx, abs); err != nil {
		return nil, err
	}
	if err := m.migrate(ctx); err != nil {
		return nil, err
	}
	if err := sqlitedb.UseWAL(ctx, m.wdb); err != nil {
		return nil, err
	}
	if err := m.recoverUnsynced(ctx, abs+unsyncedSuffix); err != nil {
		return nil, err
	}
	if m.rdb, err = sqlitedb.OpenReader(abs); err != nil {
		return nil, err
	}
	if m.rstmts, err = sqlitedb.PrepareAll(ctx, m.rdb, mailboxReads); err != nil {
		return nil, err
	}

	if m.commits, err = sqlitedb.NewCommitter(ctx, m.wdb, mailboxWrites); err != nil {
		return nil, err
	}
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

// recoverUnsynced reads the marker of the last run (see unsyncedSuffix)
// and, if the machine went down under it, skips every session's seqs past
// the entries it may have lost. Then it writes the marker of this run, or
// removes it where the boot id cannot be read: a process crash cannot be
// told from a machine crash there, so every write is synced.
func (m *mailbox) recoverUnsynced(ctx context.Context, marker string) error {
	boot := bootID()
	prev, err := os.ReadFile(marker)
	switch {
	case err == nil:
		if boot == "" || strings.TrimSpace(string(prev)) != boot {
			// Synced (synchronous=FULL) before the marker is rewritten.
			if _, err := m.wdb.ExecContext(ctx, `UPDATE sessions SET last_seq = last_seq + ?`, maxUnsynced); err != nil {
				return fmt.Errorf("skip the seqs a machine crash may have lost: %w", err)
			}
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("read %s: %w", marker, err)
	}
	if boot == "" {
		if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", marker, err)
		}
		return nil
	}
	if err := writeSynced(marker, []byte(boot+"\n")); err != nil {
		return err
	}
	m.lazy, m.marker = true, marker
	return nil
}

// writeSynced writes a small file and syncs it and its directory, so that
// it is on disk before anything that relies on it.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	dir, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("sync directory of %s: %w", path, err)
	}
	return nil
}

// close waits for the calls in progress, syncs what was written without a
// sync, stops the committer and closes the database (the last connection
// checkpoints the WAL). Once all is synced, it removes the marker. It is
// safe to call twice.
func (m *mailbox) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	if upTo := m.unsynced.Load(); m.lazy && m.synced.Load() < upTo {
		// No call is in progress, so this commit comes after every
		// write so far. Rewriting the version changes the file, so the
		// commit syncs the WAL, and with it all that came before.
		err := m.commits.Write(context.Background(), true, func(t *sqlitedb.Tx) error {
			_, err := t.Exec(fmt.Sprintf("PRAGMA user_version = %d", mailboxSchemaVersion))
			return err
		})
		if err == nil {
			m.markSynced(upTo)
		}
	}
	// The read connections close first: the last connection closed, the
	// write one, checkpoints the WAL.
	err := m.rdb.Close()
	if werr := m.commits.Close(); err == nil {
		err = werr
	}
	if err == nil && m.lazy && m.synced.Load() >= m.unsynced.Load() {
		// Not synced: a marker that survives a machine crash only costs
		// a skip of seqs at the next open.
		err = os.Remove(m.marker)
	}
	if err != nil {
		return fmt.Errorf("close webchat mailbox %s: %w", m.path, err)
	}
	return nil
}

// checkpoint copies the WAL into the file and truncates it
// (sqlitedb.Committer.Checkpoint): the history deleted by expiry and by
// history_limit frees pages in the file, which later writes reuse, but
// SQLite never gives the room a WAL took back by itself, and on a small
// disk that room is what a full disk needs.
func (m *mailbox) checkpoint(ctx context.Context) error {
	if err := m.use(); err != nil {
		return err
	}
	defer m.mu.RUnlock()
	return m.commits.Checkpoint(ctx)
}

// use starts a call: it holds off close until the caller calls
// m.mu.RUnlock, which it must do unless use fails.
func (m *mailbox) use() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return errMailboxClosed
	}
	return nil
}

// sessionMeta is a session's row, without its history.
type sessionMeta struct {
	epoch      string
	lastSeq    int64
	lastActive time.Time
	// users are the user messages in the history, oldest first, if
	// usersKnown.
	users      []userMsg
	usersKnown bool
}

// userMsg is a user message in a session's history, as memory keeps it to
// tell a re-sent message from a new one without a read: its seq and a
// hash of its client id.
type userMsg struct {
	seq  int64
	hash uint32
}

// idHash is the 32-bit FNV-1a hash of a client message id.
func idHash(id string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return h
}

// parseUserMsgs parses the "seq id seq id ..." list of qLoadSession into
// the user messages after seq from, oldest first. It reports false for a
// list it cannot read.
func parseUserMsgs(list string, from int64) ([]userMsg, bool) {
	var users []userMsg
	for list != "" {
		seqText, rest, ok := strings.Cut(list, " ")
		if !ok {
			return nil, false
		}
		id, rest, _ := strings.Cut(rest, " ")
		list = rest
		seq, err := strconv.ParseInt(seqText, 10, 64)
		if err != nil || id == "" {
			return nil, false
		}
		if seq > from {
			users = append(users, userMsg{seq: seq, hash: idHash(id)})
		}
	}
	slices.SortFunc(users, func(a, b userMsg) int { return cmp.Compare(a.seq, b.seq) })
	return users, true
}

// meta reads session id's row. ok is false when the mailbox does not hold
// it.
func (m *mailbox) meta(ctx context.Context, id string) (st sessionMeta, ok bool, err error) {
	if err := m.use(); err != nil {
		return st, false, err
	}
	defer m.mu.RUnlock()
	var active int64
	var users sql.NullString
	err = m.rstmts[qLoadSession].QueryRowContext(ctx, id).Scan(&st.epoch, &st.lastSeq, &active, &users)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("load session: %w", err)
	}
	st.lastActive = time.Unix(0, active)
	st.users, st.usersKnown = parseUserMsgs(users.String, st.lastSeq-int64(m.historyLimit))
	return st, true, nil
}

// history reads session id's entries with a seq above after, oldest
// first. Call it with the session's calls serialised (see mailbox), so
// that nothing is appended meanwhile.
func (m *mailbox) history(ctx context.Context, id string, after int64) ([]entry, error) {
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	rows, err := m.rstmts[qLoadHistory].QueryContext(ctx, id, after)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	defer rows.Close()
	var h []entry
	for rows.Next() {
		var e entry
		var kind, clientID, msgID string
		var ts int64
		if err := rows.Scan(&e.seq, &kind, &e.from, &e.text, &ts, &clientID, &msgID, &e.operator, &e.closed); err != nil {
			return nil, fmt.Errorf("load history: %w", err)
		}
		e.event = kind == kindEvent
		e.id = clientID
		if e.from != fromUser {
			e.id = msgID
		}
		e.ts = time.Unix(0, ts)
		h = append(h, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	return h, nil
}

// userSeq returns the seq of the user message with the client's id
// clientID in session id, if the history holds it.
func (m *mailbox) userSeq(ctx context.Context, id, clientID string) (int64, bool, error) {
	if err := m.use(); err != nil {
		return 0, false, err
	}
	defer m.mu.RUnlock()
	var seq int64
	err := m.rstmts[qFindClientID].QueryRowContext(ctx, id, clientID).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("look up message: %w", err)
	}
	return seq, true, nil
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
	_, err = m.write(ctx, true, func(t *sqlitedb.Tx) error {
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
	// lazy lets the commit skip its sync, if the mailbox allows it (see
	// mailbox.lazy).
	lazy bool
}

// appended is the outcome of append.
type appended struct {
	seq     int64  // the entry's seq (the earlier copy's for a duplicate)
	epoch   string // the session's epoch
	dup     bool   // the entry's id was in the history already: nothing added
	missing bool   // no such session, and newEpoch was ""
	synced  bool   // the entry was committed with a sync
	ticket  int64  // the write's ticket (see mailbox.ticket)
}

// append adds r.e to its session's history with the session's next seq,
// in one transaction with everything else it takes: the session's row
// (created if missing and r.newEpoch is set), and the removal of entries
// beyond historyLimit. An entry whose id (the client's for user messages,
// Selarti's for the others) is in the history already is not added again;
// its seq is returned with dup set.
func (m *mailbox) append(ctx context.Context, r appendReq) (appended, error) {
	var out appended
	durable := !r.lazy || !m.lazy
	ticket, err := m.write(ctx, durable, func(t *sqlitedb.Tx) error {
		now := r.e.ts.UnixNano()
		var last int64
		var err error
		switch {
		case r.e.id == "":
			err = t.QueryRow(qGetSession, r.session).Scan(&out.epoch, &last)
		default:
			q := qGetSessionMsgID
			if r.e.from == fromUser {
				q = qGetSessionClientID
			}
			var dup sql.NullInt64
			err = t.QueryRow(q, r.session, r.e.id).Scan(&out.epoch, &last, &dup)
			if err == nil && dup.Valid {
				out.seq, out.dup = dup.Int64, true
				return nil
			}
		}
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
	out.ticket = ticket
	if durable && !out.dup && !out.missing {
		// The commit changed the file, so it was synced.
		m.markSynced(ticket)
		out.synced = true
	}
	return out, nil
}

// idle returns up to limit ids of sessions last active before cutoff,
// the longest idle first.
func (m *mailbox) idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
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
func (m *mailbox) expire(ctx context.Context, del []string, _ time.Time, touch map[string]time.Time) error {
	if len(del) == 0 && len(touch) == 0 {
		return nil
	}
	_, err := m.write(ctx, true, func(t *sqlitedb.Tx) error {
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

// touch records that the sessions in at were active at the given times
// (never moving a session's last activity back). It is not synced:
// losing it in a power cut makes a session idle since its last message
// rather than its last visit, as it was before the visit.
func (m *mailbox) touch(ctx context.Context, at map[string]time.Time) error {
	if len(at) == 0 {
		return nil
	}
	_, err := m.write(ctx, false, func(t *sqlitedb.Tx) error {
		for id, when := range at {
			if _, err := t.Exec(qTouch, when.UnixNano(), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record session activity: %w", err)
	}
	return nil
}

// write runs fn in a committed transaction, through the committer; the
// commit is synced if durable. Once the committer has taken the write,
// the caller waits for its outcome even if ctx ends, so that nil always
// means committed and an error (almost always) means not written. It
// returns the write's ticket (see mailbox.ticket).
func (m *mailbox) write(ctx context.Context, durable bool, fn func(t *sqlitedb.Tx) error) (int64, error) {
	if err := m.use(); err != nil {
		return 0, err
	}
	defer m.mu.RUnlock()
	var ticket int64
	err := m.commits.Write(ctx, durable, func(t *sqlitedb.Tx) error {
		// The committer runs the functions one at a time, in the order
		// it commits them.
		ticket = m.ticket.Add(1)
		return fn(t)
	})
	if err == nil && !durable {
		raise(&m.unsynced, ticket)
	}
	return ticket, err
}

// markSynced records that a synced commit that changed the file took the
// write with ticket: it and every write before it are on disk.
func (m *mailbox) markSynced(ticket int64) { raise(&m.synced, ticket) }

// shared is false: the core runs one process per data directory.
func (m *mailbox) shared() bool { return false }

// isSynced reports whether the write with ticket is on disk.
func (m *mailbox) isSynced(ticket int64) bool { return ticket <= m.synced.Load() }

// raise sets v to n if n is higher.
func raise(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}
