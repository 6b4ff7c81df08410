package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

var _ Store = (*Memory)(nil)

// Memory is an in-process Store: maps and heaps behind one mutex. It keeps
// the whole contract except durability: everything is lost when the
// process exits. Unit tests use it, and so do deployments that opt out of
// durability.
//
// The claim order is a pendingIndex, as in SQLite.
type Memory struct {
	mu     sync.Mutex
	closed bool
	lastID int64

	msgs    map[int64]*Message  // every kept message
	dedupe  map[dedupeKey]int64 // kept messages with a dedupe key
	pending *pendingIndex
	dead    map[int64]struct{}       // dead letters, for DeadLetters
	counts  map[Direction]*memCounts // per-state counts, for Stats
	chats   map[string]*memChat
	leases  map[string]memLease

	// journals are the instances' core.Journals (memory_journal.go), by
	// instance; journalsDone is closed by Close, to end their watchers.
	journals     map[string]*memJournalSet
	journalsDone chan struct{}
}

// dedupeKey is where Memory looks up a DedupeKey: keys are per direction.
type dedupeKey struct {
	dir Direction
	key string
}

// memCounts counts one direction's messages for Stats.
type memCounts struct {
	pending int
	dead    int
}

// memChat is what Memory knows about a chat apart from its messages.
type memChat struct {
	lastSeen time.Time // last ToSelarti CreatedAt; zero: not known
	flags    uint32
	flagsAt  time.Time // when flags were last set
}

// NewMemory returns an empty in-process store.
func NewMemory() *Memory {
	s := &Memory{
		msgs:    make(map[int64]*Message),
		dedupe:  make(map[dedupeKey]int64),
		pending: newPendingIndex(),
		dead:    make(map[int64]struct{}),
		counts:  make(map[Direction]*memCounts),
		chats:   make(map[string]*memChat),
		leases:  make(map[string]memLease),

		journals:     make(map[string]*memJournalSet),
		journalsDone: make(chan struct{}),
	}
	for _, dir := range Directions {
		s.counts[dir] = &memCounts{}
	}
	return s
}

// lock takes the mutex for a call. It returns with the mutex held only when
// the error is nil.
func (s *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Enqueue implements Store.
func (s *Memory) Enqueue(ctx context.Context, m *Message) (bool, error) {
	dup, _, err := s.enqueue(ctx, m, 0)
	return dup, err
}

// EnqueueClaim implements Store.
func (s *Memory) EnqueueClaim(ctx context.Context, m *Message, now time.Time, lease time.Duration) (dup, claimed bool, err error) {
	if err := checkClaim(m.Dir, lease); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	return s.enqueue(ctx, m, nanos(now)+int64(lease))
}

// enqueue writes m and, when leaseUntil is not 0 and m becomes the head of
// an idle chat due at once, leases it until leaseUntil.
func (s *Memory) enqueue(ctx context.Context, m *Message, leaseUntil int64) (dup, claimed bool, err error) {
	if err := checkNew(m); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return false, false, fmt.Errorf("enqueue message: %w", err)
	}
	defer s.mu.Unlock()

	dk := dedupeKey{m.Dir, m.DedupeKey}
	if m.DedupeKey != "" {
		if _, ok := s.dedupe[dk]; ok {
			return true, false, nil
		}
	}
	s.lastID++
	m.ID = s.lastID
	m.State = Pending
	if m.CreatedAt.IsZero() {
		m.CreatedAt = wallNow()
	}
	stored := clone(m)
	s.msgs[m.ID] = &stored
	if m.DedupeKey != "" {
		s.dedupe[dk] = m.ID
	}
	s.counts[m.Dir].pending++
	claimed = s.pending.add(m.ID, m.Dir, m.Chat, nanos(m.CreatedAt), nanos(m.NextAt), leaseUntil)

	if m.Dir == ToSelarti {
		c := s.chat(m.Chat)
		if m.CreatedAt.After(c.lastSeen) {
			c.lastSeen = m.CreatedAt
		}
	}
	return false, claimed, nil
}

