package core

import "time"

// Inbound is one message from a user, as an adapter hands it to the core.
type Inbound struct {
	// ChatID is the native chat id (a Telegram chat id, a webchat session).
	ChatID string
	// ID is the network's id for this message, the same on every
	// redelivery and unique within the instance: the core drops a message
	// whose ID it already has from any chat of the instance as a
	// redelivery. Where the network numbers messages per chat, put the
	// chat in the ID: Telegram's is "<chat id>/<message id>", Slack's
	// "<channel>/<ts>", the webchat's "<digest of the session>/<client
	// message id>"; a Discord message id is unique by itself. The core does
	// not add the chat for the adapter, so that an adapter whose chat for
	// a message depends on its config (Telegram's per-user dialogs in
	// groups) still recognises a redelivery after that config changed.
	// Like the chat id, it is shown in logs: keep secrets out of it (a
	// digest, as the webchat does). Empty means "no dedupe possible".
	ID string
	// Text is the message text. Media the assistant cannot take is turned
	// into a readable stand-in by the adapter.
	Text string
	// User is what the network tells about the sender.
	User User
	// ReceivedAt is when the network received the message; zero means now.
	ReceivedAt time.Time
	// Retry says the user asked to send this message again after the core
	// reported it undelivered (see DeliveryObserver): when the core holds
	// a message with this ID as a dead letter, it queues that message
	// again, in its place in the chat's order, instead of dropping the
	// handover as a duplicate. Without Retry a dead letter stays dead
	// however often the network redelivers it, so that only a user's
	// deliberate act (or an operator's `deadletters retry`) repeats it.
	Retry bool
}

// User is what a network tells about the sender of a message. Every field
// is optional.
type User struct {
	// Name is the user's display name (Selarti shows it as the dialog title).
	Name string
	// Username is the user's handle on the network, without "@".
	Username string
	// Phone is a phone number the user shared.
	Phone string
}

// Sender says who wrote an outbound message.
type Sender string

// Senders of Selarti messages.
const (
	SenderBot      Sender = "bot"
	SenderOperator Sender = "operator"
	// SenderUser marks the user's own message reported back by the "All
	// messages" webhook. The core never sends it to a Messenger.
	SenderUser Sender = "user"
)

// Outbound is one message for a user, from the assistant or an operator.
type Outbound struct {
	// ChatID is the native chat id.
	ChatID string
	// ID is Selarti's message id; adapters may use it as an idempotency key.
	ID string
	// Text is the message text; it may contain Markdown.
	Text string
	// From says whether the assistant or a human operator wrote it.
	From Sender
	// Dialog is the dialog's state as of this message.
	Dialog DialogState
	// MaybeSent says an earlier attempt at this message may have reached
	// the network: an attempt failed (a timeout can fail after the network
	// took the message), or one was in flight when a gateway process died.
	// An adapter whose network has no idempotency key but lets it read
	// back what the bot posted (Slack) looks for the message before
	// sending it again; others may ignore it. It is false on a first
	// attempt.
	MaybeSent bool
}

// DialogState is Selarti's flags for a dialog.
type DialogState struct {
	Closed     bool // the dialog was closed
	Operator   bool // the dialog was handed to a human operator
	GotContact bool // the user shared a phone or e-mail
	Interest   bool // the user showed interest
	Success    bool // the dialog was marked successful
}

// DialogEvent reports that Selarti's flags for a chat changed.
type DialogEvent struct {
	ChatID   string // native chat id
	Previous DialogState
	Current  DialogState
}
