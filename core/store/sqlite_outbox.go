package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// The SQL below sticks to what SQLite and PostgreSQL share (ON CONFLICT,
// RETURNING, partial indexes) apart from the '?' placeholders. States and
// directions are literals where an index is partial on them: SQLite uses a
// partial index only when the query's WHERE names the same literal.

// msgCols are the columns scanMessage reads, in order.
const msgCols = "id, dir, chat, dedupe_key, payload, state, attempts, created_at, next_at, last_error, in_doubt"

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanMessage(r rowScanner) (Message, error) {
	var m Message
	var created, next int64
	if err := r.Scan(&m.ID, &m.Dir, &m.Chat, &m.DedupeKey, &m.Payload, &m.State,
		&m.Attempts, &created, &next, &m.LastError, &m.InDoubt); err != nil {
		return Message{}, err
	}
	m.CreatedAt = fromNanos(created)
	m.NextAt = fromNanos(next)
	return m, nil
}

// Write statements, prepared on the write connection.
const (
	insertMessageSQL = `INSERT INTO messages
		(dir, chat, dedupe_key, payload, state, attempts, created_at, next_at, last_error)
		VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)
		ON CONFLICT (dir, dedupe_key) WHERE dedupe_key <> '' DO NOTHING
		RETURNING id`
	// touchChatSQL moves a chat's last_seen only when it moves by more
	// than touchEvery (the third parameter): an update that changes
	// nothing writes no page, and a busy chat would otherwise cost a
	// random page in every commit. Retention is days, so an hour of slack
	// is nothing.
	touchChatSQL = `INSERT INTO chats (chat, last_seen) VALUES (?, ?)
		ON CONFLICT (chat) DO UPDATE SET last_seen = excluded.last_seen
			WHERE excluded.last_seen > chats.last_seen + ?`

	// The ends of attempts and Replay return what the pending index needs.
	deliveredSQL = `UPDATE messages SET state = 'delivered', attempts = attempts + 1
		WHERE id = ? AND state = 'pending' RETURNING id`
	retrySQL = `UPDATE messages SET attempts = attempts + 1, next_at = ?, last_error = ?, in_doubt = 0
		WHERE id = ? AND state = 'pending' RETURNING id`
	// deferSQL keeps the last error when the note is empty.
	deferSQL = `UPDATE messages SET next_at = ?, in_doubt = ?,
			last_error = CASE WHEN ? = '' THEN last_error ELSE ? END
		WHERE id = ? AND state = 'pending' RETURNING id`
	killSQL = `UPDATE messages SET state = 'dead', attempts = attempts + 1, last_error = ?
		WHERE id = ? AND state = 'pending' RETURNING id`
	replaySQL = `UPDATE messages SET state = 'pending', attempts = 0, next_at = 0
		WHERE id = ? AND state = 'dead' RETURNING dir, chat, created_at`
	dropSQL = "DELETE FROM messages WHERE id = ? AND state = 'dead'"
	// inDoubtByIDSQL marks a message whose lease ran out (see Claim).
	inDoubtByIDSQL = "UPDATE messages SET in_doubt = 1 WHERE id = ? AND state = 'pending' AND in_doubt = 0"

	// pendingSQL reads one direction's pending messages for the pending
	// index, along messages_dir_state_created.
	pendingSQL     = "SELECT id, chat, created_at, next_at FROM messages WHERE dir = ? AND state = 'pending'"
	dataVersionSQL = "PRAGMA data_version"

	setFlagsSQL = `INSERT INTO chats (chat, dialog_flags, flags_at) VALUES (?, ?, ?)
		ON CONFLICT (chat) DO UPDATE SET dialog_flags = excluded.dialog_flags, flags_at = excluded.flags_at`
	// Per direction, so that the delete walks messages_dir_state_created.
	pruneMessagesSQL = `DELETE FROM messages
		WHERE dir = ? AND state = 'delivered' AND created_at < ?`
	pruneChatsSQL  = "DELETE FROM chats WHERE last_seen < ? AND flags_at < ?"
	forgetChatsSQL = "UPDATE chats SET last_seen = 0 WHERE last_seen <> 0 AND last_seen < ?"
)

