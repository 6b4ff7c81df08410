package discord

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bwmarrin/discordgo"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// messageLimit is Discord's limit on a message's content: 2,000
// characters, Markdown and escapes included.
var messageLimit = richtext.DiscordLimit

// maxParts bounds the messages one answer is split into (about 20,000
// characters): an assistant gone wrong must not flood a channel.
const maxParts = 10

// noMentions lets an answer ping nobody, whatever its text holds
// (@everyone, a role, a user), except the user it replies to: the
// renderer also escapes mentions, and this is the server-side guarantee.
var noMentions = &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, RepliedUser: true}

// Send delivers one message from the assistant or an operator: Markdown
// rendered for Discord, split at 2,000 characters (never inside a code
// block that fits), the first part replying to the user's last message
// in a guild conversation. A split message resumes after the parts that
// went out if a later one fails (kit/outbound.Progress).
//
// Errors follow core.Messenger; see classifySend.
func (a *Adapter) Send(ctx context.Context, msg core.Outbound) error {
	t, err := parseTarget(msg.ChatID)
	if err != nil {
		return fmt.Errorf("send message: %w: %w", core.ErrUnknownChat, err)
	}
	r := a.runs.Current()
	if r == nil {
		return fmt.Errorf("send message to %s: %w", t.native(), core.ErrNotConnected)
	}
	a.handovers.Note(msg.ChatID, msg.Dialog)
	a.typing.Stop(t.channel)
	doc := richtext.Parse(msg.Text)
	if msg.From == core.SenderOperator {
		doc = doc.WithPrefix(a.cfg.OperatorPrefix)
	}
	parts := richtext.Split(doc, richtext.DiscordMarkdown{}, messageLimit)
	if len(parts) == 0 {
		return core.Permanent(fmt.Errorf("send message to %s: empty text", t.native()))
	}
	if len(parts) > maxParts {
		a.log.Warn("message too long, only its beginning is sent", "chat", msg.ChatID, "message_id", msg.ID, "parts", len(parts), "sent_parts", maxParts)
		parts = parts[:maxParts]
	}
	from, err := a.progress.SendParts(ctx, msg.ID, len(parts), func(ctx context.Context, i int) error {
		return a.post(ctx, r.Data.s, msg.ChatID, parts[i].Text, i == 0, a.nonce(msg.ID, i))
	})
	if from > 0 {
		a.log.Info("resumed split message", "chat", msg.ChatID, "message_id", msg.ID, "from_part", from+1, "parts", len(parts))
	}
	if err != nil {
		what := "send message"
		var pe *outbound.PartError
		if errors.As(err, &pe) {
			err = pe.Err
			if pe.Parts > 1 {
				what = fmt.Sprintf("send part %d of %d", pe.Part+1, pe.Parts)
			}
		}
		return fmt.Errorf("%s to %s: %w", what, t.native(), a.classifySend(t.channel, err))
	}
	a.log.Debug("message sent", "chat", msg.ChatID, "message_id", msg.ID, "parts", len(parts), "from", msg.From)
	return nil
}

// messageCreate is the body of POST /channels/{id}/messages. discordgo's
// MessageSend has no nonce, so the adapter sends its own.
type messageCreate struct {
	Content         string                            `json:"content"`
	AllowedMentions *discordgo.MessageAllowedMentions `json:"allowed_mentions"`
	Reference       *discordgo.MessageReference       `json:"message_reference,omitempty"`
	Nonce           string                            `json:"nonce,omitempty"`
	EnforceNonce    bool                              `json:"enforce_nonce,omitempty"`
}

