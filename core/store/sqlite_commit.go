package store

import (
	"context"

	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

// Group commit. Every write goes through the committer (see
// internal/sqlitedb's Committer), which runs the writes that are waiting
// together in one transaction, each under its own savepoint, and commits
// them with one fsync. A write returns only after the commit that holds
// it, so durability is that of one commit per write.
//
// The ends of attempts (Delivered, Retry, Kill) are the writes not marked
// durable: the committer commits them with synchronous=NORMAL, so they
// don't wait for an fsync. In WAL mode such a commit survives the process
// crashing; only a power cut (or an OS crash) before the next synced
// commit can undo it, and then the message is attempted again, which
// at-least-once delivery allows. The WAL is append-only, so the next
// synced commit makes their frames durable too. Claim writes nothing: the
// leases live in the pending index.

// txn is what a write sees of the shared transaction.
type txn = sqlitedb.Tx

// write runs fn in a committed transaction, through the committer. durable
// is false only for the writes above. Once the committer has taken the
// write, the caller waits for its outcome even if ctx ends, so that a nil
// error always means committed and an error (almost always) means not
// written.
func (s *SQLite) write(ctx context.Context, durable bool, fn func(t *txn) error) error {
	return s.writeThen(ctx, durable, fn, nil)
}

// writeThen is write, and then, once fn's changes are committed, changes
// the pending index with then (nil: no change), under its lock. The
// committer runs the then of each commit in order before the next
// transaction starts, so the index follows the table in commit order.
func (s *SQLite) writeThen(ctx context.Context, durable bool, fn func(t *txn) error, then func()) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	var locked func()
	if then != nil {
		locked = func() {
			s.imu.Lock()
			defer s.imu.Unlock()
			then()
		}
	}
	return s.commits.WriteThen(ctx, durable, fn, locked)
}
