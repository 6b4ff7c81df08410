package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// echoReconciler makes sends to Selarti exactly once without an
// idempotency key. Selarti's "All messages" webhook reports every user
// message back (message_type user, the same chat and text): that echo is
// proof that Selarti took the message. So a send whose outcome is unknown
// (it timed out after the request went out, or it was in flight when the
// process died, see store.Message.InDoubt) is not repeated at once: the
// chat waits up to window for the echo, takes it as delivery when it
// comes, and sends again only when it does not.
//
// Per-chat order makes the match unambiguous: a chat has one message in
// flight at a time (current). Echoes of messages already delivered may
// come late, after the chat's next message went out; they are matched
// first, oldest first, against the chat's expected echoes, so that an
// identical text sent twice is never taken for the second one's proof.
// An echo that matches nothing is kept for a while (spare): after a
// restart it may come before the message in doubt is claimed.
//
// State is in memory: a crash forgets the expected echoes, so after a
// restart a late echo of an earlier identical text could pass for the
// message in doubt. To stay on the safe side, a message in doubt found
// after a restart takes a spare echo as proof only when its text differs
// from every other message the chat delivered in the last expectFor (the
// router checks, see recentTexts); otherwise it is sent again (at least
// once, as without reconciliation).
type echoReconciler struct {
	window    time.Duration // how long a message in doubt waits for its echo
	expectFor time.Duration // how long a delivered message's echo is awaited
	spareFor  time.Duration // how long an unmatched echo is kept
	now       func() time.Time

	mu    sync.Mutex
	chats map[string]*chatEchoes
}

// chatEchoes is what the reconciler knows of one chat.
type chatEchoes struct {
	current  *echoAttempt // the message in flight or in doubt; nil when none
	expected []pendingEcho
	spare    []pendingEcho
}

// echoAttempt is the chat's message being sent, or waiting for its echo.
type echoAttempt struct {
	id     int64
	text   string
	echoed bool
	// deadline, when not zero, is the end of the wait for the echo; the
	// message is not in flight meanwhile.
	deadline time.Time
}

// pendingEcho is an echo awaited (expected) or unclaimed (spare).
type pendingEcho struct {
	text  string
	until time.Time
	// Of an expected echo: the message, and whether the store has it
	// delivered yet.
	id       int64
	recorded bool
}

// Bounds of the per-chat lists: a webhook type without echoes would
// otherwise grow expected by one entry per message.
const (
	maxExpectedEchoes = 32
	maxSpareEchoes    = 8
)

func newEchoReconciler(window time.Duration) *echoReconciler {
	return &echoReconciler{
		window:    window,
		expectFor: max(time.Minute, 6*window),
		spareFor:  max(30*time.Second, 3*window),
		now:       time.Now,
		chats:     make(map[string]*chatEchoes),
	}
}

// verdict is what begin decides for one attempt.
type verdict int

const (
	sendIt  verdict = iota // send the message
	proven                 // Selarti's echo proved delivery: do not send
	awaitIt                // wait for the echo until the time returned
)

// pollEvery is how often a message waiting for its echo is looked at
// again: the echo usually comes within tens of milliseconds, and the wait
// should end then, not at the end of the window.
func (e *echoReconciler) pollEvery() time.Duration {
	return min(max(e.window/10, 100*time.Millisecond), time.Second)
}

// begin is called before an attempt of message id (text) of chat; inDoubt
// is the store's flag. ambiguous says whether a spare echo could be
// another message's (see recentTexts): it is called only when needed.
// With awaitIt, the returned time is when to look again.
func (e *echoReconciler) begin(chat string, id int64, text string, inDoubt bool, ambiguous func() bool) (verdict, time.Time) {
	text = strings.TrimSpace(text)
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.chat(chat, now)
	if cur := c.current; cur != nil && cur.id == id {
		switch {
		case cur.echoed:
			c.current = nil
			e.forgetIfIdle(chat, c)
			return proven, time.Time{}
		case !cur.deadline.IsZero() && now.Before(cur.deadline):
			return awaitIt, e.nextLook(now, cur.deadline)
		}
		cur.deadline = time.Time{} // the wait is over: send again
		return sendIt, time.Time{}
	}
	cur := &echoAttempt{id: id, text: text}
	c.current = cur
	if !inDoubt {
		return sendIt, time.Time{}
	}
	// In doubt, and this process never saw the attempt: a restart.
	if i := indexOf(c.spare, text); i >= 0 {
		c.spare = deleteAt(c.spare, i)
		if ambiguous != nil && ambiguous() {
			return sendIt, time.Time{}
		}
		c.current = nil
		e.forgetIfIdle(chat, c)
		return proven, time.Time{}
	}
	cur.deadline = now.Add(e.window)
	return awaitIt, e.nextLook(now, cur.deadline)
}

