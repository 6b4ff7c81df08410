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

// ErrCorruptCheckpoint marks a checkpoint file that cannot be read back.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint file")

// Checkpoint is a small durable map, kept in one file of the instance's
// DataDir, of how far each of an adapter's streams was handed to the core
// (the last message id per channel, say). Set changes memory only; Flush
// (or FlushEvery) writes the whole map to a new file, syncs it and
// renames it over the old one, so that a crash leaves the old map or the
// new one, never half of one. It is safe for concurrent use.
//
// It keeps at most its bound of keys, the least recently set dropped
// first: a stream quiet for that long is not worth a backfill.
type Checkpoint struct {
	path string

	mu      sync.Mutex
	entries *simplelru.LRU[string, string]
	dirty   bool
	// writing serialises Flush, so that two flushes never write the
	// temporary file at once.
	writing sync.Mutex
}

// checkpointFile is the file's JSON form. Entries are listed oldest set
// first, so that reading them back keeps the bound's order.
type checkpointFile struct {
	Version int         `json:"version"`
	Entries [][2]string `json:"entries"`
}

// OpenCheckpoint reads the checkpoint at path (none there: an empty one),
// keeping at most maxKeys keys (DefaultCheckpointKeys when 0). A file that
// does not parse is an error wrapping ErrCorruptCheckpoint; the caller
// decides whether to start afresh (and backfill nothing) or to stop.
func OpenCheckpoint(path string, maxKeys int) (*Checkpoint, error) {
	if maxKeys <= 0 {
		maxKeys = DefaultCheckpointKeys
	}
	entries, err := simplelru.NewLRU[string, string](maxKeys, nil)
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	c := &Checkpoint{path: path, entries: entries}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return c, nil
	case err != nil:
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 {
		return nil, fmt.Errorf("read checkpoint %s: %w", path, ErrCorruptCheckpoint)
	}
	for _, e := range f.Entries {
		entries.Add(e[0], e[1])
	}
	return c, nil
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
	c.dirty = true
}

// Keys lists the keys, least recently set first.
func (c *Checkpoint) Keys() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries.Keys()
}

// Flush writes the map if it changed since the last Flush.
func (c *Checkpoint) Flush() error {
	c.writing.Lock()
	defer c.writing.Unlock()
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	f := checkpointFile{Version: 1}
	for _, k := range c.entries.Keys() {
		v, _ := c.entries.Peek(k)
		f.Entries = append(f.Entries, [2]string{k, v})
	}
	c.dirty = false
	c.mu.Unlock()
	if err := c.write(f); err != nil {
		c.mu.Lock()
		c.dirty = true // try again next time
		c.mu.Unlock()
		return err
	}
	return nil
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

// FlushEvery flushes every interval until ctx ends, then once more, and
// reports failures to onError (which may be nil). Run it on a goroutine
// of the adapter's run.
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
			report(c.Flush())
			return
		case <-t.C:
			report(c.Flush())
		}
	}
}
