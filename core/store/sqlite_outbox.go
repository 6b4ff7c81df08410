package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The SQL below sticks to what SQLite and PostgreSQL share (ON CONFLICT,
// RETURNING, partial indexes) apart from the '?' placeholders. States and
// directions are literals where an index is partial on them: SQLite uses a
// partial index only when the query's WHERE names the same literal.

// msgCols are the columns scanMessage reads, in order.
const msgCols = "id, dir, chat, dedupe_key, payload, state, attempts, created_at, next_at, last_error"

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

func scanMessage(r rowScanner) (Message, error) {
	var m Message
	var created, next int64
	if err := r.Scan(&m.ID, &m.Dir, &m.Chat, &m.DedupeKey, &m.Payload, &m.State,
		&m.Attempts, &created, &next, &m.LastError); err != nil {
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
	insertHeadSQL = `INSERT INTO heads (dir, chat, msg_id, waiting, ready_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (dir, chat) DO NOTHING`
	// insertLeasedHeadSQL is insertHeadSQL for EnqueueClaim: the head as
	// Claim leaves it. Parameters: dir, chat, id, lease end, id, lease end.
	insertLeasedHeadSQL = `INSERT INTO heads (dir, chat, msg_id, waiting, ready_at, lease_id, lease_until)
		VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (dir, chat) DO NOTHING`
	touchChatSQL = `INSERT INTO chats (chat, last_seen) VALUES (?, ?)
		ON CONFLICT (chat) DO UPDATE SET last_seen = CASE
			WHEN excluded.last_seen > chats.last_seen THEN excluded.last_seen
			ELSE chats.last_seen END`

	// claimSQL leases the heads to claim and returns their message ids.
	// The two inner selects each read at most limit rows of the
	// heads_claim index (fresh chats, and waiting chats now due), so a
	// Claim costs the same with a hundred thousand chats backing off as
	// with none. Parameters: lease end (twice), dir, dir, limit, dir, now,
	// limit, limit.
	claimSQL = `UPDATE heads SET waiting = 1, ready_at = ?, lease_id = msg_id, lease_until = ?
		WHERE dir = ? AND chat IN (
			SELECT chat FROM (
				SELECT chat, ready_at, msg_id FROM (
					SELECT chat, ready_at, msg_id FROM heads
					WHERE dir = ? AND waiting = 0
					ORDER BY ready_at, msg_id LIMIT ?) AS fresh
				UNION ALL
				SELECT chat, ready_at, msg_id FROM (
					SELECT chat, ready_at, msg_id FROM heads
					WHERE dir = ? AND waiting = 1 AND ready_at <= ?
					ORDER BY ready_at, msg_id LIMIT ?) AS due
			) AS candidates
			ORDER BY ready_at, msg_id LIMIT ?)
		RETURNING msg_id`
	getMessageSQL = "SELECT " + msgCols + " FROM messages WHERE id = ?"

	deliveredSQL = `UPDATE messages SET state = 'delivered'
		WHERE id = ? AND state = 'pending' RETURNING dir, chat`
	retrySQL = `UPDATE messages SET attempts = attempts + 1, next_at = ?, last_error = ?
		WHERE id = ? AND state = 'pending' RETURNING dir, chat`
	killSQL = `UPDATE messages SET state = 'dead', attempts = attempts + 1, last_error = ?
		WHERE id = ? AND state = 'pending' RETURNING dir, chat`
	replaySQL = `UPDATE messages SET state = 'pending', attempts = 0, next_at = 0
		WHERE id = ? AND state = 'dead' RETURNING dir, chat`
	dropSQL = "DELETE FROM messages WHERE id = ? AND state = 'dead'"

	headLeaseSQL = "SELECT lease_id, lease_until FROM heads WHERE dir = ? AND chat = ?"
	chatHeadSQL  = `SELECT id, created_at, next_at FROM messages
		WHERE dir = ? AND chat = ? AND state = 'pending' ORDER BY id LIMIT 1`
	deleteHeadSQL = "DELETE FROM heads WHERE dir = ? AND chat = ?"
	upsertHeadSQL = `INSERT INTO heads (dir, chat, msg_id, waiting, ready_at, lease_id, lease_until)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (dir, chat) DO UPDATE SET msg_id = excluded.msg_id, waiting = excluded.waiting,
			ready_at = excluded.ready_at, lease_id = excluded.lease_id, lease_until = excluded.lease_until`

	setFlagsSQL = `INSERT INTO chats (chat, dialog_flags, flags_at) VALUES (?, ?, ?)
		ON CONFLICT (chat) DO UPDATE SET dialog_flags = excluded.dialog_flags, flags_at = excluded.flags_at`
	// Per direction, so that the delete walks messages_dir_state_created.
	pruneMessagesSQL = `DELETE FROM messages
		WHERE dir = ? AND state = 'delivered' AND created_at < ?`
	pruneChatsSQL  = "DELETE FROM chats WHERE last_seen < ? AND flags_at < ?"
	forgetChatsSQL = "UPDATE chats SET last_seen = 0 WHERE last_seen <> 0 AND last_seen < ?"
)

// writeQueries are prepared at open.
var writeQueries = []string{
	insertMessageSQL, insertHeadSQL, insertLeasedHeadSQL, touchChatSQL, claimSQL, getMessageSQL,
	deliveredSQL, retrySQL, killSQL, replaySQL, dropSQL,
	headLeaseSQL, chatHeadSQL, deleteHeadSQL, upsertHeadSQL,
	setFlagsSQL, pruneMessagesSQL, pruneChatsSQL, forgetChatsSQL,
	"SAVEPOINT w", "ROLLBACK TO w", "RELEASE w",
}

// Read statements, prepared on the read connections.
const (
	deadLettersSQL  = "SELECT " + msgCols + " FROM messages WHERE state = 'dead' ORDER BY id LIMIT ?"
	statsPendingSQL = `SELECT COUNT(*), COALESCE(MIN(created_at), 0) FROM messages
		WHERE dir = ? AND state = 'pending'`
	statsDeadSQL = "SELECT COUNT(*) FROM messages WHERE dir = ? AND state = 'dead'"
	chatSQL      = "SELECT last_seen, dialog_flags FROM chats WHERE chat = ?"
)

var readQueries = []string{getMessageSQL, deadLettersSQL, statsPendingSQL, statsDeadSQL, chatSQL}

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
	err = s.write(ctx, true, func(t *txn) error {
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
		// The new message heads its chat only if the chat has no pending
		// message: ids only grow, so it is never before an existing head.
		// Only then may it be leased at once (a head row means another
		// message of the chat is pending, leased or not).
		lease := leaseUntil != 0 && m.NextAt.IsZero()
		var res sql.Result
		if lease {
			res, err = t.Exec(insertLeasedHeadSQL, m.Dir, m.Chat, id, leaseUntil, id, leaseUntil)
		} else {
			waiting, ready := readiness(nanos(created), nanos(m.NextAt), 0)
			res, err = t.Exec(insertHeadSQL, m.Dir, m.Chat, id, boolInt(waiting), ready)
		}
		if err != nil {
			return err
		}
		if lease {
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			claimed = n == 1
		}
		if m.Dir == ToSelarti {
			if _, err := t.Exec(touchChatSQL, m.Chat, nanos(created)); err != nil {
				return err
			}
		}
		return nil
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

// Claim implements Store.
func (s *SQLite) Claim(ctx context.Context, dir Direction, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	if err := checkClaim(dir, lease); err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	if limit <= 0 {
		done, err := s.use() // still fail after Close
		if err != nil {
			return nil, fmt.Errorf("claim messages: %w", err)
		}
		done()
		return nil, nil
	}
	until := nanos(now) + int64(lease)
	var out []Message
	err := s.write(ctx, false, func(t *txn) error {
		out = out[:0]
		rows, err := t.Query(claimSQL, until, until, dir, dir, limit, dir, nanos(now), limit, limit)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.Sort(ids)
		for _, id := range ids {
			m, err := scanMessage(t.QueryRow(getMessageSQL, id))
			if err != nil {
				return fmt.Errorf("read claimed message %d: %w", id, err)
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	return out, nil
}

// Delivered implements Store.
func (s *SQLite) Delivered(ctx context.Context, id int64) error {
	if err := s.leave(ctx, false, id, deliveredSQL, id); err != nil {
		return fmt.Errorf("mark message %d delivered: %w", id, err)
	}
	return nil
}

// Retry implements Store.
func (s *SQLite) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if err := s.leave(ctx, false, id, retrySQL, nanos(next), lastErr, id); err != nil {
		return fmt.Errorf("retry message %d: %w", id, err)
	}
	return nil
}

// Kill implements Store.
func (s *SQLite) Kill(ctx context.Context, id int64, lastErr string) error {
	if err := s.leave(ctx, false, id, killSQL, lastErr, id); err != nil {
		return fmt.Errorf("kill message %d: %w", id, err)
	}
	return nil
}

// Replay implements Store.
func (s *SQLite) Replay(ctx context.Context, id int64) error {
	// Id 0 ends no lease: a dead message holds none (Kill ended it).
	if err := s.leave(ctx, true, 0, replaySQL, id); err != nil {
		return fmt.Errorf("replay message %d: %w", id, err)
	}
	return nil
}

// leave runs update, which changes one message and returns its dir and
// chat (no row: ErrNotFound), then settles the chat's head: the message
// may have left the queue, changed its NextAt, or come back. The lease
// held by message leaving, if any, ends. durable is false for the ends of
// attempts (see Store.Delivered), true for an operator's Replay.
func (s *SQLite) leave(ctx context.Context, durable bool, leaving int64, update string, args ...any) error {
	return s.write(ctx, durable, func(t *txn) error {
		var dir Direction
		var chat string
		err := t.QueryRow(update, args...).Scan(&dir, &chat)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return settleHead(t, dir, chat, leaving)
	})
}

// settleHead recomputes the heads row of (dir, chat) from its oldest
// pending message and its lease, deleting it when nothing is pending.
func settleHead(t *txn, dir Direction, chat string, leaving int64) error {
	var leaseID, leaseUntil int64
	err := t.QueryRow(headLeaseSQL, dir, chat).Scan(&leaseID, &leaseUntil)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if leaving != 0 && leaseID == leaving {
		leaseID, leaseUntil = 0, 0
	}
	var head, created, next int64
	err = t.QueryRow(chatHeadSQL, dir, chat).Scan(&head, &created, &next)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = t.Exec(deleteHeadSQL, dir, chat)
		return err
	}
	if err != nil {
		return err
	}
	waiting, ready := readiness(created, next, leaseUntil)
	_, err = t.Exec(upsertHeadSQL, dir, chat, head, boolInt(waiting), ready, leaseID, leaseUntil)
	return err
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

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