// sent records that Selarti answered 2xx for message id: its echo, unless
// it came already, is now expected.
func (e *echoReconciler) sent(chat string, id int64) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.chats[chat]
	if c == nil || c.current == nil || c.current.id != id {
		return
	}
	if !c.current.echoed {
		c.expected = append(c.expected, pendingEcho{text: c.current.text, until: now.Add(e.expectFor), id: id})
		if len(c.expected) > maxExpectedEchoes {
			c.expected = c.expected[1:]
		}
	}
	c.current = nil
	e.forgetIfIdle(chat, c)
}

// failed records that Selarti answered a failure for message id: it did
// not take the message, so no echo is expected.
func (e *echoReconciler) failed(chat string, id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.chats[chat]
	if c == nil || c.current == nil || c.current.id != id {
		return
	}
	c.current = nil
	e.forgetIfIdle(chat, c)
}

// unknown records that message id's attempt went out and got no answer.
// Unless its echo came meanwhile (proven), the chat waits for it; the
// returned time is when to look again.
func (e *echoReconciler) unknown(chat string, id int64) (bool, time.Time) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.chats[chat]
	if c == nil || c.current == nil || c.current.id != id {
		// The chat's next message began: its echo settled this one (see
		// echo), which the store has delivered.
		return true, time.Time{}
	}
	if c.current.echoed {
		c.current = nil
		e.forgetIfIdle(chat, c)
		return true, time.Time{}
	}
	c.current.deadline = now.Add(e.window)
	return false, e.nextLook(now, c.current.deadline)
}

// recorded notes that the store has message id delivered, so that its
// echo needs no write (see echo).
func (e *echoReconciler) recorded(chat string, id int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.chats[chat]; c != nil {
		for i := range c.expected {
			if c.expected[i].id == id {
				c.expected[i].recorded = true
			}
		}
	}
}

// echo takes one user echo from Selarti's webhook. When it proves the
// delivery of a message the store may not have delivered yet, it returns
// that message's id: the caller marks it delivered before it answers the
// webhook, so that a crash now cannot lose the proof (Selarti posts the
// webhook again when it gets no answer). inDoubt says the message was
// waiting for this echo to settle an unknown outcome.
func (e *echoReconciler) echo(chat, text string) (settle int64, inDoubt bool) {
	text = strings.TrimSpace(text)
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.chat(chat, now)
	if i := indexOf(c.expected, text); i >= 0 {
		if !c.expected[i].recorded {
			settle = c.expected[i].id
		}
		c.expected = deleteAt(c.expected, i)
		e.forgetIfIdle(chat, c)
		return settle, false
	}
	if cur := c.current; cur != nil && !cur.echoed && cur.text == text {
		cur.echoed = true
		waiting := !cur.deadline.IsZero()
		if waiting {
			// Not in flight: settled now, not at its next look.
			c.current = nil
			e.forgetIfIdle(chat, c)
		}
		return cur.id, waiting
	}
	c.spare = append(c.spare, pendingEcho{text: text, until: now.Add(e.spareFor)})
	if len(c.spare) > maxSpareEchoes {
		c.spare = c.spare[1:]
	}
	return 0, false
}

// reconcilesEchoes says whether the gateway settles unknown outcomes by
// Selarti's echoes: when a window is set and no idempotency key makes
// plain repeats harmless.
func reconcilesEchoes(c SelartiConfig) bool {
	return c.EchoWindow > 0 && c.Wire.IdempotencyKeyField == ""
}

// sweepLoop sweeps every spareFor until ctx ends.
func (e *echoReconciler) sweepLoop(ctx context.Context) {
	lifecycle.Every(ctx, e.spareFor, e.sweep)
}

// sweep forgets what has expired, and the chats with nothing left.
func (e *echoReconciler) sweep() {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, c := range e.chats {
		c.expire(now)
		e.forgetIfIdle(id, c)
	}
}

// chat returns chat's state, creating it, with expired entries dropped.
// The caller holds mu.
func (e *echoReconciler) chat(chat string, now time.Time) *chatEchoes {
	c := e.chats[chat]
	if c == nil {
		c = &chatEchoes{}
		e.chats[chat] = c
	}
	c.expire(now)
	return c
}

func (e *echoReconciler) forgetIfIdle(chat string, c *chatEchoes) {
	if c.current == nil && len(c.expected) == 0 && len(c.spare) == 0 {
		delete(e.chats, chat)
	}
}

func (e *echoReconciler) nextLook(now, deadline time.Time) time.Time {
	return minTime(now.Add(e.pollEvery()), deadline)
}

func (c *chatEchoes) expire(now time.Time) {
	c.expected = dropExpired(c.expected, now)
	c.spare = dropExpired(c.spare, now)
}

func dropExpired(l []pendingEcho, now time.Time) []pendingEcho {
	i := 0
	for i < len(l) && !now.Before(l[i].until) {
		i++
	}
	if i == len(l) {
		return nil
	}
	return l[i:]
}

func indexOf(l []pendingEcho, text string) int {
	for i, p := range l {
		if p.text == text {
			return i
		}
	}
	return -1
}

func deleteAt(l []pendingEcho, i int) []pendingEcho {
	return append(l[:i:i], l[i+1:]...)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
