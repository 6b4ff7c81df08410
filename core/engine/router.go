package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/kit/text"
)

// ErrUnknownInstance means a namespaced chat id names no configured,
// enabled adapter instance.
var ErrUnknownInstance = errors.New("unknown adapter instance")

// errBadChatID marks an external_chat_id that does not parse.
var errBadChatID = errors.New("malformed chat id")

// SelartiSender sends a user's message to Selarti; *selarti.Client is one.
type SelartiSender interface {
	Send(ctx context.Context, m selarti.Message) error
}

// Router moves messages between the adapter instances and Selarti, through
// the durable outbox: a user message is written to the store before the
// adapter may acknowledge it, a Selarti webhook before the gateway answers
// 2xx, and the dispatchers deliver both from there.
type Router struct {
	log       *slog.Logger
	store     store.Store
	selarti   SelartiSender
	metrics   *Metrics
	instances map[string]*instance

	toSelarti *dispatcher
	toUser    *dispatcher

	// chats caches what the store knows of the chats active lately.
	chats *chatCache
	// notes orders dialog events after the messages that carried them.
	notes noteOrder
	// events queues dialog events for runEvents, which shows them one at a
	// time so that a user sees "operator joined" before "closed".
	events chan dialogJob
	// deliveries queues delivery reports for runDeliveries (see
	// core.DeliveryObserver), bounded like events.
	deliveries chan deliveryJob
	// echoes settles sends whose outcome is unknown by Selarti's user
	// echoes; nil when selarti.echo_window is 0 (or an idempotency key
	// makes repeats harmless).
	echoes *echoReconciler
	// heads reads a chat's head in a store that several replicas share
	// (see settleHeadByEcho); nil with a store one process owns.
	heads store.Heads
}

// dialogJob is one dialog event for one instance.
type dialogJob struct {
	inst *instance
	obs  core.DialogObserver
	ev   core.DialogEvent
}

// eventQueueSize bounds the dialog events waiting to be shown. Events are
// advisory (the flags are stored and logged either way); past this bound a
// new one is logged and skipped rather than block Selarti's webhook.
const eventQueueSize = 1024

func newRouter(log *slog.Logger, st store.Store, sel SelartiSender, metrics *Metrics, instances map[string]*instance) *Router {
	return &Router{log: log, store: st, selarti: sel, metrics: metrics, instances: instances,
		chats: newChatCache(chatCacheSize, chatCacheTTL), events: make(chan dialogJob, eventQueueSize),
		deliveries: make(chan deliveryJob, eventQueueSize)}
}

// runEvents shows dialog events in the order they happened, until ctx
// ends; then it shows what is already queued and returns.
func (r *Router) runEvents(ctx context.Context) {
	show := func(j dialogJob) {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := j.obs.DialogChanged(ectx, j.ev); err != nil {
			j.inst.log.Warn("dialog event not shown", "chat", j.ev.ChatID, "err", err)
		}
	}
	for {
		select {
		case j := <-r.events:
			show(j)
		case <-ctx.Done():
			for {
				select {
				case j := <-r.events:
					show(j)
				default:
					return
				}
			}
		}
	}
}

// inboundRecord is what the inbound outbox keeps of a user message. The
// chat id is the store message's Chat.
type inboundRecord struct {
	Text     string `json:"t"`
	Name     string `json:"n,omitempty"`
	Username string `json:"u,omitempty"`
	Phone    string `json:"p,omitempty"`
}

// outboundRecord is what the outbound outbox keeps of a Selarti message.
type outboundRecord struct {
	MessageID string      `json:"id"`
	Text      string      `json:"t"`
	From      core.Sender `json:"f"`
	Dialog    uint32      `json:"d"`
	// Prev, when set, is the dialog's flags before this message changed
	// them: the change is shown once the message is delivered (or given
	// up), since the user must read "Connecting you to a human..." before
	// the note that a human has joined.
	Prev *uint32 `json:"p,omitempty"`
}

// deliverFunc returns the DeliverFunc handed to one instance's Start.
func (r *Router) deliverFunc(inst *instance) core.DeliverFunc {
	return func(ctx context.Context, msg core.Inbound) error {
		err := r.accept(ctx, inst, msg)
		if err != nil && !errors.Is(err, errDuplicate) {
			r.metrics.message(dirIn, inst.name, OutcomeRejected)
			inst.log.Warn("inbound message rejected", "chat", msg.ChatID, "err", err)
			return err
		}
		return nil
	}
}

