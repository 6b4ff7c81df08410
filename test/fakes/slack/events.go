package slack

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"
)

// Event is an inner event of the Events API (the "event" of an
// event_callback), as JSON: {"type":"message", ...}.
type Event map[string]any

// RaisedEvent is one event_callback the fake produced for the app, over
// whichever transport (Socket Mode or the request URL).
type RaisedEvent struct {
	EventID string
	Type    string // the inner event's type: "message", "app_mention"...
	Subtype string
	Channel string
	TS      string
	// Payload is the event_callback as delivered.
	Payload json.RawMessage
	At      time.Time
}

// Raised is what a user action produced: the message's ts and the
// event_ids of the events sent for it (none when the app does not
// subscribe to them or the bot is not in the channel).
type Raised struct {
	TS       string
	Channel  string
	EventIDs []string
}

// Raised returns every event produced for the app, oldest first.
func (t *Team) Raised() []RaisedEvent {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return slices.Clone(t.raised)
}

// callbackLocked wraps an inner event in the event_callback Slack sends:
// token, team_id, api_app_id, event, type, event_id, event_time,
// authorizations, is_ext_shared_channel and event_context.
func (t *Team) callbackLocked(ev Event) (string, []byte) {
	id := t.s.nextIDLocked("Ev")
	typ, _ := ev["type"].(string)
	channel, _ := ev["channel"].(string)
	ctxJSON := mustJSON(map[string]any{"et": typ, "tid": t.id, "aid": t.opts.AppID, "cid": channel})
	payload := map[string]any{
		"token":                 t.opts.VerificationToken,
		"team_id":               t.id,
		"context_team_id":       t.id,
		"context_enterprise_id": nil,
		"api_app_id":            t.opts.AppID,
		"event":                 ev,
		"type":                  "event_callback",
		"event_id":              id,
		"event_time":            time.Now().Unix(),
		"authorizations": []any{map[string]any{
			"enterprise_id":         nil,
			"team_id":               t.id,
			"user_id":               t.bot.ID,
			"is_bot":                true,
			"is_enterprise_install": false,
		}},
		"is_ext_shared_channel": false,
		"event_context":         "4-" + base64.RawURLEncoding.EncodeToString(ctxJSON),
	}
	return id, mustJSON(payload)
}

// raiseLocked sends an inner event to the app if it subscribes to need
// ("" for always): over the request URL in Events API mode, else over
// Socket Mode (queued until a connection is up). It returns the event_id,
// or "" when the app does not subscribe.
func (t *Team) raiseLocked(ev Event, need string) string {
	if need != "" && !t.subs[need] {
		return ""
	}
	if _, ok := ev["event_ts"]; !ok {
		if ts, ok := ev["ts"]; ok {
			ev["event_ts"] = ts
		} else {
			ev["event_ts"] = t.s.nextTSLocked()
		}
	}
	id, payload := t.callbackLocked(ev)
	typ, _ := ev["type"].(string)
	sub, _ := ev["subtype"].(string)
	ch, _ := ev["channel"].(string)
	ts, _ := ev["ts"].(string)
	t.raised = append(t.raised, RaisedEvent{EventID: id, Type: typ, Subtype: sub, Channel: ch, TS: ts, Payload: payload, At: time.Now()})
	if url := t.requestURL; url != "" {
		t.s.spawnLocked(func() { _, _ = t.postWithRetries(t.s.ctx, url, id, payload) })
	} else {
		pe := &pendingEvent{id: id, payload: payload, raised: time.Now()}
		t.events[id] = pe
		t.queue = append(t.queue, pe)
		t.wakeLocked()
	}
	t.s.recordLocked()
	return id
}

// RaiseEvent sends any inner event to the app, whatever its
// subscriptions; event_ts is filled in when missing. It returns the
// event_id.
func (t *Team) RaiseEvent(ev Event) string {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.raiseLocked(maps.Clone(ev), "")
}

func (t *Team) userLocked(u User, op string) *User {
	got, ok := t.users[u.ID]
	if !ok {
		panic(fmt.Sprintf("fake slack: %s: unknown user %q (use Team.AddUser)", op, u.ID))
	}
	return got
}

func (t *Team) channelLocked(c Channel, op string) *Channel {
	got, ok := t.channels[c.ID]
	if !ok {
		panic(fmt.Sprintf("fake slack: %s: unknown channel %q (use Team.AddChannel or Team.IM)", op, c.ID))
	}
	return got
}

// userMessageLocked stores a new message from u in c and returns it as
// Slack's message object (without channel, event_ts and channel_type).
func (t *Team) userMessageLocked(u *User, c *Channel, text, threadTS string, extra map[string]any) map[string]any {
	ts := t.s.nextTSLocked()
	threadTS, parent := t.threadLocked(c.ID, threadTS)
	msg := map[string]any{
		"user": u.ID,
		"type": "message",
		"ts":   ts,
		"text": text,
		"team": t.id,
	}
	if _, file := extra["files"]; !file || text != "" {
		msg["client_msg_id"] = t.s.uuidLocked()
		if blocks := richText(text, t.s.nextIDLocked("")[5:]); blocks != nil {
			msg["blocks"] = blocks
		}
	}
	maps.Copy(msg, extra)
	if threadTS != "" {
		msg["thread_ts"] = threadTS
		if parent != nil {
			msg["parent_user_id"] = parent.user
		}
	}
	t.messages[c.ID] = append(t.messages[c.ID], &storedMessage{ts: ts, threadTS: threadTS, user: u.ID, text: text, ev: msg})
	return msg
}

