package discord

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/media"
)

// Checkpoint keys: "c/<channel>" holds the newest message of the channel
// up to which everything was handed to the core; "g/<channel>" the
// channel's guild (REST answers leave guild_id out, and a backfill must
// tell a guild channel from a direct message); "t/<channel>:<user>" the
// thread the bot started for that user's conversation.
const (
	positionPrefix = "c/"
	guildPrefix    = "g/"
	threadPrefix   = "t/"
)

func threadKey(k string) (string, bool) { return strings.CutPrefix(k, threadPrefix) }

// live takes a message from the gateway. During a backfill it waits (in
// memory) behind the older messages the backfill queues.
func (a *Adapter) live(x *rx, m *discordgo.Message) {
	xd := x.Data
	xd.mu.Lock()
	if xd.backfilling {
		xd.held = append(xd.held, m)
		xd.mu.Unlock()
		return
	}
	xd.mu.Unlock()
	a.take(x, m)
}

// conversationOf says which conversation m belongs to and whether the
// bot answers it: key orders the conversation's messages, thread says
// whether a thread must be started for it (reply_in_thread), reason why
// not when the bot stays silent.
func (a *Adapter) conversationOf(d *runData, m *discordgo.Message) (key string, startThread bool, reason string) {
	switch {
	case m.Author == nil:
		return "", false, "no author"
	case m.Author.ID == d.me.ID:
		return "", false, "the bot's own message"
	case m.Author.Bot && a.cfg.IgnoreBots:
		return "", false, "another bot (ignore_bots)"
	case m.WebhookID != "":
		return "", false, "a webhook's message"
	case m.Type != discordgo.MessageTypeDefault && m.Type != discordgo.MessageTypeReply:
		return "", false, "not a user's text (a system message)"
	case m.GuildID == "":
		return m.ChannelID, false, "" // a direct message: the channel is the conversation
	}
	d.mu.Lock()
	own := d.own[m.ChannelID]
	d.mu.Unlock()
	if own {
		return m.ChannelID, false, "" // a thread the bot started: answered whole
	}
	if !a.answer[m.ChannelID] && a.cfg.RespondTo != RespondToAll && !addressed(m, d.me) {
		return "", false, "not addressed to the bot"
	}
	return m.ChannelID + ":" + m.Author.ID, a.cfg.ReplyInThread, ""
}

// addressed reports whether a guild message is for the bot: it mentions
// the bot, or replies to one of its messages.
func addressed(m *discordgo.Message, me *discordgo.User) bool {
	if slices.ContainsFunc(m.Mentions, func(u *discordgo.User) bool { return u.ID == me.ID }) {
		return true
	}
	if ref := m.ReferencedMessage; ref != nil && ref.Author != nil && ref.Author.ID == me.ID {
		return true
	}
	return false
}

// take queues m for its conversation, once: a message the backfill and
// the live feed both bring (or a RESUME replays) is queued the first time
// only. Messages of one channel arrive in id order from either.
func (a *Adapter) take(x *rx, m *discordgo.Message) {
	xd, d := x.Data, x.Data.run.Data
	key, startThread, reason := a.conversationOf(d, m)
	if reason != "" {
		a.log.Debug("message ignored", "channel", m.ChannelID, "message_id", m.ID, "reason", reason)
		return
	}
	id, err := strconv.ParseUint(m.ID, 10, 64)
	if err != nil {
		a.log.Warn("message ignored: odd id", "channel", m.ChannelID, "message_id", m.ID)
		return
	}
	xd.mu.Lock()
	if m.EditedTimestamp == nil && id <= xd.lastQueued[m.ChannelID] {
		xd.mu.Unlock()
		return
	}
	xd.lastQueued[m.ChannelID] = max(xd.lastQueued[m.ChannelID], id)
	if m.EditedTimestamp == nil {
		// An edit is not part of the channel's stream of new messages:
		// the checkpoint neither waits for it nor moves back to it.
		xd.marks.Begin(m.ChannelID, m.ID)
	}
	if m.GuildID != "" {
		d.cp.Set(guildPrefix+m.ChannelID, m.GuildID)
	}
	c := xd.convs[key]
	if c == nil {
		c = &conversation{key: key, queue: make(chan *discordgo.Message, conversationQueue)}
		xd.convs[key] = c
		x.Go(func(ctx context.Context) { a.converse(ctx, x, c, startThread) })
	}
	c.senders++
	xd.mu.Unlock()
	a.know(x, m.ChannelID, id)
	// May wait while the conversation's queue is full (the core is slow
	// or down): the gateway then waits too, which is the honest
	// backpressure; nothing is dropped.
	select {
	case c.queue <- m:
	case <-x.Context().Done():
	}
	xd.mu.Lock()
	c.senders--
	xd.mu.Unlock()
}