// errDuplicate is accept's way of saying "already have it": not an error
// for the adapter, which acknowledges the redelivery.
var errDuplicate = errors.New("duplicate")

func (r *Router) accept(ctx context.Context, inst *instance, msg core.Inbound) error {
	chat, err := NewChatID(inst.name, msg.ChatID)
	if err != nil {
		return core.Permanent(err)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return core.Permanent(errors.New("empty message text"))
	}
	if len(msg.Text) > core.MaxInboundTextBytes {
		return core.Permanent(fmt.Errorf("message text of %d bytes exceeds %d", len(msg.Text), core.MaxInboundTextBytes))
	}
	if !utf8.ValidString(msg.Text) {
		return core.Permanent(errors.New("message text is not valid UTF-8"))
	}
	payload, err := json.Marshal(inboundRecord{
		Text:     msg.Text,
		Name:     text.Clip(msg.User.Name, 256),
		Username: text.Clip(msg.User.Username, 256),
		Phone:    text.Clip(msg.User.Phone, 64),
	})
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	m := &store.Message{
		Dir:       store.ToSelarti,
		Chat:      chat.String(),
		Payload:   payload,
		CreatedAt: msg.ReceivedAt,
	}
	if msg.ID != "" {
		m.DedupeKey = chat.Instance + ":" + msg.ID
	}
	dup, err := r.queue(ctx, inst, m, r.toSelarti)
	if err != nil {
		return err
	}
	if dup {
		if msg.Retry {
			return r.replayOnRequest(ctx, inst, m.DedupeKey)
		}
		return errDuplicate
	}
	return nil
}

// replayOnRequest queues again the dead letter with dedupe key key, as
// its user asked (core.Inbound.Retry). A message that is not dead (still
// pending, or delivered meanwhile) is a plain duplicate.
func (r *Router) replayOnRequest(ctx context.Context, inst *instance, key string) error {
	m, err := r.store.FindByKey(ctx, store.ToSelarti, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("find the message to retry: %w", err)
	}
	if err != nil || m.State != store.Dead {
		return errDuplicate
	}
	if err := r.store.Replay(ctx, m.ID); err != nil {
		return fmt.Errorf("queue the message again: %w", err)
	}
	inst.log.Info("dead letter queued again at the user's request", "chat", m.Chat, "seq", m.ID)
	r.toSelarti.notify()
	return nil
}

// queue writes m to its outbox and has the outbox's dispatcher deliver
// it: at once on a free worker when its chat is idle (see dispatcher),
// else through the dispatcher's loop. A duplicate (same dedupe key) is
// counted and dropped: dup is true.
func (r *Router) queue(ctx context.Context, inst *instance, m *store.Message, d *dispatcher) (dup bool, err error) {
	claimed := false
	if d.reserve() {
		dup, claimed, err = r.store.EnqueueClaim(ctx, m, time.Now(), d.lease())
		if !claimed {
			d.release()
		}
	} else {
		dup, err = r.store.Enqueue(ctx, m)
	}
	if err != nil {
		return false, fmt.Errorf("queue message: %w", err)
	}
	label := directionLabel(m.Dir)
	if dup {
		r.metrics.message(label, inst.name, OutcomeDuplicate)
		inst.log.Debug("duplicate message dropped", "direction", label, "chat", m.Chat, "key", m.DedupeKey)
		return true, nil
	}
	r.metrics.message(label, inst.name, OutcomeAccepted)
	inst.log.Debug("message queued", "direction", label, "chat", m.Chat, "key", m.DedupeKey, "seq", m.ID, "claimed", claimed)
	if claimed {
		d.start(*m)
	} else {
		d.notify()
	}
	return false, nil
}

