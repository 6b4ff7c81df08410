package main

import (
	"context"
	"fmt"
	"time"
)

// Driver is one messenger as a load source: it plays many users of that
// network against the target (the gateway or the bare relay) and reports
// the replies they get. The webchat WebSocket is the first; a Telegram
// driver (the Telegram fake in webhook mode: it posts updates to the
// target's Telegram webhook and takes the target's sendMessage calls) is
// one more implementation, plus its adapter block and, for the relay, the
// same subset of the Bot API in test/bench/relay.
//
// The harness calls Adapter once per run (before the target's config is
// written), then Open, then Send any number of times from many goroutines,
// then Close.
type Driver interface {
	// Name is the driver's name in reports, e.g. "webchat".
	Name() string
	// Adapter returns the adapters list entry of the gateway's config
	// (YAML, each line indented by four spaces, starting with "- name:")
	// for an instance called instance that talks to Selarti task task.
	Adapter(instance, task string, chats int) string
	// Open prepares chats users of the target listening at base
	// ("http://127.0.0.1:port") and returns once every one of them can
	// send: connected, or able to connect on demand. onReply is called, from any goroutine, with the text of every
	// bot message a user receives and the moment it was read; onError
	// with every refusal the target reports for a message.
	Open(ctx context.Context, base string, chats int, onReply func(text string, at time.Time), onError func(code string)) error
	// Send makes user chat (0 <= chat < chats) send a message with a
	// network-unique id. It returns the moment the message was handed to
	// the network (after any connection set-up), without waiting for the
	// target to acknowledge it.
	Send(ctx context.Context, chat int, id, text string) (time.Time, error)
	// Conns reports how many network connections the users hold open at
	// most.
	Conns() int
	// Mode says, for the report, how the users hold their connections.
	Mode() string
	// Close disconnects every user.
	Close() error
}

// newDriver returns the driver called name.
func newDriver(name string, o options) (Driver, error) {
	switch name {
	case "webchat":
		return &webchatDriver{maxConns: o.maxConns, dialers: o.sourceIPs, perIP: o.connsPerIP}, nil
	default:
		return nil, fmt.Errorf("unknown driver %q (known: webchat)", name)
	}
}
