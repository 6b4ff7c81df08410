// Package store is Switchboard's durable outbox: every message accepted
// from a user or from Selarti is written here before it is acknowledged,
// and workers deliver it from here. The Store interface is what the router
// depends on; Memory is an in-process implementation for tests, SQLite the
// embedded default, Postgres the networked store that several replicas
// share: the lease model below is what makes that possible without
// changing the router.
package store

import (
	"context"
	"errors"
	"time"
)

// Direction says which way a message travels.
type Direction string

// Directions.
const (
	// ToSelarti is a user's message on its way to Selarti (the inbound outbox).
	ToSelarti Direction = "to_selarti"
	// ToUser is a Selarti message on its way to a messenger (the outbound outbox).
	ToUser Direction = "to_user"
)

// Directions lists both directions, for loops over stats.
var Directions = []Direction{ToSelarti, ToUser}

// State is where a message is in its life.
type State string

// States.
const (
	Pending   State = "pending"
	Delivered State = "delivered"
	Dead      State = "dead"
)

// Message is one queued message. The store treats Payload as opaque bytes.
type Message struct {
	ID        int64     // assigned by Enqueue; increases with acceptance order
	Dir       Direction // which outbox
	Chat      string    // namespaced chat id; messages of one chat are delivered in ID order
	DedupeKey string    // unique per Dir among kept messages; "" disables dedupe
	Payload   []byte    // the encoded message
	State     State     // set by the store
	Attempts  int       // attempts so far: the failed ones (Retry, Kill) and the one that delivered it; Defer does not count
	CreatedAt time.Time // when Enqueue accepted it
	NextAt    time.Time // not to be attempted before this
	LastError string    // the last attempt's error, for retries and dead letters
	// InDoubt says the last attempt may have reached the far side without
	// its result being recorded: it timed out after the request went out
	// (see Defer), its lease ran out (see Store), or it was in flight when
	// the process died (see OpenSQLite). The router then looks for proof
	// of delivery before it sends the message again.
	InDoubt bool
}

// Stats is a snapshot of one outbox.
type Stats struct {
	Pending       int       // messages waiting (including those being attempted)
	Dead          int       // dead letters
	OldestPending time.Time // CreatedAt of the oldest pending message; zero when none
}

// ChatInfo is what a store knows of one chat apart from its messages.
type ChatInfo struct {
	Known bool   // a user has written from the chat, and Prune has not forgotten it
	Flags uint32 // the dialog flags last stored (0 when none)
}

// ErrNotFound is returned for an id the store does not have (in the state
// the call needs).
var ErrNotFound = errors.New("message not found")

// ErrClosed is returned by every call made after Close.
var ErrClosed = errors.New("store is closed")

