package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgAcquireLeaseSQL takes lease $1 for owner $2 until $4 when it is free,
// owned by $2 already, or expired at $3 (the caller's clock, not the
// database's: the replicas' leases are only as good as their clocks'
// agreement anyway, and the callers test with their own). One statement,
// so two replicas racing for a lease cannot both win: the second waits
// for the first's row and then finds it held. It returns no row when the
// lease is held by another owner; else prev_owner, the owner it was taken
// from after it had expired in that owner's hands ("" when it was free or
// renewed).
const pgAcquireLeaseSQL = `INSERT INTO leases AS l (name, owner, expires_at, prev_owner) VALUES ($1, $2, $4, '')
	ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
		prev_owner = CASE WHEN l.owner = excluded.owner THEN '' ELSE l.owner END
	WHERE l.owner = excluded.owner OR l.expires_at <= $3
	RETURNING prev_owner`

const pgReleaseLeaseSQL = "DELETE FROM leases WHERE name = $1 AND owner = $2"

// AcquireLease implements Leaser.
func (s *Postgres) AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (bool, string, error) {
	op := "acquire lease " + name
	if err := checkLease(name, owner, ttl); err != nil {
		return false, "", fmt.Errorf("%s: %w", op, err)
	}
	done, err := s.use(ctx)
	if err != nil {
		return false, "", fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	var prev string
	err = s.pool.QueryRow(ctx, pgAcquireLeaseSQL, name, owner, nanos(now), nanos(now.Add(ttl))).Scan(&prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", nil
	}
	if err != nil {
		return false, "", s.fail(op, err)
	}
	return true, prev, nil
}

// ReleaseLease implements Leaser.
func (s *Postgres) ReleaseLease(ctx context.Context, name, owner string) error {
	op := "release lease " + name
	done, err := s.use(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer done()
	if _, err := s.pool.Exec(ctx, pgReleaseLeaseSQL, name, owner); err != nil {
		return s.fail(op, err)
	}
	return nil
}
