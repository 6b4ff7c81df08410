package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/core/store"
)

// deliveryJob is one delivery report for one instance (see
// core.DeliveryObserver).
type deliveryJob struct {
	inst *instance
	obs  core.DeliveryObserver
	ev   core.DeliveryEvent
}

// reportDelivery tells the instance that handed m over what became of
// its attempt, when its Messenger observes deliveries. Only results the
// store recorded are reported: a result it lost is attempted again.
func (r *Router) reportDelivery(m store.Message, res attemptResult) {
	if !res.recorded || m.DedupeKey == "" {
		return
	}
	chat, err := ParseChatID(m.Chat)
	if err != nil {
		return
	}
	inst := r.instances[chat.Instance]
	if inst == nil {
		return
	}
	obs, ok := inst.messenger.(core.DeliveryObserver)
	if !ok {
		if res.outcome == OutcomeDead && inst.undeliveredNotice != "" {
			r.noticeUndelivered(inst, chat, m)
		}
		return
	}
	ev := core.DeliveryEvent{
		ChatID:   chat.Native,
		ID:       strings.TrimPrefix(m.DedupeKey, chat.Instance+":"),
		Attempts: m.Attempts + 1,
		Reason:   deliveryReason(res.err),
	}
	switch res.outcome {
	case OutcomeDelivered:
		if m.Attempts == 0 && m.LastError == "" {
			return // at the first attempt: the adapter's ack said it all
		}
		ev.State, ev.Attempts, ev.Reason = core.DeliveryDelivered, m.Attempts, ""
	case OutcomeRetry:
		ev.State, ev.RetryAt = core.DeliveryDelayed, res.next
	case OutcomeDead:
		ev.State = core.DeliveryFailed
	default:
		// A deferral waits for Selarti's echo or for a restart: not a
		// failure the user should be told of.
		return
	}
	select {
	case r.deliveries <- deliveryJob{inst: inst, obs: obs, ev: ev}:
	default:
		inst.log.Warn("delivery report skipped: too many waiting", "chat", m.Chat, "seq", m.ID, "state", string(ev.State))
	}
}

// maxUndeliveredNotice bounds AdapterConfig.UndeliveredNotice: a short
// sentence, well within every network's message limit.
const maxUndeliveredNotice = 1000

// noticeUndelivered queues the instance's undelivered notice for the user
// whose message m became a dead letter, as a bot message through the
// outbox (so it is retried like a reply). Its dedupe key is m's seq: m
// dead-lettered again after a retry is told once.
func (r *Router) noticeUndelivered(inst *instance, chat ChatID, m store.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := r.store.Chat(ctx, chat.String())
	if err != nil {
		inst.log.Error("undelivered notice not queued", "chat", m.Chat, "seq", m.ID, "err", err)
		return
	}
	id := fmt.Sprintf("switchboard-undelivered-%d", m.ID)
	payload, err := json.Marshal(outboundRecord{MessageID: id, Text: inst.undeliveredNotice, From: core.SenderBot, Dialog: info.Flags})
	if err != nil {
		inst.log.Error("undelivered notice not queued", "chat", m.Chat, "seq", m.ID, "err", err)
		return
	}
	notice := &store.Message{Dir: store.ToUser, Chat: chat.String(), DedupeKey: id, Payload: payload}
	if _, err := r.queue(ctx, inst, notice, r.toUser); err != nil {
		inst.log.Error("undelivered notice not queued", "chat", m.Chat, "seq", m.ID, "err", err)
	}
}

// deliveryReason says in a user's words why an attempt failed.
func deliveryReason(err error) core.DeliveryReason {
	var api *selarti.APIError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &api) && api.Status == 429:
		return core.ReasonThrottled
	case core.IsPermanent(err):
		return core.ReasonRefused
	default:
		return core.ReasonUnreachable
	}
}

// runDeliveries shows delivery reports in the order they happened, until
// ctx ends; then it shows what is already queued and returns.
func (r *Router) runDeliveries(ctx context.Context) {
	show := func(j deliveryJob) {
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := j.obs.DeliveryChanged(ectx, j.ev); err != nil {
			j.inst.log.Warn("delivery report not shown", "chat", j.ev.ChatID, "state", string(j.ev.State), "err", err)
		}
	}
	for {
		select {
		case j := <-r.deliveries:
			show(j)
		case <-ctx.Done():
			for {
				select {
				case j := <-r.deliveries:
					show(j)
				default:
					return
				}
			}
		}
	}
}
