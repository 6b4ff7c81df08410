package webchat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// journalMailbox keeps the sessions in the gateway's shared store
// (core.Journals, Instance.Journals), which every replica of the gateway
// reads and writes: one journal per session, keyed by the session id,
// whose head holds the session's epoch, last seq, last activity and name,
// and whose entries are the history. The store assigns the seqs, keeps
// history_limit entries (AppendOptions.Keep) and drops the re-sends by
// the entries' keys, so the session's seqs and dedupes hold whichever
// replica writes. Everything is committed by the store before a call
// returns: nothing is ever unsynced here.
//
// What another replica wrote is seen by reading: sessions refreshes its
// cache from the head when it cannot know it is current, and learns of
// new entries from Watch (see Adapter.watchJournals).
type journalMailbox struct {
	j            core.Journals
	historyLimit int

	// mu makes close wait for the calls in progress.
	mu     sync.RWMutex
	closed bool
}

var _ sessionStore = (*journalMailbox)(nil)

func newJournalMailbox(j core.Journals, historyLimit int) *journalMailbox {
	return &journalMailbox{j: j, historyLimit: historyLimit}
}

// Entry keys: a prefix per kind and the id the file mailbox dedupes by
// with its two unique indexes. Events and messages without an id have no
// key, and are never taken for one another.
const (
	keyUser = "u:" // + the client's message id (at most maxClientIDLen)
	keyOut  = "m:" // + Selarti's message id of a bot or operator message
	// keyOutHash + the SHA-256 of Selarti's id, in hex, for an id too
	// long for a key: it still dedupes, but the id is not read back.
	keyOutHash = "m#"
)

// maxJournalKey is core.Journals' bound on an entry's key.
const maxJournalKey = 256

// entryKey is the journal entry key of e.
func entryKey(e *entry) string {
	switch {
	case e.event || e.id == "":
		return ""
	case e.from == fromUser:
		return keyUser + e.id
	case len(keyOut)+len(e.id) <= maxJournalKey:
		return keyOut + e.id
	default:
		sum := sha256.Sum256([]byte(e.id))
		return keyOutHash + hex.EncodeToString(sum[:])
	}
}

// journalData is an entry's JournalEntry.Data: what the key and the
// entry's time do not hold, in short JSON.
type journalData struct {
	From     string `json:"f,omitempty"` // messages, and "status" for delivery statuses
	Text     string `json:"t,omitempty"` // a delivery status's JSON, too
	Event    bool   `json:"e,omitempty"`
	Operator bool   `json:"o,omitempty"` // events
	Closed   bool   `json:"c,omitempty"` // events
}

// encodeEntry returns e as a journal entry (its seq is the store's).
func encodeEntry(e *entry) (core.JournalEntry, error) {
	d := journalData{Event: e.event, Operator: e.operator, Closed: e.closed}
	if !e.event || e.from == fromStatus {
		d.From, d.Text = e.from, e.text
	}
	b, err := json.Marshal(d)
	if err != nil {
		return core.JournalEntry{}, err
	}
	return core.JournalEntry{Key: entryKey(e), At: e.ts, Data: b}, nil
}

// decodeEntry reads back an entry encodeEntry wrote.
func decodeEntry(je core.JournalEntry) (entry, error) {
	var d journalData
	if err := json.Unmarshal(je.Data, &d); err != nil {
		return entry{}, fmt.Errorf("entry %d: %w", je.Seq, err)
	}
	e := entry{seq: je.Seq, event: d.Event, from: d.From, text: d.Text, operator: d.Operator, closed: d.Closed, ts: je.At}
	if id, ok := strings.CutPrefix(je.Key, keyUser); ok {
		e.id = id
	} else if id, ok := strings.CutPrefix(je.Key, keyOut); ok {
		e.id = id
	}
	return e, nil
}

// use starts a call: it holds off close until the caller calls
// m.mu.RUnlock, which it must do unless use fails.
func (m *journalMailbox) use() error {
	m.mu.RLock()
	if m.closed {
		m.mu.RUnlock()
		return errMailboxClosed
	}
	return nil
}

// meta reads the session's head. The user messages are not listed
// (usersKnown is false): another replica may add some at any time, so
// sessions looks each re-sent id up with userSeq.
func (m *journalMailbox) meta(ctx context.Context, id string) (sessionMeta, bool, error) {
	if err := m.use(); err != nil {
		return sessionMeta{}, false, err
	}
	defer m.mu.RUnlock()
	h, ok, err := m.j.Head(ctx, id)
	if err != nil {
		return sessionMeta{}, false, fmt.Errorf("load session: %w", err)
	}
	if !ok {
		return sessionMeta{}, false, nil
	}
	return sessionMeta{epoch: h.Epoch, lastSeq: h.LastSeq, lastActive: h.LastActive}, true, nil
}