// post sends one message to the channel of native; reply makes it a reply
// to the user's last message there, in a guild conversation.
//
// A nonce with enforce_nonce is Discord's idempotency key: a message sent
// again with the same nonce within a few minutes is not created twice
// ("that message will be returned"). So a retry after a timeout, or after
// a crash between Discord's answer and the outbox's record, does not
// double the answer, as long as it comes within Discord's window.
func (a *Adapter) post(ctx context.Context, s *discordgo.Session, native, content string, reply bool, nonce string) error {
	t, err := parseTarget(native)
	if err != nil {
		return err
	}
	body := &messageCreate{Content: content, AllowedMentions: noMentions, Nonce: nonce, EnforceNonce: nonce != ""}
	if reply {
		if ref, ok := a.replies.Get(native); ok && (t.user != "" || a.isThread(native)) {
			// A reply that outlives its message is sent without it.
			body.Reference = &discordgo.MessageReference{MessageID: ref, ChannelID: t.channel, FailIfNotExists: new(false)}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	endpoint := discordgo.EndpointChannelMessages(t.channel)
	_, err = s.RequestWithBucketID(http.MethodPost, endpoint, body, endpoint, discordgo.WithContext(cctx))
	return err
}

// nonce is the idempotency key of part i of Selarti's message id: the
// same on every retry, at most Discord's 25 characters, and "" (none)
// without an id.
func (a *Adapter) nonce(id string, part int) string {
	if id == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(a.name + "\x00" + id + "\x00" + strconv.Itoa(part)))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:maxNonce]
}

// maxNonce is the longest nonce Discord takes.
const maxNonce = 25

// isThread reports whether native is a thread the bot started.
func (a *Adapter) isThread(native string) bool {
	r := a.runs.Current()
	return r != nil && a.ownThread(r.Data, native)
}

// sendTyping shows "typing…" in channel once (the indicator repeats it).
func (a *Adapter) sendTyping(ctx context.Context, channel string) error {
	r := a.runs.Current()
	if r == nil {
		return core.ErrNotConnected
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	return r.Data.s.ChannelTyping(channel, discordgo.WithContext(cctx))
}

// Discord's JSON error codes that decide a send's fate.
const (
	codeUnknownChannel     = 10003
	codeMissingAccess      = 50001
	codeCannotMessageUser  = 50007
	codeMissingPermissions = 50013
	codeInvalidFormBody    = 50035
)

// classifySend maps the error of a send to channel to what the core's
// outbox does with it (see core.Messenger):
//
//   - 429: a *core.RetryAfterError with Discord's retry_after (per route
//     or global); discordgo is told not to sleep on it itself.
//   - 403 Missing Permissions or Missing Access: permanent, logged once
//     per channel with what to grant: retrying cannot help until someone
//     changes the bot's role.
//   - 403 "Cannot send messages to this user" (DMs closed) and other 4xx
//     answers: permanent.
//   - 404 Unknown Channel: core.ErrUnknownChat.
//   - 401 (a revoked token), 5xx, network errors and timeouts:
//     transient: the outbox retries with backoff. A revoked token fails
//     every chat alike; the messages should go out once it is fixed.
func (a *Adapter) classifySend(channel string, err error) error {
	var rl *discordgo.RateLimitError
	if errors.As(err, &rl) && rl.TooManyRequests != nil {
		return &core.RetryAfterError{Wait: rl.RetryAfter, Err: err}
	}
	var re *discordgo.RESTError
	if !errors.As(err, &re) || re.Response == nil {
		return err
	}
	code := 0
	if re.Message != nil {
		code = re.Message.Code
	}
	switch status := re.Response.StatusCode; {
	case status == http.StatusTooManyRequests:
		return &core.RetryAfterError{Wait: retryAfterHeader(re.Response), Err: err}
	case code == codeMissingPermissions || code == codeMissingAccess:
		if !a.noPerm.Has(channel) {
			a.noPerm.Put(channel, struct{}{})
			a.log.Error("the bot may not send in this channel: give its role View Channel, Send Messages and Read Message History there (and Send Messages in Threads, Create Public Threads with reply_in_thread); messages to it are dead-lettered until then",
				"channel", channel, "err", err)
		}
		return core.Permanent(err)
	case status == http.StatusNotFound || code == codeUnknownChannel:
		return fmt.Errorf("%w: %w", core.ErrUnknownChat, err)
	case status == http.StatusUnauthorized:
		a.log.Error("Discord refused the bot token; was it reset in the Developer Portal?", "err", err)
		return err
	case code == codeCannotMessageUser, code == codeInvalidFormBody, status >= 400 && status < 500:
		return core.Permanent(err)
	}
	return err
}
