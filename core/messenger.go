// Package core is Switchboard's plugin API: what an adapter (the code
// that connects one chat network) imports, and nothing more. It holds the
// Messenger contract and its optional interfaces, the message types, the
// errors that tell the core what to do with a failed send, the registry
// adapters register their kind in, strict decoding of an adapter's config
// block, the Secret type, and the limits a message must keep.
//
// The engine that runs adapters (router, outbox, Selarti client, webhook
// receiver, supervisor, config, metrics) is core/engine, which an adapter
// never links; the shared toolkit adapters build on (rich text, splitting,
// rate limits, typing, media stand-ins, lifecycle, checkpoints) is kit/.
// `make test` checks both rules, and that the core never imports an
// adapter: adapters register themselves from their init functions, and
// the binary imports them through adapters/all.
package core

import (
	"context"
	"log/slog"
	"net/http"
	"unicode/utf8"
)

// Messenger is one running connection to one chat network, owned by one
// adapter instance (for example the Telegram bot "tg-sales").
//
// Lifecycle: one goroutine of the core owns each instance and calls Start
// and Stop, so they never run at once. Send is called (concurrently, any
// number of times) after Start succeeded and until Stop is called. After
// a failed Start the core calls Stop to clean up, then may call Start
// again; after Stop it may call Start again too. So Start must work after
// Stop, and Send must fail cleanly (ErrNotConnected) before Start and
// after Stop. The rules below are the contract; core/messengertest checks
// the ones that hold for every network.
//
// Ids: a Messenger only ever sees native chat ids (a Telegram chat id, a
// webchat session id). The core adds and strips the "<instance>:" prefix;
// no adapter parses namespaced ids. A Messenger whose native ids are
// secrets says so with PrivateChatIDs, and the core then never shows one
// in full.
//
// Errors returned by Send decide what the core does with the message:
//
//   - nil: the network accepted the message; it will not be sent again.
//   - a *RetryAfterError: the network asked us to slow down; the core
//     retries after at least Wait.
//   - a *PermanentError or ErrUnknownChat: retrying cannot help (the bot
//     was blocked, the chat is gone); the core dead-letters the message.
//   - any other error: transient; the core retries with backoff.
//
// The duplicate rule (from database/sql's driver.ErrBadConn): report a
// send as failed only when the network certainly did not accept it, or
// when a duplicate is acceptable. Send should itself be idempotent on
// Outbound.ID where the network allows it.
type Messenger interface {
	// Start connects and begins passing inbound user messages to deliver.
	// It returns once Send may be called, or with an error. ctx bounds
	// the start-up only; goroutines that Start spawns run until Stop.
	// An error wrapped in a *PermanentError (a revoked token, say) stops
	// the core from retrying Start; any other error is retried with
	// backoff while the other instances keep running.
	Start(ctx context.Context, deliver DeliverFunc) error

	// Send delivers one message to a native chat. It must be safe for
	// concurrent use, and it must honour ctx.
	Send(ctx context.Context, msg Outbound) error

	// Stop ends everything Start began and waits for it, or until ctx is
	// done. It must be safe after a failed Start and when called twice.
	Stop(ctx context.Context) error
}

// DeliverFunc hands one inbound user message to the core. A nil error means
// the core has accepted the message (committed it to its outbox for
// Selarti, or recognised it by Inbound.ID as a duplicate of one it already
// has). Only then may the adapter acknowledge it to its network: advance
// the Telegram update offset, ack the Slack envelope, ack the webchat
// client, move its checkpoint. What the adapter does on any other error
// depends on its network (kit/inbound has the helpers for each):
//
//   - A network that redelivers what was not acknowledged (Telegram, the
//     webchat page): do not acknowledge; the network sends it again, under
//     the same Inbound.ID, and the core drops what it already has.
//   - A network that never redelivers (Discord's gateway): retry in the
//     process until the core accepts it or Stop is called, and keep a
//     checkpoint in Instance.DataDir from which the next Start fetches what
//     was not handed over (a backfill).
//   - A network with a short acknowledgement deadline (Slack, 3 s): give
//     DeliverFunc a context that ends in time to acknowledge; past it, do
//     not acknowledge, and the network's retry (the same event id) is
//     dropped by the core if the first copy was committed late.
//
// The exception is a permanent error (IsPermanent: empty or oversize text,
// invalid UTF-8, a malformed native id): the message can never be
// accepted, so the adapter acknowledges it anyway, lest a network that
// redelivers until acknowledged stall behind it, and tells the user if it
// can. The core logs every refusal once; the adapter need not log it
// again. DeliverFunc honours ctx and is safe for concurrent use.
type DeliverFunc func(ctx context.Context, msg Inbound) error

// HealthChecker is implemented by a Messenger that can probe its network
// cheaply (getMe, auth.test). The core calls it every 30 s while
// the instance runs; a failure makes /readyz answer 503 and is shown with
// the instance, but does not stop deliveries. It must also work before
// Start, where `switchboard check --online` calls it to try the
// credentials: then it checks what it can without a connection (the
// token, with the same cheap call) and opens nothing that needs a Stop.
type HealthChecker interface {
	CheckHealth(ctx context.Context) error
}