func (m *journalMailbox) history(ctx context.Context, id string, after int64) ([]entry, error) {
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	jes, err := m.j.Entries(ctx, id, after)
	if err != nil {
		return nil, fmt.Errorf("load history: %w", err)
	}
	h := make([]entry, 0, len(jes))
	for _, je := range jes {
		e, err := decodeEntry(je)
		if err != nil {
			return nil, fmt.Errorf("load history: %w", err)
		}
		h = append(h, e)
	}
	return h, nil
}

func (m *journalMailbox) userSeq(ctx context.Context, id, clientID string) (int64, bool, error) {
	if err := m.use(); err != nil {
		return 0, false, err
	}
	defer m.mu.RUnlock()
	seq, ok, err := m.j.Find(ctx, id, keyUser+clientID)
	if err != nil {
		return 0, false, fmt.Errorf("look up message: %w", err)
	}
	return seq, ok, nil
}

func (m *journalMailbox) create(ctx context.Context, id, epoch, name string, now time.Time) (string, int64, error) {
	if err := m.use(); err != nil {
		return "", 0, err
	}
	defer m.mu.RUnlock()
	h, err := m.j.Create(ctx, id, core.JournalHead{Epoch: epoch, Name: name, LastActive: now})
	if err != nil {
		return "", 0, fmt.Errorf("create session: %w", err)
	}
	return h.Epoch, h.LastSeq, nil
}

// append stores r.e. Every append is committed by the store, so all are
// synced, and their tickets are 0.
func (m *journalMailbox) append(ctx context.Context, r appendReq) (appended, error) {
	if err := m.use(); err != nil {
		return appended{}, err
	}
	defer m.mu.RUnlock()
	je, err := encodeEntry(&r.e)
	if err != nil {
		return appended{}, fmt.Errorf("store entry: %w", err)
	}
	opts := core.AppendOptions{Name: r.name, Keep: m.historyLimit}
	if r.newEpoch != "" {
		opts.Create = &core.JournalHead{Epoch: r.newEpoch, Name: r.name}
	}
	res, err := m.j.Append(ctx, r.session, je, opts)
	if err != nil {
		if errors.Is(err, core.ErrJournalLimit) {
			// Too large for the store, now and at every retry.
			return appended{}, core.Permanent(fmt.Errorf("store entry: %w", err))
		}
		return appended{}, fmt.Errorf("store entry: %w", err)
	}
	return appended{seq: res.Seq, epoch: res.Epoch, dup: res.Dup, missing: res.Missing, synced: !res.Dup && !res.Missing}, nil
}

func (m *journalMailbox) idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	if err := m.use(); err != nil {
		return nil, err
	}
	defer m.mu.RUnlock()
	ids, err := m.j.Idle(ctx, cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("find idle sessions: %w", err)
	}
	return ids, nil
}

// expire records the activity first, then deletes: two commits, where
// the file has one. A failure between them leaves the touches written,
// which the caller's retry writes again.
func (m *journalMailbox) expire(ctx context.Context, del []string, cutoff time.Time, touch map[string]time.Time) error {
	if len(del) == 0 && len(touch) == 0 {
		return nil
	}
	if err := m.use(); err != nil {
		return err
	}
	defer m.mu.RUnlock()
	if len(touch) > 0 {
		if err := m.j.Touch(ctx, touch); err != nil {
			return fmt.Errorf("expire sessions: %w", err)
		}
	}
	if len(del) > 0 {
		// Only those still idle: another replica may have written to
		// one since Idle listed it.
		if err := m.j.Delete(ctx, del, cutoff); err != nil {
			return fmt.Errorf("expire sessions: %w", err)
		}
	}
	return nil
}

func (m *journalMailbox) touch(ctx context.Context, at map[string]time.Time) error {
	if len(at) == 0 {
		return nil
	}
	if err := m.use(); err != nil {
		return err
	}
	defer m.mu.RUnlock()
	if err := m.j.Touch(ctx, at); err != nil {
		return fmt.Errorf("record session activity: %w", err)
	}
	return nil
}

// shared is true: every replica of the gateway writes the journals.
func (m *journalMailbox) shared() bool { return true }

// isSynced is always true: the store commits every write.
func (m *journalMailbox) isSynced(int64) bool { return true }

// checkpoint has nothing to do: the shared store keeps itself.
func (m *journalMailbox) checkpoint(context.Context) error { return nil }

// close waits for the calls in progress; the journals stay in the store.
func (m *journalMailbox) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