// know makes sure the checkpoint has channel before its first message is
// handed over: a channel the checkpoint lacks is never backfilled, so
// what its users send while the gateway is down would be lost. It is
// written at once (a new channel is rare), starting just before the
// message, which the next backfill fetches again if it was not accepted
// by then (the core drops it if it was).
func (a *Adapter) know(x *rx, channel string, first uint64) {
	cp := x.Data.run.Data.cp
	key := positionPrefix + channel
	if _, known := cp.Get(key); known {
		return
	}
	cp.Set(key, strconv.FormatUint(first-1, 10))
	ctx, cancel := context.WithTimeout(x.Context(), a.cfg.RequestTimeout)
	defer cancel()
	if err := cp.Flush(ctx); err != nil {
		a.log.Warn("write checkpoint", "err", err)
	}
}

// conversationQueue bounds the messages waiting in one conversation.
const conversationQueue = 100

// conversationIdle is how long a conversation's goroutine waits for its
// next message before it ends.
const conversationIdle = time.Minute

// conversation is the messages of one chat, handed to the core one at a
// time and in order by one goroutine.
type conversation struct {
	key     string
	queue   chan *discordgo.Message
	senders int // take calls about to queue; guarded by rxData.mu
}

// converse hands c's messages to the core in order, each retried until
// the core accepts it (Discord will not send it again), until the
// Receive ends. It ends when c has been idle a while.
func (a *Adapter) converse(ctx context.Context, x *rx, c *conversation, startThread bool) {
	xd := x.Data
	idle := time.NewTimer(conversationIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.queue:
			if !a.handle(ctx, x, m, startThread) {
				return // stopped: not handed over, the next Receive's backfill fetches it
			}
			idle.Reset(conversationIdle)
		case <-idle.C:
			xd.mu.Lock()
			if len(c.queue) == 0 && c.senders == 0 {
				delete(xd.convs, c.key)
				xd.mu.Unlock()
				return
			}
			xd.mu.Unlock()
			idle.Reset(conversationIdle)
		}
	}
}

// handle hands one message to the core and moves the channel's
// checkpoint. It reports false when the Receive ended first.
func (a *Adapter) handle(ctx context.Context, x *rx, m *discordgo.Message, startThread bool) bool {
	xd := x.Data
	r, d := xd.run, xd.run.Data
	native := m.ChannelID
	if m.GuildID != "" && !a.ownThread(d, m.ChannelID) {
		native = m.ChannelID + ":" + m.Author.ID
		if startThread {
			thread, err := a.threadFor(ctx, d, m)
			if err != nil {
				if ctx.Err() != nil {
					return false
				}
				// Answered in the channel instead: a missing permission
				// must not leave the user without an answer.
				a.log.Warn("could not start a thread, answering in the channel", "channel", m.ChannelID, "err", err)
			} else {
				native = thread
			}
		}
	}
	in, notice := a.inbound(d, m, native)
	a.replies.Put(native, m.ID)
	err := inbound.Retry(ctx, xd.deliver, in, inbound.RetryOptions{
		OnRetry: func(err error, wait time.Duration) {
			a.log.Debug("message not accepted yet, retrying", "message_id", m.ID, "wait", wait, "err", err)
		},
	})
	switch {
	case err == nil:
		a.notify(r, native, notice)
		if !a.handovers.Human(native) {
			a.typing.Start(ctx, targetChannel(native))
		}
	case core.IsPermanent(err):
		a.notify(r, native, a.cfg.RejectReply) // the core has logged why
	default:
		return false
	}
	if m.EditedTimestamp == nil {
		if mark, moved := xd.marks.Done(m.ChannelID, m.ID); moved {
			d.cp.Set(positionPrefix+m.ChannelID, mark)
		}
	}
	return true
}

func (a *Adapter) ownThread(d *runData, channel string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.own[channel]
}

// targetChannel is the channel a native id posts to.
func targetChannel(native string) string {
	channel, _, _ := strings.Cut(native, ":")
	return channel
}

