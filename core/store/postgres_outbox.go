package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The outbox on PostgreSQL.
//
// Claim order. Every chat with pending messages in a direction has a row
// in heads (see pgmigrations/0001_init.sql): its head, the head's place in
// the claim order (readiness in order.go: waiting and ready_at) and the
// chat's lease. Claim reads nothing else to choose: it walks two partial
// indexes in order, one over the fresh heads (due whatever the time, ranked
// by CreatedAt) and one over the waiting ones up to now (ranked by NextAt
// or by the end of their lease), takes up to limit of each with FOR UPDATE
// SKIP LOCKED, keeps the limit due the longest, and leases them in the
// same statement. So a Claim costs O(limit) index entries whatever the
// number of chats, pending messages or chats backing off, and replicas
// claiming at once take different chats without waiting for each other.
// A leased head is a waiting one with ready_at at the lease's end: no
// other Claim takes any message of its chat until the lease ends or runs
// out, whichever message is the head meanwhile (see Replay).
//
// Keeping heads right. A chat's heads row changes with its pending
// messages, in the transaction that changes them, and is always computed
// from the messages (the lowest pending id, its times, the lease kept
// unless the message holding it leaves or ends its attempt), never
// patched. Two transactions must not compute it from each other's
// half-done work, so every one that changes a chat's pending messages
// (Enqueue, Delivered, Retry, Defer, Kill, Replay) first takes a
// transaction advisory lock on the chat (pgChatLockClass and a hash of
// schema, direction and chat; a collision makes two chats take turns,
// nothing worse): the statement after it sees every earlier change of the
// chat committed. Enqueue takes it before the message gets its id, so a
// chat's ids grow in commit order and a new message is never before the
// head (only Replay puts one there, and moves the head).
//
// Locks are taken in one order, the chat's advisory lock, then its heads
// row, then its messages, so that no two of these transactions wait for
// each other in a circle. Claim takes heads rows only (SKIP LOCKED: it
// waits for none), then marks the messages whose lease ran out; the other
// writers lock the heads row before they touch a message.
//
// Round trips. Each call is one pgx batch: its statements go in one round
// trip, closed by one Sync, so they run in one implicit transaction that
// commits when the last one has run (or rolls back when one fails), the
// locks held until then. The statement that does the work is one
// statement with data-modifying CTEs, so that the message and its chat's
// heads row change together.

// pgChatLockClass is the first key of the chats' advisory locks (the
// two-integer form, a key space apart from the migration lock's).
const pgChatLockClass = 0x53574348 // "SWCH"

// pgMsgCols are the columns scanPgMessage reads, in order, from a table
// named m.
const pgMsgCols = "m.id, m.dir, m.chat, m.dedupe_key, m.payload, m.state, m.attempts, m.created_at, m.next_at, m.last_error, m.in_doubt"

func scanPgMessage(r pgx.Row) (Message, error) {
	var m Message
	var dir, state string
	var created, next int64
	if err := r.Scan(&m.ID, &dir, &m.Chat, &m.DedupeKey, &m.Payload, &state,
		&m.Attempts, &created, &next, &m.LastError, &m.InDoubt); err != nil {
		return Message{}, err
	}
	m.Dir, m.State = Direction(dir), State(state)
	m.CreatedAt = fromNanos(created)
	m.NextAt = fromNanos(next)
	return m, nil
}

// collectPgMessage is scanPgMessage for pgx.CollectRows.
func collectPgMessage(r pgx.CollectableRow) (Message, error) { return scanPgMessage(r) }

// pgReady is readiness (order.go) in SQL, for the heads row of a head
// created at created, due at next, under a lease until lease (SQL
// expressions, unix nanos, 0 for none).
func pgReady(created, next, lease string) (waiting, readyAt string) {
	waiting = fmt.Sprintf("(%[2]s <> 0 OR %[1]s <> 0)", next, lease)
	readyAt = fmt.Sprintf("(CASE WHEN %[3]s <> 0 THEN GREATEST(%[3]s, %[2]s) WHEN %[2]s <> 0 THEN %[2]s ELSE %[1]s END)",
		created, next, lease)
	return waiting, readyAt
}

