package telegram

import (
	"container/list"
	"sync"
	"time"
)

// memory is a bounded map with least-recently-used eviction and an
// optional time to live. The adapter keeps small per-chat facts in memory
// (blocked chats, the message to reply to in a group, progress of a split
// message); the bound keeps a bot with millions of chats from growing
// without limit, at the price of forgetting the oldest facts, which only
// costs an extra request to Telegram later. Safe for concurrent use.
type memory[K comparable, V any] struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration // 0: entries do not expire
	now   func() time.Time
	items map[K]*list.Element
	order *list.List // front: most recently used
}

type memEntry[K comparable, V any] struct {
	key K
	val V
	at  time.Time
}

func newMemory[K comparable, V any](max int, ttl time.Duration) *memory[K, V] {
	return &memory[K, V]{max: max, ttl: ttl, now: time.Now, items: make(map[K]*list.Element), order: list.New()}
}

// get returns the value for k, if present and not expired.
func (m *memory[K, V]) get(k K) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var zero V
	el, ok := m.items[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*memEntry[K, V])
	if m.ttl > 0 && m.now().Sub(e.at) > m.ttl {
		m.removeLocked(el)
		return zero, false
	}
	m.order.MoveToFront(el)
	return e.val, true
}

// has reports whether k is present and not expired.
func (m *memory[K, V]) has(k K) bool {
	_, ok := m.get(k)
	return ok
}

// put sets k to v, evicting the least recently used entry when full.
func (m *memory[K, V]) put(k K, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[k]; ok {
		e := el.Value.(*memEntry[K, V])
		e.val, e.at = v, m.now()
		m.order.MoveToFront(el)
		return
	}
	m.items[k] = m.order.PushFront(&memEntry[K, V]{key: k, val: v, at: m.now()})
	for m.order.Len() > m.max {
		m.removeLocked(m.order.Back())
	}
}

// remove deletes k.
func (m *memory[K, V]) remove(k K) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[k]; ok {
		m.removeLocked(el)
	}
}

// len returns the number of entries, expired ones included.
func (m *memory[K, V]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

func (m *memory[K, V]) removeLocked(el *list.Element) {
	delete(m.items, el.Value.(*memEntry[K, V]).key)
	m.order.Remove(el)
}
