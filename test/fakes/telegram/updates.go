package telegram

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
	"unicode/utf16"
)

// Push queues an update as if a user had just done something, and returns
// its update_id. Zero fields are filled in as Telegram would: the
// update_id, a message's message_id (per chat) and date, the private chat
// of a message from a user, file ids of media, and the entities of
// commands and @mentions in text and captions.
func (b *Bot) Push(u Update) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range []*Message{u.Message, u.EditedMessage, u.ChannelPost} {
		if m != nil {
			b.fillMessageLocked(m)
		}
	}
	return b.pushLocked(u)
}

// SendText pushes a private text message from user (the chat id is the
// user's id) and returns its update_id.
func (b *Bot) SendText(from User, text string) int64 {
	return b.Push(Update{Message: &Message{From: &from, Text: text}})
}

// PrivateChat returns the private chat Telegram makes for a user.
func PrivateChat(u User) Chat {
	return Chat{ID: u.ID, Type: ChatPrivate, FirstName: u.FirstName, LastName: u.LastName, Username: u.Username}
}

func (b *Bot) pushLocked(u Update) int64 {
	if u.UpdateID == 0 {
		b.nextUpdate++
		u.UpdateID = b.nextUpdate
	} else if u.UpdateID > b.nextUpdate {
		b.nextUpdate = u.UpdateID
	}
	b.queue = append(b.queue, u)
	b.broadcastLocked()
	return u.UpdateID
}

func (b *Bot) fillMessageLocked(m *Message) {
	if m.Chat.ID == 0 && m.From != nil {
		m.Chat = PrivateChat(*m.From)
	}
	if m.Chat.Type == "" {
		m.Chat.Type = ChatPrivate
	}
	cs := b.chatLocked(m.Chat)
	if m.MessageID == 0 {
		m.MessageID = cs.nextMsg
	}
	cs.nextMsg = max(cs.nextMsg, m.MessageID+1)
	if m.Date == 0 {
		m.Date = time.Now().Unix()
	}
	if m.Text != "" && m.Entities == nil {
		m.Entities = detectEntities(m.Text)
	}
	if m.Caption != "" && m.CaptionEntities == nil {
		m.CaptionEntities = detectEntities(m.Caption)
	}
	for i := range m.Photo {
		b.fillFileLocked(&m.Photo[i].FileID, &m.Photo[i].FileUniqueID, "photos", ".jpg")
	}
	if d := m.Document; d != nil {
		b.fillFileLocked(&d.FileID, &d.FileUniqueID, "documents", "")
	}
	if v := m.Video; v != nil {
		b.fillFileLocked(&v.FileID, &v.FileUniqueID, "videos", ".mp4")
	}
	if v := m.Voice; v != nil {
		b.fillFileLocked(&v.FileID, &v.FileUniqueID, "voice", ".oga")
	}
	if s := m.Sticker; s != nil {
		b.fillFileLocked(&s.FileID, &s.FileUniqueID, "stickers", ".webp")
		if s.Type == "" {
			s.Type = "regular"
		}
	}
}

// entityRE finds what Telegram marks in incoming texts that matters to a
// bot: commands ("/start", "/help@some_bot") and @mentions.
var entityRE = regexp.MustCompile(`(^|[\s(])((/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]{3,32})?)|(@[A-Za-z0-9_]{4,32}))`)

func detectEntities(text string) []MessageEntity {
	var out []MessageEntity
	for _, m := range entityRE.FindAllStringSubmatchIndex(text, -1) {
		start, end := m[4], m[5]
		typ := "mention"
		if text[start] == '/' {
			typ = "bot_command"
		}
		off := len(utf16.Encode([]rune(text[:start])))
		out = append(out, MessageEntity{Type: typ, Offset: off, Length: len(utf16.Encode([]rune(text[start:end])))})
	}
	return out
}

// pollWaiter is a getUpdates request waiting for updates; a newer request
// terminates it with a 409, as Telegram does.
type pollWaiter struct {
	terminated chan struct{}
}

// getUpdates implements long polling. An update is confirmed, and never
// returned again, once getUpdates is called with an offset higher than its
// update_id; a negative offset keeps only the last -offset updates.
func (b *Bot) getUpdates(ctx context.Context, p params) (any, string, error) {
	offset, err := p.int("offset")
	if err != nil {
		return nil, "", err
	}
	limit, err := p.int("limit")
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	timeout, err := p.int("timeout")
	if err != nil {
		return nil, "", err
	}
	var allowed []string
	if err := p.object("allowed_updates", &allowed); err != nil {
		return nil, "", err
	}

	b.mu.Lock()
	if b.hook.url != "" {
		b.mu.Unlock()
		return nil, "", apiError{code: http.StatusConflict,
			desc: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}
	}
	if p.has("allowed_updates") {
		b.allowed = allowed
	}
	b.confirmLocked(offset)
	if b.poller != nil {
		close(b.poller.terminated)
	}
	me := &pollWaiter{terminated: make(chan struct{})}
	b.poller = me
	release := func() {
		if b.poller == me {
			b.poller = nil
		}
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		timer = t.C
	}
	for {
		ups := b.availableLocked(b.allowed, int(limit))
		if len(ups) > 0 || timeout <= 0 || b.hook.url != "" {
			for _, u := range ups {
				b.served[u.UpdateID]++
			}
			if ups == nil {
				ups = []Update{} // "result":[], never null
			}
			release()
			b.mu.Unlock()
			return ups, "", nil
		}
		ch := b.changed
		b.mu.Unlock()
		expired := false
		select {
		case <-ch:
		case <-me.terminated:
			return nil, "", apiError{code: http.StatusConflict,
				desc: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"}
		case <-timer:
			expired = true
		case <-ctx.Done():
			b.mu.Lock()
			release()
			b.mu.Unlock()
			return nil, "", fmt.Errorf("get updates: %w", ctx.Err())
		case <-b.s.ctx.Done():
			expired = true
		}
		b.mu.Lock()
		if expired {
			release()
			b.mu.Unlock()
			return []Update{}, "", nil
		}
	}
}

// confirmLocked forgets the updates an offset confirms.
func (b *Bot) confirmLocked(offset int64) {
	switch {
	case offset > 0:
		i := 0
		for i < len(b.queue) && b.queue[i].UpdateID < offset {
			i++
		}
		b.queue = slices.Clone(b.queue[i:])
	case offset < 0:
		if keep := int(-offset); keep < len(b.queue) {
			b.queue = slices.Clone(b.queue[len(b.queue)-keep:])
		}
	}
}

// defaultHidden are the update types Telegram does not send unless asked
// for by name.
var defaultHidden = []string{"chat_member", "message_reaction", "message_reaction_count"}

// availableLocked returns up to limit queued updates of the allowed types.
// Updates of other types are dropped from the queue: Telegram does not
// even create them for the bot.
func (b *Bot) availableLocked(allowed []string, limit int) []Update {
	keep := b.queue[:0:0]
	var out []Update
	for _, u := range b.queue {
		k := u.kind()
		ok := slices.Contains(allowed, k) || (len(allowed) == 0 && !slices.Contains(defaultHidden, k))
		if !ok {
			continue
		}
		keep = append(keep, u)
		if len(out) < limit {
			out = append(out, u)
		}
	}
	b.queue = keep
	return out
}
