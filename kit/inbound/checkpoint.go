package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// DefaultCheckpointKeys bounds a Checkpoint's keys when 0 is asked for.
const DefaultCheckpointKeys = 10000

// ErrCorruptCheckpoint marks a checkpoint (a file, or an entry of the
// shared store) that cannot be read back.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// finalFlushTimeout bounds FlushEvery's last flush, which runs after its
// ctx ended.
const finalFlushTimeout = 10 * time.Second

// Checkpoint is a small durable map of how far each of an adapter's
// streams was handed to the core (the last message id per channel, say).
// It is kept in one of two places, and the adapter uses it the same way
// in both:
//
//   - a file in the instance's DataDir (OpenCheckpoint), when the gateway
//     runs alone on its embedded store: only this process writes it;
//   - the gateway's shared store (OpenJournalCheckpoint on
//     Instance.Journals), when several replicas share one: the replica
//     that takes the instance's receiving over (core.ExclusiveReceiver)
//     goes on from where the last one got to.
//
// Set changes memory only; Flush (or FlushEvery) writes the whole map, so
// that a crash leaves the old map or the new one, never half of one.
// Refresh reads in what other replicas wrote since (the shared store
// only; a file has no other writer). It is safe for concurrent use.
//
// It keeps at most its bound of keys, the least recently set dropped
// first: a stream quiet for that long is not worth a backfill.
//
// In the shared store several replicas may write one checkpoint: the one
// receiving now, and one that lost its lease and flushes late. Whatever
// was read or flushed is merged key by key (see mergeValue), so that a
// flush never moves a stream back: a value that is a decimal number
// (Discord's snowflake message ids, a sequence number, Slack's ts
// "1700000000.123456") is a position, and the larger one wins; for any
// other value, the one this replica set since its last flush wins, else
// the store's.
type Checkpoint struct {
	path    string          // the file; "" in the shared store
	journal *journalBackend // the shared store; nil for a file
	max     int

	mu      sync.Mutex
	entries *simplelru.LRU[string, string]
	dirty   bool
	// changed are the keys Set since the last flush: in the shared store
	// they are this replica's news, which win a merge of unordered values.
	changed map[string]bool
	// writing serialises Flush, so that two flushes never write at once
	// (the file's temporary file; the store's read-merge-append).
	writing sync.Mutex
}

// checkpointFile is the JSON form of the map, in the file and in each
// journal entry. Entries are listed oldest set first, so that reading
// them back keeps the bound's order.
type checkpointFile struct {
	Version int         `json:"version"`
	Entries [][2]string `json:"entries"`
}

func newCheckpoint(maxKeys int) (*Checkpoint, error) {
	if maxKeys <= 0 {
		maxKeys = DefaultCheckpointKeys
	}
	entries, err := simplelru.NewLRU[string, string](maxKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	return &Checkpoint{entries: entries, max: maxKeys, changed: map[string]bool{}}, nil
}

// OpenCheckpoint reads the checkpoint at path (none there: an empty one),
// keeping at most maxKeys keys (DefaultCheckpointKeys when 0). A file that
// does not parse is an error wrapping ErrCorruptCheckpoint; the caller
// decides whether to start afresh (and backfill nothing) or to stop.
func OpenCheckpoint(path string, maxKeys int) (*Checkpoint, error) {
	c, err := newCheckpoint(maxKeys)
	if err != nil {
		return nil, err
	}
	c.path = path
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	f, err := decodeCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, err)
	}
	for _, e := range f {
		c.entries.Add(e[0], e[1])
	}
	return c, nil
}

func decodeCheckpoint(b []byte) ([][2]string, error) {
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return nil, ErrCorruptCheckpoint
	}
	return f.Entries, nil
}

// Get returns key's position, if it has one.
func (c *Checkpoint) Get(key string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Peek(key)
}

// Set records key's position, in memory until the next Flush. Set it only
// once the core has accepted everything up to that position.
func (c *Checkpoint) Set(key, value string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries.Peek(key); ok && old == value {
		c.entries.Get(key) // still recently used
		return
	}
	c.entries.Add(key, value)
	c.changed[key] = true
	c.dirty = true
}

// Keys lists the keys, least recently set first.
func (c *Checkpoint) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Keys()
}

// listLocked returns the map, oldest set first. Call with mu held.
func (c *Checkpoint) listLocked() [][2]string {
	out := make([][2]string, 0, c.entries.Len())
	for _, k := range c.entries.Keys() {
		v, _ := c.entries.Peek(k)
		out = append(out, [2]string{k, v})
	}
	return out
}

// Flush writes the map if it changed since the last Flush. In the shared
// store it first merges what other replicas wrote (see Checkpoint), and
// memory then holds the merged map. ctx bounds the shared store's
// requests; a file's write is not cancelled.
func (c *Checkpoint) Flush(ctx context.Context) error {
	c.writing.Lock()
	defer c.writing.Unlock()
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	list := c.listLocked()
	changed := c.changed
	c.dirty, c.changed = false, map[string]bool{}
	c.mu.Unlock()
	var err error
	if c.journal != nil {
		err = c.flushJournal(ctx, list, changed)
	} else {
		err = c.write(checkpointFile{Version: 1, Entries: list})
	}
	if err != nil {
		c.mu.Lock()
		c.dirty = true // try again next time
		for k := range changed {
			c.changed[k] = true
		}
		c.mu.Unlock()
		return err
	}
	return nil
}

// Refresh merges into memory what other replicas flushed to the shared
// store since this one last read it, as Flush does but without writing:
// call it before a backfill that follows another replica's receiving.
// For a checkpoint in a file, which only this process writes, it does
// nothing.
func (c *Checkpoint) Refresh(ctx context.Context) error {
	if c.journal == nil {
		return nil
	}
	c.writing.Lock() // not while a flush is between its read and its append
	defer c.writing.Unlock()
	stored, err := c.journal.load(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaceLocked(merge(stored, c.listLocked(), c.changed, c.max))
	return nil
}

// replaceLocked makes list (oldest set first) the map. Call with mu held.
func (c *Checkpoint) replaceLocked(list [][2]string) {
	c.entries.Purge()
	for _, e := range list {
		c.entries.Add(e[0], e[1])
	}
}

func (c *Checkpoint) write(f checkpointFile) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	dir := filepath.Dir(c.path)
	tmp, err := os.CreateTemp(dir, filepath.Base(c.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), c.path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	// The rename itself is durable only once the directory is synced.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// FlushEvery flushes every interval until ctx ends, then once more (with
// a context of its own, bounded by 10 s), and reports failures to onError
// (which may be nil). Run it on a goroutine of the adapter's run.
func (c *Checkpoint) FlushEvery(ctx context.Context, every time.Duration, onError func(error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	report := func(err error) {
		if err != nil && onError != nil {
			onError(err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalFlushTimeout)
			report(c.Flush(fctx))
			cancel()
			return
		case <-t.C:
			report(c.Flush(ctx))
		}
	}
}
