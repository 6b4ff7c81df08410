package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// A checkpoint in the shared store is one journal (core.Journals) of the
// instance, created by the first flush. Each flush appends the whole map
// as one entry, in the file's JSON form, and the journal keeps the newest
// journalKeep entries; reading it joins the entries it keeps (merge, in
// seq order).
//
// Why a flush reads, merges and appends, and why more than one entry is
// kept: two replicas may flush one checkpoint at once (the one that
// receives now, and one that lost its lease and flushes what it handed
// over last). Were each flush to append just its own map, the later
// append would undo the earlier one's positions; so a flush first reads
// what is stored and merges its own map into it, and the merge never
// moves a position back (see mergeValue). That alone is not enough: the
// store has no compare-and-swap, so two flushes can both read before
// either appends, and with only the newest entry kept the second append
// would drop the first one's positions, which it never saw (A reads s, B
// reads s, B appends s+1, A appends s+2 = s merged with A: B's news are
// lost). Keeping the newest journalKeep entries and joining them on every
// read closes that: an entry E (seq e) is trimmed only once e+journalKeep
// is appended, and among the journalKeep appends after it at least one
// was read after E was stored, as long as at most journalKeep writers
// flush at once, each one flush at a time (Flush is serialised per
// Checkpoint, and an instance has one Checkpoint per replica). The
// store's appends to one journal commit in seq order, so a writer's
// second flush, which reads after its first committed, sees every entry
// before that one: E's positions live on in a kept entry. At worst, past
// that bound, a position moves back to what an older entry held, which
// repeats deliveries (the core drops them by Inbound.ID) and loses none.
const journalKeep = 4

// journalEpoch is the epoch of a checkpoint's journal: its format.
const journalEpoch = "checkpoint/1"

// maxJournalData is core.Journals' limit on an entry's data. A map over
// it (more than about 10,000 long keys) is written without its least
// recently set keys.
const maxJournalData = 1 << 20

type journalBackend struct {
	j   core.Journals
	key string
}

// OpenJournalCheckpoint opens the checkpoint kept in the shared store as
// journal key of j (an instance's Instance.Journals), reading the map as
// the replicas last flushed it (none there: an empty one, the journal
// created by the first Flush), keeping at most maxKeys keys
// (DefaultCheckpointKeys when 0). It returns the same Checkpoint as
// OpenCheckpoint: Get, Set, Flush and FlushEvery work alike; Refresh
// reads in what other replicas flushed since. An entry that does not
// parse is an error wrapping ErrCorruptCheckpoint.
func OpenJournalCheckpoint(ctx context.Context, j core.Journals, key string, maxKeys int) (*Checkpoint, error) {
	if j == nil {
		return nil, fmt.Errorf("open checkpoint %s: no journals", key)
	}
	c, err := newCheckpoint(maxKeys)
	if err != nil {
		return nil, err
	}
	c.journal = &journalBackend{j: j, key: key}
	stored, err := c.journal.load(ctx)
	if err != nil {
		return nil, err
	}
	c.replaceLocked(stored)
	return c, nil
}

// load reads the stored map: the join of the journal's kept entries.
func (b *journalBackend) load(ctx context.Context) ([][2]string, error) {
	entries, err := b.j.Entries(ctx, b.key, 0)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", b.key, err)
	}
	var acc [][2]string
	for _, e := range entries {
		list, err := decodeCheckpoint(e.Data)
		if err != nil {
			return nil, fmt.Errorf("read checkpoint %s, entry %d: %w", b.key, e.Seq, err)
		}
		acc = merge(acc, list, nil, 0)
	}
	return acc, nil
}

