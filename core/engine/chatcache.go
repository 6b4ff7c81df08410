package engine

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/kit/cache"
)

// chatCache keeps what the store knows of the chats active lately, so that
// a webhook needs no read of the store: Selarti sends two per round trip
// (the user's message reported back, then the answer), moments apart, and
// each must know whether the chat is known and what its dialog flags were.
//
// It is written through: the router changes a chat's flags in the store
// first, then here, under the chat's lock (see lock). Only chats the store
// knows are kept, never a miss: a chat becomes known by a user's message,
// at any moment. Entries expire after a while so that what changes in the
// store behind the router's back (Prune forgetting a chat, an admin tool)
// shows within that time. The bound (least recently used go first) keeps
// the memory flat however many chats there are.
type chatCache struct {
	entries *cache.Cache[string, store.ChatInfo]

	seed  maphash.Seed
	locks [chatLockStripes]sync.Mutex
}

const (
	// chatCacheSize bounds the entries, about 190 bytes each
	// (BenchmarkChatCacheMemory): 1.5 MiB full. An entry need only
	// outlive the moments between a round trip's two webhooks, and 8,192
	// hold the chats of the last 4 s at 2,000 round trips a second, each
	// from a chat of its own. Twice as many cost about 2 MB more peak
	// RSS at 100,000 chats (docs/benchmarks.md).
	chatCacheSize = 8192
	// chatCacheTTL is how long an entry is trusted without a read.
	chatCacheTTL = 30 * time.Second
	// chatLockStripes is how many locks the chats share (see lock).
	chatLockStripes = 64
)

func newChatCache(size int, ttl time.Duration) *chatCache {
	return &chatCache{entries: cache.New[string, store.ChatInfo](size, ttl), seed: maphash.MakeSeed()}
}

// get returns the cached info of chat, if it is there and fresh.
func (c *chatCache) get(chat string) (store.ChatInfo, bool) {
	return c.entries.Get(chat)
}

// put caches the info of a known chat; an unknown chat is forgotten.
func (c *chatCache) put(chat string, info store.ChatInfo) {
	if !info.Known {
		c.entries.Remove(chat)
		return
	}
	c.entries.Put(chat, info)
}

// lock serialises the read-compare-write of one chat's flags, so that two
// webhooks of a chat arriving together report one change, not two, while
// webhooks of different chats (mostly) go on in parallel.
func (c *chatCache) lock(chat string) *sync.Mutex {
	return &c.locks[maphash.String(c.seed, chat)%chatLockStripes]
}