// DialogObserver is implemented by a Messenger that wants to show changes
// of the dialog's state to the user (handed to an operator, closed). The
// core calls it when Selarti's flags for a chat change: after the Send of
// the message that carried the change is done, so that a note about it
// follows that message. It is advisory: an error is logged and the event
// is not retried.
type DialogObserver interface {
	DialogChanged(ctx context.Context, ev DialogEvent) error
}

// ExclusiveReceiver is implemented by a Messenger whose inbound
// connection the network allows only once per bot at a time: Telegram's
// long polling (a second getUpdates ends the first with 409 Conflict), a
// Discord gateway session. Several gateway replicas may share one store;
// each starts every instance, so that Send works on any of them, but only
// the replica holding the instance's lease in the store receives. With
// one gateway process (the embedded store), that process always holds it.
//
// When Exclusive reports true, Start prepares what Send needs and checks
// the credentials, and must not receive: the core calls Receive once
// Start succeeded, on the lease holder only. Receive opens the inbound
// connection and passes user messages to deliver until ctx ends (the
// lease was lost, or the instance stops); it then closes the connection
// and returns nil. Any other return is a failure: the core calls Receive
// again after a backoff while it holds the lease. Receive never runs
// twice at once, and Stop is called only after it returned. Exclusive
// decides per configuration (Telegram in webhook mode says false: every
// replica serves the webhook); when false, Receive is never called and
// Start receives as any Messenger does.
type ExclusiveReceiver interface {
	Exclusive() bool
	Receive(ctx context.Context, deliver DeliverFunc) error
}

// PrivateChatIDs is implemented by a Messenger whose native chat ids are
// secrets: whoever knows one can act as the user or read the
// conversation (a webchat session id is a bearer credential). When it
// returns true, the core never shows one of the instance's chat ids in
// full: its logs, the admin API and `switchboard deadletters` show the
// instance and ShortChatID of the native id ("web:3f9a2c…"), and replace
// the id with that in the error texts they show. Dead letters are still
// acted on by their numeric id. Selarti receives the full id as chat_id:
// it routes its replies back by it.
//
// What the core cannot see is the adapter's job: its own log lines show
// at most ShortChatID of an id, and its Inbound.ID and error texts do not
// contain one. The core asks once, right after the Factory returned, and
// treats the chats of an instance it has not built (disabled, or gone
// from the config) as private.
type PrivateChatIDs interface {
	PrivateChatIDs() bool
}

// ShortChatID is what the core shows of a private native chat id (see
// PrivateChatIDs): its first six characters and "…", or fewer for a short
// id, never more than a third of it.
func ShortChatID(native string) string {
	n := min(6, utf8.RuneCountInString(native)/3)
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(native[i:])
		i += size
	}
	return native[:i] + "…"
}

// HTTPService is implemented by a Messenger that serves HTTP on the
// gateway's listener (the webchat page, a Telegram webhook). The core
// mounts Handler under HTTPPrefix, which must start and end with "/" and
// must not collide with another instance's prefix or the core's own paths.
// The handler sees the full request path, prefix included.
type HTTPService interface {
	HTTPPrefix() string
	http.Handler
}

// LandingPage is optionally implemented by an HTTPService that serves a
// page for people (the webchat). The gateway redirects GET / to the
// LandingPath of the first enabled instance that has one, so that the
// gateway's own address leads somewhere; the path must lie under the
// instance's HTTPPrefix. A webhook receiver does not implement it.
type LandingPage interface {
	LandingPath() string
}

// Factory builds one adapter instance. It decodes and validates
// inst.Config (use DecodeConfig) and does no network I/O: connecting
// happens in Start. `switchboard check` runs every factory, so a factory
// error is a configuration error.
type Factory func(inst Instance) (Messenger, error)

// Instance is everything the core gives a Factory.
type Instance struct {
	// Name is the instance name from the config ("tg-sales"). It is
	// unique and is also the chat-id namespace.
	Name string
	// Kind is the adapter kind ("telegram").
	Kind string
	// Config is this instance's own "config:" block, not yet decoded.
	Config RawConfig
	// Logger already carries adapter=<kind> and instance=<name>.
	Logger *slog.Logger
	// HTTP is a shared client with timeouts; tests may swap it.
	HTTP *http.Client
	// PublicURL is the gateway's externally reachable base URL (no
	// trailing slash), for adapters that register webhooks.
	PublicURL string
	// DataDir is a directory this instance may keep files in. The core
	// creates it before Start (never during `switchboard check`), so use
	// it from Start on.
	DataDir string
	// Metrics counts what the adapter refuses (see Metrics); nil in a
	// hand-built Instance: use MetricsOf.
	Metrics Metrics
	// Journals is this instance's conversation storage in the gateway's
	// shared store, when several gateway replicas share one (see
	// Journals); nil when the gateway runs alone on its embedded store.
	Journals Journals
}

// RawConfig is an adapter's undecoded config block.
type RawConfig map[string]any
