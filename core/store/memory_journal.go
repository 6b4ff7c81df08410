package store

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// memJournalSet is one instance's journals in a Memory, with the watchers
// of any of its handles.
type memJournalSet struct {
	journals map[string]*memJournal
	watchers map[*memWatcher]struct{}
}

// memJournal is one journal: its head, its kept entries, oldest first,
// and the seqs of those with a key.
type memJournal struct {
	head    core.JournalHead
	entries []core.JournalEntry
	keys    map[string]int64
}

// memWatcher is one Watch call in progress. Append records the newest
// seq of each journal it appended to in pending and signals, without
// waiting for the watcher: a slow fn only makes the notices coalesce.
type memWatcher struct {
	signal chan struct{} // capacity 1: one wake-up covers all pending

	mu      sync.Mutex
	pending map[string]int64
}

// notify records that journal key's last seq is now seq. It never blocks.
func (w *memWatcher) notify(key string, seq int64) {
	w.mu.Lock()
	if seq > w.pending[key] {
		w.pending[key] = seq
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// take returns the pending notices and empties them.
func (w *memWatcher) take() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.pending
	w.pending = make(map[string]int64, len(p))
	return p
}

// memJournals is a handle on one instance's journals in a Memory; every
// handle of the same Memory and instance sees the same journals, as the
// replicas of a shared store do.
type memJournals struct {
	s        *Memory
	instance string
}

var _ core.Journals = memJournals{}

// Journals returns instance's journals (core.Journals). Handles of one
// instance share everything, as two replicas on one shared store do; the
// journals of different instances are separate. They live as long as the
// Memory, under its lock, and fail with ErrClosed once it is closed.
func (s *Memory) Journals(instance string) core.Journals {
	return memJournals{s: s, instance: instance}
}

// set returns the handle's journal set, creating it. Call with the
// Memory's lock held.
func (j memJournals) set() *memJournalSet {
	js := j.s.journals[j.instance]
	if js == nil {
		js = &memJournalSet{journals: make(map[string]*memJournal), watchers: make(map[*memWatcher]struct{})}
		j.s.journals[j.instance] = js
	}
	return js
}

// Head implements core.Journals.
func (j memJournals) Head(ctx context.Context, key string) (core.JournalHead, bool, error) {
	if err := checkJournalText("journal key", key); err != nil {
		return core.JournalHead{}, false, fmt.Errorf("read journal head: %w", err)
	}
	if err := j.s.lock(ctx); err != nil {
		return core.JournalHead{}, false, fmt.Errorf("read journal head: %w", err)
	}
	defer j.s.mu.Unlock()
	jr := j.set().journals[key]
	if jr == nil {
		return core.JournalHead{}, false, nil
	}
	return jr.head, true, nil
}

// Create implements core.Journals.
func (j memJournals) Create(ctx context.Context, key string, h core.JournalHead) (core.JournalHead, error) {
	if err := checkJournalText("journal key", key); err != nil {
		return core.JournalHead{}, fmt.Errorf("create journal: %w", err)
	}
	if err := checkJournalText("journal name", h.Name); err != nil {
		return core.JournalHead{}, fmt.Errorf("create journal: %w", err)
	}
	if err := j.s.lock(ctx); err != nil {
		return core.JournalHead{}, fmt.Errorf("create journal: %w", err)
	}
	defer j.s.mu.Unlock()
	js := j.set()
	jr := js.journals[key]
	if jr == nil {
		jr = newMemJournal(h.Epoch, h.Name, h.LastActive)
		js.journals[key] = jr
	}
	return jr.head, nil
}

func newMemJournal(epoch, name string, at time.Time) *memJournal {
	return &memJournal{
		head: core.JournalHead{Epoch: epoch, Name: name, LastActive: at.Round(0)},
		keys: make(map[string]int64),
	}
}

// Append implements core.Journals.
func (j memJournals) Append(ctx context.Context, key string, e core.JournalEntry, opts core.AppendOptions) (core.JournalAppended, error) {
	if err := checkJournalAppend(key, e, opts); err != nil {
		return core.JournalAppended{}, fmt.Errorf("append to journal: %w", err)
	}
	if err := j.s.lock(ctx); err != nil {
		return core.JournalAppended{}, fmt.Errorf("append to journal: %w", err)
	}
	defer j.s.mu.Unlock()
	js := j.set()
	jr := js.journals[key]
	if jr == nil {
		if opts.Create == nil {
			return core.JournalAppended{Missing: true}, nil
		}
		jr = newMemJournal(opts.Create.Epoch, opts.Create.Name, e.At)
		js.journals[key] = jr
	}
	if e.Key != "" {
		if seq, ok := jr.keys[e.Key]; ok {
			return core.JournalAppended{Seq: seq, Epoch: jr.head.Epoch, Dup: true}, nil
		}
	}
	if e.At.IsZero() {
		e.At = wallNow()
	}
	jr.head.LastSeq++
	e.Seq = jr.head.LastSeq
	e.At = e.At.Round(0)
	e.Data = bytes.Clone(e.Data)
	jr.entries = append(jr.entries, e)
	if e.Key != "" {
		jr.keys[e.Key] = e.Seq
	}
	jr.head.LastActive = e.At
	if opts.Name != "" {
		jr.head.Name = opts.Name
	}
	if opts.Keep > 0 && len(jr.entries) > opts.Keep {
		cut := len(jr.entries) - opts.Keep
		for _, old := range jr.entries[:cut] {
			if old.Key != "" {
				delete(jr.keys, old.Key)
			}
		}
		// A fresh array, so that the trimmed entries' data can go.
		jr.entries = slices.Clone(jr.entries[cut:])
	}
	for w := range js.watchers {
		w.notify(key, e.Seq)
	}
	return core.JournalAppended{Seq: e.Seq, Epoch: jr.head.Epoch}, nil
}

// Entries implements core.Journals.
func (j memJournals) Entries(ctx context.Context, key string, after int64) ([]core.JournalEntry, error) {
	if err := checkJournalText("journal key", key); err != nil {
		return nil, fmt.Errorf("read journal entries: %w", err)
	}
	if err := j.s.lock(ctx); err != nil {
		return nil, fmt.Errorf("read journal entries: %w", err)
	}
	defer j.s.mu.Unlock()
	jr := j.set().journals[key]
	if jr == nil {
		return nil, nil
	}
	i, _ := slices.BinarySearchFunc(jr.entries, after+1, func(e core.JournalEntry, seq int64) int { return cmp.Compare(e.Seq, seq) })
	var out []core.JournalEntry
	for _, e := range jr.entries[i:] {
		e.Data = bytes.Clone(e.Data)
		out = append(out, e)
	}
	return out, nil
}

// Find implements core.Journals.
func (j memJournals) Find(ctx context.Context, key, entryKey string) (int64, bool, error) {
	if err := checkJournalText("journal key", key); err != nil {
		return 0, false, fmt.Errorf("find journal entry: %w", err)
	}
	if err := checkJournalText("entry key", entryKey); err != nil {
		return 0, false, fmt.Errorf("find journal entry: %w", err)
	}
	if err := j.s.lock(ctx); err != nil {
		return 0, false, fmt.Errorf("find journal entry: %w", err)
	}
	defer j.s.mu.Unlock()
	jr := j.set().journals[key]
	if jr == nil || entryKey == "" {
		return 0, false, nil
	}
	seq, ok := jr.keys[entryKey]
	return seq, ok, nil
}

// Idle implements core.Journals.
func (j memJournals) Idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	if err := j.s.lock(ctx); err != nil {
		return nil, fmt.Errorf("find idle journals: %w", err)
	}
	defer j.s.mu.Unlock()
	if limit <= 0 {
		return nil, nil
	}
	type idle struct {
		key string
		at  time.Time
	}
	var found []idle
	for key, jr := range j.set().journals {
		if jr.head.LastActive.Before(cutoff) {
			found = append(found, idle{key, jr.head.LastActive})
		}
	}
	slices.SortFunc(found, func(a, b idle) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.key, b.key)
	})
	out := make([]string, 0, min(limit, len(found)))
	for _, f := range found[:min(limit, len(found))] {
		out = append(out, f.key)
	}
	return out, nil
}

