package telegram

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Bot is one bot on the fake server: its identity, its chats, its update
// queue, its webhook, its injected faults and the record of what it was
// asked to do.
type Bot struct {
	s     *Server
	token string
	user  User

	mu         sync.Mutex
	nextUpdate int64
	queue      []Update      // unconfirmed updates, ascending update_id
	changed    chan struct{} // closed and replaced when the queue or webhook changes
	poller     *pollWaiter   // the getUpdates request now waiting, if any
	allowed    []string      // allowed_updates of the last getUpdates
	served     map[int64]int // update_id → times handed out
	chats      map[int64]*chatState
	files      map[string]*fileEntry // by file_id
	nextFile   int
	hook       webhookState
	faults     map[string][]Fault // by lowercased method; "" matches any
	rec        records
	// onSent and unrecorded are the load mode's (see observe.go): a
	// callback for every message sent, and no records kept.
	onSent     func(SentMessage)
	unrecorded bool
}

// chatState is what the fake knows of a chat.
type chatState struct {
	chat    Chat
	nextMsg int64 // the next message id in this chat
	blocked bool  // the user blocked the bot (private), or it was kicked (group)
}

type fileEntry struct {
	file    File
	content []byte
}

// records is what the bot was asked to do, for tests to read.
type records struct {
	calls   []Call
	sent    []SentMessage
	actions []ChatAction
	hooks   []WebhookAttempt
	changed chan struct{} // closed and replaced on every new record
}

// Call is one API request the bot received.
type Call struct {
	Method string // as requested, e.g. "sendMessage"
	// Params are the request's parameters; objects and arrays as JSON.
	Params map[string]string
	At     time.Time
	// Status is the HTTP status answered; 0 when the connection was
	// dropped or the client went away before the answer.
	Status int
	// Description is the error description, for failed calls.
	Description string
	// Injected is set when a Fault decided the answer.
	Injected bool
}

// SentMessage is one message the bot sent successfully.
type SentMessage struct {
	MessageID int64
	ChatID    int64
	// Text is the text parameter as sent (HTML source with parse_mode HTML).
	Text      string
	ParseMode string
	// Plain is the text as the user sees it: Text after entity parsing
	// and trimming.
	Plain    string
	Entities []MessageEntity
	// ReplyTo is the message replied to (reply_parameters.message_id).
	ReplyTo             int64
	ThreadID            int64
	LinkPreviewDisabled bool
	At                  time.Time
}

// ChatAction is one sendChatAction the bot made successfully.
type ChatAction struct {
	ChatID int64
	Action string
	At     time.Time
}

// WebhookAttempt is one POST of an update to the bot's webhook.
type WebhookAttempt struct {
	UpdateID int64
	URL      string
	// Status is the webhook's HTTP status; 0 when the request failed.
	Status int
	Err    string
	At     time.Time
}

func newBot(s *Server, token string, id int64, username string) *Bot {
	return &Bot{
		s:          s,
		token:      token,
		user:       User{ID: id, IsBot: true, FirstName: "Test Bot", Username: username},
		nextUpdate: 800000000 + id%1000*1000,
		changed:    make(chan struct{}),
		served:     make(map[int64]int),
		chats:      make(map[int64]*chatState),
		files:      make(map[string]*fileEntry),
		faults:     make(map[string][]Fault),
		rec:        records{changed: make(chan struct{})},
	}
}

// Token returns the bot's token.
func (b *Bot) Token() string { return b.token }

// User returns the bot's own user, as getMe reports it.
func (b *Bot) User() User { return b.user }

// broadcastLocked wakes long polls and the webhook poster.
func (b *Bot) broadcastLocked() {
	close(b.changed)
	b.changed = make(chan struct{})
}

func (b *Bot) recordLocked() {
	close(b.rec.changed)
	b.rec.changed = make(chan struct{})
}

// Calls returns every request received, oldest first.
func (b *Bot) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rec.calls)
}

// CallsTo returns the requests of one method (case-insensitive).
func (b *Bot) CallsTo(method string) []Call {
	var out []Call
	for _, c := range b.Calls() {
		if strings.EqualFold(c.Method, method) {
			out = append(out, c)
		}
	}
	return out
}

// Sent returns the messages the bot sent successfully, oldest first.
func (b *Bot) Sent() []SentMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rec.sent)
}

