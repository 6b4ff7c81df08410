package e2e

import (
	"context"
	"errors"
	"sync"

	"github.com/switchboard-gw/switchboard/core"
)

// testChatKind is an adapter kind that exists only in this test package.
// That it works through the router proves the plugin contract: a new
// messenger is one Factory registered under a kind, with no change to core.
const testChatKind = "testchat"

// testChat is a Messenger whose "network" is the test: the test injects
// user messages with say and reads what the gateway sent with sent.
type testChat struct {
	name    string
	mu      sync.Mutex
	deliver core.DeliverFunc
	out     []core.Outbound
	started bool
	fail    func(core.Outbound) error // the network refuses a message
}

// setFail makes Send fail with what fn returns (nil: accept).
func (c *testChat) setFail(fn func(core.Outbound) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fail = fn
}

var (
	_ core.Messenger = (*testChat)(nil)
)

func (c *testChat) Start(_ context.Context, deliver core.DeliverFunc) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deliver, c.started = deliver, true
	return nil
}

func (c *testChat) Send(ctx context.Context, m core.Outbound) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started {
		return core.ErrNotConnected
	}
	if c.fail != nil {
		if err := c.fail(m); err != nil {
			return err
		}
	}
	c.out = append(c.out, m)
	return nil
}

func (c *testChat) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started = false
	return nil
}

// say delivers a user message as the network would.
func (c *testChat) say(ctx context.Context, msg core.Inbound) error {
	c.mu.Lock()
	deliver := c.deliver
	c.mu.Unlock()
	if deliver == nil {
		return errors.New("not started")
	}
	return deliver(ctx, msg)
}

// sent returns what the gateway delivered to this instance.
func (c *testChat) sent() []core.Outbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]core.Outbound(nil), c.out...)
}

// testChats keeps the instances the factory built, by name.
type testChats struct {
	mu     sync.Mutex
	byName map[string]*testChat
}

func newTestChats() *testChats { return &testChats{byName: map[string]*testChat{}} }

func (t *testChats) factory(inst core.Instance) (core.Messenger, error) {
	var cfg struct {
		Greeting string `mapstructure:"greeting"`
	}
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	c := &testChat{name: inst.Name}
	t.mu.Lock()
	t.byName[inst.Name] = c
	t.mu.Unlock()
	return c, nil
}

func (t *testChats) get(name string) *testChat {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byName[name]
}