// The locks statements take before they change a chat (see the top of
// this file): the chat's advisory lock, by the chat's name or by one of
// its messages, and its heads row.
var (
	pgLockChatSQL  = "SELECT " + pgChatLock("$1::text", "$2::text")
	pgLockByMsgSQL = "SELECT " + pgChatLock("dir", "chat") + " FROM messages WHERE id = $1"
)

const pgLockHeadSQL = "SELECT FROM heads h JOIN messages m ON h.dir = m.dir AND h.chat = m.chat WHERE m.id = $1 FOR UPDATE OF h"

// pgChatLock is the call that takes the advisory lock of the chat that the
// SQL expressions dir and chat name.
func pgChatLock(dir, chat string) string {
	return fmt.Sprintf("pg_advisory_xact_lock(%d, hashtext(current_schema() || '/' || %s || '/' || %s))", pgChatLockClass, dir, chat)
}

// pgEnqueueSQL writes a message, its chat's heads row when it is the head
// (leased at once when $9, the lease's end, is not 0 and it is due at
// once: EnqueueClaim), and the chat's last_seen for a user's message. It
// returns no row for a duplicate. The chat's lock is held.
const pgEnqueueSQL = `WITH ins AS (
	INSERT INTO messages (dir, chat, dedupe_key, payload, state, attempts, created_at, next_at, last_error)
	VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8)
	ON CONFLICT (dir, dedupe_key) WHERE dedupe_key <> '' DO NOTHING
	RETURNING id
), c AS (
	SELECT $9::bigint <> 0 AND $7::bigint = 0 AS claim
), head AS (
	INSERT INTO heads (dir, chat, msg_id, waiting, ready_at, lease_id, lease_until, lease_owner)
	SELECT $1, $2, ins.id, c.claim OR $7 <> 0,
		CASE WHEN c.claim THEN $9 WHEN $7 <> 0 THEN $7 ELSE $6 END,
		CASE WHEN c.claim THEN ins.id ELSE 0 END,
		CASE WHEN c.claim THEN $9 ELSE 0 END,
		CASE WHEN c.claim THEN $10::text END
	FROM ins, c
	ON CONFLICT (dir, chat) DO NOTHING
	RETURNING lease_id
), seen AS (
	-- last_seen moves only by more than touchEvery ($11), as in SQLite:
	-- a busy chat would otherwise rewrite its row with every message.
	INSERT INTO chats (chat, last_seen)
	SELECT $2, $6 FROM ins WHERE $1 = 'to_selarti'
	ON CONFLICT (chat) DO UPDATE SET last_seen = excluded.last_seen
		WHERE excluded.last_seen > chats.last_seen + $11
)
SELECT ins.id, EXISTS (SELECT FROM head WHERE lease_id <> 0) FROM ins`