// HandleWebhook takes one parsed Selarti webhook: it updates the dialog's
// flags, drops the user's own message (loop prevention) and queues bot and
// operator messages for their adapter instance. A nil error means the
// message is safely queued (or deliberately not delivered); the receiver
// may then answer 2xx.
func (r *Router) HandleWebhook(ctx context.Context, wh selarti.Webhook) error {
	chat, err := ParseChatID(wh.ExternalChatID)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadChatID, err)
	}
	inst := r.instances[chat.Instance]
	if inst == nil || !inst.enabled {
		return fmt.Errorf("%w %q", ErrUnknownInstance, chat.Instance)
	}
	dialog := dialogFromWebhook(wh)
	ev, changed, err := r.updateDialog(ctx, inst, chat, dialog)
	if err != nil {
		return err
	}
	for _, w := range wh.Warnings {
		inst.log.Warn("odd webhook field", "chat", chat.Native, "message_id", wh.MessageID, "warning", w)
	}

	if wh.MessageType == selarti.TypeUser {
		// The "All messages" webhook reports the user's own message back.
		// Sending it to the user would echo every message (and on
		// networks that relay bot messages, loop). It is proof that
		// Selarti took the message, though.
		if changed {
			// No message of its own to wait for; still after the notes
			// of messages queued before it (see noteOrder).
			r.notes.show(r, inst, ev)
		}
		if r.echoes != nil {
			if err := r.settleByEcho(ctx, inst, chat, wh.MessageText); err != nil {
				return err
			}
		}
		r.metrics.message(dirOut, inst.name, OutcomeEchoSuppressed)
		inst.log.Debug("user echo suppressed", "chat", chat.Native, "message_id", wh.MessageID)
		return nil
	}
	rec := outboundRecord{
		MessageID: wh.MessageID,
		Text:      wh.MessageText,
		From:      core.Sender(wh.MessageType),
		Dialog:    dialogFlags(dialog),
	}
	if changed {
		prev := dialogFlags(ev.Previous)
		rec.Prev = &prev
	}
	payload, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	m := &store.Message{
		Dir:       store.ToUser,
		Chat:      chat.String(),
		DedupeKey: wh.MessageID,
		Payload:   payload,
	}
	if changed {
		// Before queue: the fast path may deliver it before queue returns.
		r.notes.wait(chat.String())
	}
	dup, err := r.queue(ctx, inst, m, r.toUser)
	if changed && (err != nil || dup) {
		// Not queued, so its note will not come after it: shown now.
		r.notes.show(r, inst, ev)
		r.notes.done(r, chat.String())
	}
	return err
}

// updateDialog checks that a user wrote from chat (else ErrUnknownChat),
// stores the chat's dialog flags and, when they changed, logs the change
// and returns it as an event for the caller to show (see noteOrder).
func (r *Router) updateDialog(ctx context.Context, inst *instance, chat ChatID, now core.DialogState) (core.DialogEvent, bool, error) {
	id := chat.String()
	mu := r.chats.lock(id)
	mu.Lock()
	info, err := r.chatInfo(ctx, id)
	if err == nil && info.Known && info.Flags != dialogFlags(now) {
		if err = r.store.SetDialogFlags(ctx, id, dialogFlags(now)); err == nil {
			r.chats.put(id, store.ChatInfo{Known: true, Flags: dialogFlags(now)})
		}
	}
	mu.Unlock()
	if err != nil {
		return core.DialogEvent{}, false, fmt.Errorf("update dialog state: %w", err)
	}
	if !info.Known {
		return core.DialogEvent{}, false, fmt.Errorf("%w %q", core.ErrUnknownChat, id)
	}
	prev := dialogFromFlags(info.Flags)
	if prev == now {
		return core.DialogEvent{}, false, nil
	}
	for _, c := range dialogChanges(prev, now) {
		r.metrics.dialogEvents.WithLabelValues(c.flag, fmt.Sprint(c.value)).Inc()
	}
	inst.log.Info("dialog state changed", "chat", chat.Native,
		"operator", now.Operator, "closed", now.Closed, "got_contact", now.GotContact,
		"interest", now.Interest, "success", now.Success)
	return core.DialogEvent{ChatID: chat.Native, Previous: prev, Current: now}, true, nil
}

// showDialog hands ev to the instance's Messenger if it wants to know.
// Possibly slow (a network call): shown by runEvents, outside the webhook
// request, so that Selarti gets its 2xx at once.
func (r *Router) showDialog(inst *instance, ev core.DialogEvent) {
	obs, ok := inst.messenger.(core.DialogObserver)
	if !ok || !inst.running() {
		return
	}
	select {
	case r.events <- dialogJob{inst: inst, obs: obs, ev: ev}:
	default:
		inst.log.Warn("dialog event queue full, event not shown", "chat", ev.ChatID)
	}
}

