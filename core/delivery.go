package core

import (
	"context"
	"time"
)

// DeliveryObserver is implemented by a Messenger that shows its users
// what became of the messages they sent on the way to Selarti: a chat
// page marks a message "not delivered" with a button to try again, or
// says why it is late. The core calls it after the outbox recorded each
// change below, on the replica that attempted the message, one call at a
// time per instance, in the order the changes happened:
//
//   - DeliveryDelayed: an attempt failed and the core will retry at
//     RetryAt; Reason says why.
//   - DeliveryDelivered: Selarti took a message that was delayed before
//     (a message delivered at the first attempt is not reported: the
//     adapter's acknowledgement already told the user it was sent).
//   - DeliveryFailed: the core gave up and the message is a dead letter.
//     A handover of the same Inbound.ID with Retry set queues it again.
//
// It is advisory: an error is logged and the event is not retried, and a
// process that stops may leave the last change of a message unreported
// (the message itself is delivered, retried or dead-lettered all the
// same). DeliveryChanged must not block for long: it holds up the
// reports of every chat of the instance.
type DeliveryObserver interface {
	DeliveryChanged(ctx context.Context, ev DeliveryEvent) error
}

// DeliveryEvent reports a change in the delivery of one user message to
// Selarti.
type DeliveryEvent struct {
	ChatID string // native chat id
	ID     string // the Inbound.ID the adapter handed over
	State  DeliveryState
	// Reason says why a message is delayed or failed.
	Reason DeliveryReason
	// Attempts is how many attempts failed so far.
	Attempts int
	// RetryAt is when the next attempt is due (DeliveryDelayed only).
	RetryAt time.Time
}

// DeliveryState is where a user message is on its way to Selarti.
type DeliveryState string

// The states a DeliveryObserver is told of.
const (
	DeliveryDelayed   DeliveryState = "delayed"
	DeliveryDelivered DeliveryState = "delivered"
	DeliveryFailed    DeliveryState = "failed"
)

// DeliveryReason says, in words a user can be shown, why a message is
// late or was not delivered.
type DeliveryReason string

// The reasons of a DeliveryEvent.
const (
	// ReasonUnreachable: Selarti could not be reached or answered with a
	// server error.
	ReasonUnreachable DeliveryReason = "unreachable"
	// ReasonThrottled: Selarti asked the gateway to slow down (429).
	ReasonThrottled DeliveryReason = "throttled"
	// ReasonRefused: Selarti refused the message (a 4xx other than 429):
	// retrying as it is cannot help.
	ReasonRefused DeliveryReason = "refused"
)