// pgClaimSQL leases up to $3 heads of direction $1 due at $2 until $4 for
// claim $5 (see the top of this file), and marks the messages whose lease
// ran out in doubt. pgClaimedSQL, next in the same transaction, reads the
// leased messages: a second statement sees the heads rows as locked, and
// their messages as committed before the lock, where the first one's
// snapshot may be older than a row it locked.
const (
	pgClaimSQL = `WITH fresh AS MATERIALIZED (
	SELECT chat, msg_id, ready_at, lease_id FROM heads
	WHERE dir = $1 AND NOT waiting
	ORDER BY ready_at, msg_id LIMIT $3
	FOR UPDATE SKIP LOCKED
), due AS MATERIALIZED (
	SELECT chat, msg_id, ready_at, lease_id FROM heads
	WHERE dir = $1 AND waiting AND ready_at <= $2
	ORDER BY ready_at, msg_id LIMIT $3
	FOR UPDATE SKIP LOCKED
), orphaned AS MATERIALIZED (
	-- Leased by a store that stopped beating (postgres_heartbeat.go):
	-- due as if its lease had run out.
	SELECT h.chat, h.msg_id, h.ready_at, h.lease_id FROM heads h
	WHERE h.dir = $1 AND h.lease_id <> 0 AND h.ready_at > $2
		AND NOT EXISTS (SELECT 1 FROM store_heartbeats b
			WHERE b.owner = split_part(h.lease_owner, '#', 1)
			AND b.seen_at > clock_timestamp() - make_interval(secs => $6))
	ORDER BY h.ready_at, h.msg_id LIMIT $3
	FOR UPDATE SKIP LOCKED
), taken AS (
	SELECT * FROM fresh UNION ALL SELECT * FROM due UNION ALL SELECT * FROM orphaned
	ORDER BY ready_at, msg_id LIMIT $3
), leased AS (
	UPDATE heads h SET waiting = true, ready_at = $4, lease_id = t.msg_id, lease_until = $4, lease_owner = $5
	FROM taken t WHERE h.dir = $1 AND h.chat = t.chat
), doubted AS (
	UPDATE messages SET in_doubt = true
	WHERE id IN (SELECT lease_id FROM taken WHERE lease_id <> 0) AND state = 'pending' AND NOT in_doubt
)
SELECT count(*) FROM taken`
	pgClaimedSQL = "SELECT " + pgMsgCols + ` FROM heads h JOIN messages m ON m.id = h.msg_id
	WHERE h.dir = $1 AND h.waiting AND h.ready_at = $2 AND h.lease_owner = $3
	ORDER BY m.id`
)

// pgEndLease is the chat's lease after message $1 ends its attempt or
// leaves: ended when $1 holds it, else kept.
const (
	pgEndLeaseCols = `lease_id = CASE WHEN h.lease_id = $1 THEN 0 ELSE h.lease_id END,
		lease_until = CASE WHEN h.lease_id = $1 THEN 0 ELSE h.lease_until END,
		lease_owner = CASE WHEN h.lease_id = $1 THEN NULL ELSE h.lease_owner END`
	pgLeaseAfter = "(CASE WHEN h.lease_id = $1 THEN 0 ELSE h.lease_until END)"
)

// pgLeaveSQL returns the statement that takes pending message $1 out of
// the pending ones with set (Delivered, Kill): the chat's head moves to its
// next pending message, or its heads row goes. It returns 1 when $1 was
// pending, else 0. The chat's lock and heads row are held.
func pgLeaveSQL(set string) string {
	waiting, ready := pgReady("nh.created_at", "nh.next_at", pgLeaseAfter)
	return `WITH m AS (
	UPDATE messages SET ` + set + `
	WHERE id = $1 AND state = 'pending'
	RETURNING dir, chat
), nh AS (
	SELECT n.id, n.created_at, n.next_at FROM m, LATERAL (
		SELECT id, created_at, next_at FROM messages
		WHERE dir = m.dir AND chat = m.chat AND state = 'pending' AND id <> $1
		ORDER BY id LIMIT 1) n
), moved AS (
	UPDATE heads h SET msg_id = nh.id, ` + pgEndLeaseCols + `,
		waiting = ` + waiting + `, ready_at = ` + ready + `
	FROM m, nh WHERE h.dir = m.dir AND h.chat = m.chat
), gone AS (
	DELETE FROM heads h USING m
	WHERE h.dir = m.dir AND h.chat = m.chat AND NOT EXISTS (SELECT FROM nh)
)
SELECT count(*) FROM m`
}

