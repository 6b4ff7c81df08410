package slack

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// PostedMessage is one message the app posted with chat.postMessage.
type PostedMessage struct {
	Channel  string // the channel id (resolved from a name or user id)
	TS       string
	ThreadTS string // the thread's parent ts; "" for a top-level message
	// ThreadParentKnown is false when thread_ts named no message in the
	// channel. Slack answers ok anyway (the reply goes nowhere visible).
	ThreadParentKnown bool
	Text              string // as stored: truncated if TruncateLongMessages cut it
	Truncated         bool
	Mrkdwn            bool   // false when mrkdwn=false was passed
	Blocks            string // JSON as sent, "" when none
	Attachments       string
	ReplyBroadcast    bool
	// Params are all the request's parameters (unfurl_links, username...).
	Params map[string]string
	At     time.Time
}

// Message is one message in a channel's history, from a user or a bot.
type Message struct {
	TS       string
	ThreadTS string
	User     string
	BotID    string
	Text     string
}

// Posted returns the messages the app posted to a channel (by id), oldest
// first; "" means every channel.
func (t *Team) Posted(channel string) []PostedMessage {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	var out []PostedMessage
	for _, m := range t.posted {
		if channel == "" || m.Channel == channel {
			m.Params = maps.Clone(m.Params)
			out = append(out, m)
		}
	}
	return out
}

// Observe makes fn be called with every message the app posts with
// chat.postMessage, as soon as it is stored, from the goroutine serving
// the request (with no lock held, before the answer is written): a load
// benchmark sees each reply without polling Posted. fn must be quick and
// safe for concurrent use; nil removes it.
func (t *Team) Observe(fn func(PostedMessage)) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.onPosted = fn
}

// WaitPosted waits until the app has posted at least n messages to a
// channel ("" for any).
func (t *Team) WaitPosted(ctx context.Context, channel string, n int) error {
	return t.s.Wait(ctx, func() bool { return len(t.Posted(channel)) >= n })
}

// History returns a channel's messages, oldest first: what users said
// through the fake and what the app posted.
func (t *Team) History(channel string) []Message {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	var out []Message
	for _, m := range t.messages[channel] {
		out = append(out, Message{TS: m.ts, ThreadTS: m.threadTS, User: m.user, BotID: m.botID, Text: m.text})
	}
	return out
}

func (t *Team) findMessageLocked(channel, ts string) *storedMessage {
	for _, m := range t.messages[channel] {
		if m.ts == ts {
			return m
		}
	}
	return nil
}

// threadLocked resolves a thread_ts: the parent's ts (a reply's ts names
// its parent's thread, as in Slack) and the parent, if known.
func (t *Team) threadLocked(channel, threadTS string) (string, *storedMessage) {
	if threadTS == "" {
		return "", nil
	}
	parent := t.findMessageLocked(channel, threadTS)
	if parent != nil && parent.threadTS != "" && parent.threadTS != parent.ts {
		if root := t.findMessageLocked(channel, parent.threadTS); root != nil {
			return root.ts, root
		}
		return parent.threadTS, nil
	}
	return threadTS, parent
}

