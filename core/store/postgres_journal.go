package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboard-gw/switchboard/core"
)

// The adapters' journals (core.Journals) on PostgreSQL.
//
// Tables. journals holds one row per journal, its head; journal_entries
// the kept entries (pgmigrations/0003_journals.sql). Both are keyed by the
// instance first: an instance's journals are its own.
//
// Locks. Every change of a journal's entries is made under its journals
// row's lock, taken by a statement of its own (SELECT ... FOR UPDATE)
// before the statement that reads last_seq and the entries: in READ
// COMMITTED each statement of a transaction sees what was committed
// before it began, so the second statement sees every entry the journal's
// previous holder of the lock appended. Hence Append gives contiguous
// seqs and finds an entry key appended from another replica a moment
// before; the unique index on the entry keys is the second line. The
// calls that lock several rows (Touch, Delete) lock them in key order, so
// that two of them never wait for each other in a circle (and Append
// locks one row only).
//
// Round trips. Each call is one pgx batch (see Postgres.batch): one round
// trip, one implicit transaction. Append's is up to three statements: the
// create (with AppendOptions.Create: INSERT ... ON CONFLICT DO NOTHING),
// the lock, and one statement that does the rest (pgJournalAppendSQL):
// the duplicate check, the entry, the head, the trimming and the notice
// (pg_notify, sent when the transaction commits; see
// postgres_journal_watch.go).

// pgJournalChannel is the channel of the journals' notices; every
// schema's and instance's append notifies it, and each watcher picks its
// own (pgJournals.noticeTag).
const pgJournalChannel = "switchboard_journals"

// pgJournalRetries bounds how many times Create and Append try again when
// the journal they created is deleted before they read or lock it.
const pgJournalRetries = 5

const (
	pgJournalHeadSQL   = "SELECT epoch, last_seq, last_active, name FROM journals WHERE instance = $1 AND key = $2"
	pgJournalCreateSQL = `INSERT INTO journals (instance, key, epoch, last_active, name) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (instance, key) DO NOTHING`
	pgJournalLockSQL = "SELECT FROM journals WHERE instance = $1 AND key = $2 FOR UPDATE"
	// pgJournalLockKeysSQL locks the rows of journals $2 in key order.
	pgJournalLockKeysSQL = "SELECT FROM journals WHERE instance = $1 AND key = ANY($2) ORDER BY key FOR UPDATE"

	// pgJournalAppendSQL appends entry $3 (its key; '' for none), $4 (at),
	// $5 (data) to journal $2 of instance $1, whose row the transaction
	// has locked; $6 is the new name ('' keeps it), $7 how many entries
	// to keep (0: all), $8 the notice's tag (pgJournals.noticeTag). It
	// returns no row for a missing journal, else the journal's epoch, the
	// entry's seq (the earlier copy's for a duplicate), whether it was a
	// duplicate, and how many notices it sent (1 for an append, 0 for a
	// duplicate).
	//
	// All its parts run on one snapshot, taken after the lock: the new
	// entry is not among those trimmed (seq <= new seq - keep, keep >= 1)
	// and a duplicate's seq is read from the entries the lock's previous
	// holders committed.
	pgJournalAppendSQL = `WITH j AS (
	SELECT epoch, last_seq FROM journals WHERE instance = $1 AND key = $2
), dup AS (
	SELECT seq FROM journal_entries
	WHERE instance = $1 AND key = $2 AND entry_key = $3::text AND $3::text <> ''
), ins AS (
	INSERT INTO journal_entries (instance, key, seq, entry_key, at, data)
	SELECT $1, $2, j.last_seq + 1, $3, $4, $5 FROM j
	WHERE NOT EXISTS (SELECT FROM dup)
	RETURNING seq
), head AS (
	UPDATE journals SET last_seq = ins.seq, last_active = $4,
		name = CASE WHEN $6::text = '' THEN name ELSE $6::text END,
		rev = nextval('journal_revs')
	FROM ins WHERE instance = $1 AND key = $2
	RETURNING last_seq, rev
), trimmed AS (
	DELETE FROM journal_entries e USING ins
	WHERE $7::bigint > 0 AND e.instance = $1 AND e.key = $2 AND e.seq <= ins.seq - $7::bigint
), notice AS MATERIALIZED (
	SELECT pg_notify('` + pgJournalChannel + `', head.last_seq || ' ' || head.rev || ' ' || $8::text || $2::text) FROM head
)
SELECT j.epoch, COALESCE(ins.seq, dup.seq, 0), dup.seq IS NOT NULL, (SELECT count(*) FROM notice)
FROM j LEFT JOIN ins ON true LEFT JOIN dup ON true`

	pgJournalEntriesSQL = `SELECT seq, entry_key, at, data FROM journal_entries
	WHERE instance = $1 AND key = $2 AND seq > $3 ORDER BY seq`
	pgJournalFindSQL = "SELECT seq FROM journal_entries WHERE instance = $1 AND key = $2 AND entry_key = $3"
	// Idle orders ties by the keys' bytes, as Memory does.
	pgJournalIdleSQL = `SELECT key FROM journals WHERE instance = $1 AND last_active < $2
	ORDER BY last_active, key COLLATE "C" LIMIT $3`
	pgJournalTouchSQL = `UPDATE journals j SET last_active = t.at
	FROM unnest($2::text[], $3::bigint[]) AS t(key, at)
	WHERE j.instance = $1 AND j.key = t.key AND t.at > j.last_active`
	// Only those still idle before the cutoff ($3): another replica may
	// have written to one since Idle listed it.
	pgJournalDeleteSQL = "DELETE FROM journals WHERE instance = $1 AND key = ANY($2) AND last_active < $3"
	// pgJournalDeleteEntriesSQL runs after pgJournalDeleteSQL, in a
	// statement of its own: it sees the entries of an append that it
	// waited for, which pgJournalDeleteSQL's snapshot may not.
	pgJournalDeleteEntriesSQL = `DELETE FROM journal_entries e WHERE e.instance = $1 AND e.key = ANY($2)
	AND NOT EXISTS (SELECT FROM journals j WHERE j.instance = $1 AND j.key = e.key)`
)