// SentTo returns the messages sent to one chat.
func (b *Bot) SentTo(chatID int64) []SentMessage {
	var out []SentMessage
	for _, m := range b.Sent() {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// ChatActions returns the chat actions the bot sent successfully.
func (b *Bot) ChatActions() []ChatAction {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rec.actions)
}

// WebhookAttempts returns every webhook POST, oldest first.
func (b *Bot) WebhookAttempts() []WebhookAttempt {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.rec.hooks)
}

// Served returns how many times an update was handed out, by getUpdates or
// to the webhook. More than once means it was redelivered because it was
// not confirmed.
func (b *Bot) Served(updateID int64) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served[updateID]
}

// Pending returns how many updates are queued and not yet confirmed.
func (b *Bot) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Wait blocks until cond (called with no lock held) is true, re-checking
// whenever the bot records something, or until ctx is done.
func (b *Bot) Wait(ctx context.Context, cond func() bool) error {
	for {
		b.mu.Lock()
		ch := b.rec.changed
		b.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for fake telegram: %w", ctx.Err())
		}
	}
}

// WaitSent waits until the bot has sent at least n messages.
func (b *Bot) WaitSent(ctx context.Context, n int) error {
	return b.Wait(ctx, func() bool { return len(b.Sent()) >= n })
}

// WaitCalls waits until the bot has received at least n requests of method.
func (b *Bot) WaitCalls(ctx context.Context, method string, n int) error {
	return b.Wait(ctx, func() bool { return len(b.CallsTo(method)) >= n })
}

// Block makes the user of a private chat block the bot (or kicks the bot
// from a group): sends to the chat fail with 403 from now on, and a
// my_chat_member update reports it, as Telegram does.
func (b *Bot) Block(chatID int64) int64 { return b.setBlocked(chatID, true) }

// Unblock undoes Block, with the my_chat_member update of a restart.
func (b *Bot) Unblock(chatID int64) int64 { return b.setBlocked(chatID, false) }

func (b *Bot) setBlocked(chatID int64, blocked bool) int64 {
	b.mu.Lock()
	cs := b.chatLocked(Chat{ID: chatID, Type: ChatPrivate})
	cs.blocked = blocked
	oldStatus, newStatus := "member", "kicked"
	if !blocked {
		oldStatus, newStatus = newStatus, oldStatus
	}
	from := User{ID: chatID, FirstName: cs.chat.FirstName}
	if cs.chat.Type != ChatPrivate {
		from = User{ID: 1, FirstName: "Admin"}
	}
	u := Update{MyChatMember: &ChatMemberUpdated{
		Chat:          cs.chat,
		From:          from,
		Date:          time.Now().Unix(),
		OldChatMember: ChatMember{Status: oldStatus, User: b.user},
		NewChatMember: ChatMember{Status: newStatus, User: b.user},
	}}
	id := b.pushLocked(u)
	b.mu.Unlock()
	return id
}

// Fault is one injected failure of one request. A zero Status means the
// request is processed normally after Delay (a slow response).
type Fault struct {
	// Status is the HTTP status and error_code to answer instead of
	// processing the request (429, 403, 500, 502, ...).
	Status int
	// Description is the error description; default the status text.
	Description string
	// RetryAfter is parameters.retry_after in seconds (with 429).
	RetryAfter int
	// Delay is waited before the request is looked at. If the client goes
	// away meanwhile, the request is not processed at all, as if it never
	// reached Telegram.
	Delay time.Duration
	// Drop closes the connection without an answer, before processing:
	// the request is lost.
	Drop bool
	// DropAfterProcessing processes the request (a message is sent, an
	// offset is confirmed) and then closes the connection without an
	// answer: the client cannot know whether it worked.
	DropAfterProcessing bool
}

// TooManyRequests is Telegram's flood-control answer.
func TooManyRequests(retryAfter int) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: retryAfter,
		Description: fmt.Sprintf("Too Many Requests: retry after %d", retryAfter)}
}

// BlockedByUser is the answer to a send to a user who blocked the bot.
func BlockedByUser() Fault {
	return Fault{Status: http.StatusForbidden, Description: "Forbidden: bot was blocked by the user"}
}

// ServerError is a 5xx from Telegram's front end.
func ServerError(status int) Fault {
	return Fault{Status: status, Description: http.StatusText(status)}
}

// FailNext queues faults for the next requests of method (case-insensitive;
// "" means any method). Each fault is used once, in order.
func (b *Bot) FailNext(method string, faults ...Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	key := strings.ToLower(method)
	b.faults[key] = append(b.faults[key], faults...)
}