// chatInfo returns what the store knows of chat, from the cache when it
// can. The caller holds the chat's lock.
func (r *Router) chatInfo(ctx context.Context, chat string) (store.ChatInfo, error) {
	if info, ok := r.chats.get(chat); ok {
		return info, nil
	}
	info, err := r.store.Chat(ctx, chat)
	if err != nil {
		return store.ChatInfo{}, fmt.Errorf("look up chat: %w", err)
	}
	r.chats.put(chat, info)
	return info, nil
}

// sendToSelarti is the inbound dispatcher's attempt: one user message to
// Selarti.
func (r *Router) sendToSelarti(ctx context.Context, m store.Message) error {
	chat, err := ParseChatID(m.Chat)
	if err != nil {
		return core.Permanent(err)
	}
	inst := r.instances[chat.Instance]
	if inst == nil {
		return core.Permanent(fmt.Errorf("%w %q (removed from the config?)", ErrUnknownInstance, chat.Instance))
	}
	var rec inboundRecord
	if err := json.Unmarshal(m.Payload, &rec); err != nil {
		return core.Permanent(fmt.Errorf("decode queued message: %w", err))
	}
	if r.echoes != nil {
		ambiguous := func() bool { return r.sameTextDelivered(ctx, m, rec.Text) }
		switch v, until := r.echoes.begin(m.Chat, m.ID, rec.Text, m.InDoubt, ambiguous); v {
		case proven:
			r.metrics.reconciled.WithLabelValues(reconcileEcho).Inc()
			inst.log.Info("Selarti's echo proves delivery: not sent again", "chat", chat.Native, "seq", m.ID)
			return nil
		case awaitIt:
			return &deferral{until: until, inDoubt: true, reason: errAwaitingEcho}
		default:
			if m.InDoubt {
				r.metrics.reconciled.WithLabelValues(reconcileResent).Inc()
				inst.log.Info("no echo from Selarti within the window: sending again", "chat", chat.Native, "seq", m.ID)
			}
		}
	}
	err = r.selarti.Send(ctx, selarti.Message{
		TaskID:   inst.taskID,
		ChatID:   m.Chat,
		Text:     rec.Text,
		Name:     rec.Name,
		Username: rec.Username,
		Phone:    rec.Phone,
		// Stable across retries and restarts: the network's own message id
		// where there is one, else the outbox's.
		IdempotencyKey: cmp.Or(m.DedupeKey, fmt.Sprintf("sb-%d", m.ID)),
	})
	if r.echoes != nil {
		switch {
		case err == nil:
			r.echoes.sent(m.Chat, m.ID)
		case errors.Is(err, selarti.ErrOutcomeUnknown):
			r.metrics.reconciled.WithLabelValues(reconcileInDoubt).Inc()
			if ok, until := r.echoes.unknown(m.Chat, m.ID); !ok {
				inst.log.Warn("send to Selarti timed out after it went out: waiting for its echo before sending again",
					"chat", chat.Native, "seq", m.ID, "window", r.echoes.window, "err", err)
				return &deferral{until: until, inDoubt: true, reason: err}
			}
			r.metrics.reconciled.WithLabelValues(reconcileEcho).Inc()
			inst.log.Info("send to Selarti timed out, but Selarti's echo proves delivery: not sent again", "chat", chat.Native, "seq", m.ID, "err", err)
			return nil
		default:
			r.echoes.failed(m.Chat, m.ID)
		}
	}
	if err == nil {
		return nil
	}
	if wait, ok := selarti.RetryAfter(err); ok {
		return &core.RetryAfterError{Wait: wait, Err: err}
	}
	if selarti.IsPermanent(err) {
		return core.Permanent(err)
	}
	return err
}

// settleByEcho takes a user echo. When it proves the delivery of a
// message the store may not have delivered yet, the message is marked
// delivered before the webhook is answered (see echoReconciler.echo).
func (r *Router) settleByEcho(ctx context.Context, inst *instance, chat ChatID, text string) error {
	id, inDoubt := r.echoes.echo(chat.String(), text)
	if id == 0 {
		return r.settleHeadByEcho(ctx, inst, chat, text)
	}
	err := r.store.Delivered(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("record a delivery proven by its echo: %w", err)
	}
	if inDoubt {
		r.metrics.reconciled.WithLabelValues(reconcileEcho).Inc()
		inst.log.Info("Selarti's echo proves delivery: not sent again", "chat", chat.Native, "seq", id)
	}
	return nil
}