// pgJournals is one instance's journals in a Postgres store.
type pgJournals struct {
	s        *Postgres
	instance string
}

var _ core.Journals = pgJournals{}

// Journals returns instance's journals (core.Journals), which every
// replica on the same database (and schema) shares. The handle is cheap;
// its calls fail with ErrClosed once the store is closed, and Close ends
// its watchers.
func (s *Postgres) Journals(instance string) core.Journals {
	return pgJournals{s: s, instance: instance}
}

// noticeTag is what the notices of this schema's and instance's appends
// say between their seq and rev and the journal's key: the schema and the
// instance, each with its length in bytes before it, so that no other
// schema's or instance's tag is a prefix of it.
func (j pgJournals) noticeTag() string {
	return strconv.Itoa(len(j.s.schema)) + ":" + j.s.schema + " " + strconv.Itoa(len(j.instance)) + ":" + j.instance + " "
}

// Head implements core.Journals.
func (j pgJournals) Head(ctx context.Context, key string) (core.JournalHead, bool, error) {
	const op = "read journal head"
	if err := checkJournalText("journal key", key); err != nil {
		return core.JournalHead{}, false, fmt.Errorf("%s: %w", op, err)
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return core.JournalHead{}, false, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	h, err := scanJournalHead(j.s.pool.QueryRow(ctx, pgJournalHeadSQL, j.instance, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return core.JournalHead{}, false, nil
	}
	if err != nil {
		return core.JournalHead{}, false, j.s.fail(op, err)
	}
	return h, true, nil
}

func scanJournalHead(r pgx.Row) (core.JournalHead, error) {
	var h core.JournalHead
	var active int64
	if err := r.Scan(&h.Epoch, &h.LastSeq, &active, &h.Name); err != nil {
		return core.JournalHead{}, err
	}
	h.LastActive = fromNanos(active)
	return h, nil
}

// Create implements core.Journals: the insert, and a read of the head in
// a statement of its own, which sees the journal another replica created
// a moment before (an insert that met it did nothing).
func (j pgJournals) Create(ctx context.Context, key string, h core.JournalHead) (core.JournalHead, error) {
	const op = "create journal"
	if err := checkJournalText("journal key", key); err != nil {
		return core.JournalHead{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkJournalText("journal name", h.Name); err != nil {
		return core.JournalHead{}, fmt.Errorf("%s: %w", op, err)
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return core.JournalHead{}, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	for range pgJournalRetries {
		b := &pgx.Batch{}
		b.Queue(pgJournalCreateSQL, j.instance, key, h.Epoch, nanos(h.LastActive), h.Name)
		b.Queue(pgJournalHeadSQL, j.instance, key)
		var got core.JournalHead
		found := false
		err := j.s.batch(ctx, b, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return err
			}
			var err error
			got, err = scanJournalHead(br.QueryRow())
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // deleted since the insert met it: again
			}
			found = err == nil
			return err
		})
		if err != nil {
			return core.JournalHead{}, j.s.fail(op, err)
		}
		if found {
			return got, nil
		}
	}
	return core.JournalHead{}, fmt.Errorf("%s: deleted each of %d times it was created", op, pgJournalRetries)
}

// Append implements core.Journals, in one round trip (see the top of this
// file).
func (j pgJournals) Append(ctx context.Context, key string, e core.JournalEntry, opts core.AppendOptions) (core.JournalAppended, error) {
	const op = "append to journal"
	if err := checkJournalAppend(key, e, opts); err != nil {
		return core.JournalAppended{}, fmt.Errorf("%s: %w", op, err)
	}
	// The instance is in every notice, which NOTIFY bounds (8000 bytes).
	if err := checkJournalText("instance name", j.instance); err != nil {
		return core.JournalAppended{}, fmt.Errorf("%s: %w", op, err)
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return core.JournalAppended{}, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	at := e.At
	if at.IsZero() {
		at = wallNow()
	}
	data := e.Data
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	keep := max(opts.Keep, 0)
	tag := j.noticeTag()
	for range pgJournalRetries {
		b := &pgx.Batch{}
		if c := opts.Create; c != nil {
			b.Queue(pgJournalCreateSQL, j.instance, key, c.Epoch, nanos(at), c.Name)
		}
		b.Queue(pgJournalLockSQL, j.instance, key)
		b.Queue(pgJournalAppendSQL, j.instance, key, e.Key, nanos(at), data, opts.Name, keep, tag)
		var res core.JournalAppended
		found := false
		err := j.s.batch(ctx, b, func(br pgx.BatchResults) error {
			for range b.Len() - 1 {
				if _, err := br.Exec(); err != nil {
					return err
				}
			}
			var notices int
			err := br.QueryRow().Scan(&res.Epoch, &res.Seq, &res.Dup, &notices)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil // missing: nothing was written
			}
			if err == nil && notices != 1 && !res.Dup {
				// A bug, not a state to work with.
				err = fmt.Errorf("appended seq %d with %d notices", res.Seq, notices)
			}
			found = err == nil
			return err
		})
		if err != nil {
			return core.JournalAppended{}, j.s.fail(op, err)
		}
		if found {
			return res, nil
		}
		if opts.Create == nil {
			return core.JournalAppended{Missing: true}, nil
		}
		// Created (or found), then deleted before the lock: again.
	}
	return core.JournalAppended{}, fmt.Errorf("%s: journal deleted each of %d times it was created", op, pgJournalRetries)
}

// Entries implements core.Journals.
func (j pgJournals) Entries(ctx context.Context, key string, after int64) ([]core.JournalEntry, error) {
	const op = "read journal entries"
	if err := checkJournalText("journal key", key); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	rows, err := j.s.pool.Query(ctx, pgJournalEntriesSQL, j.instance, key, after)
	if err != nil {
		return nil, j.s.fail(op, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.JournalEntry, error) {
		var e core.JournalEntry
		var at int64
		err := r.Scan(&e.Seq, &e.Key, &at, &e.Data) // pgx copies bytea into a slice of its own
		e.At = fromNanos(at)
		return e, err
	})
	if err != nil {
		return nil, j.s.fail(op, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// Find implements core.Journals.
func (j pgJournals) Find(ctx context.Context, key, entryKey string) (int64, bool, error) {
	const op = "find journal entry"
	if err := checkJournalText("journal key", key); err != nil {
		return 0, false, fmt.Errorf("%s: %w", op, err)
	}
	if err := checkJournalText("entry key", entryKey); err != nil {
		return 0, false, fmt.Errorf("%s: %w", op, err)
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if entryKey == "" {
		return 0, false, nil
	}
	var seq int64
	err = j.s.pool.QueryRow(ctx, pgJournalFindSQL, j.instance, key, entryKey).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, j.s.fail(op, err)
	}
	return seq, true, nil
}

// Idle implements core.Journals, from the index on (instance, last_active).
func (j pgJournals) Idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	const op = "find idle journals"
	done, err := j.s.use(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if limit <= 0 {
		return nil, nil
	}
	rows, err := j.s.pool.Query(ctx, pgJournalIdleSQL, j.instance, nanos(cutoff), limit)
	if err != nil {
		return nil, j.s.fail(op, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, j.s.fail(op, err)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	return keys, nil
}

// Touch implements core.Journals: the rows locked in key order, then
// moved forward in one statement.
func (j pgJournals) Touch(ctx context.Context, at map[string]time.Time) error {
	const op = "touch journals"
	for key := range at {
		if err := checkJournalText("journal key", key); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if len(at) == 0 {
		return nil
	}
	keys := slices.Sorted(maps.Keys(at))
	times := make([]int64, len(keys))
	for i, k := range keys {
		times[i] = nanos(at[k])
	}
	b := &pgx.Batch{}
	b.Queue(pgJournalLockKeysSQL, j.instance, keys)
	b.Queue(pgJournalTouchSQL, j.instance, keys, times)
	if err := j.s.batch(ctx, b, execAll(b)); err != nil {
		return j.s.fail(op, err)
	}
	return nil
}

// Delete implements core.Journals: the rows locked in key order, then
// deleted, then their entries.
func (j pgJournals) Delete(ctx context.Context, keys []string, cutoff time.Time) error {
	const op = "delete journals"
	for _, key := range keys {
		if err := checkJournalText("journal key", key); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	done, err := j.s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if len(keys) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(pgJournalLockKeysSQL, j.instance, keys)
	b.Queue(pgJournalDeleteSQL, j.instance, keys, nanos(cutoff))
	b.Queue(pgJournalDeleteEntriesSQL, j.instance, keys)
	if err := j.s.batch(ctx, b, execAll(b)); err != nil {
		return j.s.fail(op, err)
	}
	return nil
}

// execAll reads the results of b's statements, none of which returns
// anything the caller needs.
func execAll(b *pgx.Batch) func(pgx.BatchResults) error {
	return func(br pgx.BatchResults) error {
		for range b.Len() {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		return nil
	}
}
