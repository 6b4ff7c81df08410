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
	// events queues dialog events for runEvents, which shows them one at a
	// time so that a user sees "operator joined" before "closed".
	events chan dialogJob
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
		chats: newChatCache(chatCacheSize, chatCacheTTL), events: make(chan dialogJob, eventQueueSize)}
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
		return errDuplicate
	}
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
	if err := r.updateDialog(ctx, inst, chat, dialog); err != nil {
		return err
	}
	for _, w := range wh.Warnings {
		inst.log.Warn("odd webhook field", "chat", chat.Native, "message_id", wh.MessageID, "warning", w)
	}

	if wh.MessageType == selarti.TypeUser {
		// The "All messages" webhook reports the user's own message back.
		// Sending it to the user would echo every message (and on
		// networks that relay bot messages, loop).
		r.metrics.message(dirOut, inst.name, OutcomeEchoSuppressed)
		inst.log.Debug("user echo suppressed", "chat", chat.Native, "message_id", wh.MessageID)
		return nil
	}
	payload, err := json.Marshal(outboundRecord{
		MessageID: wh.MessageID,
		Text:      wh.MessageText,
		From:      core.Sender(wh.MessageType),
		Dialog:    dialogFlags(dialog),
	})
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	m := &store.Message{
		Dir:       store.ToUser,
		Chat:      chat.String(),
		DedupeKey: wh.MessageID,
		Payload:   payload,
	}
	_, err = r.queue(ctx, inst, m, r.toUser)
	return err
}

// updateDialog checks that a user wrote from chat (else ErrUnknownChat),
// stores the chat's dialog flags and, when they changed, logs the change
// and tells the adapter if it wants to know.
func (r *Router) updateDialog(ctx context.Context, inst *instance, chat ChatID, now core.DialogState) error {
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
		return fmt.Errorf("update dialog state: %w", err)
	}
	if !info.Known {
		return fmt.Errorf("%w %q", core.ErrUnknownChat, id)
	}
	prev := dialogFromFlags(info.Flags)
	if prev == now {
		return nil
	}
	for _, c := range dialogChanges(prev, now) {
		r.metrics.dialogEvents.WithLabelValues(c.flag, fmt.Sprint(c.value)).Inc()
	}
	inst.log.Info("dialog state changed", "chat", chat.Native,
		"operator", now.Operator, "closed", now.Closed, "got_contact", now.GotContact,
		"interest", now.Interest, "success", now.Success)
	obs, ok := inst.messenger.(core.DialogObserver)
	if !ok || !inst.running() {
		return nil
	}
	// Possibly slow (a network call): shown outside the webhook request,
	// so that Selarti gets its 2xx at once.
	select {
	case r.events <- dialogJob{inst: inst, obs: obs, ev: core.DialogEvent{ChatID: chat.Native, Previous: prev, Current: now}}:
	default:
		inst.log.Warn("dialog event queue full, event not shown", "chat", chat.Native)
	}
	return nil
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
		return fmt.Errorf("instance %s is %s: %w", inst.name, inst.snapshot().State, core.ErrNotConnected)
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
	})
}

// instanceOf returns the instance name of a queued message, for labels.
func instanceOf(m store.Message) string {
	name, _, _ := strings.Cut(m.Chat, ":")
	return name
}