// touchEvery is how far a chat's last_seen may lag its newest message
// (see touchChatSQL, and Store.Prune).
const touchEvery = time.Hour

// writeQueries are prepared at open.
var writeQueries = []string{
	insertMessageSQL, touchChatSQL,
	deliveredSQL, retrySQL, deferSQL, killSQL, replaySQL, dropSQL, inDoubtByIDSQL,
	pendingSQL, dataVersionSQL,
	setFlagsSQL, pruneMessagesSQL, pruneChatsSQL, forgetChatsSQL,
}

// Read statements, prepared on the read connections.
const (
	getMessageSQL   = "SELECT " + msgCols + " FROM messages WHERE id = ?"
	findByKeySQL    = "SELECT " + msgCols + " FROM messages WHERE dir = ? AND dedupe_key = ? AND dedupe_key <> ''"
	deadLettersSQL  = "SELECT " + msgCols + " FROM messages WHERE state = 'dead' ORDER BY id LIMIT ?"
	statsPendingSQL = `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM messages
		WHERE dir = ? AND state = 'pending'`
	statsDeadSQL = "SELECT COUNT(*) FROM messages WHERE dir = ? AND state = 'dead'"
	chatSQL      = "SELECT last_seen, dialog_flags FROM chats WHERE chat = ?"
)

// deliveredSinceSQL walks messages_dir_state_created over the span, which
// is short (a minute or so), rather than index every message by chat.
const deliveredSinceSQL = "SELECT " + msgCols + ` FROM messages
	WHERE dir = ? AND state = 'delivered' AND created_at >= ? AND chat = ?
	ORDER BY created_at DESC, id DESC LIMIT ?`

var readQueries = []string{getMessageSQL, findByKeySQL, deadLettersSQL, statsPendingSQL, statsDeadSQL, chatSQL, deliveredSinceSQL}

// Enqueue implements Store.
func (s *SQLite) Enqueue(ctx context.Context, m *Message) (bool, error) {
	dup, _, err := s.enqueue(ctx, m, 0)
	return dup, err
}

// EnqueueClaim implements Store.
func (s *SQLite) EnqueueClaim(ctx context.Context, m *Message, now time.Time, lease time.Duration) (dup, claimed bool, err error) {
	if err := checkClaim(m.Dir, lease); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	return s.enqueue(ctx, m, nanos(now)+int64(lease))
}

// enqueue writes m and, when leaseUntil is not 0 and m becomes the head of
// an idle chat due at once, leases it until leaseUntil.
func (s *SQLite) enqueue(ctx context.Context, m *Message, leaseUntil int64) (dup, claimed bool, err error) {
	if err := checkNew(m); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	created := m.CreatedAt
	if created.IsZero() {
		created = wallNow()
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{} // the column is NOT NULL
	}
	var id int64
	err = s.writeThen(ctx, true, func(t *txn) error {
		id, dup, claimed = 0, false, false
		// The partial unique index decides dedupe, in the same statement
		// as the insert, so there is no window between check and write.
		err := t.QueryRow(insertMessageSQL, m.Dir, m.Chat, m.DedupeKey, payload, m.Attempts,
			nanos(created), nanos(m.NextAt), m.LastError).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			dup = true
			return nil
		}
		if err != nil {
			return err
		}
		if m.Dir == ToSelarti {
			if _, err := t.Exec(touchChatSQL, m.Chat, nanos(created), int64(touchEvery)); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		if !dup {
			claimed = s.pending.add(id, m.Dir, m.Chat, nanos(created), nanos(m.NextAt), leaseUntil)
		}
	})
	if err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	if !dup {
		m.ID = id
		m.State = Pending
		m.CreatedAt = created
	}
	return dup, claimed, nil
}