// Claim implements Store.
func (s *Memory) Claim(ctx context.Context, dir Direction, now time.Time, lease time.Duration, limit int) ([]Message, error) {
	if err := checkClaim(dir, lease); err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("claim messages: %w", err)
	}
	defer s.mu.Unlock()

	ids, expired := s.pending.claim(dir, nanos(now), nanos(now)+int64(lease), limit)
	for _, l := range expired {
		// Its attempt may have reached the far side (see Store).
		s.msgs[l.id].InDoubt = true
	}
	var out []Message
	for _, id := range ids {
		out = append(out, clone(s.msgs[id]))
	}
	return out, nil
}

// Delivered implements Store.
func (s *Memory) Delivered(ctx context.Context, id int64) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("mark message %d delivered: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Pending {
		return fmt.Errorf("mark message %d delivered: %w", id, ErrNotFound)
	}
	s.leave(m)
	m.State = Delivered
	m.Attempts++ // the one that delivered it
	return nil
}

// Retry implements Store.
func (s *Memory) Retry(ctx context.Context, id int64, next time.Time, lastErr string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("retry message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Pending {
		return fmt.Errorf("retry message %d: %w", id, ErrNotFound)
	}
	m.Attempts++
	m.NextAt = next
	m.LastError = lastErr
	m.InDoubt = false
	s.pending.retry(id, nanos(next))
	return nil
}

// Defer implements Store.
func (s *Memory) Defer(ctx context.Context, id int64, next time.Time, inDoubt bool, note string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("defer message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Pending {
		return fmt.Errorf("defer message %d: %w", id, ErrNotFound)
	}
	m.NextAt = next
	m.InDoubt = inDoubt
	if note != "" {
		m.LastError = note
	}
	s.pending.retry(id, nanos(next))
	return nil
}

// Kill implements Store.
func (s *Memory) Kill(ctx context.Context, id int64, lastErr string) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("kill message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Pending {
		return fmt.Errorf("kill message %d: %w", id, ErrNotFound)
	}
	s.leave(m)
	m.State = Dead
	m.Attempts++
	m.LastError = lastErr
	s.dead[id] = struct{}{}
	s.counts[m.Dir].dead++
	return nil
}

// DeadLetters implements Store.
func (s *Memory) DeadLetters(ctx context.Context, limit int) ([]Message, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer s.mu.Unlock()

	if limit <= 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(s.dead))
	for id := range s.dead {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Message, 0, min(limit, len(ids)))
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, clone(s.msgs[id]))
	}
	return out, nil
}

// DeliveredSince implements Store.
func (s *Memory) DeliveredSince(ctx context.Context, dir Direction, chat string, since time.Time, limit int) ([]Message, error) {
	if err := s.lock(ctx); err != nil {
		return nil, fmt.Errorf("list delivered messages: %w", err)
	}
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if m.Dir == dir && m.Chat == chat && m.State == Delivered && !m.CreatedAt.Before(since) {
			out = append(out, clone(m))
		}
	}
	slices.SortFunc(out, func(a, b Message) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if limit >= 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Get implements Store.
func (s *Memory) Get(ctx context.Context, id int64) (Message, error) {
	if err := s.lock(ctx); err != nil {
		return Message{}, fmt.Errorf("get message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil {
		return Message{}, fmt.Errorf("get message %d: %w", id, ErrNotFound)
	}
	return clone(m), nil
}

// FindByKey implements Store.
func (s *Memory) FindByKey(ctx context.Context, dir Direction, key string) (Message, error) {
	if err := s.lock(ctx); err != nil {
		return Message{}, fmt.Errorf("find message by key: %w", err)
	}
	defer s.mu.Unlock()

	id, ok := s.dedupe[dedupeKey{dir, key}]
	if key == "" || !ok || s.msgs[id] == nil {
		return Message{}, fmt.Errorf("find message by key: %w", ErrNotFound)
	}
	return clone(s.msgs[id]), nil
}

// Replay implements Store.
func (s *Memory) Replay(ctx context.Context, id int64) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("replay message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Dead {
		return fmt.Errorf("replay message %d: %w", id, ErrNotFound)
	}
	delete(s.dead, id)
	s.counts[m.Dir].dead--
	s.counts[m.Dir].pending++
	m.State = Pending
	m.Attempts = 0
	m.NextAt = time.Time{}
	s.pending.add(id, m.Dir, m.Chat, nanos(m.CreatedAt), 0, 0)
	return nil
}

// Drop implements Store.
func (s *Memory) Drop(ctx context.Context, id int64) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("drop message %d: %w", id, err)
	}
	defer s.mu.Unlock()

	m := s.msgs[id]
	if m == nil || m.State != Dead {
		return fmt.Errorf("drop message %d: %w", id, ErrNotFound)
	}
	delete(s.dead, id)
	s.counts[m.Dir].dead--
	s.forget(m)
	return nil
}

