// Package cache is a bounded map with least-recently-used eviction and
// an optional time to live: what the engine's chat cache and the
// adapters' per-chat facts (blocked chats, split-message progress) all
// need. The eviction is hashicorp/golang-lru's (its simplelru, under one
// mutex here, so that an expired entry is dropped without racing a Put
// of the same key).
package cache

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Cache holds at most size entries; past that, a Put evicts the least
// recently used one. An entry older than the time to live is gone. Safe
// for concurrent use.
type Cache[K comparable, V any] struct {
	mu      sync.Mutex
	entries *simplelru.LRU[K, entry[V]]
	ttl     time.Duration
	now     func() time.Time
}

type entry[V any] struct {
	val V
	at  time.Time // when it was put
}

// New returns an empty cache of at most size entries (size must be
// positive: a programming error otherwise) whose entries live for ttl
// after their Put, or for ever when ttl is 0.
func New[K comparable, V any](size int, ttl time.Duration) *Cache[K, V] {
	entries, err := simplelru.NewLRU[K, entry[V]](size, nil)
	if err != nil {
		panic("cache: " + err.Error())
	}
	return &Cache[K, V]{entries: entries, ttl: ttl, now: time.Now}
}

// SetClock replaces time.Now, for tests.
func (c *Cache[K, V]) SetClock(now func() time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// Get returns the value of k if it is there and not expired, and marks it
// recently used. An expired entry is dropped.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	e, ok := c.entries.Get(k)
	if !ok {
		return zero, false
	}
	if c.ttl > 0 && !c.now().Before(e.at.Add(c.ttl)) {
		c.entries.Remove(k)
		return zero, false
	}
	return e.val, true
}

// Has reports whether k is there and not expired, as Get does.
func (c *Cache[K, V]) Has(k K) bool {
	_, ok := c.Get(k)
	return ok
}

// Put sets k to v, with a new time to live, evicting the least recently
// used entry when the cache is full.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Add(k, entry[V]{val: v, at: c.now()})
}

// Remove deletes k.
func (c *Cache[K, V]) Remove(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries.Remove(k)
}

// Len returns the number of entries, expired ones not yet dropped
// included.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Len()
}