// settleHeadByEcho takes an echo this replica expected nothing for, on a
// store several replicas share: another replica sent the message (its
// echo came here, as a load balancer would have it), or died sending it.
// Per-chat order makes the chat's head the only message of the chat that
// can be in flight, so the echo of its text proves the head delivered,
// unless the chat delivered another message with that text lately, whose
// late echo this may be (sameTextDelivered). The head is marked delivered
// before the webhook is answered, as in settleByEcho; the replica sending
// it, if any, then finds it settled.
func (r *Router) settleHeadByEcho(ctx context.Context, inst *instance, chat ChatID, text string) error {
	if r.heads == nil {
		return nil
	}
	m, err := r.heads.Head(ctx, store.ToSelarti, chat.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up the message an echo may prove delivered: %w", err)
	}
	var rec inboundRecord
	if json.Unmarshal(m.Payload, &rec) != nil || strings.TrimSpace(rec.Text) != strings.TrimSpace(text) {
		return nil
	}
	if r.sameTextDelivered(ctx, m, rec.Text) {
		return nil
	}
	if err := r.store.Delivered(ctx, m.ID); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil // its sender recorded it meanwhile
		}
		return fmt.Errorf("record a delivery proven by its echo: %w", err)
	}
	if m.InDoubt {
		r.metrics.reconciled.WithLabelValues(reconcileEcho).Inc()
		inst.log.Info("Selarti's echo proves delivery: not sent again", "chat", chat.Native, "seq", m.ID)
	} else {
		inst.log.Debug("delivery recorded from Selarti's echo, which came to this replica", "chat", chat.Native, "seq", m.ID)
	}
	return nil
}

// errAwaitingEcho is the reason of a deferral while a message in doubt
// waits for Selarti's echo.
var errAwaitingEcho = errors.New("waiting for Selarti's echo of a send whose outcome is unknown")

// sameTextDelivered reports whether chat delivered another message with
// m's text lately: then an echo of that text, after a restart, could be
// that message's rather than m's (see echoReconciler). On a store error
// it says yes, the side where nothing is lost.
func (r *Router) sameTextDelivered(ctx context.Context, m store.Message, text string) bool {
	recent, err := r.store.DeliveredSince(ctx, store.ToSelarti, m.Chat, time.Now().Add(-r.echoes.expectFor), maxExpectedEchoes)
	if err != nil {
		r.log.Warn("look up recent messages for echo reconciliation", "chat", m.Chat, "err", err)
		return true
	}
	text = strings.TrimSpace(text)
	for _, p := range recent {
		var rec inboundRecord
		if p.ID != m.ID && json.Unmarshal(p.Payload, &rec) == nil && strings.TrimSpace(rec.Text) == text {
			return true
		}
	}
	return false
}

// sendToUser is the outbound dispatcher's attempt: one Selarti message to
// its adapter instance.
func (r *Router) sendToUser(ctx context.Context, m store.Message) error {
	chat, err := ParseChatID(m.Chat)
	if err != nil {
		return core.Permanent(err)
	}
	inst := r.instances[chat.Instance]
	if inst == nil || !inst.enabled {
		return core.Permanent(fmt.Errorf("%w %q", ErrUnknownInstance, chat.Instance))
	}
	if !inst.running() {
		// Not an attempt: a slow restart must not dead-letter replies.
		return &deferral{keepDoubt: m.InDoubt, reason: fmt.Errorf("instance %s is %s: %w", inst.name, inst.snapshot().State, core.ErrNotConnected)}
	}
	var rec outboundRecord
	if err := json.Unmarshal(m.Payload, &rec); err != nil {
		return core.Permanent(fmt.Errorf("decode queued message: %w", err))
	}
	return inst.messenger.Send(ctx, core.Outbound{
		ChatID: chat.Native,
		ID:     rec.MessageID,
		Text:   rec.Text,
		From:   rec.From,
		Dialog: dialogFromFlags(rec.Dialog),
		// Attempts counts failed attempts; InDoubt marks one in flight
		// when a process died (store.Message.InDoubt).
		MaybeSent: m.Attempts > 0 || m.InDoubt,
	})
}

// instanceOf returns the instance name of a queued message, for labels.
func instanceOf(m store.Message) string {
	name, _, _ := strings.Cut(m.Chat, ":")
	return name
}