// Claim implements Store. The leases live in the pending index, so it
// writes nothing, except when a lease it finds ran out: then the message
// that held it is marked InDoubt (see Store), in a commit that does not
// wait for the disk (a crash marks the due heads anyway, see OpenSQLite).
// The messages are read on the read connections.
func (s *SQLite) Claim(ctx context.Context, dir Direction, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	if err := checkClaim(dir, lease); err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	done, err := s.use()
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	defer done()
	if limit <= 0 {
		return nil, nil
	}
	if err := s.refreshIfDue(ctx); err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	s.imu.Lock()
	ids, expired := s.pending.claim(dir, nanos(now), nanos(now)+int64(lease), limit)
	s.imu.Unlock()
	// Nothing is returned on an error: every chat goes back as it was.
	unclaim := func() {
		s.imu.Lock()
		s.pending.unclaim(ids, expired)
		s.imu.Unlock()
	}
	if len(expired) > 0 {
		// Through the committer directly: use is held already.
		err := s.commits.WriteThen(ctx, false, func(t *txn) error {
			for _, l := range expired {
				if _, err := t.Exec(inDoubtByIDSQL, l.id); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		if err != nil {
			unclaim()
			return nil, fmt.Errorf("claim messages: mark the messages whose lease ran out in doubt: %w", err)
		}
	}
	out := make([]Message, 0, len(ids))
	for _, id := range ids {
		m, err := scanMessage(s.rstmts[getMessageSQL].QueryRowContext(ctx, id))
		if err != nil {
			unclaim()
			return nil, fmt.Errorf("claim messages: read message %d: %w", id, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Delivered implements Store.
func (s *SQLite) Delivered(ctx context.Context, id int64) error {
	if err := s.endAttempt(ctx, id, func() { s.pending.remove(id) }, deliveredSQL, id); err != nil {
		return fmt.Errorf("mark message %d delivered: %w", id, err)
	}
	return nil
}

// Retry implements Store.
func (s *SQLite) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	err := s.endAttempt(ctx, id, func() { s.pending.retry(id, nanos(next)) }, retrySQL, nanos(next), lastErr, id)
	if err != nil {
		return fmt.Errorf("retry message %d: %w", id, err)
	}
	return nil
}

// Defer implements Store.
func (s *SQLite) Defer(ctx context.Context, id int64, next time.Time, inDoubt bool, note string) error {
	err := s.endAttempt(ctx, id, func() { s.pending.retry(id, nanos(next)) }, deferSQL, nanos(next), inDoubt, note, note, id)
	if err != nil {
		return fmt.Errorf("defer message %d: %w", id, err)
	}
	return nil
}

// Kill implements Store.
func (s *SQLite) Kill(ctx context.Context, id int64, lastErr string) error {
	if err := s.endAttempt(ctx, id, func() { s.pending.remove(id) }, killSQL, lastErr, id); err != nil {
		return fmt.Errorf("kill message %d: %w", id, err)
	}
	return nil
}

// endAttempt runs update, which changes pending message id and returns
// its id (no row: ErrNotFound), and once committed changes the pending
// index with then. The commit is not durable (see Store.Delivered).
func (s *SQLite) endAttempt(ctx context.Context, id int64, then func(), update string, args ...any) error {
	return s.writeThen(ctx, false, func(t *txn) error {
		var got int64
		err := t.QueryRow(update, args...).Scan(&got)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}, then)
}

// Replay implements Store.
func (s *SQLite) Replay(ctx context.Context, id int64) error {
	var dir Direction
	var chat string
	var created int64
	err := s.writeThen(ctx, true, func(t *txn) error {
		err := t.QueryRow(replaySQL, id).Scan(&dir, &chat, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}, func() { s.pending.add(id, dir, chat, created, 0, 0) })
	if err != nil {
		return fmt.Errorf("replay message %d: %w", id, err)
	}
	return nil
}

// Drop implements Store.
func (s *SQLite) Drop(ctx context.Context, id int64) error {
	err := s.write(ctx, true, func(t *txn) error {
		res, err := t.Exec(dropSQL, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("drop message %d: %w", id, err)
	}
	return nil
}

// DeadLetters implements Store.
func (s *SQLite) DeadLetters(ctx context.Context, limit int) ([]Message, error) {
	done, err := s.use()
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer done()
	if limit <= 0 {
		return nil, nil
	}
	out, err := queryMessages(ctx, s.rstmts[deadLettersSQL], limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// DeliveredSince implements Store.
func (s *SQLite) DeliveredSince(ctx context.Context, dir Direction, chat string, since time.Time, limit int) ([]Message, error) {
	done, err := s.use()
	if err != nil {
		return nil, fmt.Errorf("list delivered messages: %w", err)
	}
	defer done()
	out, err := queryMessages(ctx, s.rstmts[deliveredSinceSQL], dir, nanos(since), chat, limit)
	if err != nil {
		return nil, fmt.Errorf("list delivered messages: %w", err)
	}
	return out, nil
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id int64) (Message, error) {
	done, err := s.use()
	if err != nil {
		return Message{}, fmt.Errorf("get message %d: %w", id, err)
	}
	defer done()
	m, err := scanMessage(s.rstmts[getMessageSQL].QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("get message %d: %w", id, err)
	}
	return m, nil
}

// FindByKey implements Store.
func (s *SQLite) FindByKey(ctx context.Context, dir Direction, key string) (Message, error) {
	done, err := s.use()
	if err != nil {
		return Message{}, fmt.Errorf("find message by key: %w", err)
	}
	defer done()
	m, err := scanMessage(s.rstmts[findByKeySQL].QueryRowContext(ctx, string(dir), key))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Message{}, fmt.Errorf("find message by key: %w", err)
	}
	return m, nil
}

// Stats implements Store.
func (s *SQLite) Stats(ctx context.Context, dir Direction) (Stats, error) {
	if err := checkDir(dir); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	done, err := s.use()
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer done()
	var st Stats
	var oldest int64
	// Both counts read the messages_dir_state_created index only.
	if err := s.rstmts[statsPendingSQL].QueryRowContext(ctx, dir).Scan(&st.Pending, &oldest); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if err := s.rstmts[statsDeadSQL].QueryRowContext(ctx, dir).Scan(&st.Dead); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	st.OldestPending = fromNanos(oldest)
	return st, nil
}

// Chat implements Store.
func (s *SQLite) Chat(ctx context.Context, chat string) (ChatInfo, error) {
	done, err := s.use()
	if err != nil {
		return ChatInfo{}, fmt.Errorf("look up chat %q: %w", chat, err)
	}
	defer done()
	var lastSeen, flags int64
	err = s.rstmts[chatSQL].QueryRowContext(ctx, chat).Scan(&lastSeen, &flags)
	if errors.Is(err, sql.ErrNoRows) {
		return ChatInfo{}, nil
	}
	if err != nil {
		return ChatInfo{}, fmt.Errorf("look up chat %q: %w", chat, err)
	}
	return ChatInfo{Known: lastSeen != 0, Flags: uint32(flags)}, nil
}

// SetDialogFlags implements Store.
func (s *SQLite) SetDialogFlags(ctx context.Context, chat string, flags uint32) error {
	err := s.write(ctx, true, func(t *txn) error {
		_, err := t.Exec(setFlagsSQL, chat, int64(flags), nanos(wallNow()))
		return err
	})
	if err != nil {
		return fmt.Errorf("set dialog flags of chat %q: %w", chat, err)
	}
	return nil
}

// Prune implements Store.
//
// It deletes in one transaction. Run often (the router's retention job),
// each run deletes little; a first run over a large backlog holds the
// writer for as long as the delete takes.
func (s *SQLite) Prune(ctx context.Context, cutoff, chatsBefore time.Time) (int, error) {
	c, cc := nanos(cutoff), nanos(chatsBefore)
	var n int64
	err := s.write(ctx, true, func(t *txn) error {
		n = 0
		for _, dir := range Directions {
			res, err := t.Exec(pruneMessagesSQL, dir, c)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		if _, err := t.Exec(pruneChatsSQL, cc, cc); err != nil {
			return err
		}
		_, err := t.Exec(forgetChatsSQL, cc)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	return int(n), nil
}

func queryMessages(ctx context.Context, st *sql.Stmt, args ...any) ([]Message, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
