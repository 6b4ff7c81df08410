package engine

import (
	"context"
	"errors"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// journaler is a store that keeps adapters' journals (core.Journals),
// which several gateway replicas share: the PostgreSQL store, and the
// in-memory one that tests share between gateways.
type journaler interface {
	Journals(instance string) core.Journals
}

// errJournalsNotOpen is what an instance's journals answer before the
// store is open or after it closed: the adapter uses them from Start to
// Stop, while it is.
var errJournalsNotOpen = errors.New("the gateway's store is not open")

// instanceJournals is an instance's core.Journals as its factory gets
// them: the factory runs in New, before Start opens the store, so each
// call looks the store up when it is made.
type instanceJournals struct {
	g        *Gateway
	instance string
}

// journalsFor returns the journals instance gets, or nil when the store
// will not be shared (the embedded SQLite store, the memory driver): the
// adapter then keeps its files in its data directory.
func (g *Gateway) journalsFor(instance string) core.Journals {
	if _, ok := g.opts.Store.(journaler); ok || g.cfg.Store.Driver == "postgres" {
		return instanceJournals{g: g, instance: instance}
	}
	return nil
}

func (j instanceJournals) get() (core.Journals, error) {
	if !j.g.storeReady.Load() {
		return nil, errJournalsNotOpen
	}
	js, ok := j.g.watched.Store.(journaler)
	if !ok {
		return nil, errJournalsNotOpen
	}
	return js.Journals(j.instance), nil
}

func (j instanceJournals) Head(ctx context.Context, key string) (core.JournalHead, bool, error) {
	js, err := j.get()
	if err != nil {
		return core.JournalHead{}, false, err
	}
	return js.Head(ctx, key)
}

func (j instanceJournals) Create(ctx context.Context, key string, h core.JournalHead) (core.JournalHead, error) {
	js, err := j.get()
	if err != nil {
		return core.JournalHead{}, err
	}
	return js.Create(ctx, key, h)
}

func (j instanceJournals) Append(ctx context.Context, key string, e core.JournalEntry, opts core.AppendOptions) (core.JournalAppended, error) {
	js, err := j.get()
	if err != nil {
		return core.JournalAppended{}, err
	}
	return js.Append(ctx, key, e, opts)
}

func (j instanceJournals) Entries(ctx context.Context, key string, after int64) ([]core.JournalEntry, error) {
	js, err := j.get()
	if err != nil {
		return nil, err
	}
	return js.Entries(ctx, key, after)
}

func (j instanceJournals) Find(ctx context.Context, key, entryKey string) (int64, bool, error) {
	js, err := j.get()
	if err != nil {
		return 0, false, err
	}
	return js.Find(ctx, key, entryKey)
}

func (j instanceJournals) Idle(ctx context.Context, cutoff time.Time, limit int) ([]string, error) {
	js, err := j.get()
	if err != nil {
		return nil, err
	}
	return js.Idle(ctx, cutoff, limit)
}

func (j instanceJournals) Touch(ctx context.Context, at map[string]time.Time) error {
	js, err := j.get()
	if err != nil {
		return err
	}
	return js.Touch(ctx, at)
}

func (j instanceJournals) Delete(ctx context.Context, keys []string, cutoff time.Time) error {
	js, err := j.get()
	if err != nil {
		return err
	}
	return js.Delete(ctx, keys, cutoff)
}

func (j instanceJournals) Watch(ctx context.Context, fn func(key string, lastSeq int64)) error {
	js, err := j.get()
	if err != nil {
		return err
	}
	return js.Watch(ctx, fn)
}
