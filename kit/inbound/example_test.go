package inbound_test

// This file is the worked example of an adapter whose network never
// redelivers (like Discord's gateway): "relay", a made-up network whose
// live feed pushes each message once, with a history API to fetch the
// messages of a channel after a given id. The adapter retries each
// message in the process until the core accepts it (inbound.Retry), one
// goroutine per channel so that a channel's order holds, moves a
// checkpoint per channel only after the core accepted a message, and
// after a restart fetches what it missed from there. The conformance
// suite's InProcess checks run against it.

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// relayMsg is one message of the relay network.
type relayMsg struct {
	channel string
	id      int // increasing per network
	author  string
	text    string
}

// relayNet is the fake network: channels, a live feed that pushes each
// message once to the clients connected at that moment (and never
// again), a history, and what the bot sent.
type relayNet struct {
	mu     sync.Mutex
	nextID int
	msgs   map[string][]relayMsg
	subs   map[chan relayMsg]bool
	sent   map[string][]string
}

func newRelayNet() *relayNet {
	return &relayNet{msgs: map[string][]relayMsg{}, subs: map[chan relayMsg]bool{}, sent: map[string][]string{}}
}

func (n *relayNet) post(channel, author, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.nextID++
	m := relayMsg{channel: channel, id: n.nextID, author: author, text: text}
	n.msgs[channel] = append(n.msgs[channel], m)
	for ch := range n.subs {
		select {
		case ch <- m:
		default: // a slow client misses it, as on a real gateway
		}
	}
}

func (n *relayNet) subscribe() (<-chan relayMsg, func()) {
	ch := make(chan relayMsg, 64)
	n.mu.Lock()
	n.subs[ch] = true
	n.mu.Unlock()
	return ch, func() {
		n.mu.Lock()
		delete(n.subs, ch)
		n.mu.Unlock()
	}
}

// history is the network's "messages after id" call.
func (n *relayNet) history(channel string, after int) []relayMsg {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []relayMsg
	for _, m := range n.msgs[channel] {
		if m.id > after {
			out = append(out, m)
		}
	}
	return out
}

func (n *relayNet) send(channel, text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent[channel] = append(n.sent[channel], text)
}

// relayAdapter is the example adapter.
type relayAdapter struct {
	net     *relayNet
	dataDir string
	runs    lifecycle.Runs[relayRun]
}

const relayBot = "bot"

type relayRun struct {
	deliver core.DeliverFunc
	cp      *inbound.Checkpoint

	mu     sync.Mutex
	queues map[string]chan relayMsg // per channel, drained by its own goroutine
	last   map[string]int           // per channel: the newest id queued
}

func (a *relayAdapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	cp, err := inbound.OpenCheckpoint(filepath.Join(a.dataDir, "checkpoint.json"), 0)
	if err != nil {
		return fmt.Errorf("start relay: %w", err)
	}
	r, err := a.runs.Begin(relayRun{deliver: deliver, cp: cp, queues: map[string]chan relayMsg{}, last: map[string]int{}})
	if err != nil {
		return fmt.Errorf("start relay: %w", err)
	}
	// Subscribe before the backfill, so that nothing falls between them;
	// what comes both ways is queued once (see queue).
	feed, unsubscribe := a.net.subscribe()
	r.Go(func(ctx context.Context) { r.Data.cp.FlushEvery(ctx, 50*time.Millisecond, nil) })
	for _, channel := range cp.Keys() {
		after, _ := cp.Get(channel)
		from, _ := strconv.Atoi(after)
		for _, m := range a.net.history(channel, from) {
			a.queue(r, m)
		}
	}
	r.Go(func(ctx context.Context) {
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-feed:
				a.queue(r, m)
			}
		}
	})
	return nil
}

// queue hands m to its channel's goroutine, once.
func (a *relayAdapter) queue(r *lifecycle.Run[relayRun], m relayMsg) {
	r.Data.mu.Lock()
	defer r.Data.mu.Unlock()
	if m.id <= r.Data.last[m.channel] {
		return // had it from the backfill
	}
	r.Data.last[m.channel] = m.id
	q, ok := r.Data.queues[m.channel]
	if !ok {
		q = make(chan relayMsg, 1024)
		r.Data.queues[m.channel] = q
		r.Go(func(ctx context.Context) { a.drain(ctx, r, q) })
	}
	q <- m
}

// drain hands a channel's messages to the core in order, each retried
// until accepted; the checkpoint moves only past accepted ones.
func (a *relayAdapter) drain(ctx context.Context, r *lifecycle.Run[relayRun], q chan relayMsg) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-q:
			if m.author != relayBot { // the bot's own messages never reach the core
				err := inbound.Retry(ctx, r.Data.deliver, core.Inbound{ChatID: m.channel, ID: strconv.Itoa(m.id), Text: m.text}, inbound.RetryOptions{Initial: 10 * time.Millisecond})
				if err != nil && !core.IsPermanent(err) {
					return // stopped: the next run's backfill fetches it
				}
			}
			r.Data.cp.Set(m.channel, strconv.Itoa(m.id))
		}
	}
}

func (a *relayAdapter) Send(ctx context.Context, msg core.Outbound) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if a.runs.Current() == nil {
		return fmt.Errorf("send to %s: %w", msg.ChatID, core.ErrNotConnected)
	}
	if msg.ChatID == "" {
		return fmt.Errorf("send: %w", core.ErrUnknownChat)
	}
	a.net.send(msg.ChatID, msg.Text)
	return nil
}

func (a *relayAdapter) Stop(ctx context.Context) error {
	_, err := a.runs.End(ctx, nil)
	return err
}

// relayNetwork is the suite's handle on a relayNet.
type relayNetwork struct{ net *relayNet }

func (n relayNetwork) UserSays(t *testing.T, user int, text string) (string, func() bool) {
	channel := fmt.Sprintf("channel-%d", user)
	n.net.post(channel, "user", text)
	return channel, func() bool { return true } // no acknowledgement on this network
}

func (n relayNetwork) Delivered(t *testing.T, chat string) []string {
	n.net.mu.Lock()
	defer n.net.mu.Unlock()
	return append([]string(nil), n.net.sent[chat]...)
}

func (n relayNetwork) BotSays(t *testing.T, user int, text string) {
	n.net.post(fmt.Sprintf("channel-%d", user), relayBot, text)
}

func (n relayNetwork) GoneChat(*testing.T) string { return "" }

// TestInProcessRedeliveryExample runs the conformance suite, with its
// checks for networks that never redeliver, against the example.
func TestInProcessRedeliveryExample(t *testing.T) {
	messengertest.Run(t, messengertest.Harness{
		Redelivery: messengertest.InProcess,
		New: func(t *testing.T) (core.Messenger, messengertest.Network) {
			net := newRelayNet()
			return &relayAdapter{net: net, dataDir: t.TempDir()}, relayNetwork{net}
		},
		Restart: func(t *testing.T, old core.Messenger) core.Messenger {
			o := old.(*relayAdapter)
			return &relayAdapter{net: o.net, dataDir: o.dataDir}
		},
	})
}