func (t *Team) postMessage(req apiRequest) (map[string]any, string) {
	p := req.params
	text := p["text"]
	var blocks, attachments []any
	if raw := p["blocks"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &blocks); err != nil {
			return nil, "invalid_blocks_format"
		}
	}
	if raw := p["attachments"]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &attachments); err != nil {
			return nil, "invalid_attachments"
		}
	}
	if strings.TrimSpace(text) == "" && len(blocks) == 0 && len(attachments) == 0 {
		return nil, "no_text"
	}
	var metadata map[string]any
	if raw := p["metadata"]; raw != "" {
		if json.Unmarshal([]byte(raw), &metadata) != nil {
			return nil, "invalid_metadata_format"
		}
		if et, _ := metadata["event_type"].(string); et == "" {
			return nil, "invalid_metadata_schema"
		}
		if _, ok := metadata["event_payload"].(map[string]any); !ok {
			return nil, "invalid_metadata_schema"
		}
	}
	truncated := false
	if utf8.RuneCountInString(text) > MaxMessageLength {
		if !t.s.opts.TruncateLongMessages {
			return nil, "msg_too_long"
		}
		text = string([]rune(text)[:MaxMessageLength])
		truncated = true
	}

	s := t.s
	// The observer is called once the lock is released (deferred calls
	// run last first), before the answer is written.
	var observe func(PostedMessage)
	var observed PostedMessage
	defer func() {
		if observe != nil {
			observe(observed)
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := t.resolveChannelLocked(p["channel"])
	if c == nil || (c.IsPrivate && !c.BotMember) {
		return nil, "channel_not_found"
	}
	if c.Archived {
		return nil, "is_archived"
	}
	if !c.BotMember {
		return nil, "not_in_channel"
	}
	threadTS, parent := t.threadLocked(c.ID, p["thread_ts"])
	ts := s.nextTSLocked()
	msg := map[string]any{
		"type":        "message",
		"text":        text,
		"user":        t.bot.ID,
		"ts":          ts,
		"bot_id":      t.bot.BotID,
		"app_id":      t.opts.AppID,
		"team":        t.id,
		"bot_profile": t.botProfile(),
	}
	if len(blocks) > 0 {
		msg["blocks"] = blocks
	}
	if len(attachments) > 0 {
		msg["attachments"] = attachments
	}
	if threadTS != "" {
		msg["thread_ts"] = threadTS
		if parent != nil {
			msg["parent_user_id"] = parent.user
		}
	}
	t.messages[c.ID] = append(t.messages[c.ID], &storedMessage{ts: ts, threadTS: threadTS, user: t.bot.ID, text: text, botID: t.bot.BotID, ev: msg, metadata: metadata})
	pm := PostedMessage{
		Channel:           c.ID,
		TS:                ts,
		ThreadTS:          threadTS,
		ThreadParentKnown: threadTS == "" || parent != nil,
		Text:              text,
		Truncated:         truncated,
		Mrkdwn:            p["mrkdwn"] != "false",
		Blocks:            p["blocks"],
		Attachments:       p["attachments"],
		ReplyBroadcast:    p["reply_broadcast"] == "true",
		Params:            maps.Clone(p),
		At:                time.Now(),
	}
	t.posted = append(t.posted, pm)
	if t.onPosted != nil {
		observe, observed = t.onPosted, pm
		observed.Params = maps.Clone(pm.Params)
	}
	// Slack sends the app its own message back as a message event with
	// bot_id, to every app subscribed to the channel's messages.
	t.raiseLocked(messageEvent(msg, c), c.subscription())
	s.recordLocked()
	return map[string]any{"channel": c.ID, "ts": ts, "message": msg}, ""
}

func (t *Team) botProfile() map[string]any {
	return map[string]any{
		"id":      t.bot.BotID,
		"deleted": false,
		"name":    t.bot.Name,
		"updated": time.Now().Unix(),
		"app_id":  t.opts.AppID,
		"icons":   map[string]any{"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"},
		"team_id": t.id,
	}
}

// messageEvent is a message as a message event in c: the message plus
// channel, event_ts and channel_type.
func messageEvent(msg map[string]any, c *Channel) Event {
	ev := Event(maps.Clone(msg))
	ev["channel"] = c.ID
	ev["event_ts"] = msg["ts"]
	ev["channel_type"] = c.channelType()
	return ev
}

// tokenRE finds Slack's markup in message text: mentions, channel links,
// special mentions and links.
var tokenRE = regexp.MustCompile(`<([@#!])([A-Za-z0-9^_-]+)(?:\|([^>]*))?>|<((?:https?|mailto):[^|>]+)(?:\|([^>]*))?>`)

// richText builds the rich_text block Slack attaches to a user's message,
// from its text in Slack's markup.
func richText(text string, blockID string) []any {
	var elems []any
	addText := func(s string) {
		if s == "" {
			return
		}
		s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
		elems = append(elems, map[string]any{"type": "text", "text": s})
	}
	last := 0
	for _, m := range tokenRE.FindAllStringSubmatchIndex(text, -1) {
		addText(text[last:m[0]])
		last = m[1]
		sub := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return text[m[2*i]:m[2*i+1]]
		}
		switch sigil, id := sub(1), sub(2); {
		case sigil == "@":
			elems = append(elems, map[string]any{"type": "user", "user_id": id})
		case sigil == "#":
			elems = append(elems, map[string]any{"type": "channel", "channel_id": id})
		case sigil == "!" && (id == "here" || id == "channel" || id == "everyone"):
			elems = append(elems, map[string]any{"type": "broadcast", "range": id})
		case sigil == "!":
			addText(text[m[0]:m[1]])
		default:
			link := map[string]any{"type": "link", "url": sub(4)}
			if label := sub(5); label != "" {
				link["text"] = label
			}
			elems = append(elems, link)
		}
	}
	addText(text[last:])
	if len(elems) == 0 {
		return nil
	}
	return []any{map[string]any{
		"type":     "rich_text",
		"block_id": blockID,
		"elements": []any{map[string]any{"type": "rich_text_section", "elements": elems}},
	}}
}

// mentions reports whether text mentions a user.
func mentions(text, userID string) bool {
	for _, m := range tokenRE.FindAllStringSubmatch(text, -1) {
		if m[1] == "@" && m[2] == userID {
			return true
		}
	}
	return false
}