func (b *Bot) takeFaultLocked(method string) (Fault, bool) {
	for _, key := range []string{method, ""} {
		if q := b.faults[key]; len(q) > 0 {
			f := q[0]
			b.faults[key] = q[1:]
			return f, true
		}
	}
	return Fault{}, false
}

// serveMethod answers one API request.
func (b *Bot) serveMethod(w http.ResponseWriter, r *http.Request, method string) {
	lower := strings.ToLower(method)
	p, perr := parseParams(r)
	b.mu.Lock()
	idx := -1 // the call's record; none in load mode
	if !b.unrecorded {
		flat := map[string]string{}
		for k := range p {
			flat[k] = p.str(k)
		}
		idx = len(b.rec.calls)
		b.rec.calls = append(b.rec.calls, Call{Method: method, Params: flat, At: time.Now()})
	}
	fault, injected := b.takeFaultLocked(lower)
	b.recordLocked()
	b.mu.Unlock()

	var keep recorded
	finish := func(status int, desc string) {
		b.mu.Lock()
		if keep.sent != nil && !b.unrecorded {
			b.rec.sent = append(b.rec.sent, *keep.sent)
		}
		if keep.action != nil && !b.unrecorded {
			b.rec.actions = append(b.rec.actions, *keep.action)
		}
		if idx >= 0 {
			b.rec.calls[idx].Status = status
			b.rec.calls[idx].Description = desc
			b.rec.calls[idx].Injected = injected
		}
		b.recordLocked()
		onSent := b.onSent
		b.mu.Unlock()
		// keep.sent is set only once the message is sent, whether or
		// not the answer then reaches the client.
		if keep.sent != nil && onSent != nil {
			onSent(*keep.sent)
		}
	}

	ctx := r.Context()
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			finish(0, "client went away during the injected delay")
			return
		}
	}
	if fault.Drop {
		finish(0, "connection dropped (injected)")
		dropConnection(w)
		return
	}
	if fault.Status != 0 {
		desc := fault.Description
		if desc == "" {
			desc = http.StatusText(fault.Status)
		}
		finish(fault.Status, desc)
		writeError(w, apiError{code: fault.Status, desc: desc, retryAfter: fault.RetryAfter})
		return
	}
	injected = false // a pure delay or drop-after does not decide the answer

	var result any
	var desc string
	err := perr
	if err != nil {
		err = errBadRequest(err.Error())
	} else {
		result, desc, err = b.dispatch(ctx, lower, p)
		if r, ok := result.(recorded); ok {
			keep, result = r, r.result
		}
	}
	if ctx.Err() != nil && err != nil {
		finish(0, "client went away")
		return
	}
	if fault.DropAfterProcessing {
		finish(0, "connection dropped after processing (injected)")
		dropConnection(w)
		return
	}
	if err != nil {
		var ae apiError
		if !errors.As(err, &ae) {
			ae = apiError{code: http.StatusInternalServerError, desc: "Internal Server Error"}
		}
		finish(ae.code, ae.desc)
		writeError(w, ae)
		return
	}
	finish(http.StatusOK, "")
	writeResult(w, result, desc)
}

// dropConnection closes the client's connection without an answer. When
// the connection cannot be taken over (HTTP/2), it aborts the handler with
// http.ErrAbortHandler, net/http's own way to drop a response, which the
// server recovers from without logging.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// dispatch runs one method; it returns the result, an optional
// description for a successful answer, or an apiError.
func (b *Bot) dispatch(ctx context.Context, method string, p params) (any, string, error) {
	switch method {
	case "getme":
		return botUser{User: b.user, CanJoinGroups: true}, "", nil
	case "getupdates":
		return b.getUpdates(ctx, p)
	case "sendmessage":
		return b.sendMessage(p)
	case "sendchataction":
		return b.sendChatAction(p)
	case "setwebhook":
		return b.setWebhook(p)
	case "deletewebhook":
		return b.deleteWebhook(p)
	case "getwebhookinfo":
		return b.webhookInfo(), "", nil
	case "getfile":
		return b.getFile(p)
	case "logout", "close":
		return true, "", nil
	}
	return nil, "", apiError{code: http.StatusNotFound, desc: "Not Found"}
}

// chatLocked returns the state of a chat, creating it from c if unknown.
func (b *Bot) chatLocked(c Chat) *chatState {
	cs := b.chats[c.ID]
	if cs == nil {
		cs = &chatState{chat: c, nextMsg: 1}
		b.chats[c.ID] = cs
	}
	return cs
}