// pgStaySQL returns the statement that ends the attempt of pending
// message $1 with set, which sets its next_at (Retry, Defer): the chat's
// lease ends if $1 holds it, and its place in the claim order follows the
// head's new times. Same result and locks as pgLeaveSQL.
func pgStaySQL(set string) string {
	waiting, ready := pgReady("hm.created_at", "(CASE WHEN h.msg_id = $1 THEN m.next_at ELSE hm.next_at END)", pgLeaseAfter)
	return `WITH m AS (
	UPDATE messages SET ` + set + `
	WHERE id = $1 AND state = 'pending'
	RETURNING dir, chat, next_at
), moved AS (
	UPDATE heads h SET ` + pgEndLeaseCols + `,
		waiting = ` + waiting + `, ready_at = ` + ready + `
	FROM m, messages hm
	WHERE h.dir = m.dir AND h.chat = m.chat AND hm.id = h.msg_id
)
SELECT count(*) FROM m`
}

// pgReplaySQL makes dead message $1 pending again; it becomes its chat's
// head when it is before the head (or the chat had none), under the
// chat's lease if one is live. Same result and locks as pgLeaveSQL.
func pgReplaySQL() string {
	waiting, ready := pgReady("excluded.ready_at", "0", "h.lease_until")
	return `WITH m AS (
	UPDATE messages SET state = 'pending', attempts = 0, next_at = 0
	WHERE id = $1 AND state = 'dead'
	RETURNING id, dir, chat, created_at
), placed AS (
	INSERT INTO heads AS h (dir, chat, msg_id, waiting, ready_at)
	SELECT dir, chat, id, false, created_at FROM m
	ON CONFLICT (dir, chat) DO UPDATE SET msg_id = excluded.msg_id,
		waiting = ` + waiting + `, ready_at = ` + ready + `
	WHERE excluded.msg_id < h.msg_id
)
SELECT count(*) FROM m`
}

var (
	pgDeliveredSQL = pgLeaveSQL("state = 'delivered', attempts = attempts + 1")
	pgKillSQL      = pgLeaveSQL("state = 'dead', attempts = attempts + 1, last_error = $2")
	pgRetrySQL     = pgStaySQL("attempts = attempts + 1, next_at = $2, last_error = $3, in_doubt = false")
	// The last error is kept when the note is empty.
	pgDeferSQL = pgStaySQL(`next_at = $2, in_doubt = $3,
		last_error = CASE WHEN $4::text = '' THEN last_error ELSE $4::text END`)
	pgReplayMsgSQL = pgReplaySQL()
)

// Statements that change no chat's pending messages, and reads.
const (
	pgDropSQL        = "DELETE FROM messages WHERE id = $1 AND state = 'dead'"
	pgGetSQL         = "SELECT " + pgMsgCols + " FROM messages m WHERE m.id = $1"
	pgFindByKeySQL   = "SELECT " + pgMsgCols + " FROM messages m WHERE m.dir = $1 AND m.dedupe_key = $2 AND m.dedupe_key <> ''"
	pgHeadSQL        = "SELECT " + pgMsgCols + " FROM heads h JOIN messages m ON m.id = h.msg_id WHERE h.dir = $1 AND h.chat = $2"
	pgDeadLettersSQL = "SELECT " + pgMsgCols + " FROM messages m WHERE m.state = 'dead' ORDER BY m.id LIMIT $1"
	// DeliveredSince walks messages_dir_state_created over the span, which
	// is short, rather than index every message by chat.
	pgDeliveredSinceSQL = "SELECT " + pgMsgCols + ` FROM messages m
	WHERE m.dir = $1 AND m.state = 'delivered' AND m.created_at >= $2 AND m.chat = $3
	ORDER BY m.created_at DESC, m.id DESC LIMIT $4`
	pgStatsSQL = `SELECT count(*) FILTER (WHERE state = 'pending'),
		COALESCE(min(created_at) FILTER (WHERE state = 'pending'), 0),
		count(*) FILTER (WHERE state = 'dead')
	FROM messages WHERE dir = $1 AND state IN ('pending', 'dead')`
	pgChatSQL     = "SELECT last_seen, dialog_flags FROM chats WHERE chat = $1"
	pgSetFlagsSQL = `INSERT INTO chats (chat, dialog_flags, flags_at) VALUES ($1, $2, $3)
	ON CONFLICT (chat) DO UPDATE SET dialog_flags = excluded.dialog_flags, flags_at = excluded.flags_at`
	pgPruneMessagesSQL = "DELETE FROM messages WHERE dir = $1 AND state = 'delivered' AND created_at < $2"
	pgPruneChatsSQL    = "DELETE FROM chats WHERE last_seen < $1 AND flags_at < $1"
	pgForgetChatsSQL   = "UPDATE chats SET last_seen = 0 WHERE last_seen <> 0 AND last_seen < $1"
)

