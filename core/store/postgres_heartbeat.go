package store

import (
	"context"
	"time"
)

// A chat's lease is taken for as long as its attempt may last (the
// dispatcher's is attempt_timeout plus 30 s), and renewing it as the
// attempt runs would cost a write per attempt. So when a replica dies,
// its leased chats would wait that long. Instead each open store beats:
// every pgHeartbeatEvery it records that it is alive, by the database's
// clock, and Claim treats the leases of a store not seen for pgHeartbeatTTL
// as run out (see pgClaimSQL): the replica died, or lost the database
// long enough for its own calls to have failed. Such a message is then in
// doubt, as after any lease that ran out.
const (
	pgHeartbeatEvery = 2 * time.Second
	pgHeartbeatTTL   = 10 * time.Second
)

const (
	pgBeatSQL = `INSERT INTO store_heartbeats (owner, seen_at) VALUES ($1, clock_timestamp())
	ON CONFLICT (owner) DO UPDATE SET seen_at = excluded.seen_at`
	// Stores gone for a day hold no lease anyone waits for.
	pgForgetDeadSQL = `DELETE FROM store_heartbeats WHERE seen_at < clock_timestamp() - interval '1 day'`
	pgEndBeatSQL    = `DELETE FROM store_heartbeats WHERE owner = $1`
)

// beat records that the store is alive now.
func (s *Postgres) beat(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, pgBeatSQL, s.owner)
	return err
}

// heartbeat beats every pgHeartbeatEvery until stop is closed. A beat that
// fails is retried at the next tick: Claims meanwhile still run, and a
// store that cannot beat for pgHeartbeatTTL cannot reach the database
// either.
func (s *Postgres) heartbeat(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(pgHeartbeatEvery)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pgHeartbeatEvery)
		_ = s.beat(ctx)
		if n%1800 == 0 { // about hourly
			_, _ = s.pool.Exec(ctx, pgForgetDeadSQL)
		}
		cancel()
	}
}
