package core

import (
	"context"
	"errors"
	"time"
)

// Journals is durable storage for an adapter instance's conversations,
// kept by the gateway in its own store, for an adapter whose users may
// reach any of several gateway replicas (the webchat: a browser's tab
// may connect to one replica, and the reply come in on another). It is
// Instance.Journals, and nil when the gateway runs alone on its embedded
// store: an adapter then keeps its files in Instance.DataDir, as before.
//
// A journal is a short, append-only list of entries under a key (a
// webchat session id), with a head: an epoch the adapter chose when it
// created the journal (it never changes while the journal lives), the
// seq of the newest entry ever appended, when it was last active and a
// name. Seqs count 1, 2, 3... per journal and are never given twice,
// even once old entries are trimmed. Every method commits before it
// returns and is safe for concurrent use, from any replica: Append
// assigns seqs in the store, so two replicas appending to one journal at
// once get two seqs. Keys, names and entry keys are at most 256 bytes;
// entry data at most 1 MiB. The journals of one instance are its own:
// another instance never sees them.
type Journals interface {
	// Head returns journal key's head; ok is false when there is none.
	Head(ctx context.Context, key string) (h JournalHead, ok bool, err error)
	// Create creates journal key with h's epoch, name and last activity
	// (its LastSeq is 0) unless it exists, and returns the head as stored:
	// the existing one, if it did.
	Create(ctx context.Context, key string, h JournalHead) (JournalHead, error)
	// Append adds e to journal key with the journal's next seq, and sets
	// the head's last activity to e.At (and its name to name, when not
	// empty). An entry whose e.Key (when not empty) is in the journal
	// already is not added again: its seq is returned with Dup set. A
	// missing journal is created with create's epoch when create is not
	// nil, else nothing is written and Missing is set. Entries beyond the
	// newest keep are removed in the same commit (keep <= 0 keeps all).
	Append(ctx context.Context, key string, e JournalEntry, opts AppendOptions) (JournalAppended, error)
	// Entries returns journal key's entries with a seq above after,
	// oldest first (none for a missing journal).
	Entries(ctx context.Context, key string, after int64) ([]JournalEntry, error)
	// Find returns the seq of the entry of journal key whose Key is
	// entryKey, if the journal holds it.
	Find(ctx context.Context, key, entryKey string) (seq int64, ok bool, err error)
	// Idle returns up to limit keys of journals last active before
	// cutoff, the longest idle first.
	Idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error)
	// Touch records that the journals in at were active at the given
	// times; it never moves a journal's last activity back, and skips
	// missing journals.
	Touch(ctx context.Context, at map[string]time.Time) error
	// Delete removes the journals among keys still last active before
	// cutoff (as Idle found them), with their entries. One active since,
	// which another replica appended to or touched meanwhile, is kept, as
	// are missing ones.
	Delete(ctx context.Context, keys []string, cutoff time.Time) error
	// Watch calls fn with the key and the new LastSeq of every journal
	// appended to, by any replica (this one too), until ctx ends, and
	// then returns ctx's error. Notices may come late (the store polls
	// when it cannot be told at once: within a few seconds), may be
	// coalesced (only the newest seq of a burst) and may repeat; one that
	// a replica missed while it could not reach the store is made up for
	// when it can again. fn runs on Watch's goroutine: it must not block.
	// Any other return of Watch is a failure; call it again.
	Watch(ctx context.Context, fn func(key string, lastSeq int64)) error
}

// JournalHead is the head of one journal (see Journals).
type JournalHead struct {
	Epoch      string
	LastSeq    int64
	LastActive time.Time
	Name       string
}

// JournalEntry is one entry of a journal. Data is the adapter's own
// encoding; Key, when not empty, is unique within the journal.
type JournalEntry struct {
	Seq  int64 // assigned by Append
	Key  string
	At   time.Time
	Data []byte
}

// AppendOptions are Append's choices.
type AppendOptions struct {
	// Create, when not nil, is the head of the journal to create if it
	// is missing (its epoch and name; LastSeq is ignored).
	Create *JournalHead
	// Name, when not empty, becomes the head's name.
	Name string
	// Keep is how many of the newest entries to keep; <= 0 keeps all.
	Keep int
}

// JournalAppended is the outcome of Append.
type JournalAppended struct {
	Seq     int64  // the entry's seq (the earlier copy's when Dup)
	Epoch   string // the journal's epoch
	Dup     bool   // an entry with the same Key was there: nothing added
	Missing bool   // no such journal, and no Create: nothing written
}

// ErrJournalLimit is returned (wrapped) for a key, name, entry key or
// entry data over its limit (see Journals). It is permanent.
var ErrJournalLimit = errors.New("journal key or entry over its limit")