// UserSaysIM makes a user send the bot a direct message: a message event
// with channel_type "im" in the user's IM channel (created on first use).
// Slack sends no app_mention for DMs, even if the text mentions the bot.
func (t *Team) UserSaysIM(u User, text string) Raised {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	usr := t.userLocked(u, "UserSaysIM")
	c := t.imLocked(usr.ID)
	return t.sayLocked(usr, c, text, "")
}

// Say makes a user post a message in a channel (threadTS "" for top
// level), as Slack reports it to the app: a message event if the bot is
// in the channel and the app subscribes to the channel's messages, and,
// as Slack also does, an app_mention event if the text mentions the bot
// (<@U…>) outside a DM. The app_mention comes first; Slack does not
// guarantee their order.
func (t *Team) Say(u User, c Channel, text, threadTS string) Raised {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.sayLocked(t.userLocked(u, "Say"), t.channelLocked(c, "Say"), text, threadTS)
}

// Mention makes a user mention the bot in a channel: Say with the text
// starting with the bot's mention, "<@U…> ", unless it already mentions
// it. Slack then sends both an app_mention and a message event (two
// event_ids, the same ts). In a DM it sends only the message event.
func (t *Team) Mention(u User, c Channel, text, threadTS string) Raised {
	if !mentions(text, t.bot.ID) {
		text = t.bot.Mention() + " " + text
	}
	return t.Say(u, c, text, threadTS)
}

func (t *Team) sayLocked(u *User, c *Channel, text, threadTS string) Raised {
	msg := t.userMessageLocked(u, c, text, threadTS, nil)
	r := Raised{TS: msg["ts"].(string), Channel: c.ID}
	if !c.BotMember {
		return r
	}
	if !c.IsIM && mentions(text, t.bot.ID) {
		am := Event(maps.Clone(msg))
		am["type"] = "app_mention"
		am["channel"] = c.ID
		am["event_ts"] = msg["ts"]
		if id := t.raiseLocked(am, EventAppMention); id != "" {
			r.EventIDs = append(r.EventIDs, id)
		}
	}
	if id := t.raiseLocked(messageEvent(msg, c), c.subscription()); id != "" {
		r.EventIDs = append(r.EventIDs, id)
	}
	return r
}

// EditMessage makes a user edit one of their messages: a message event
// with subtype message_changed, the new message in "message" and the old
// one in "previous_message".
func (t *Team) EditMessage(u User, c Channel, ts, newText string) Raised {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	usr, ch := t.userLocked(u, "EditMessage"), t.channelLocked(c, "EditMessage")
	old := t.findMessageLocked(ch.ID, ts)
	if old == nil {
		panic(fmt.Sprintf("fake slack: EditMessage: no message %s in %s", ts, ch.ID))
	}
	editTS := t.s.nextTSLocked()
	prev := maps.Clone(old.ev)
	next := maps.Clone(old.ev)
	next["text"] = newText
	if blocks := richText(newText, t.s.nextIDLocked("")[5:]); blocks != nil {
		next["blocks"] = blocks
	}
	next["edited"] = map[string]any{"user": usr.ID, "ts": editTS}
	next["source_team"] = t.id
	next["user_team"] = t.id
	old.ev, old.text = next, newText
	r := Raised{TS: editTS, Channel: ch.ID}
	if !ch.BotMember {
		return r
	}
	ev := Event{
		"type":             "message",
		"subtype":          "message_changed",
		"message":          next,
		"previous_message": prev,
		"channel":          ch.ID,
		"hidden":           true,
		"ts":               editTS,
		"event_ts":         editTS,
		"channel_type":     ch.channelType(),
	}
	if id := t.raiseLocked(ev, ch.subscription()); id != "" {
		r.EventIDs = append(r.EventIDs, id)
	}
	return r
}

// JoinChannel makes a user join a channel: a message with subtype
// channel_join, "<@U…> has joined the channel".
func (t *Team) JoinChannel(u User, c Channel) Raised {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	usr, ch := t.userLocked(u, "JoinChannel"), t.channelLocked(c, "JoinChannel")
	ts := t.s.nextTSLocked()
	msg := map[string]any{
		"type":    "message",
		"subtype": "channel_join",
		"ts":      ts,
		"user":    usr.ID,
		"text":    usr.Mention() + " has joined the channel",
	}
	t.messages[ch.ID] = append(t.messages[ch.ID], &storedMessage{ts: ts, user: usr.ID, text: msg["text"].(string), ev: msg})
	r := Raised{TS: ts, Channel: ch.ID}
	if ch.BotMember {
		if id := t.raiseLocked(messageEvent(msg, ch), ch.subscription()); id != "" {
			r.EventIDs = append(r.EventIDs, id)
		}
	}
	return r
}

