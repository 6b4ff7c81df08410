package telegram

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/mymmrac/telego"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/media"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// incoming is what one user message means for the adapter.
type incoming struct {
	msg   core.Inbound
	chat  int64    // the Telegram chat to answer in
	group bool     // a group chat: answers reply to the user's message
	reply replyRef // the user's message
	// notice is a reply the adapter sends itself (media_reply).
	notice string
}

// handleUpdate hands one update to the core. A nil error means the update
// may be acknowledged: it was accepted, is of no interest, or can never
// be accepted (then the user is told, if reject_reply is set). Any other
// error means "not yet": the caller must not acknowledge the update.
func (a *Adapter) handleUpdate(ctx context.Context, r *run, deliver core.DeliverFunc, u telego.Update) error {
	if u.MyChatMember != nil {
		a.memberChanged(u.MyChatMember)
		return nil
	}
	in, skip := parseUpdate(&a.cfg, &r.Data.me, u)
	if skip != "" {
		a.log.Debug("update ignored", "update_id", u.UpdateID, "reason", skip)
		return nil
	}
	// A user who writes has not blocked the bot (any more).
	a.blocked.Remove(in.chat)
	if in.group {
		a.replies.Put(in.msg.ChatID, in.reply)
	}
	err := inbound.Deliver(ctx, deliver, in.msg, 0)
	switch {
	case err == nil:
		a.log.Debug("update delivered", "update_id", u.UpdateID, "chat", in.msg.ChatID, "id", in.msg.ID, "bytes", len(in.msg.Text))
		a.notify(r, in, in.notice)
		if !a.handovers.Human(in.msg.ChatID) {
			a.typing.Start(r.Context(), in.chat)
		}
		return nil
	case core.IsPermanent(err):
		// Redelivering cannot help, and an unacknowledged update would
		// block every later one (Telegram's offset): acknowledge it. The
		// core has logged the refusal.
		a.notify(r, in, a.cfg.RejectReply)
		return nil
	default:
		return fmt.Errorf("deliver update %d: %w", u.UpdateID, err)
	}
}

// memberChanged follows the bot's own membership: a private chat's user
// blocking the bot ("kicked"), the bot leaving or being removed from a
// group. Sends to such chats then fail fast, without asking Telegram.
func (a *Adapter) memberChanged(m *telego.ChatMemberUpdated) {
	if m.NewChatMember == nil {
		return
	}
	switch m.NewChatMember.MemberStatus() {
	case telego.MemberStatusBanned, telego.MemberStatusLeft:
		a.blocked.Put(m.Chat.ID, time.Now())
		a.typing.Stop(m.Chat.ID)
		a.log.Info("bot blocked or removed", "chat", m.Chat.ID, "chat_type", m.Chat.Type)
	default:
		if a.blocked.Has(m.Chat.ID) {
			a.log.Info("bot unblocked or added", "chat", m.Chat.ID, "chat_type", m.Chat.Type)
		}
		a.blocked.Remove(m.Chat.ID)
	}
}

// notify sends one of the adapter's own short replies in the background,
// best effort and bounded (kit/outbound.Notices).
func (a *Adapter) notify(r *run, in incoming, text string) {
	if text == "" {
		return
	}
	sent := a.notices.Go(r, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		defer cancel()
		var reply *replyRef
		if in.group {
			reply = &in.reply
		}
		if err := a.sendPlain(ctx, in.chat, text, reply); err != nil {
			a.log.Warn("notice not sent", "chat", in.chat, "err", err)
		}
	})
	if !sent {
		a.log.Debug("notice skipped, too many in flight", "chat", in.chat)
	}
}

