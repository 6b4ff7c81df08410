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
// Claims and the ends of attempts (Delivered, Retry, Kill) are the writes
// not marked durable: the committer commits them with synchronous=NORMAL,
// so they don't wait for an fsync. In WAL mode such a commit survives the
// process crashing; only a power cut (or an OS crash) before the next
// synced commit can undo it. Leases are released when the store is opened,
// so losing a Claim loses nothing; losing the end of an attempt makes the
// message be attempted again, which at-least-once delivery allows. The
// WAL is append-only, so the next synced commit makes their frames
// durable too.

// txn is what a write sees of the shared transaction.
type txn = sqlitedb.Tx

// write runs fn in a committed transaction, through the committer. durable
// is false only for the writes above. Once the committer has taken the
// write, the caller waits for its outcome even if ctx ends, so that a nil
// error always means committed and an error (almost always) means not
// written.
func (s *SQLite) write(ctx context.Context, durable bool, fn func(t *txn) error) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	return s.commits.Write(ctx, durable, fn)
}