// OtherBotSays makes another integration post in a channel: a message with
// subtype bot_message, a bot_id of its own (stable per name), its
// username and no user, as legacy bots and webhooks post.
func (t *Team) OtherBotSays(c Channel, botName, text string) Raised {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	ch := t.channelLocked(c, "OtherBotSays")
	var botID string
	for _, u := range t.users {
		if u.IsBot && u.Name == botName && u.ID != t.bot.ID {
			botID = u.BotID
		}
	}
	if botID == "" {
		u := &User{ID: t.s.nextIDLocked("U"), Name: botName, RealName: botName, IsBot: true, BotID: t.s.nextIDLocked("B")}
		t.users[u.ID] = u
		botID = u.BotID
	}
	ts := t.s.nextTSLocked()
	msg := map[string]any{
		"type":     "message",
		"subtype":  "bot_message",
		"text":     text,
		"ts":       ts,
		"bot_id":   botID,
		"username": botName,
		"icons":    map[string]any{"emoji": ":robot_face:"},
	}
	t.messages[ch.ID] = append(t.messages[ch.ID], &storedMessage{ts: ts, botID: botID, text: text, ev: msg})
	r := Raised{TS: ts, Channel: ch.ID}
	if ch.BotMember {
		if id := t.raiseLocked(messageEvent(msg, ch), ch.subscription()); id != "" {
			r.EventIDs = append(r.EventIDs, id)
		}
	}
	return r
}

// File is a file a user shares. Name and Content are the caller's; the
// rest is filled in by ShareFile (ID, URLPrivate...).
type File struct {
	ID                 string
	Name               string
	Title              string
	Mimetype           string // default "application/octet-stream"
	Filetype           string // default the name's extension
	Content            []byte
	URLPrivate         string
	URLPrivateDownload string
}

// ShareFile makes a user share files in a channel, with an optional text: a
// message with subtype file_share and files: [{id, name, mimetype,
// url_private, ...}]. The files' url_private serve Content to requests
// with the bot token (Authorization: Bearer), as files.slack.com does;
// without it they redirect to a sign-in page.
func (t *Team) ShareFile(u User, c Channel, text string, files ...File) (Raised, []File) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	usr, ch := t.userLocked(u, "ShareFile"), t.channelLocked(c, "ShareFile")
	var objs []any
	for i := range files {
		f := &files[i]
		if f.ID == "" {
			f.ID = t.s.nextIDLocked("F")
		}
		if f.Name == "" {
			f.Name = "file.bin"
		}
		if f.Title == "" {
			f.Title = f.Name
		}
		if f.Mimetype == "" {
			f.Mimetype = "application/octet-stream"
		}
		if f.Filetype == "" {
			f.Filetype = strings.TrimPrefix(path.Ext(f.Name), ".")
			if f.Filetype == "" {
				f.Filetype = "binary"
			}
		}
		base := t.s.root + "/files-pri/" + t.id + "-" + f.ID + "/"
		f.URLPrivate = base + f.Name
		f.URLPrivateDownload = base + "download/" + f.Name
		t.files[f.ID] = &storedFile{file: *f, content: f.Content}
		now := time.Now().Unix()
		objs = append(objs, map[string]any{
			"id":                   f.ID,
			"created":              now,
			"timestamp":            now,
			"name":                 f.Name,
			"title":                f.Title,
			"mimetype":             f.Mimetype,
			"filetype":             f.Filetype,
			"pretty_type":          strings.ToUpper(f.Filetype),
			"user":                 usr.ID,
			"user_team":            t.id,
			"editable":             false,
			"size":                 len(f.Content),
			"mode":                 "hosted",
			"is_external":          false,
			"external_type":        "",
			"is_public":            !ch.IsIM && !ch.IsPrivate,
			"public_url_shared":    false,
			"display_as_bot":       false,
			"username":             "",
			"url_private":          f.URLPrivate,
			"url_private_download": f.URLPrivateDownload,
			"permalink":            "https://" + t.opts.Domain + ".slack.com/files/" + usr.ID + "/" + f.ID + "/" + f.Name,
			"permalink_public":     "https://slack-files.com/" + t.id + "-" + f.ID + "-" + strings.ToLower(f.ID),
			"has_rich_preview":     false,
			"file_access":          "visible",
		})
	}
	msg := t.userMessageLocked(usr, ch, text, "", map[string]any{
		"subtype":        "file_share",
		"files":          objs,
		"upload":         false,
		"display_as_bot": false,
	})
	r := Raised{TS: msg["ts"].(string), Channel: ch.ID}
	if ch.BotMember {
		if id := t.raiseLocked(messageEvent(msg, ch), ch.subscription()); id != "" {
			r.EventIDs = append(r.EventIDs, id)
		}
	}
	return r, slices.Clone(files)
}

// WaitRaised waits until at least n events have been raised for the app.
func (t *Team) WaitRaised(ctx context.Context, n int) error {
	return t.s.Wait(ctx, func() bool { return len(t.Raised()) >= n })
}
