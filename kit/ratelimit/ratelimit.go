// Package ratelimit paces an adapter's sends (or a client's messages) per
// key (a chat, a channel, a session) and overall, on golang.org/x/time/rate
// token buckets.
//
// Networks limit bots per chat and per bot: Telegram about one message a
// second per private chat, twenty a minute per group and thirty a second
// in all; Slack about one a second per channel. Going over earns 429s
// whose retry_after can hold the whole bot for minutes, so waiting here is
// much cheaper than being told off.
//
// Memory is bounded without sweeps: at most Options.Keys per-key buckets
// are kept, the least recently used forgotten first (O(1), golang-lru's
// simplelru). A forgotten bucket comes back full, which is what an idle
// key's bucket is anyway; a key can only get more than its rate if more
// than Keys other keys were used since its last message and before its
// bucket refilled.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// DefaultKeys is how many per-key buckets are kept when Options.Keys is 0.
const DefaultKeys = 10000

// Options configure a Limiter.
type Options[K comparable] struct {
	// Keys bounds the per-key buckets kept (DefaultKeys when 0).
	Keys int
	// PerKey returns a key's rate and burst. It is called once when a key
	// is first seen (and again after it was forgotten), so it may tell
	// kinds of keys apart (a group chat from a private one). Nil: no
	// per-key limit.
	PerKey func(key K) (rate.Limit, int)
	// Global and GlobalBurst limit all keys together; Global 0 means no
	// overall limit.
	Global      rate.Limit
	GlobalBurst int
}

// Limiter is a set of per-key token buckets plus an optional overall one.
// It is safe for concurrent use.
type Limiter[K comparable] struct {
	perKey func(K) (rate.Limit, int)
	global *bucket

	mu   sync.Mutex
	keys *simplelru.LRU[K, *bucket]
}

// bucket is one token bucket and the tokens given back to it by Refund.
// x/time/rate cannot add tokens (a Reservation's Cancel gives back
// nothing once its time has passed, which it has by the time a send is
// known to have failed), so they are kept beside it: credit, spent when
// the bucket itself is empty, and never more than the bucket lacks, so
// that the two together hold at most the burst, as a bucket with the
// tokens put back would. Limiter.mu guards credit.
type bucket struct {
	lim    *rate.Limiter
	credit int
}

// room is how many whole tokens the bucket lacks at now, rounded up (a
// bucket that has refilled a sliver since it was emptied still takes a
// token back).
func (b *bucket) room(now time.Time) int {
	return max(0, int(math.Ceil(float64(b.lim.Burst())-b.lim.TokensAt(now))))
}

// clamp drops the credit that the bucket's refill has made up for since.
func (b *bucket) clamp(now time.Time) {
	b.credit = min(b.credit, b.room(now))
}

// New returns a Limiter. It panics on a negative Options.Keys, which is a
// programming error.
func New[K comparable](o Options[K]) *Limiter[K] {
	n := o.Keys
	if n == 0 {
		n = DefaultKeys
	}
	keys, err := simplelru.NewLRU[K, *bucket](n, nil)
	if err != nil {
		panic("ratelimit: " + err.Error())
	}
	l := &Limiter[K]{perKey: o.PerKey, keys: keys}
	if o.Global > 0 {
		l.global = &bucket{lim: rate.NewLimiter(o.Global, max(1, o.GlobalBurst))}
	}
	return l
}

// PerMinute is a rate of n events a minute, in bursts of up to n: how
// people state limits ("30 messages a minute").
func PerMinute(n int) (rate.Limit, int) {
	return rate.Every(time.Minute / time.Duration(max(n, 1))), max(n, 1)
}

// Wait blocks until one event for key is allowed by the key's bucket and
// then by the overall one, or until ctx is done. The key's own bucket is
// waited for first, so that a busy key does not hold overall tokens while
// it waits for its own.
func (l *Limiter[K]) Wait(ctx context.Context, key K) error {
	if b := l.bucket(key); b != nil && !l.spendCredit(b) {
		if err := b.lim.Wait(ctx); err != nil {
			return fmt.Errorf("wait for the chat's send limit: %w", err)
		}
	}
	if l.global != nil && !l.spendCredit(l.global) {
		if err := l.global.lim.Wait(ctx); err != nil {
			return fmt.Errorf("wait for the overall send limit: %w", err)
		}
	}
	return nil
}

// spendCredit takes one refunded token from b when the bucket itself
// has none.
func (l *Limiter[K]) spendCredit(b *bucket) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	b.clamp(now)
	if b.credit > 0 && b.lim.TokensAt(now) < 1 {
		b.credit--
		return true
	}
	return false
}

// Allow reports whether one event for key is allowed now, and takes its
// tokens if so. When it refuses, it takes nothing from either bucket.
func (l *Limiter[K]) Allow(key K) bool {
	now := time.Now()
	b := l.bucket(key)
	l.mu.Lock()
	defer l.mu.Unlock()
	undo, ok := take(b, now)
	if !ok {
		return false
	}
	if _, ok := take(l.global, now); !ok {
		undo()
		return false
	}
	return true
}

// take takes one token from b (nil: no limit), or refunded credit when b
// is empty, and returns how to put it back at once. The caller holds
// Limiter.mu.
func take(b *bucket, now time.Time) (undo func(), ok bool) {
	if b == nil {
		return func() {}, true
	}
	b.clamp(now)
	r := b.lim.ReserveN(now, 1)
	if r.OK() && r.DelayFrom(now) <= 0 {
		return func() { r.CancelAt(now) }, true
	}
	r.CancelAt(now)
	if b.credit > 0 {
		b.credit--
		return func() { b.credit++ }, true
	}
	return nil, false
}

// Refund gives back the tokens of one event that Allow (or Wait) let
// through for key but that did not happen, such as a message the core
// could not accept: a key is charged only for what it got. A bucket never
// holds more than its burst, refunds included; a bucket forgotten since
// comes back full anyway.
func (l *Limiter[K]) Refund(key K) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perKey != nil {
		if b, ok := l.keys.Peek(key); ok {
			refund(b, now)
		}
	}
	if l.global != nil {
		refund(l.global, now)
	}
}

func refund(b *bucket, now time.Time) {
	b.clamp(now)
	if b.credit < b.room(now) {
		b.credit++
	}
}

// Len returns how many per-key buckets are kept.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.keys.Len()
}

// bucket returns key's bucket, making it when the key is new; nil when
// there is no per-key limit.
func (l *Limiter[K]) bucket(key K) *bucket {
	if l.perKey == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.keys.Get(key); ok {
		return b
	}
	r, burst := l.perKey(key)
	b := &bucket{lim: rate.NewLimiter(r, max(1, burst))}
	l.keys.Add(key, b)
	return b
}
