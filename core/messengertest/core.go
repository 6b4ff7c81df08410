package messengertest

import (
	"context"
	"slices"
	"sync"

	"github.com/switchboard-gw/switchboard/core"
)

// Core is a DeliverFunc that behaves like the engine: it accepts each
// message once by Inbound.ID (a redelivery is acknowledged, not recorded
// twice; an empty ID is never a duplicate), records every call, and fails
// while a hook says so. Safe for concurrent use; its zero value is ready.
type Core struct {
	mu       sync.Mutex
	calls    []core.Inbound
	answered []core.Inbound // calls answered nil
	accepted []core.Inbound
	seen     map[string]bool
	hook     func(ctx context.Context, call int, m core.Inbound) error
}

// Deliver is the DeliverFunc to give the Messenger's Start.
func (c *Core) Deliver(ctx context.Context, m core.Inbound) error {
	c.mu.Lock()
	n := len(c.calls)
	c.calls = append(c.calls, m)
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		if err := hook(ctx, n, m); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = append(c.answered, m)
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if m.ID == "" || !c.seen[m.ID] {
		c.seen[m.ID] = true
		c.accepted = append(c.accepted, m)
	}
	return nil
}

// FailWith makes every later call ask hook first, with the call's index
// (counting every call from 0); a non-nil error is Deliver's answer. The
// hook may block (honouring ctx) to play a slow store. Nil removes it.
func (c *Core) FailWith(hook func(ctx context.Context, call int, m core.Inbound) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hook = hook
}

// Accepted returns the messages accepted, each once, in order.
func (c *Core) Accepted() []core.Inbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.accepted)
}

// Calls returns every call, refused ones and redeliveries included.
func (c *Core) Calls() []core.Inbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// Answered returns every call answered nil, redeliveries included: what
// an adapter that must not deliver twice is checked against.
func (c *Core) Answered() []core.Inbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.answered)
}

// Texts returns the texts of the messages accepted, in order.
func (c *Core) Texts() []string { return texts(c.Accepted()) }

// CallTexts returns the texts of every call, in order.
func (c *Core) CallTexts() []string { return texts(c.Calls()) }

func texts(ms []core.Inbound) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}