// Stats implements Store.
func (s *Memory) Stats(ctx context.Context, dir Direction) (Stats, error) {
	if err := checkDir(dir); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	if err := s.lock(ctx); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer s.mu.Unlock()

	c := s.counts[dir]
	st := Stats{Pending: c.pending, Dead: c.dead}
	// O(pending messages): CreatedAt may be set by the caller, so the
	// oldest is not necessarily a head. Stats is for metrics scrapes, not
	// the hot path.
	for _, p := range s.pending.msgs {
		if p.key.dir != dir {
			continue
		}
		if t := fromNanos(p.created); st.OldestPending.IsZero() || t.Before(st.OldestPending) {
			st.OldestPending = t
		}
	}
	return st, nil
}

// Chat implements Store.
func (s *Memory) Chat(ctx context.Context, chat string) (ChatInfo, error) {
	if err := s.lock(ctx); err != nil {
		return ChatInfo{}, fmt.Errorf("look up chat %q: %w", chat, err)
	}
	defer s.mu.Unlock()

	c := s.chats[chat]
	if c == nil {
		return ChatInfo{}, nil
	}
	return ChatInfo{Known: !c.lastSeen.IsZero(), Flags: c.flags}, nil
}

// SetDialogFlags implements Store.
func (s *Memory) SetDialogFlags(ctx context.Context, chat string, flags uint32) error {
	if err := s.lock(ctx); err != nil {
		return fmt.Errorf("set dialog flags of chat %q: %w", chat, err)
	}
	defer s.mu.Unlock()

	c := s.chat(chat)
	c.flags = flags
	c.flagsAt = wallNow()
	return nil
}

// Prune implements Store.
func (s *Memory) Prune(ctx context.Context, cutoff, chatsBefore time.Time) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	defer s.mu.Unlock()

	n := 0
	for _, m := range s.msgs {
		if m.State == Delivered && m.CreatedAt.Before(cutoff) {
			s.forget(m)
			n++
		}
	}
	for name, c := range s.chats {
		if c.lastSeen.Before(chatsBefore) {
			c.lastSeen = time.Time{}
			if c.flagsAt.Before(chatsBefore) {
				delete(s.chats, name)
			}
		}
	}
	return n, nil
}

// Close implements Store.
func (s *Memory) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		close(s.journalsDone)
	}
	s.closed = true
	// Let the garbage collector have the messages even if the store value
	// is kept.
	s.msgs, s.pending, s.dedupe, s.dead, s.chats = nil, nil, nil, nil, nil
	s.journals = nil
	return nil
}

// leave takes a pending message out of the claim order.
func (s *Memory) leave(m *Message) {
	s.pending.remove(m.ID)
	s.counts[m.Dir].pending--
}

// forget deletes a message that is not pending, with its dedupe key.
func (s *Memory) forget(m *Message) {
	delete(s.msgs, m.ID)
	dk := dedupeKey{m.Dir, m.DedupeKey}
	if m.DedupeKey != "" && s.dedupe[dk] == m.ID {
		delete(s.dedupe, dk)
	}
}

// chat returns the record of chat, creating it.
func (s *Memory) chat(chat string) *memChat {
	c := s.chats[chat]
	if c == nil {
		c = &memChat{}
		s.chats[chat] = c
	}
	return c
}

// clone copies m with its own payload, so that neither the caller nor the
// store sees the other's later changes.
func clone(m *Message) Message {
	c := *m
	c.Payload = bytes.Clone(m.Payload)
	return c
}
