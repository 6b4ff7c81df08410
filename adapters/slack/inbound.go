package slack

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/media"
)

// Slack's retries of an event that was not acknowledged: three, nearly at
// once, after a minute and after five minutes, numbered 1 to 3 (Socket
// Mode's retry_attempt, the Events API's X-Slack-Retry-Num). Nothing comes
// after the last.
const lastRetry = 3

// lookupBudget is how much of an event's acknowledgement deadline the
// names of its sender and mentions may take (users.info,
// conversations.info, cached); past it they show as "@user" and
// "#channel", and the rest of inbound.AckDeadline is the core's.
const lookupBudget = time.Second

// minDeliver is the least time the core is given to commit an event that
// waited behind others of its conversation past its deadline: it is
// committed anyway (and acknowledged late), so that Slack's retry is
// dropped as a duplicate and the user's answer does not wait a minute.
const minDeliver = 250 * time.Millisecond

// conversationQueue bounds the events waiting in one conversation; past
// it an event is not acknowledged, and Slack sends it again.
const conversationQueue = 100

// conversationIdle is how long a conversation's goroutine waits for its
// next event before it ends.
const conversationIdle = time.Minute

// delivery is one delivery of an event by Slack, over either transport.
type delivery struct {
	received  time.Time // when it reached the gateway: the deadline runs from here
	eventID   string
	retry     int    // Slack's retry number, 0 for the first delivery
	transport string // "socket" or "events", for the logs
}

// userMessage is a user's message the app answers, from a message event
// in a DM or an app_mention in a channel.
type userMessage struct {
	event    string // "message" or "app_mention"
	team     string
	channel  string
	user     string
	ts       string
	threadTS string
	text     string
	files    []slack.File
}

// reasonOtherTeam is route's reason for an event of another workspace.
const reasonOtherTeam = "an event of another workspace"

// userSubtypes are the message subtypes that are a user's own new text.
// Every other subtype (message_changed, message_deleted, channel_join,
// bot_message, ...) is not, and never reaches Selarti.
var userSubtypes = map[string]bool{"": true, "file_share": true, "thread_broadcast": true}

// route says whether the app answers an event, and in which native chat;
// reason says why not. The rules:
//
//   - a message event only in a direct message to the app (channel_type
//     "im"); a message in a channel is answered through the app_mention
//     event Slack sends for it too (both have the same channel and ts,
//     and so the same Inbound.ID), and a channel message without a
//     mention is not for the app;
//   - an app_mention in a channel (a public or private channel, a group
//     DM), in its thread with reply_in_thread;
//   - never the app's own messages, other bots' (bot_id, bot_message),
//     edits, joins and other subtypes that are not a user's new text, nor
//     events of another workspace.
func route(ev slackevents.EventsAPIEvent, me identity, replyInThread bool) (m userMessage, native, reason string) {
	if ev.Type != slackevents.CallbackEvent {
		return m, "", "not an event callback (" + ev.Type + ")"
	}
	if ev.TeamID != "" && ev.TeamID != me.team {
		return m, "", reasonOtherTeam
	}
	var t target
	switch e := ev.InnerEvent.Data.(type) {
	case *slackevents.MessageEvent:
		switch {
		case e.ChannelType != slackevents.ChannelTypeIM:
			return m, "", "a message in a channel (answered through its app_mention, if it mentions the app)"
		case e.User == me.userID || (e.BotID != "" && e.BotID == me.botID):
			return m, "", "the app's own message"
		case e.BotID != "" || e.SubType == "bot_message":
			return m, "", "another bot's message"
		case !userSubtypes[e.SubType]:
			return m, "", "not a user's new text (subtype " + e.SubType + ")"
		case e.User == "":
			return m, "", "a message without a user"
		}
		m = userMessage{event: "message", team: me.team, channel: e.Channel, user: e.User, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, text: e.Text}
		if e.Message != nil {
			m.files = e.Message.Files
		}
		t = target{team: me.team, channel: e.Channel}
	case *slackevents.AppMentionEvent:
		switch {
		case e.User == me.userID || (e.BotID != "" && e.BotID == me.botID):
			return m, "", "the app's own message"
		case e.BotID != "":
			return m, "", "another bot's message"
		case e.Edited != nil:
			return m, "", "an edited message"
		case e.User == "":
			return m, "", "a mention without a user"
		case isIM(e.Channel):
			return m, "", "a mention in a direct message (answered through its message event)"
		}
		m = userMessage{event: "app_mention", team: me.team, channel: e.Channel, user: e.User, ts: e.TimeStamp, threadTS: e.ThreadTimeStamp, text: e.Text, files: e.Files}
		t = target{team: me.team, channel: e.Channel}
		switch {
		case !replyInThread:
			t.user = e.User
		case e.ThreadTimeStamp != "":
			t.thread = e.ThreadTimeStamp // already in a thread: that thread
		default:
			t.thread = e.TimeStamp // the mention starts the thread
		}
	default:
		return m, "", "not a message (" + ev.InnerEvent.Type + ")"
	}
	if !teamRE.MatchString(m.team) || !channelRE.MatchString(m.channel) || !userRE.MatchString(m.user) || !tsRE.MatchString(m.ts) ||
		(t.thread != "" && !tsRE.MatchString(t.thread)) {
		return userMessage{}, "", "malformed ids"
	}
	return m, t.native(), ""
}