// threadFor returns the thread of m's author in m's channel, starting it
// from m the first time. The thread is remembered in the checkpoint, so
// that the conversation stays in it after a restart.
func (a *Adapter) threadFor(ctx context.Context, d *runData, m *discordgo.Message) (string, error) {
	key := m.ChannelID + ":" + m.Author.ID
	d.mu.Lock()
	thread, ok := d.threads[key]
	d.mu.Unlock()
	if ok {
		return thread, nil
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	ch, err := d.s.MessageThreadStartComplex(m.ChannelID, m.ID, &discordgo.ThreadStart{
		Name:                threadName(m),
		AutoArchiveDuration: 1440,
	}, discordgo.WithContext(cctx))
	if err != nil {
		return "", fmt.Errorf("start thread: %w", err)
	}
	d.mu.Lock()
	d.threads[key] = ch.ID
	d.own[ch.ID] = true
	d.mu.Unlock()
	d.cp.Set(threadPrefix+key, ch.ID)
	return ch.ID, nil
}

// threadName names a user's thread after them.
func threadName(m *discordgo.Message) string {
	name := displayName(m)
	if r := []rune(name); len(r) > 80 {
		name = string(r[:80])
	}
	return "Conversation with " + name
}

// inbound turns m into a message for the core, with the notice to send
// once it is accepted (media_reply for attachments alone).
func (a *Adapter) inbound(d *runData, m *discordgo.Message, native string) (core.Inbound, string) {
	text := cleanText(m, d.me, d.name)
	var standIns []string
	for _, at := range m.Attachments {
		standIns = append(standIns, media.StandIn(media.Item{Kind: media.FromMIME(at.ContentType), Name: at.Filename, URL: at.URL}))
	}
	for _, st := range m.StickerItems {
		standIns = append(standIns, media.StandIn(media.Item{Kind: media.Sticker, Detail: st.Name}))
	}
	notice := ""
	if text == "" && len(m.Attachments) > 0 {
		notice = a.cfg.MediaReply
	}
	text = media.WithText(text, standIns...)
	if text == "" {
		text = "[empty message]" // an embed only, say: the core refuses blank text
	}
	id := m.ID
	if m.EditedTimestamp != nil {
		// An edit is a new message for the assistant, under its own id.
		id += "/edit/" + strconv.FormatInt(m.EditedTimestamp.UnixMilli(), 10)
	}
	return core.Inbound{
		ChatID:     native,
		ID:         id,
		Text:       text,
		User:       core.User{Name: displayName(m), Username: m.Author.Username},
		ReceivedAt: m.Timestamp,
	}, notice
}

// displayName is what a guild shows for the author: their nickname
// there, else their global display name, else their username.
func displayName(m *discordgo.Message) string {
	if m.Member != nil && m.Member.Nick != "" {
		return m.Member.Nick
	}
	if m.Author.GlobalName != "" {
		return m.Author.GlobalName
	}
	return m.Author.Username
}

var (
	userMentionRE    = regexp.MustCompile(`<@!?([0-9]+)>`)
	channelMentionRE = regexp.MustCompile(`<#([0-9]+)>`)
	roleMentionRE    = regexp.MustCompile(`<@&([0-9]+)>`)
	emojiRE          = regexp.MustCompile(`<a?(:[A-Za-z0-9_~]+:)[0-9]+>`)
)

// cleanText makes the message's text read as the user saw it: the bot's
// own mention removed (it addresses the bot, it is not what the user
// says), other mentions as @name and #channel, custom emoji as :name:.
func cleanText(m *discordgo.Message, me *discordgo.User, name func(id string) string) string {
	names := map[string]string{}
	for _, u := range m.Mentions {
		n := u.GlobalName
		if n == "" {
			n = u.Username
		}
		names[u.ID] = n
	}
	text := userMentionRE.ReplaceAllStringFunc(m.Content, func(s string) string {
		id := userMentionRE.FindStringSubmatch(s)[1]
		switch {
		case id == me.ID:
			return ""
		case names[id] != "":
			return "@" + names[id]
		}
		return "@user"
	})
	text = channelMentionRE.ReplaceAllStringFunc(text, func(s string) string {
		if n := name(channelMentionRE.FindStringSubmatch(s)[1]); n != "" {
			return "#" + n
		}
		return "#channel"
	})
	text = roleMentionRE.ReplaceAllStringFunc(text, func(s string) string {
		if n := name(roleMentionRE.FindStringSubmatch(s)[1]); n != "" {
			return "@" + n
		}
		return "@role"
	})
	text = emojiRE.ReplaceAllString(text, "$1")
	return strings.Join(strings.Fields(text), " ")
}

// notify sends one of the adapter's own short replies in the background,
// best effort and bounded.
func (a *Adapter) notify(r *run, native, text string) {
	if text == "" {
		return
	}
	sent := a.notices.Go(r, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		defer cancel()
		if err := a.post(ctx, r.Data.s, native, text, true, ""); err != nil {
			a.log.Warn("notice not sent", "chat", native, "err", err)
		}
	})
	if !sent {
		a.log.Debug("notice skipped, too many in flight", "chat", native)
	}
}
