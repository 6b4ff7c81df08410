package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mymmrac/telego"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/richtext"
	"github.com/switchboard-gw/switchboard/kit/text"
)

// messageLimit is Telegram's limit on one message: 4096 UTF-16 code
// units of visible text, counted after entity parsing (so "&lt;" is one).
var messageLimit = richtext.TelegramLimit

// maxParts bounds the messages one answer is split into (about 40,000
// characters). Past it the answer is cut: an assistant gone wrong must not
// flood a user with hundreds of messages.
const maxParts = 10

// target is where a native chat id sends to.
type target struct {
	chat int64 // the Telegram chat
	user int64 // in a group dialog, the user it belongs to; else 0
}

// parseTarget parses a native chat id: "<chat id>" or, for a user's
// dialog in a group, "<group chat id>:<user id>".
func parseTarget(native string) (target, error) {
	chatPart, userPart, isGroup := strings.Cut(native, ":")
	chat, err := strconv.ParseInt(chatPart, 10, 64)
	if err != nil || chat == 0 {
		return target{}, fmt.Errorf("chat id %q is not a Telegram chat id", text.Shorten(native, 40))
	}
	t := target{chat: chat}
	if isGroup {
		t.user, err = strconv.ParseInt(userPart, 10, 64)
		if err != nil || t.user <= 0 || chat > 0 {
			return target{}, fmt.Errorf("chat id %q is not a Telegram group dialog id", text.Shorten(native, 40))
		}
	}
	return t, nil
}

// Send delivers one message from the assistant or an operator: Markdown
// converted to Telegram HTML, split into messages of at most 4096
// characters, each paced by the send limits. In a group the first message
// replies to the user's last message.
//
// A split message is sent part by part. If part 2 of 3 fails, the parts
// already sent are remembered by Outbound.ID (in memory, bounded), and the
// outbox's retry resumes with part 2 instead of sending part 1 again.
//
// Errors follow core.Messenger; see classifySend for the mapping.
func (a *Adapter) Send(ctx context.Context, msg core.Outbound) error {
	t, err := parseTarget(msg.ChatID)
	if err != nil {
		return fmt.Errorf("send message: %w: %w", core.ErrUnknownChat, err)
	}
	if a.runs.Current() == nil {
		return fmt.Errorf("send message to chat %d: %w", t.chat, core.ErrNotConnected)
	}
	if _, blocked := a.blocked.Get(t.chat); blocked {
		return core.Permanent(fmt.Errorf("send message to chat %d: %w", t.chat, errBlocked))
	}
	a.handovers.Note(msg.ChatID, msg.Dialog)
	a.typing.Stop(t.chat)

	doc := richtext.Parse(msg.Text)
	if msg.From == core.SenderOperator {
		doc = doc.WithPrefix(a.cfg.OperatorPrefix)
	}
	parts := richtext.Split(doc, richtext.TelegramHTML{}, messageLimit)
	if len(parts) == 0 {
		return core.Permanent(fmt.Errorf("send message to chat %d: empty text", t.chat))
	}
	if len(parts) > maxParts {
		a.log.Warn("message too long, only its beginning is sent", "chat", msg.ChatID, "message_id", msg.ID, "parts", len(parts), "sent_parts", maxParts)
		parts = parts[:maxParts]
	}
	var reply *replyRef
	if t.user != 0 {
		if r, ok := a.replies.Get(msg.ChatID); ok {
			reply = &r
		}
	}
	from, err := a.progress.SendParts(ctx, msg.ID, len(parts), func(ctx context.Context, i int) error {
		r := reply
		if i > 0 {
			r = nil // only the first part replies to the user's message
		}
		return a.sendPart(ctx, t.chat, parts[i], r)
	})
	if from > 0 {
		a.log.Info("resumed split message", "chat", msg.ChatID, "message_id", msg.ID, "from_part", from+1, "parts", len(parts))
	}
	if err != nil {
		return a.sendFailed(msg, t, err)
	}
	a.log.Debug("message sent", "chat", msg.ChatID, "message_id", msg.ID, "parts", len(parts), "from", msg.From)
	return nil
}

