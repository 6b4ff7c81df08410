package webchat

import (
	"context"
	"time"
)

// sessionStore is the durable side of the sessions, which sessions (the
// cache in memory) reads and writes: the session's epoch, its last seq,
// its last activity, its name and its recent history. The mailbox, a
// SQLite file in the instance's data directory, is one; journalMailbox,
// on the journals of the gateway's shared store (core.Journals), is the
// other. A write returns only once it is committed. Its methods are safe
// for concurrent use, but the caller must serialise the calls that
// concern one session (sessions does, with each session's lock).
type sessionStore interface {
	// meta reads session id's head, without its history; ok is false
	// when the store does not hold it.
	meta(ctx context.Context, id string) (st sessionMeta, ok bool, err error)
	// history reads session id's entries with a seq above after, oldest
	// first.
	history(ctx context.Context, id string, after int64) ([]entry, error)
	// userSeq returns the seq of the user message with the client's id
	// clientID in session id, if the history holds it.
	userSeq(ctx context.Context, id, clientID string) (int64, bool, error)
	// create stores a new session id with epoch, unless the store holds
	// it already, and returns the session as stored: its epoch is the
	// existing one if there was one.
	create(ctx context.Context, id, epoch, name string, now time.Time) (epochOut string, lastSeq int64, err error)
	// append adds r.e to its session's history with the session's next
	// seq (see appendReq and appended), trimming the history to its
	// limit, and drops an entry whose id the history holds already.
	append(ctx context.Context, r appendReq) (appended, error)
	// idle returns up to limit ids of sessions last active before
	// cutoff, the longest idle first.
	idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	// expire deletes the sessions del with their history, and records
	// that the sessions in touch were active at the given times.
	expire(ctx context.Context, del []string, cutoff time.Time, touch map[string]time.Time) error
	// touch records that the sessions in at were active at the given
	// times, never moving a session's last activity back.
	touch(ctx context.Context, at map[string]time.Time) error
	// isSynced reports whether the write with ticket (appended.ticket)
	// is on disk.
	isSynced(ticket int64) bool
	// checkpoint does the store's periodic upkeep (the file's WAL).
	checkpoint(ctx context.Context) error
	// close waits for the calls in progress and ends the store; later
	// calls fail with errMailboxClosed. It is safe to call twice.
	close() error
	// shared reports whether other processes (the gateway's other
	// replicas) write the store too: then the cache in memory is never
	// sure to be current (see sessions.shared).
	shared() bool
}

var _ sessionStore = (*mailbox)(nil)
