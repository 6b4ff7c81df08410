package messengertest

import (
	"testing"
	"time"
)

// Network is a test's handle on the fake network its Messenger talks to.
// Harness.New makes a fresh one for every check, so that checks never see
// each other's chats.
type Network interface {
	// UserSays makes the network hand the Messenger one message from a
	// user, in a native chat it picks (the same chat for the same user
	// index), and returns that chat and a function that reports whether
	// the network has seen the message acknowledged. A network that has
	// no acknowledgement (Discord) reports true once the message is out.
	UserSays(t *testing.T, user int, text string) (chat string, acked func() bool)
	// Delivered returns the texts the network received for chat, in
	// order. Texts may be formatted by the adapter; the suite only looks
	// for its own plain markers inside them.
	Delivered(t *testing.T, chat string) []string
}

// RateLimiter is a Network that can answer the next send with a rate
// limit asking to wait d (a 429 with retry_after, Retry-After).
type RateLimiter interface {
	RateLimitNext(t *testing.T, d time.Duration)
}

// OwnMessages is a Network that can show the Messenger its own bot's
// message in the chat of user, as the network echoes it (Discord's
// MESSAGE_CREATE for the bot's own message, Slack's message event with the
// app's bot_id, a Telegram update from the bot itself).
type OwnMessages interface {
	BotSays(t *testing.T, user int, text string)
}

// GoneChats is a Network that can name a native chat that does not exist
// (any more), or an id that cannot be a chat of this network at all.
type GoneChats interface {
	GoneChat(t *testing.T) string
}

// Redelivery says what a network does with a user message the adapter
// did not acknowledge.
type Redelivery int

const (
	// ByNetwork: the network sends it again (Telegram's update offset,
	// the webchat page's re-send), so the adapter must not acknowledge a
	// message the core did not accept.
	ByNetwork Redelivery = iota
	// InProcess: the network never sends it again (Discord's gateway),
	// so the adapter retries in the process until the core accepts it,
	// and after a restart fetches what it missed from its checkpoint
	// (kit/inbound).
	InProcess
)