// item is one delivery of a user's message, queued for its conversation.
type item struct {
	delivery
	msg    userMessage
	native string
	// settle acknowledges the delivery to Slack (true) or leaves it
	// unacknowledged, so that Slack sends it again (false). It is called
	// once.
	settle func(ack bool)
}

// conversation is the messages of one native chat, handed to the core one
// at a time and in order by one goroutine, so that a slow one never holds
// up the others' acknowledgements.
type conversation struct {
	key     string
	pending []*item       // guarded by runData.mu; at most conversationQueue
	wake    chan struct{} // an item was queued
}

// gather is how long an event waits in its conversation before it is
// handed over, so that the events Slack sends at the same moment over
// its other connections (a backlog after a restart, spread over them)
// are in the queue too, and go to the core in the order the user wrote
// them (by ts), not in the order the connections' readers got to them.
const gather = 50 * time.Millisecond

// dispatch takes one event from either transport: it acknowledges what
// the app does not answer at once, and queues the rest for their
// conversation. It never waits for the core.
func (a *Adapter) dispatch(r *run, ev slackevents.EventsAPIEvent, dl delivery, settle func(ack bool)) {
	m, native, reason := route(ev, r.Data.me, a.cfg.ReplyInThread)
	switch {
	case reason == reasonOtherTeam:
		a.logOnce("team/"+ev.TeamID, "event of another workspace ignored: this instance answers only the workspace its bot token is for; use one Slack app per instance",
			"event_team", ev.TeamID, "team", r.Data.me.team)
		settle(true)
		return
	case reason != "":
		a.log.Debug("event ignored", "event_id", dl.eventID, "type", ev.InnerEvent.Type, "reason", reason)
		settle(true)
		return
	case dl.eventID != "" && a.settled.Has(dl.eventID):
		// A retry of an event the core accepted: our acknowledgement was
		// lost or late.
		a.log.Debug("retry of an accepted event, acknowledged", "event_id", dl.eventID, "retry", dl.retry)
		settle(true)
		return
	}
	it := &item{delivery: dl, msg: m, native: native, settle: settle}
	if !a.enqueue(r, it) {
		a.log.Warn("conversation queue full or stopping: event not acknowledged, Slack will send it again", "chat", native, "event_id", dl.eventID)
		settle(false)
	}
}

// enqueue queues it for its conversation, starting the conversation's
// goroutine if need be, without waiting; false when the queue is full or
// the run ended.
func (a *Adapter) enqueue(r *run, it *item) bool {
	d := r.Data
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.convs[it.native]
	if c == nil {
		c = &conversation{key: it.native, wake: make(chan struct{}, 1)}
		if !r.Go(func(ctx context.Context) { a.converse(ctx, r, c) }) {
			return false
		}
		d.convs[it.native] = c
	}
	if len(c.pending) >= conversationQueue {
		return false
	}
	c.pending = append(c.pending, it)
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return true
}

