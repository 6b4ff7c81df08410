package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The SQLite store keeps the claim order of its pending messages in
// memory (pendingIndex): loaded when it opens, and changed by the
// committer after each commit (see writeThen). Only one other writer can
// change the file: an admin tool beside the gateway (OpenSQLiteShared),
// whose Replay makes a dead letter pending again. SQLite tells such
// commits apart by PRAGMA data_version, which changes, on one connection,
// exactly when another connection has committed. Claim checks it every
// refreshInterval and reloads the index when it moved.

// refreshInterval is how often Claim looks for another process's commits.
const refreshInterval = time.Second

// pendingRow is one pending message as the index needs it.
type pendingRow struct {
	id            int64
	dir           Direction
	chat          string
	created, next int64
}

// querier is a transaction: *sql.Tx, or the committer's Tx.
type querier interface {
	QueryRow(q string, args ...any) *sql.Row
	Query(q string, args ...any) (*sql.Rows, error)
}

// readPending reads the data_version and every pending message, in the
// transaction q, so that the two go together.
func readPending(q querier) (version int64, rows []pendingRow, err error) {
	if err := q.QueryRow(dataVersionSQL).Scan(&version); err != nil {
		return 0, nil, fmt.Errorf("read data_version: %w", err)
	}
	for _, dir := range Directions {
		r, err := q.Query(pendingSQL, dir)
		if err != nil {
			return 0, nil, err
		}
		for r.Next() {
			p := pendingRow{dir: dir}
			if err := r.Scan(&p.id, &p.chat, &p.created, &p.next); err != nil {
				r.Close()
				return 0, nil, err
			}
			rows = append(rows, p)
		}
		if err := r.Close(); err != nil {
			return 0, nil, err
		}
		if err := r.Err(); err != nil {
			return 0, nil, err
		}
	}
	return version, rows, nil
}

// buildPending returns the index of rows. The leases old holds on
// messages still pending are kept: the attempts that hold them are running
// in this process.
func buildPending(rows []pendingRow, old *pendingIndex) *pendingIndex {
	x := newPendingIndex()
	for _, r := range rows {
		x.add(r.id, r.dir, r.chat, r.created, r.next, 0)
	}
	if old == nil {
		return x
	}
	for _, q := range old.queues {
		if q.leaseID != 0 {
			x.setLease(q.leaseID, q.leaseUntil)
		}
	}
	return x
}

// refreshIfDue reloads the pending index if refreshInterval has passed
// since the last look and another process has committed since the load.
func (s *SQLite) refreshIfDue(ctx context.Context) error {
	now := time.Now().UnixNano()
	next := s.nextRefresh.Load()
	if now < next || !s.nextRefresh.CompareAndSwap(next, now+int64(refreshInterval)) {
		return nil
	}
	var rows []pendingRow
	var version int64
	changed := false
	// In the committer: its connection is the one whose data_version
	// counts the others' commits, and the reload then lands between two
	// commits of this process, in order with their index changes.
	err := s.writeThen(ctx, false, func(t *txn) error {
		if err := t.QueryRow(dataVersionSQL).Scan(&version); err != nil {
			return fmt.Errorf("read data_version: %w", err)
		}
		if changed = version != s.dataVersion; !changed {
			return nil
		}
		var err error
		if version, rows, err = readPending(t); err != nil {
			return fmt.Errorf("reload pending messages: %w", err)
		}
		return nil
	}, func() {
		if changed {
			s.dataVersion = version
			s.pending = buildPending(rows, s.pending)
		}
	})
	if err != nil {
		return fmt.Errorf("look for other processes' changes: %w", err)
	}
	return nil
}