// parseUpdate turns an update into a message for the core, or says why it
// is of no interest. It does no I/O.
//
// Native chat ids: a private chat is its chat id. In a group every user
// has a dialog of their own, "<group chat id>:<user id>": Selarti keeps
// one context, one contact and one set of flags per chat id, and in a
// group those belong to the person asking, not to the room. The answer
// goes to the group, as a reply to that user's message.
func parseUpdate(cfg *Config, me *telego.User, u telego.Update) (incoming, string) {
	m := u.Message
	if m == nil {
		return incoming{}, "not a new message"
	}
	if m.From == nil || m.From.IsBot || m.SenderChat != nil {
		return incoming{}, "not from a user"
	}
	in := incoming{chat: m.Chat.ID, reply: replyRef{messageID: m.MessageID}}
	if m.IsTopicMessage {
		// In a forum the answer must go to the same topic.
		in.reply.threadID = m.MessageThreadID
	}
	text, ents := m.Text, m.Entities
	if text == "" {
		text, ents = m.Caption, m.CaptionEntities
	}
	name := strings.TrimSpace(m.From.FirstName + " " + m.From.LastName)
	switch m.Chat.Type {
	case telego.ChatTypePrivate:
		in.msg.ChatID = strconv.FormatInt(m.Chat.ID, 10)
	case telego.ChatTypeGroup, telego.ChatTypeSupergroup:
		if cfg.Groups != GroupsMention {
			return incoming{}, "group chats are ignored (groups: ignore)"
		}
		if !addressed(m, text, ents, me) {
			return incoming{}, "group message not addressed to the bot"
		}
		in.group = true
		in.msg.ChatID = strconv.FormatInt(m.Chat.ID, 10) + ":" + strconv.FormatInt(m.From.ID, 10)
		if m.Chat.Title != "" {
			name += " (" + m.Chat.Title + ")"
		}
	default:
		return incoming{}, "not a private or group chat"
	}
	text = cleanText(text, ents, me)

	standIn, needsText := mediaStandIn(m)
	if standIn != "" {
		if text == "" && needsText {
			in.notice = cfg.MediaReply
		}
		text = media.WithText(text, standIn)
	}
	if strings.TrimSpace(text) == "" {
		return incoming{}, "no text and nothing to describe (a service message)"
	}
	in.msg.Text = text
	// The update id is unique per bot but restarts at a random value after
	// a week without updates; "<chat>/<message id>" never repeats, so it
	// is the safer dedupe key for the core.
	in.msg.ID = strconv.FormatInt(m.Chat.ID, 10) + "/" + strconv.Itoa(m.MessageID)
	in.msg.User = core.User{Name: name, Username: m.From.Username}
	if c := m.Contact; c != nil && c.UserID == m.From.ID {
		// The user shared their own number (Telegram's "share my phone
		// number" button): it is contact information for Selarti. A
		// contact card of someone else only goes into the text.
		in.msg.User.Phone = normalizePhone(c.PhoneNumber)
	}
	if m.Date > 0 {
		in.msg.ReceivedAt = time.Unix(m.Date, 0)
	}
	return in, ""
}

// addressed reports whether a group message is for the bot: it mentions
// the bot, replies to one of its messages, or is a command (a bare
// "/command", or "/command@this_bot").
func addressed(m *telego.Message, text string, ents []telego.MessageEntity, me *telego.User) bool {
	if r := m.ReplyToMessage; r != nil && r.From != nil && r.From.ID == me.ID {
		return true
	}
	for _, e := range ents {
		switch e.Type {
		case "mention":
			if strings.EqualFold(entityText(text, e), "@"+me.Username) {
				return true
			}
		case "text_mention":
			if e.User != nil && e.User.ID == me.ID {
				return true
			}
		case "bot_command":
			if e.Offset != 0 {
				continue
			}
			_, bot, found := strings.Cut(entityText(text, e), "@")
			if !found || strings.EqualFold(bot, me.Username) {
				return true
			}
		}
	}
	return false
}