// flushJournal merges list (this replica's map, of which changed were
// Set since the last flush) into what is stored, appends the result, and
// makes it the map in memory, with what was Set meanwhile. Call with
// writing held.
func (c *Checkpoint) flushJournal(ctx context.Context, list [][2]string, changed map[string]bool) error {
	b := c.journal
	stored, err := b.load(ctx)
	if err != nil {
		return err
	}
	merged := merge(stored, list, changed, c.max)
	data, merged, err := encodeBounded(merged)
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", b.key, err)
	}
	now := time.Now()
	_, err = b.j.Append(ctx, b.key, core.JournalEntry{At: now, Data: data}, core.AppendOptions{
		Create: &core.JournalHead{Epoch: journalEpoch, Name: "checkpoint", LastActive: now},
		Keep:   journalKeep,
	})
	if err != nil {
		return fmt.Errorf("write checkpoint %s: %w", b.key, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replaceLocked(merge(merged, c.listLocked(), c.changed, c.max))
	return nil
}

// encodeBounded encodes list, without as many of its oldest keys as it
// takes to stay within maxJournalData, and returns what it kept.
func encodeBounded(list [][2]string) ([]byte, [][2]string, error) {
	for {
		data, err := json.Marshal(checkpointFile{Version: 1, Entries: list})
		if err != nil || len(data) <= maxJournalData || len(list) == 0 {
			return data, list, err
		}
		list = list[max(1, len(list)/10):]
	}
}

// merge returns the map that stored (what the store holds, or an older
// entry) and mine (this replica's map, or a newer entry) make together,
// oldest set first, bounded to limit keys (0: no bound). changed are the
// keys mine Set since it last wrote (nil: every key of mine, for joining
// two entries). A key in both takes mergeValue; the order puts the keys
// only mine has and did not change first (another writer dropped them by
// its bound since), then the store's keys, then mine's news.
func merge(stored, mine [][2]string, changed map[string]bool, limit int) [][2]string {
	isNew := func(k string) bool { return changed == nil || changed[k] }
	storedVal := make(map[string]string, len(stored))
	for _, e := range stored {
		storedVal[e[0]] = e[1]
	}
	mineVal := make(map[string]string, len(mine))
	for _, e := range mine {
		mineVal[e[0]] = e[1]
	}
	out := make([][2]string, 0, len(stored)+len(mine))
	for _, e := range mine {
		if _, ok := storedVal[e[0]]; !ok && !isNew(e[0]) {
			out = append(out, e)
		}
	}
	for _, e := range stored {
		m, inMine := mineVal[e[0]]
		switch {
		case inMine && isNew(e[0]):
			continue // comes with mine's news
		case inMine:
			e[1] = mergeValue(e[1], m, false)
		}
		out = append(out, e)
	}
	for _, e := range mine {
		if !isNew(e[0]) {
			continue
		}
		if s, ok := storedVal[e[0]]; ok {
			e[1] = mergeValue(s, e[1], true)
		}
		out = append(out, e)
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// mergeValue is the merge rule of one key held by the store and by this
// replica (mineIsNew: Set since its last flush): two positions (decimal
// numbers: snowflakes grow with time) keep the larger, so that a merge
// never moves a stream back; of any other two values, this replica's
// news win, else the store's.
func mergeValue(stored, mine string, mineIsNew bool) string {
	if c, ok := comparePositions(stored, mine); ok {
		if c > 0 {
			return stored
		}
		return mine
	}
	if mineIsNew {
		return mine
	}
	return stored
}

// comparePositions compares two decimal numbers (digits, with an
// optional fraction: "1234", "1700000000.123456") of any length, and
// reports false when either is not one.
func comparePositions(a, b string) (int, bool) {
	ai, af, aok := splitDecimal(a)
	bi, bf, bok := splitDecimal(b)
	if !aok || !bok {
		return 0, false
	}
	if c := len(ai) - len(bi); c != 0 {
		return sign(c), true
	}
	if c := strings.Compare(ai, bi); c != 0 {
		return c, true
	}
	return strings.Compare(af, bf), true // trailing zeros trimmed: lexical is numeric
}

// splitDecimal splits a decimal number into its integer part without
// leading zeros and its fraction without trailing zeros.
func splitDecimal(s string) (integer, fraction string, ok bool) {
	integer, fraction, _ = strings.Cut(s, ".")
	if integer == "" || !allDigits(integer) || !allDigits(fraction) || (strings.Contains(s, ".") && fraction == "") {
		return "", "", false
	}
	return strings.TrimLeft(integer, "0"), strings.TrimRight(fraction, "0"), true
}

func allDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