// Touch implements core.Journals.
func (j memJournals) Touch(ctx context.Context, at map[string]time.Time) error {
	for key := range at {
		if err := checkJournalText("journal key", key); err != nil {
			return fmt.Errorf("touch journals: %w", err)
		}
	}
	if err := j.s.lock(ctx); err != nil {
		return fmt.Errorf("touch journals: %w", err)
	}
	defer j.s.mu.Unlock()
	js := j.set()
	for key, when := range at {
		if jr := js.journals[key]; jr != nil && when.After(jr.head.LastActive) {
			jr.head.LastActive = when.Round(0)
		}
	}
	return nil
}

// Delete implements core.Journals.
func (j memJournals) Delete(ctx context.Context, keys []string, cutoff time.Time) error {
	for _, key := range keys {
		if err := checkJournalText("journal key", key); err != nil {
			return fmt.Errorf("delete journals: %w", err)
		}
	}
	if err := j.s.lock(ctx); err != nil {
		return fmt.Errorf("delete journals: %w", err)
	}
	defer j.s.mu.Unlock()
	js := j.set()
	for _, key := range keys {
		if jr := js.journals[key]; jr != nil && jr.head.LastActive.Before(cutoff) {
			delete(js.journals, key)
		}
	}
	return nil
}

// Watch implements core.Journals. Appends through any handle of the
// instance are seen at once; a Watch that is behind gets, per journal, the
// newest seq only. It returns ErrClosed when the Memory is closed.
func (j memJournals) Watch(ctx context.Context, fn func(key string, lastSeq int64)) error {
	if err := j.s.lock(ctx); err != nil {
		return fmt.Errorf("watch journals: %w", err)
	}
	w := &memWatcher{signal: make(chan struct{}, 1), pending: make(map[string]int64)}
	js := j.set()
	js.watchers[w] = struct{}{}
	done := j.s.journalsDone
	j.s.mu.Unlock()
	defer func() {
		j.s.mu.Lock()
		delete(js.watchers, w)
		j.s.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return fmt.Errorf("watch journals: %w", ErrClosed)
		case <-w.signal:
			for key, seq := range w.take() {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fn(key, seq)
			}
		}
	}
}