// batch runs b, one round trip and one implicit transaction, and read
// reads its results in order. A statement that fails undoes the
// transaction; an error of read's own (ErrNoRows, a scan) fails the call
// but undoes nothing, so the statements are written to change nothing in
// the cases read rejects.
func (s *Postgres) batch(ctx context.Context, b *pgx.Batch, read func(br pgx.BatchResults) error) error {
	br := s.pool.SendBatch(ctx, b)
	err := read(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// claimToken names one claim's (or EnqueueClaim's) leases in
// heads.lease_owner: the store, and the claim's number.
func (s *Postgres) claimToken() string {
	return fmt.Sprintf("%s#%d", s.owner, s.claims.Add(1))
}

// Enqueue implements Store.
func (s *Postgres) Enqueue(ctx context.Context, m *Message) (bool, error) {
	dup, _, err := s.enqueue(ctx, m, 0)
	return dup, err
}

// EnqueueClaim implements Store.
func (s *Postgres) EnqueueClaim(ctx context.Context, m *Message, now time.Time, lease time.Duration) (dup, claimed bool, err error) {
	if err := checkClaim(m.Dir, lease); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	return s.enqueue(ctx, m, nanos(now)+int64(lease))
}

// enqueue writes m and, when leaseUntil is not 0 and m becomes the head of
// an idle chat due at once, leases it until leaseUntil: one round trip.
func (s *Postgres) enqueue(ctx context.Context, m *Message, leaseUntil int64) (dup, claimed bool, err error) {
	const op = "enqueue message"
	if err := checkNew(m); err != nil {
		return false, false, fmt.Errorf("%s: %w", op, err)
	}
	done, err := s.use(ctx)
	if err != nil {
		return false, false, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	created := m.CreatedAt
	if created.IsZero() {
		created = wallNow()
	}
	payload := m.Payload
	if payload == nil {
		payload = []byte{} // the column is NOT NULL
	}
	b := &pgx.Batch{}
	b.Queue(pgLockChatSQL, string(m.Dir), m.Chat)
	b.Queue(pgEnqueueSQL, string(m.Dir), m.Chat, m.DedupeKey, payload, m.Attempts,
		nanos(created), nanos(m.NextAt), m.LastError, leaseUntil, s.claimToken(), int64(touchEvery))
	var id int64
	err = s.batch(ctx, b, func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return err
		}
		err := br.QueryRow().Scan(&id, &claimed)
		if errors.Is(err, pgx.ErrNoRows) {
			dup = true
			return nil
		}
		return err
	})
	if err != nil {
		return false, false, s.fail(op, err)
	}
	if !dup {
		m.ID = id
		m.State = Pending
		m.CreatedAt = created
	}
	return dup, claimed, nil
}

// Claim implements Store: one round trip, see pgClaimSQL.
func (s *Postgres) Claim(ctx context.Context, dir Direction, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	const op = "claim messages"
	if err := checkClaim(dir, lease); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	done, err := s.use(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if limit <= 0 {
		return nil, nil
	}
	until := nanos(now) + int64(lease)
	token := s.claimToken()
	b := &pgx.Batch{}
	b.Queue(pgClaimSQL, string(dir), nanos(now), limit, until, token, pgHeartbeatTTL.Seconds())
	b.Queue(pgClaimedSQL, string(dir), until, token)
	var out []Message
	err = s.batch(ctx, b, func(br pgx.BatchResults) error {
		var n int
		if err := br.QueryRow().Scan(&n); err != nil {
			return err
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, collectPgMessage)
		if err == nil && len(out) != n {
			// The statements disagree: a bug, not a state to work with.
			err = fmt.Errorf("leased %d heads but read %d messages", n, len(out))
		}
		return err
	})
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// pgNoFlushSQL lets the transaction it starts commit without waiting for
// its WAL to reach the disk (synchronous_commit off, for that transaction
// only): the ends of attempts, which Store allows to be undone by a crash
// of the machine, here the database server's. A crash of a gateway undoes
// nothing: the commit is done when the call returns, and visible to every
// replica at once.
const pgNoFlushSQL = "SELECT set_config('synchronous_commit', 'off', true)"

// change runs one of the statements that change pending (or, for Replay,
// dead) message id's chat, under its locks, and reports ErrNotFound when
// the message was not in the state the statement needs. durable false
// commits without waiting for the disk (see pgNoFlushSQL).
func (s *Postgres) change(ctx context.Context, op string, durable bool, query string, args ...any) error {
	done, err := s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	id := args[0]
	b := &pgx.Batch{}
	if !durable {
		b.Queue(pgNoFlushSQL)
	}
	b.Queue(pgLockByMsgSQL, id)
	b.Queue(pgLockHeadSQL, id)
	b.Queue(query, args...)
	var n int
	err = s.batch(ctx, b, func(br pgx.BatchResults) error {
		for range b.Len() - 1 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return br.QueryRow().Scan(&n)
	})
	if err != nil {
		return s.fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// Delivered implements Store.
func (s *Postgres) Delivered(ctx context.Context, id int64) error {
	return s.change(ctx, fmt.Sprintf("mark message %d delivered", id), false, pgDeliveredSQL, id)
}

// Retry implements Store.
func (s *Postgres) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	return s.change(ctx, fmt.Sprintf("retry message %d", id), false, pgRetrySQL, id, nanos(next), lastErr)
}

// Defer implements Store.
func (s *Postgres) Defer(ctx context.Context, id int64, next time.Time, inDoubt bool, note string) error {
	return s.change(ctx, fmt.Sprintf("defer message %d", id), false, pgDeferSQL, id, nanos(next), inDoubt, note)
}

// Kill implements Store.
func (s *Postgres) Kill(ctx context.Context, id int64, lastErr string) error {
	return s.change(ctx, fmt.Sprintf("kill message %d", id), false, pgKillSQL, id, lastErr)
}

// Replay implements Store.
func (s *Postgres) Replay(ctx context.Context, id int64) error {
	return s.change(ctx, fmt.Sprintf("replay message %d", id), true, pgReplayMsgSQL, id)
}

// Drop implements Store.
func (s *Postgres) Drop(ctx context.Context, id int64) error {
	op := fmt.Sprintf("drop message %d", id)
	done, err := s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	tag, err := s.pool.Exec(ctx, pgDropSQL, id)
	if err != nil {
		return s.fail(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// DeadLetters implements Store.
func (s *Postgres) DeadLetters(ctx context.Context, limit int) ([]Message, error) {
	const op = "list dead letters"
	done, err := s.use(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if limit <= 0 {
		return nil, nil
	}
	out, err := s.queryMessages(ctx, pgDeadLettersSQL, limit)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

// DeliveredSince implements Store.
func (s *Postgres) DeliveredSince(ctx context.Context, dir Direction, chat string, since time.Time, limit int) ([]Message, error) {
	const op = "list delivered messages"
	done, err := s.use(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	var lim any // NULL: no limit, as a negative limit means in Memory
	if limit >= 0 {
		lim = limit
	}
	out, err := s.queryMessages(ctx, pgDeliveredSinceSQL, string(dir), nanos(since), chat, lim)
	if err != nil {
		return nil, s.fail(op, err)
	}
	return out, nil
}

func (s *Postgres) queryMessages(ctx context.Context, q string, args ...any) ([]Message, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, collectPgMessage)
}

// Get implements Store.
func (s *Postgres) Get(ctx context.Context, id int64) (Message, error) {
	return s.queryMessage(ctx, fmt.Sprintf("get message %d", id), pgGetSQL, id)
}

// FindByKey implements Store.
func (s *Postgres) FindByKey(ctx context.Context, dir Direction, key string) (Message, error) {
	return s.queryMessage(ctx, "find message by key", pgFindByKeySQL, string(dir), key)
}

// Head implements Heads: the message the chat's heads row names.
func (s *Postgres) Head(ctx context.Context, dir Direction, chat string) (Message, error) {
	return s.queryMessage(ctx, "read the head of a chat", pgHeadSQL, string(dir), chat)
}

// queryMessage runs a query for at most one message: ErrNotFound when it
// finds none.
func (s *Postgres) queryMessage(ctx context.Context, op, query string, args ...any) (Message, error) {
	done, err := s.use(ctx)
	if err != nil {
		return Message{}, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	m, err := scanPgMessage(s.pool.QueryRow(ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if err != nil {
		return Message{}, s.fail(op, err)
	}
	return m, nil
}

// Stats implements Store.
func (s *Postgres) Stats(ctx context.Context, dir Direction) (Stats, error) {
	const op = "stats"
	if err := checkDir(dir); err != nil {
		return Stats{}, fmt.Errorf("%s: %w", op, err)
	}
	done, err := s.use(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	var st Stats
	var oldest int64
	if err := s.pool.QueryRow(ctx, pgStatsSQL, string(dir)).Scan(&st.Pending, &oldest, &st.Dead); err != nil {
		return Stats{}, s.fail(op, err)
	}
	st.OldestPending = fromNanos(oldest)
	return st, nil
}

// Chat implements Store.
func (s *Postgres) Chat(ctx context.Context, chat string) (ChatInfo, error) {
	op := fmt.Sprintf("look up chat %q", chat)
	done, err := s.use(ctx)
	if err != nil {
		return ChatInfo{}, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	var lastSeen, flags int64
	err = s.pool.QueryRow(ctx, pgChatSQL, chat).Scan(&lastSeen, &flags)
	if errors.Is(err, pgx.ErrNoRows) {
		return ChatInfo{}, nil
	}
	if err != nil {
		return ChatInfo{}, s.fail(op, err)
	}
	return ChatInfo{Known: lastSeen != 0, Flags: uint32(flags)}, nil
}

// SetDialogFlags implements Store.
func (s *Postgres) SetDialogFlags(ctx context.Context, chat string, flags uint32) error {
	op := fmt.Sprintf("set dialog flags of chat %q", chat)
	done, err := s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if _, err := s.pool.Exec(ctx, pgSetFlagsSQL, chat, int64(flags), nanos(wallNow())); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// Prune implements Store, in one transaction. Run often (the router's
// retention job), each run deletes little.
func (s *Postgres) Prune(ctx context.Context, cutoff, chatsBefore time.Time) (int, error) {
	const op = "prune"
	done, err := s.use(ctx)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	c, cc := nanos(cutoff), nanos(chatsBefore)
	b := &pgx.Batch{}
	for _, dir := range Directions {
		b.Queue(pgPruneMessagesSQL, string(dir), c)
	}
	b.Queue(pgPruneChatsSQL, cc)
	b.Queue(pgForgetChatsSQL, cc)
	var n int64
	err = s.batch(ctx, b, func(br pgx.BatchResults) error {
		for range Directions {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		for range 2 {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(n), nil
}
