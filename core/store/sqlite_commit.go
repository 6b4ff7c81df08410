package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
)

// Group commit. Every write goes through one goroutine, the committer,
// which runs the writes that are waiting together in one transaction, each
// under its own savepoint, and commits them with one fsync. A write returns
// only after the commit that holds it, so durability is that of one commit
// per write; the fsync, which costs far more than the statements, is shared
// by the callers that arrived while the previous commit was syncing. A lone
// caller waits for no one: there is no batching delay.
//
// The committer owns the write connection, so it may also lower
// synchronous for the claims (see writeReq.durable) without any other
// write slipping into that commit. In WAL mode this is safe: the WAL is
// append-only, so the next synced commit makes the claims' frames durable
// too, and a crash before it loses only leases, which opening releases.

// maxBatch bounds the writes in one transaction, and so the time one
// transaction holds the database.
const maxBatch = 128

// Request states: queued until the committer takes it, or abandoned by a
// caller whose context ended first.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// writeReq is one call's write, waiting for the committer.
type writeReq struct {
	fn func(t *txn) error
	// durable is false only for Claim: leases are released when the store
	// is opened, so losing a Claim's commit in a crash loses nothing.
	durable bool
	state   atomic.Int32
	done    chan error // buffered: the committer never blocks on it
}

// txn is what a write sees of the shared transaction: the statements run
// prepared, on the write connection. They run without the caller's
// context: cancelling a statement inside an explicit transaction can roll
// back the whole transaction, other callers' writes included.
type txn struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

func (t *txn) stmt(q string) *sql.Stmt {
	if st := t.stmts[q]; st != nil {
		return t.tx.Stmt(st) // reuses the statement prepared on this connection
	}
	return nil
}

func (t *txn) exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmt(q); st != nil {
		return st.Exec(args...)
	}
	return t.tx.Exec(q, args...)
}

func (t *txn) queryRow(q string, args ...any) *sql.Row {
	if st := t.stmt(q); st != nil {
		return st.QueryRow(args...)
	}
	return t.tx.QueryRow(q, args...)
}

func (t *txn) query(q string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(q); st != nil {
		return st.Query(args...)
	}
	return t.tx.Query(q, args...)
}

// write runs fn in a committed transaction, through the committer. Once
// the committer has taken the write, the caller waits for its outcome
// even if ctx ends, so that a nil error always means committed and an
// error (almost always) means not written.
func (s *SQLite) write(ctx context.Context, durable bool, fn func(t *txn) error) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &writeReq{fn: fn, durable: durable, done: make(chan error, 1)}
	select {
	case s.writes <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		return <-r.done
	}
}

// commitLoop is the committer. It runs until stop is closed.
func (s *SQLite) commitLoop() {
	defer close(s.loopDone)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-s.writes:
			batch = append(batch[:0], r)
		case <-s.stop:
			return
		}
		// Whatever queued up while the last commit was syncing.
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-s.writes:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		s.commit(batch)
	}
}

// commit runs the writes gathered in one go and tells each caller its
// outcome. Claims run first, in a transaction of their own that is not
// synced, so that they don't wait for the other writes' fsync. The writes
// gathered are concurrent calls, so any order between them is correct.
func (s *SQLite) commit(batch []*writeReq) {
	var claims, durable []*writeReq
	for _, r := range batch {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // its caller gave up and returned
		}
		if r.durable {
			durable = append(durable, r)
		} else {
			claims = append(claims, r)
		}
	}
	s.commitPart(claims, false)
	s.commitPart(durable, true)
}

// commitPart runs writes in one transaction and tells each its outcome.
func (s *SQLite) commitPart(live []*writeReq, durable bool) {
	if len(live) == 0 {
		return
	}
	if s.broken != nil {
		for _, r := range live {
			r.done <- s.broken
		}
		return
	}
	errs, err := s.runBatch(live, durable)
	for i, r := range live {
		if errs[i] != nil {
			r.done <- errs[i]
		} else {
			r.done <- err
		}
	}
}

// runBatch runs the writes of one batch in one transaction. errs holds each
// write's own error (its savepoint rolled back); err is the transaction's,
// which applies to the writes without one.
func (s *SQLite) runBatch(live []*writeReq, durable bool) (errs []error, err error) {
	errs = make([]error, len(live))
	ctx := context.Background()
	if !durable {
		if _, err := s.wdb.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			return errs, fmt.Errorf("lower synchronous: %w", err)
		}
		defer func() {
			if _, rerr := s.wdb.ExecContext(ctx, "PRAGMA synchronous = FULL"); rerr != nil {
				// Never commit a durable write without FULL: stop writing.
				s.broken = fmt.Errorf("store needs reopening: restore synchronous=FULL: %w", rerr)
			}
		}()
	}

	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return errs, err
	}
	t := &txn{tx: tx, stmts: s.wstmts}
	if len(live) == 1 {
		// The usual case under light load: no savepoint needed.
		if errs[0] = live[0].fn(t); errs[0] != nil {
			tx.Rollback()
			return errs, nil
		}
		return errs, tx.Commit()
	}
	for i, r := range live {
		if _, err := t.exec("SAVEPOINT w"); err != nil {
			tx.Rollback()
			return errs, err
		}
		if errs[i] = r.fn(t); errs[i] != nil {
			if _, err := t.exec("ROLLBACK TO w"); err != nil {
				tx.Rollback()
				return errs, err
			}
		}
		if _, err := t.exec("RELEASE w"); err != nil {
			tx.Rollback()
			return errs, err
		}
	}
	return errs, tx.Commit()
}