// converse hands c's messages to the core in order until the run ends,
// and ends when c has been idle a while. What is still queued at the end
// is left unacknowledged: Slack sends it again.
func (a *Adapter) converse(ctx context.Context, r *run, c *conversation) {
	d := r.Data
	idle := time.NewTimer(conversationIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			a.drain(r, c)
			return
		case <-c.wake:
		case <-idle.C:
			d.mu.Lock()
			if len(c.pending) == 0 {
				delete(d.convs, c.key)
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
		}
		for {
			it := a.next(ctx, r, c)
			if it == nil {
				break
			}
			if !a.handle(ctx, r, it) {
				a.drain(r, c)
				return
			}
		}
		if ctx.Err() != nil {
			a.drain(r, c)
			return
		}
		idle.Reset(conversationIdle)
	}
}

// next takes c's earliest message (by ts) once it has waited gather, or
// returns nil when c has none or the run ended.
func (a *Adapter) next(ctx context.Context, r *run, c *conversation) *item {
	d := r.Data
	for waited := false; ; waited = true {
		d.mu.Lock()
		if len(c.pending) == 0 {
			d.mu.Unlock()
			return nil
		}
		i := 0
		for j, it := range c.pending {
			if tsTime(it.msg.ts).Before(tsTime(c.pending[i].msg.ts)) {
				i = j
			}
		}
		it := c.pending[i]
		wait := time.Until(it.received.Add(gather))
		if waited || wait <= 0 {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			d.mu.Unlock()
			return it
		}
		d.mu.Unlock()
		if !lifecycle.Sleep(ctx, wait) {
			return nil
		}
	}
}

// drain leaves what c still holds unacknowledged, at the end of the run.
func (a *Adapter) drain(r *run, c *conversation) {
	d := r.Data
	d.mu.Lock()
	if d.convs[c.key] == c {
		delete(d.convs, c.key)
	}
	pending := c.pending
	c.pending = nil
	d.mu.Unlock()
	for _, it := range pending {
		it.settle(false)
	}
}

// handle hands one delivery to the core within its acknowledgement
// deadline and settles it:
//
//   - accepted (or a duplicate): acknowledged, and the media_reply sent if
//     due;
//   - refused for good (core.IsPermanent): acknowledged (Slack would only
//     send it again), and the reject_reply sent;
//   - not accepted in time: not acknowledged, so that Slack sends it again
//     under the same event id; the core drops the retry if this copy was
//     committed after all;
//   - not accepted on Slack's last retry: acknowledged, since nothing
//     comes after it, and retried in the process (kit/inbound.Retry) until
//     the core accepts it or the run ends; the conversation's later
//     messages wait behind it, in order.
//
// It reports false when the run ended first.
func (a *Adapter) handle(ctx context.Context, r *run, it *item) bool {
	d := r.Data
	if it.eventID != "" && a.settled.Has(it.eventID) {
		// A retry that waited behind the copy the core accepted.
		it.settle(true)
		return true
	}
	// The deadline runs from the event's arrival; an event that waited
	// past it behind others of its conversation gets a fresh one: it is
	// committed anyway, and acknowledged late.
	start := it.received
	if time.Until(start.Add(inbound.AckDeadline)) < minDeliver {
		start = time.Now()
	}
	deliverBy := start.Add(inbound.AckDeadline)
	lctx, cancel := context.WithDeadline(ctx, start.Add(lookupBudget))
	in, notice, ignore := a.inbound(lctx, r, it.msg, it.native)
	cancel()
	if ignore != "" {
		a.log.Debug("event ignored", "event_id", it.eventID, "chat", it.native, "reason", ignore)
		it.settle(true)
		return true
	}
	err := inbound.Deliver(ctx, d.deliver, in, time.Until(deliverBy))
	switch {
	case err == nil:
		a.accepted(r, it, notice)
		return true
	case core.IsPermanent(err):
		a.accepted(r, it, a.cfg.RejectReply) // the core has logged why
		return true
	case ctx.Err() != nil:
		it.settle(false)
		return false
	case it.retry < lastRetry:
		a.log.Debug("event not accepted in time, not acknowledged: Slack will send it again",
			"event_id", it.eventID, "chat", it.native, "retry", it.retry, "transport", it.transport, "err", err)
		it.settle(false)
		return true
	}
	// Slack's last retry: nothing comes after it.
	it.settle(true)
	a.log.Warn("Slack's last retry of an event not accepted in time: acknowledged, retrying in the process",
		"event_id", it.eventID, "chat", it.native, "err", err)
	err = inbound.Retry(ctx, d.deliver, in, inbound.RetryOptions{
		OnRetry: func(err error, wait time.Duration) {
			a.log.Debug("message not accepted yet, retrying", "message_id", in.ID, "wait", wait, "err", err)
		},
	})
	switch {
	case err == nil:
		a.settled.Put(it.eventID, struct{}{})
		a.notify(r, it.native, notice)
	case core.IsPermanent(err):
		a.settled.Put(it.eventID, struct{}{})
		a.notify(r, it.native, a.cfg.RejectReply)
	default:
		a.log.Error("message lost: the instance stopped before the core accepted it, and Slack will not send it again",
			"event_id", it.eventID, "chat", it.native, "message_id", in.ID)
		return false
	}
	return true
}

