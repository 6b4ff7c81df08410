package selarti

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

// ErrNoDialog is returned by InjectOperator for a chat id that has sent no
// message yet: an operator can only write into an existing dialog.
var ErrNoDialog = errors.New("no dialog for this chat")

// dialogKey identifies a dialog. Selarti keeps one context per chat_id, and
// a chat_id belongs to one task.
type dialogKey struct{ task, chat string }

// dialog is Selarti's state of one conversation, guarded by Server.mu.
type dialog struct {
	key      dialogKey
	threadID string
	title    string
	contacts []string // distinct, in the order given

	closed, getContact, interest, operator, success bool
	// human is set when an operator took the dialog over in the operator
	// console: the assistant falls silent in it, as Selarti's AI does
	// once a human has the dialog.
	human bool

	// queue holds the dialog's webhooks in order. One goroutine drains it
	// while it is non-empty and exits when it is empty (running says
	// whether it exists), so thousands of quiet dialogs cost no
	// goroutines, and one dialog's webhooks never overtake each other.
	queue   []*job
	running bool

	transcript []line // for the panel and share pages
}

// line is one message of a dialog's transcript.
type line struct {
	at         time.Time
	kind, text string
}

// job is one webhook to post.
type job struct {
	payload map[string]any  // built when queued, so flags are a snapshot
	ready   <-chan struct{} // closed when it may be posted (after the 200); nil: at once
	delay   time.Duration   // the bot's think time, waited after ready
	done    chan error      // when non-nil, receives the outcome (buffered)
}

// accept records one user message, updates its dialog and queues the two
// webhooks: the user's own message, then the bot's reply after ThinkTime.
// Both wait for ready. It reports false when the server is closing.
func (s *Server) accept(msg Received, ready <-chan struct{}) bool {
	answer := Respond(msg.Text)

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	msg.At = s.now()
	s.rec.received = append(s.rec.received, msg)
	s.rec.notifyLocked()

	d := s.dialogLocked(dialogKey{task: msg.TaskID, chat: msg.ChatID})
	// What the user sends about themselves is known at once and shows in
	// the webhook of their own message.
	if msg.Name != "" {
		d.title = msg.Name
	}
	d.addContact(msg.Phone)
	if msg.Username != "" {
		d.addContact("@" + strings.TrimPrefix(msg.Username, "@"))
	}
	// A closed dialog reopens when the user writes again.
	d.closed = false
	s.enqueueLocked(d, s.messageLocked(d, selarti.TypeUser, msg.Text, ready, 0))
	if d.human {
		return true // the operator answers, from the console
	}

	// What the assistant concludes from the message shows from its reply
	// on, as the AI marks the dialog when it answers.
	if answer.Contact != "" {
		d.addContact(answer.Contact)
		d.getContact = true
		d.success = true // a captured lead is what the demo shop calls success
	}
	d.interest = d.interest || answer.Interest
	d.operator = d.operator || answer.Operator
	d.closed = answer.Close
	// The real AI probably falls silent once an operator has the dialog;
	// the simulator keeps answering so the demo and tests stay predictable.
	s.enqueueLocked(d, s.messageLocked(d, selarti.TypeBot, answer.Text, ready, s.opts.ThinkTime))
	return true
}

// InjectOperator makes an operator write text into chatID's dialog from
// Selarti's panel: the dialog is marked as handed to an operator and an
// "operator" webhook is queued after the dialog's pending ones. It waits
// until that webhook has been delivered and returns the delivery error, if
// any; ErrNoDialog when chatID has no dialog. When ctx ends first the
// webhook stays queued. If chatID has dialogs in several tasks, the one
// that last received a message is used.
func (s *Server) InjectOperator(ctx context.Context, chatID, text string) error {
	err := s.operatorWrites(ctx, text, func() *dialog { return s.lastByChat[chatID] })
	if err != nil {
		return fmt.Errorf("inject operator message into chat %q: %w", chatID, err)
	}
	return nil
}

// operatorWrites is InjectOperator into the dialog find returns (called
// under s.mu; nil: ErrNoDialog).
func (s *Server) operatorWrites(ctx context.Context, text string, find func() *dialog) error {
	if strings.TrimSpace(text) == "" {
		return errors.New("empty text")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	d := find()
	if d == nil {
		s.mu.Unlock()
		return ErrNoDialog
	}
	d.operator = true
	j := s.messageLocked(d, selarti.TypeOperator, text, nil, 0)
	j.done = make(chan error, 1)
	s.enqueueLocked(d, j)
	s.mu.Unlock()

	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.ctx.Done():
		return errClosed
	}
}

var errClosed = errors.New("selarti simulator closed")

// dialogLocked returns the dialog for key, creating it on first use.
func (s *Server) dialogLocked(key dialogKey) *dialog {
	d := s.dialogs[key]
	if d == nil {
		d = &dialog{key: key, threadID: newBubbleID()}
		s.dialogs[key] = d
		s.threads[d.threadID] = d
	}
	s.lastByChat[key.chat] = d
	return d
}

func (d *dialog) addContact(c string) {
	if c != "" && !slices.Contains(d.contacts, c) {
		d.contacts = append(d.contacts, c)
	}
}

// messageLocked adds a message to the transcript and returns the job that
// posts its webhook, with the dialog's flags as they are now.
func (s *Server) messageLocked(d *dialog, kind, text string, ready <-chan struct{}, delay time.Duration) *job {
	d.transcript = append(d.transcript, line{at: s.now(), kind: kind, text: text})
	return &job{payload: s.payloadLocked(d, kind, text), ready: ready, delay: delay}
}

// enqueueLocked appends j to d's queue and starts the dialog's goroutine if
// it is not running. The caller has checked that the server is not closed,
// so the WaitGroup is never added to after Close started waiting.
func (s *Server) enqueueLocked(d *dialog, j *job) {
	d.queue = append(d.queue, j)
	s.rec.pending++
	if !d.running {
		d.running = true
		s.workers.Go(func() { s.drain(d) })
	}
}

// drain posts d's webhooks in order until its queue is empty, then exits.
// After Close it drops whatever is left.
func (s *Server) drain(d *dialog) {
	for {
		s.mu.Lock()
		if len(d.queue) == 0 || s.ctx.Err() != nil {
			s.rec.pending -= len(d.queue)
			d.queue = nil
			d.running = false
			s.rec.notifyLocked()
			s.mu.Unlock()
			return
		}
		j := d.queue[0]
		d.queue[0] = nil
		d.queue = d.queue[1:]
		s.mu.Unlock()

		err := s.run(j)
		if j.done != nil {
			j.done <- err
		}

		s.mu.Lock()
		s.rec.pending--
		s.rec.notifyLocked()
		s.mu.Unlock()
	}
}

// run waits until j may go out, then posts it.
func (s *Server) run(j *job) error {
	if j.ready != nil {
		select {
		case <-j.ready:
		case <-s.ctx.Done():
			return errClosed
		}
	}
	if j.delay > 0 && !s.wait(s.ctx, j.delay) {
		return errClosed
	}
	return s.post(s.ctx, j.payload)
}
