package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Driver is one messenger as a load source: it plays many users of that
// network against the target (the gateway or the bare relay) and reports
// the replies they get. The webchat's WebSocket users are one (webchat.go);
// Telegram users, through the Bot API fake in webhook mode, are another
// (telegram.go); Discord users writing DMs through the Discord fake
// (discord.go) and Slack users writing DMs through the Slack fake in
// Socket Mode (slack.go) are the others.
//
// For each run (one target, one number of chats) the harness makes a new
// driver and calls Prepare, then Adapter (gateway) or RelayArgs (relay)
// before the target starts, then Open, then Send any number of times from
// many goroutines, then Close. Close may come at any point after Prepare,
// and more than once.
type Driver interface {
	// Name is the driver's name in reports, e.g. "webchat".
	Name() string
	// Instance is the name of the adapter instance both targets serve:
	// the chat-id namespace in Selarti.
	Instance() string
	// Prepare starts whatever the users' network needs before the target
	// starts, such as a fake of the messenger's servers.
	Prepare(ctx context.Context) error
	// Adapter returns the adapters list entry of the gateway's config
	// (YAML, each line indented by four spaces, starting with "- name:")
	// for an instance called instance that talks to Selarti task task.
	Adapter(instance, task string, chats int) string
	// RelayArgs returns the bare relay's flags for this messenger (its
	// -mode and what that mode needs).
	RelayArgs() []string
	// Open prepares chats users of the target listening at base
	// ("http://127.0.0.1:port") and returns once every one of them can
	// send: connected, or able to connect on demand. onReply is called,
	// from any goroutine, with the text of every bot message a user
	// receives and the moment it was read; onError with every refusal the
	// target reports for a message.
	Open(ctx context.Context, base string, chats int, onReply func(text string, at time.Time), onError func(code string)) error
	// Send makes user chat (0 <= chat < chats) send a message with a
	// network-unique id (drivers whose network numbers messages itself
	// ignore it). It returns the moment the user sent it (after any
	// connection set-up), without waiting for the target to acknowledge
	// it.
	Send(ctx context.Context, chat int, id, text string) (time.Time, error)
	// Conns reports how many network connections to the target the
	// driver holds open at most.
	Conns() int
	// Mode says, for the report, how the users hold their connections.
	Mode() string
	// Close disconnects every user and stops what Prepare started.
	Close() error
}

// knownDrivers are the drivers newDriver makes, in the order -drivers
// lists them.
var knownDrivers = []string{"webchat", "telegram", "discord", "slack"}

// defaultDrivers are the drivers of `make bench`, in the order they run.
// Discord and Slack are left out to keep its time (about 20 minutes on 2
// cores); `-drivers discord,slack` runs them.
var defaultDrivers = []string{"webchat", "telegram"}

// newDriver returns a new driver called name, for one run.
func newDriver(name string, o options) (Driver, error) {
	switch name {
	case "webchat":
		return &webchatDriver{maxConns: o.maxConns, dialers: o.sourceIPs, perIP: o.connsPerIP}, nil
	case "telegram":
		return &telegramDriver{}, nil
	case "discord":
		return &discordDriver{}, nil
	case "slack":
		return &slackDriver{}, nil
	default:
		return nil, fmt.Errorf("unknown driver %q (known: %s)", name, strings.Join(knownDrivers, ", "))
	}
}
