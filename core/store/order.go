package store

import (
	"errors"
	"fmt"
	"time"
)

// This file holds what Memory and SQLite share: the claim order of chats
// and the conversions between time.Time and the unix nanoseconds both keep.

// readiness places a chat in the claim order, from its head's times and the
// chat's lease (0 when none). A chat is either fresh (its head has a zero
// NextAt and nothing is leased: due whatever now is, ranked by CreatedAt) or
// waiting (due once readyAt <= now: the head's NextAt, or the end of a lease).
// Claim takes the smallest readyAt first from both kinds, so it needs two
// ordered indexes and never a scan over every chat; see Store.Claim for why
// "due the longest" is the rule.
func readiness(createdAt, nextAt, leaseUntil int64) (waiting bool, readyAt int64) {
	switch {
	case leaseUntil != 0:
		// A lease ends the chat's turn until it runs out. A head leased by
		// Claim was due, so NextAt is in the past; max keeps a later NextAt
		// anyway, for a Replay that put a new head before a leased one.
		return true, max(leaseUntil, nextAt)
	case nextAt != 0:
		return true, nextAt
	default:
		return false, createdAt
	}
}

// nanos converts t for storage; the zero time is 0, so that a zero NextAt
// survives a round trip.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanos is the inverse of nanos.
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// wallNow is time.Now without the monotonic reading, so that a CreatedAt
// the store sets compares equal after a round trip through storage.
func wallNow() time.Time {
	return time.Now().Round(0)
}

// checkDir rejects a direction other than ToSelarti and ToUser: a typo there
// would otherwise create an outbox nobody claims from.
func checkDir(dir Direction) error {
	if dir != ToSelarti && dir != ToUser {
		return fmt.Errorf("unknown direction %q", dir)
	}
	return nil
}

// checkNew validates a message given to Enqueue.
func checkNew(m *Message) error {
	if err := checkDir(m.Dir); err != nil {
		return err
	}
	if m.Chat == "" {
		return errors.New("empty chat")
	}
	return nil
}

// checkClaim validates Claim's arguments.
func checkClaim(dir Direction, lease time.Duration) error {
	if err := checkDir(dir); err != nil {
		return err
	}
	if lease <= 0 {
		return fmt.Errorf("lease %v is not positive", lease)
	}
	return nil
}