// Store is the durable outbox. All methods are safe for concurrent use.
//
// Order: Claim only ever returns the oldest pending message of a chat (its
// head), and never a second message of a chat while one of its messages is
// leased (not even one that Replay put back before a leased head), so
// messages of one chat are attempted one at a time, in ID order, while
// different chats proceed in parallel. A chat whose head waits for a retry
// (NextAt in the future) holds back its later messages: order wins over
// speed, within a chat only.
//
// Leases: Claim leases the heads it returns until now+lease. Delivered,
// Retry, Defer and Kill end the lease. A lease that runs out (its worker
// died) makes the message claimable again: delivery is at least once, and
// the dedupe keys make redelivery harmless where the far side dedupes.
// The message whose lease ran out is marked InDoubt (stored, and set on
// the message Claim returns) when Claim takes its chat again, since the
// attempt may have reached the far side before its worker died; that
// message is the head Claim takes, unless Replay put an older one before
// it. A lease that ends as it should never marks anything. An embedded
// store, owned by one process, releases every lease when it is opened, so
// that a restart after a crash does not wait for them to run out; after a
// crash it marks the heads that were due InDoubt, since any of them may
// have been in flight (only heads are ever leased). A store that several
// processes share (Postgres) keeps the leases in the database: they
// outlive the process that took them, and a replica that died holds its
// chats until its leases run out.
type Store interface {
	// Enqueue records m durably (committed before it returns) as pending,
	// and sets m.ID, m.State and m.CreatedAt (to now when zero); a zero
	// m.NextAt means due at once. If m.DedupeKey is not empty and a message
	// with the same Dir and DedupeKey is kept (in any state), nothing is
	// written and dup is true. A ToSelarti message also records m.Chat as
	// a known chat (see Chat), in the same transaction, written from
	// at m.CreatedAt (see Prune). m.Dir must be one of Directions and
	// m.Chat not empty.
	Enqueue(ctx context.Context, m *Message) (dup bool, err error)

	// EnqueueClaim is Enqueue, and then, when m is due at once (zero
	// NextAt) and its chat had nothing pending in m.Dir (so m is the head
	// and no lease is held), leases m in the same transaction as Claim
	// would, until now+lease, and sets claimed: the caller then owns the
	// attempt and ends the lease with Delivered, Retry or Kill. Otherwise
	// m waits for Claim as after Enqueue. It spares a dispatcher with a
	// free worker a Claim per message for a chat that is idle, which is
	// the usual case, at the price of letting that message go before due
	// heads of other chats that no Claim has taken yet.
	EnqueueClaim(ctx context.Context, m *Message, now time.Time, lease time.Duration) (dup, claimed bool, err error)

	// Claim leases and returns up to limit messages of dir that are due
	// (NextAt <= now), each the head of its chat and not already leased,
	// ordered by ID. When more than limit heads are due, those due the
	// longest go first: a head with a zero NextAt counts as due since its
	// CreatedAt, a retried one since its NextAt, one whose lease ran out
	// since the lease's end. So a chat that backs off cannot starve the
	// others, nor be starved by new chats, and a store can pick the heads
	// from an index on that time without looking at every chat. lease
	// must be positive; a limit <= 0 returns nothing.
	Claim(ctx context.Context, dir Direction, now time.Time, lease time.Duration, limit int) ([]Message, error)

	// Delivered marks a pending message delivered, counting the attempt
	// that delivered it in Attempts. Delivered, Retry, Defer and Kill
	// return ErrNotFound for a message that is not pending (already
	// delivered after a lease ran out and another worker took it, for
	// example). A durable store may commit these three without waiting
	// for the disk: they survive the process crashing, and a power cut
	// may undo them, after which the message is attempted again. That
	// is the at-least-once the leases already give, and it saves a disk
	// flush per delivery.
	Delivered(ctx context.Context, id int64) error
	// Retry records a failed attempt: Attempts+1, NextAt = next, LastError.
	Retry(ctx context.Context, id int64, next time.Time, lastErr string) error
	// Defer ends the lease of a pending message without counting a failed
	// attempt, for a wait that is not the message's fault: its adapter
	// instance is not running, or its last attempt's outcome is unknown
	// and the router waits for proof of delivery. It sets NextAt = next
	// and InDoubt = inDoubt, and LastError = note unless note is empty.
	// Retry clears InDoubt: a failure that was answered proves the message
	// was not taken.
	Defer(ctx context.Context, id int64, next time.Time, inDoubt bool, note string) error
	// Kill moves a pending message to the dead letters with its last error,
	// counting the failed attempt.
	Kill(ctx context.Context, id int64, lastErr string) error

	// DeadLetters lists up to limit dead messages of both directions,
	// oldest (lowest ID) first.
	DeadLetters(ctx context.Context, limit int) ([]Message, error)
	// DeliveredSince returns up to limit delivered messages of chat in dir
	// created at or after since, newest first. The echo reconciliation
	// reads it after a restart, rarely and over a short span.
	DeliveredSince(ctx context.Context, dir Direction, chat string, since time.Time, limit int) ([]Message, error)
	// Get returns one message in any state.
	Get(ctx context.Context, id int64) (Message, error)
	// FindByKey returns the kept message of dir with DedupeKey key, in
	// any state, or ErrNotFound. The router uses it when a user asks to
	// send a dead letter again (core.Inbound.Retry).
	FindByKey(ctx context.Context, dir Direction, key string) (Message, error)
	// Replay makes a dead message pending again, due at once (zero
	// NextAt), with its attempts reset and its LastError kept. It keeps
	// its ID, so it goes back to its place in its chat's order.
	Replay(ctx context.Context, id int64) error
	// Drop deletes a dead message for good. Its dedupe key is forgotten.
	Drop(ctx context.Context, id int64) error

	// Stats reports on one outbox.
	Stats(ctx context.Context, dir Direction) (Stats, error)

	// Chat returns what the store knows of chat: whether a user has
	// written from it (see Enqueue and Prune) and its dialog flags.
	Chat(ctx context.Context, chat string) (ChatInfo, error)
	// SetDialogFlags stores the dialog flags of chat.
	SetDialogFlags(ctx context.Context, chat string, flags uint32) error

	// Prune deletes delivered messages created before messagesBefore
	// (their dedupe keys are forgotten), and known chats not written from
	// since chatsBefore. The dialog flags of a chat go with it, unless they
	// were set since chatsBefore. It returns how many messages it deleted.
	// A store may note the time a chat was written from with up to an
	// hour's lag (SQLite does, to spare a write per message), so a chat
	// may be forgotten up to an hour early: retention is days.
	// Pending messages and dead letters are kept. The two cutoffs differ
	// because an operator may answer a chat long after its messages are
	// no longer worth keeping.
	Prune(ctx context.Context, messagesBefore, chatsBefore time.Time) (int, error)

	// Close releases the store, after the calls in progress return.
	// Calls after Close return ErrClosed; Close itself may be called
	// again and then returns nil.
	Close() error
}

// Leaser is implemented by a store that several gateway replicas share:
// named leases, each held by one owner until it expires, for what must
// run on one replica at a time (an adapter's exclusive inbound connection,
// see core.ExclusiveReceiver). Postgres implements it; a store owned by
// one process (SQLite) does not: that process holds every lease.
type Leaser interface {
	// AcquireLease takes lease name for owner until now+ttl if it is free,
	// expired or already owner's (then it is renewed), and reports whether
	// owner holds it. prev is the owner it was taken from when it had
	// expired in another owner's hands ("" otherwise): a takeover.
	AcquireLease(ctx context.Context, name, owner string, now time.Time, ttl time.Duration) (held bool, prev string, err error)
	// ReleaseLease ends owner's lease on name at once, so that another
	// owner may take it without waiting for it to expire. It does
	// nothing when owner does not hold it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Heads is implemented by a store that several gateway replicas share:
// the chat's head as the store has it, whichever replica has it leased.
// Selarti's echo of a user message comes to any replica, often not the
// one that sent it; that replica looks here for the message the echo
// proves delivered (see the router's settleByEcho).
type Heads interface {
	// Head returns the oldest pending message of chat in dir, leased or
	// not, or ErrNotFound when the chat has none.
	Head(ctx context.Context, dir Direction, chat string) (Message, error)
}