// accepted settles a delivery the core accepted (or refused for good),
// remembers its event id for Slack's retries, and sends notice.
func (a *Adapter) accepted(r *run, it *item, notice string) {
	if it.eventID != "" {
		a.settled.Put(it.eventID, struct{}{})
	}
	it.settle(true)
	a.notify(r, it.native, notice)
}

// inbound turns m into a message for the core, with the notice to send
// once it is accepted (media_reply for files alone); ignore says why the
// app does not answer it after all (the sender is a bot user).
func (a *Adapter) inbound(ctx context.Context, r *run, m userMessage, native string) (in core.Inbound, notice, ignore string) {
	me := r.Data.me
	n := names{a: a, ctx: ctx}
	who, known := n.person(m.user)
	if known && who.bot && m.user != me.userID {
		return in, "", "a bot user's message"
	}
	text := cleanText(m.text, me.userID, n)
	var standIns []string
	needsText := false
	for _, f := range m.files {
		kind := media.FromMIME(f.Mimetype)
		needsText = needsText || kind.NeedsText()
		name := f.Name
		if name == "" {
			name = f.Title
		}
		standIns = append(standIns, media.StandIn(media.Item{Kind: kind, Name: name, URL: f.URLPrivate}))
	}
	if text == "" && needsText {
		notice = a.cfg.MediaReply
	}
	text = media.WithText(text, standIns...)
	if text == "" {
		text = "[empty message]" // a bare mention, say: the core refuses blank text
	}
	user := core.User{Name: who.name, Username: who.handle}
	if !known {
		user.Name = m.user // users.info failed: at least an id an operator can look up
	}
	return core.Inbound{
		ChatID:     native,
		ID:         m.channel + "/" + m.ts,
		Text:       text,
		User:       user,
		ReceivedAt: tsTime(m.ts),
	}, notice, ""
}

// tsTime reads a message ts ("1700000000.000100") as a time; zero if it
// does not parse.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	frac = (frac + "000000")[:6]
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(s, us*1000)
}

// person is who a user is, as users.info tells.
type person struct {
	name   string // the real name, else the display name, else the handle
	handle string // the username
	bot    bool
}

// resolver names the users and channels that a message mentions.
type resolver interface {
	userName(id string) string    // "" when unknown
	channelName(id string) string // "" when unknown
}

// names resolves through users.info and conversations.info, cached for
// an hour, each lookup bounded by ctx (the event's lookup budget).
type names struct {
	a   *Adapter
	ctx context.Context
}