// cleanText removes the bot's @mention and the "@bot" of a command
// ("/start@shop_bot promo" → "/start promo"): they address the bot, they
// are not what the user says.
func cleanText(text string, ents []telego.MessageEntity, me *telego.User) string {
	if me.Username == "" || len(ents) == 0 {
		return strings.TrimSpace(text)
	}
	u := utf16.Encode([]rune(text))
	mention := "@" + strings.ToLower(me.Username)
	var cuts [][2]int // UTF-16 ranges to remove, ascending
	for _, e := range ents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > len(u) {
			continue
		}
		et := strings.ToLower(string(utf16.Decode(u[e.Offset : e.Offset+e.Length])))
		switch {
		case e.Type == "mention" && et == mention:
			cuts = append(cuts, [2]int{e.Offset, e.Offset + e.Length})
		case e.Type == "bot_command" && strings.HasSuffix(et, mention):
			end := e.Offset + e.Length
			cuts = append(cuts, [2]int{end - richtext.UTF16.Len(mention), end})
		}
	}
	if len(cuts) == 0 {
		return strings.TrimSpace(text)
	}
	var out []uint16
	prev := 0
	for _, c := range cuts {
		if c[0] < prev {
			continue
		}
		out = append(out, u[prev:c[0]]...)
		prev = c[1]
	}
	out = append(out, u[prev:]...)
	return strings.Join(strings.Fields(string(utf16.Decode(out))), " ")
}

// entityText returns the text an entity covers (offsets in UTF-16 units).
func entityText(text string, e telego.MessageEntity) string {
	u := utf16.Encode([]rune(text))
	if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > len(u) {
		return ""
	}
	return string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
}

// mediaStandIn describes what the assistant cannot receive in the kit's
// words (kit/media), so that nothing a user sends vanishes silently.
// needsText is set for media whose content is lost without a caption (a
// photo, a voice message): then the user is asked, by media_reply, to
// type instead.
func mediaStandIn(m *telego.Message) (standIn string, needsText bool) {
	it, ok := mediaItem(m)
	if !ok {
		return "", false
	}
	return media.StandIn(it), it.Kind.NeedsText()
}

// mediaItem says what media m carries, in the kit's terms.
func mediaItem(m *telego.Message) (media.Item, bool) {
	sec := func(n int) time.Duration { return time.Duration(n) * time.Second }
	switch {
	case len(m.Photo) > 0:
		return media.Item{Kind: media.Photo}, true
	case m.Video != nil:
		return media.Item{Kind: media.Video, Duration: sec(m.Video.Duration)}, true
	case m.VideoNote != nil:
		return media.Item{Kind: media.VideoNote, Duration: sec(m.VideoNote.Duration)}, true
	case m.Animation != nil:
		return media.Item{Kind: media.GIF}, true
	case m.Voice != nil:
		return media.Item{Kind: media.Voice, Duration: sec(m.Voice.Duration)}, true
	case m.Audio != nil:
		name := strings.TrimSpace(strings.Trim(m.Audio.Performer+" – "+m.Audio.Title, " –"))
		if name == "" {
			name = m.Audio.FileName
		}
		return media.Item{Kind: media.Audio, Name: name}, true
	case m.Document != nil:
		return media.Item{Kind: media.File, Name: m.Document.FileName}, true
	case m.Sticker != nil:
		return media.Item{Kind: media.Sticker, Detail: m.Sticker.Emoji}, true
	case m.Contact != nil:
		c := m.Contact
		return media.Item{Kind: media.Contact, Name: strings.TrimSpace(c.FirstName + " " + c.LastName), Detail: normalizePhone(c.PhoneNumber)}, true
	case m.Venue != nil:
		return media.Item{Kind: media.Place, Name: m.Venue.Title, Detail: m.Venue.Address}, true
	case m.Location != nil:
		return media.Item{Kind: media.Location, Lat: m.Location.Latitude, Lon: m.Location.Longitude}, true
	case m.Poll != nil:
		return media.Item{Kind: media.Poll, Name: m.Poll.Question}, true
	case m.Dice != nil:
		return media.Item{Kind: media.Dice, Detail: m.Dice.Emoji, Value: m.Dice.Value}, true
	}
	return media.Item{}, false
}

// normalizePhone puts the "+" on an international number that Telegram
// sends as bare digits (it does for the user's own number).
func normalizePhone(p string) string {
	p = strings.TrimSpace(p)
	if p == "" || strings.HasPrefix(p, "+") {
		return p
	}
	for _, r := range p {
		if r < '0' || r > '9' {
			return p
		}
	}
	return "+" + p
}
