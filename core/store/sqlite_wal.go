package store

import (
	"context"
	"fmt"
)

// Checkpointer is implemented by a store whose file keeps a write-ahead
// log that the gateway should shrink now and then (SQLite). The gateway
// calls it after each Prune.
type Checkpointer interface {
	// Checkpoint copies the log into the database and gives its space
	// back to the filesystem. A failure loses nothing.
	Checkpoint(ctx context.Context) error
}

var _ Checkpointer = (*SQLite)(nil)

// Checkpoint implements Checkpointer: it copies the WAL into the database
// file and truncates the WAL to nothing (see sqlitedb.Committer.
// Checkpoint), between two commits. Prune frees pages inside the database
// file, which later writes reuse; the WAL, which SQLite itself only cuts
// back to journal_size_limit, is what would otherwise keep the room a
// burst made it take, on a small disk the room that pruning freed.
func (s *SQLite) Checkpoint(ctx context.Context) error {
	done, err := s.use()
	if err != nil {
		return err
	}
	defer done()
	if err := s.commits.Checkpoint(ctx); err != nil {
		return fmt.Errorf("checkpoint store %s: %w", s.path, err)
	}
	return nil
}