func (n names) person(id string) (person, bool) {
	if p, ok := n.a.users.Get(id); ok {
		return p, true
	}
	if n.ctx.Err() != nil {
		return person{}, false
	}
	u, err := n.a.api.GetUserInfoContext(n.ctx, id)
	if err != nil || u == nil {
		n.a.log.Debug("users.info failed", "user", id, "err", err)
		return person{}, false
	}
	p := person{handle: u.Name, bot: u.IsBot}
	for _, s := range []string{u.RealName, u.Profile.RealName, u.Profile.DisplayName, u.Name} {
		if s = strings.TrimSpace(s); s != "" {
			p.name = s
			break
		}
	}
	n.a.users.Put(id, p)
	return p, true
}

func (n names) userName(id string) string {
	p, _ := n.person(id)
	return p.name
}

func (n names) channelName(id string) string {
	if name, ok := n.a.channels.Get(id); ok {
		return name
	}
	if n.ctx.Err() != nil {
		return ""
	}
	c, err := n.a.api.GetConversationInfoContext(n.ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil || c == nil || c.Name == "" {
		n.a.log.Debug("conversations.info failed", "channel", id, "err", err)
		return ""
	}
	n.a.channels.Put(id, c.Name)
	return c.Name
}

// markupRE finds Slack's markup in message text: <@U…>, <#C…|name>,
// <!here>, <url|label>. Slack escapes a literal "<" and ">" as &lt; and
// &gt;, so every "<" in the text starts markup.
var markupRE = regexp.MustCompile(`<([^<>]*)>`)

// unescape undoes Slack's escaping of &, < and > (in one pass, so that a
// literal "&lt;" the user typed, sent as "&amp;lt;", stays "&lt;").
var unescape = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace

// cleanText makes a message's text read as the user saw it: the app's own
// mention (me) removed (it addresses the app; it is not what the user
// says), other users as "@Real Name", channels as "#name", <!here> and
// the like as "@here", links as "label (url)" or the bare url, and
// Slack's escapes undone.
func cleanText(s, me string, r resolver) string {
	out := make([]byte, 0, len(s))
	dropSpace := false // the app's mention was removed: drop one space after it
	last := 0
	add := func(seg string) {
		if dropSpace && strings.HasPrefix(seg, " ") {
			seg = seg[1:]
		}
		if seg != "" {
			dropSpace = false
		}
		out = append(out, seg...)
	}
	for _, loc := range markupRE.FindAllStringSubmatchIndex(s, -1) {
		add(unescape(s[last:loc[0]]))
		last = loc[1]
		inner := s[loc[2]:loc[3]]
		if inner == "@"+me || strings.HasPrefix(inner, "@"+me+"|") {
			if n := len(out); n > 0 && out[n-1] == ' ' {
				out = out[:n-1]
			} else {
				dropSpace = true
			}
			continue
		}
		add(markup(inner, r))
	}
	add(unescape(s[last:]))
	return strings.TrimSpace(string(out))
}

// markup is what one piece of Slack markup (without its <>) reads as.
func markup(inner string, r resolver) string {
	body, label, _ := strings.Cut(inner, "|")
	label = unescape(label)
	switch {
	case strings.HasPrefix(body, "@"):
		if n := r.userName(body[1:]); n != "" {
			return "@" + n
		}
		if label != "" {
			return "@" + strings.TrimPrefix(label, "@")
		}
		return "@user"
	case strings.HasPrefix(body, "#"):
		if label != "" {
			return "#" + label
		}
		if n := r.channelName(body[1:]); n != "" {
			return "#" + n
		}
		return "#channel"
	case strings.HasPrefix(body, "!"):
		switch cmd := body[1:]; {
		case cmd == "here" || cmd == "channel" || cmd == "everyone":
			return "@" + cmd
		case label != "":
			return label // a user group's handle, a date's fallback text
		case strings.HasPrefix(cmd, "subteam^"):
			return "@group"
		}
		return ""
	}
	url := unescape(body)
	bare := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(url, "mailto:"), "https://"), "http://")
	switch {
	case label == "" && strings.HasPrefix(url, "mailto:"):
		return bare
	case label == "":
		return url
	case label == bare || label == url || label+"/" == bare:
		return label // Slack's own link of what the user typed ("example.com")
	}
	return label + " (" + url + ")"
}
