// Package outbound helps an adapter send: a long answer split into parts
// (kit/richtext) is sent part by part and resumed after a partial failure
// without repeating what already arrived, and the adapter's own short
// replies (a notice that it cannot read a photo) go out in the background
// without piling up.
package outbound

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-gw/switchboard/kit/cache"
)

// Progress remembers, per Outbound.ID, how many parts of a split message
// were sent, so that the outbox's retry of the message (the same ID)
// resumes with the part that failed instead of sending the first ones
// again. It is memory only, bounded and expiring: after a restart, or for
// an entry evicted, the retry starts from the first part again, which
// repeats parts (at least once) but loses none.
type Progress struct {
	sent *cache.Cache[string, int]
}

// NewProgress returns a Progress that remembers at most size messages,
// each for ttl (as long as the outbox may still retry it).
func NewProgress(size int, ttl time.Duration) *Progress {
	return &Progress{sent: cache.New[string, int](size, ttl)}
}

// PartError is SendParts' error: which part failed, of how many.
type PartError struct {
	Part, Parts int // Part counts from 0
	Err         error
}

func (e *PartError) Error() string {
	if e.Parts == 1 {
		return e.Err.Error()
	}
	return fmt.Sprintf("part %d of %d: %v", e.Part+1, e.Parts, e.Err)
}

func (e *PartError) Unwrap() error { return e.Err }

// SendParts sends parts from..n-1 of message id in order with send, where
// from is how many parts an earlier attempt of id already sent (0 the
// first time, and always when id is ""). It returns from, and nil once
// every part is sent, or a *PartError for the first part that failed,
// after remembering that the parts before it were sent.
func (p *Progress) SendParts(ctx context.Context, id string, n int, send func(ctx context.Context, part int) error) (from int, err error) {
	if id != "" {
		if done, ok := p.sent.Get(id); ok && done < n {
			from = done
		}
	}
	for i := from; i < n; i++ {
		if err := send(ctx, i); err != nil {
			if i > 0 && id != "" {
				p.sent.Put(id, i)
			}
			return from, &PartError{Part: i, Parts: n, Err: err}
		}
	}
	if from > 0 {
		p.sent.Remove(id)
	}
	return from, nil
}