// sendFailed records what a failed send means and returns the error for
// the core.
func (a *Adapter) sendFailed(msg core.Outbound, t target, err error) error {
	what, part := "send message", 1
	var pe *outbound.PartError
	if errors.As(err, &pe) {
		err, part = pe.Err, pe.Part+1
		if pe.Parts > 1 {
			what = fmt.Sprintf("send part %d of %d", part, pe.Parts)
		}
	}
	out := classifySend(err)
	if errors.Is(out, errBlocked) {
		a.blocked.Put(t.chat, time.Now())
	}
	if isAmbiguous(err) {
		// Telegram may have delivered it; the Bot API has no idempotency
		// key to ask. Retrying risks a duplicate, giving up risks a loss;
		// the outbox retries (see classifySend).
		a.log.Warn("send outcome unknown, it will be retried and may arrive twice",
			"chat", msg.ChatID, "message_id", msg.ID, "part", part, "err", err)
	}
	return fmt.Errorf("%s to chat %d: %w", what, t.chat, out)
}

// sendPart sends one message as HTML (or plain text, with parse_mode:
// plain). Should Telegram refuse the HTML ("can't parse entities"), which
// the converter is built never to produce, the part is sent again as
// plain text: a formatting mistake must not make a message undeliverable.
func (a *Adapter) sendPart(ctx context.Context, chat int64, p richtext.Part, reply *replyRef) error {
	if a.cfg.ParseMode == ParsePlain {
		return a.sendMessage(ctx, chat, p.Doc.Plain(), "", reply)
	}
	err := a.sendMessage(ctx, chat, p.Text, telego.ModeHTML, reply)
	if err != nil && isParseError(err) {
		a.log.Warn("telegram refused the formatting, sending plain text", "chat", chat, "err", err)
		return a.sendMessage(ctx, chat, p.Doc.Plain(), "", reply)
	}
	return err
}

// sendPlain sends a short plain text (the adapter's own replies).
func (a *Adapter) sendPlain(ctx context.Context, chat int64, text string, reply *replyRef) error {
	if _, blocked := a.blocked.Get(chat); blocked {
		return fmt.Errorf("send notice to chat %d: %w", chat, errBlocked)
	}
	if err := a.sendMessage(ctx, chat, text, "", reply); err != nil {
		out := classifySend(err)
		if errors.Is(out, errBlocked) {
			a.blocked.Put(chat, time.Now())
		}
		return fmt.Errorf("send notice to chat %d: %w", chat, out)
	}
	return nil
}

// sendMessage makes one sendMessage call, after the send limits allow it.
func (a *Adapter) sendMessage(ctx context.Context, chat int64, text, parseMode string, reply *replyRef) error {
	if err := a.limits.Wait(ctx, chat); err != nil {
		return err
	}
	params := &telego.SendMessageParams{
		ChatID:    telego.ChatID{ID: chat},
		Text:      text,
		ParseMode: parseMode,
	}
	if !a.cfg.LinkPreview {
		params.LinkPreviewOptions = &telego.LinkPreviewOptions{IsDisabled: true}
	}
	if reply != nil {
		params.ReplyParameters = &telego.ReplyParameters{MessageID: reply.messageID, AllowSendingWithoutReply: true}
		params.MessageThreadID = reply.threadID
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	_, err := a.bot.SendMessage(cctx, params)
	return err
}

// sendTyping shows "typing…" in chat once (the typist repeats it).
func (a *Adapter) sendTyping(ctx context.Context, chat int64) error {
	if _, blocked := a.blocked.Get(chat); blocked {
		return errBlocked
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	err := a.bot.SendChatAction(cctx, &telego.SendChatActionParams{ChatID: telego.ChatID{ID: chat}, Action: telego.ChatActionTyping})
	if err != nil && errors.Is(classifySend(err), errBlocked) {
		a.blocked.Put(chat, time.Now())
	}
	return err
}
