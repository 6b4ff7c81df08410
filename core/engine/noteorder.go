package engine

import (
	"cmp"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// noteOrder shows a dialog change after the message that carried it.
// Selarti marks a dialog as handed to an operator in the webhook of the
// bot's "Connecting you to a human..." itself; shown at once, the
// adapter's note "You are now chatting with a human operator" would reach
// the user before that message, which is still in the outbox. So the
// change rides in the message's record (outboundRecord.Prev) and is shown
// when the dispatcher is done with it (delivered or dead: afterDelivery).
// A change that comes with no message to deliver (a user's echo, a
// message dropped as a duplicate) waits behind the chat's changes still
// riding, so that "operator joined" still comes before "closed".
//
// The counts live in memory only: after a restart the records still
// carry their changes, and only the holding of rider-less ones is lost,
// which the notes' advisory nature allows. With replicas on one store,
// another replica may deliver the message, and this one never hears it
// done: so nothing is held longer than noteHoldMax.
type noteOrder struct {
	mu      sync.Mutex
	riding  map[string]int         // chat → messages carrying a change, not yet done
	waiting map[string][]dialogJob // chat → rider-less changes held behind them
	timers  map[string]*time.Timer // chat → expire of its held changes
	holdMax time.Duration          // 0: noteHoldMax
}

// noteHoldMax bounds how long a change waits behind a message: far more
// than a delivery takes, short enough that a note is not lost from sight.
const noteHoldMax = 30 * time.Second

// wait notes that a message carrying a change for chat is being queued.
func (o *noteOrder) wait(chat string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.riding == nil {
		o.riding = map[string]int{}
	}
	o.riding[chat]++
}

// done notes that one message carrying a change for chat is done with,
// and shows what was held behind the last of them.
func (o *noteOrder) done(r *Router, chat string) {
	o.mu.Lock()
	var release []dialogJob
	if o.riding[chat] > 0 {
		o.riding[chat]--
	}
	if o.riding[chat] == 0 {
		delete(o.riding, chat)
		release = o.waiting[chat]
		delete(o.waiting, chat)
		if t := o.timers[chat]; t != nil {
			t.Stop()
			delete(o.timers, chat)
		}
	}
	o.mu.Unlock()
	for _, j := range release {
		r.showDialog(j.inst, j.ev)
	}
}

// show shows ev now, or holds it behind the chat's riding changes.
func (o *noteOrder) show(r *Router, inst *instance, ev core.DialogEvent) {
	chat := inst.name + ":" + ev.ChatID
	o.mu.Lock()
	if o.riding[chat] > 0 {
		if o.waiting == nil {
			o.waiting = map[string][]dialogJob{}
		}
		if len(o.waiting[chat]) == 0 {
			if o.timers == nil {
				o.timers = map[string]*time.Timer{}
			}
			o.timers[chat] = time.AfterFunc(cmp.Or(o.holdMax, noteHoldMax), func() { o.expire(r, chat) })
		}
		o.waiting[chat] = append(o.waiting[chat], dialogJob{inst: inst, ev: ev})
		o.mu.Unlock()
		return
	}
	o.mu.Unlock()
	r.showDialog(inst, ev)
}

// expire shows what is held for chat, and forgets its riding changes,
// once noteHoldMax has passed.
func (o *noteOrder) expire(r *Router, chat string) {
	o.mu.Lock()
	release := o.waiting[chat]
	delete(o.waiting, chat)
	delete(o.riding, chat)
	delete(o.timers, chat)
	o.mu.Unlock()
	for _, j := range release {
		r.showDialog(j.inst, j.ev)
	}
}

// afterDelivery is the outbound dispatcher's onResult: once a message
// that carried a dialog change is delivered or given up as a dead letter,
// and the store knows it, the change is shown. A result the store did not
// record is attempted again, and shown then.
func (r *Router) afterDelivery(m store.Message, res attemptResult) {
	if !res.recorded || (res.outcome != OutcomeDelivered && res.outcome != OutcomeDead) {
		return
	}
	var rec outboundRecord
	if json.Unmarshal(m.Payload, &rec) != nil || rec.Prev == nil {
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
	r.showDialog(inst, core.DialogEvent{ChatID: chat.Native, Previous: dialogFromFlags(*rec.Prev), Current: dialogFromFlags(rec.Dialog)})
	r.notes.done(r, m.Chat)
}
