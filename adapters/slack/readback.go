package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"
)

// chat.postMessage takes no idempotency key, but a message may carry
// metadata (an event type and a JSON payload), which the bot reads back
// with conversations.history and conversations.replies. Every part of an
// answer is posted with replyMetadata: its Selarti message id and part
// number. When the core says an earlier attempt may have reached Slack
// (core.Outbound.MaybeSent: an attempt failed, or one was in flight when
// the gateway died), Send first reads the conversation's newest messages
// and skips the parts it finds there, so a crash between Slack's answer
// and the outbox's record does not post an answer twice.
//
// Reading history needs the *:history scopes of the conversation's kind
// (im:history, which the DM events need anyway; channels:history,
// groups:history, mpim:history for channels). Without one the lookup
// fails, is logged once, and the part is posted again: at least once, as
// without the read-back.

// replyEventType is the metadata event type of the adapter's answers.
const replyEventType = "switchboard_reply"

// readBackLimit is how many of the conversation's newest messages are
// searched: a message in doubt is recent, and one page is one request.
const readBackLimit = 100

// replyMetadata is what part i of the answer with Selarti id id carries.
func replyMetadata(id string, part int) slack.SlackMetadata {
	return slack.SlackMetadata{
		EventType:    replyEventType,
		EventPayload: map[string]any{"id": id, "part": part},
	}
}

// postedParts returns the parts of answer id that the bot already posted
// to t's conversation, among its newest readBackLimit messages (the
// thread's when t is a thread).
func (a *Adapter) postedParts(ctx context.Context, r *run, t target, id string) (map[int]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	var msgs []slack.Message
	var err error
	if t.thread != "" {
		msgs, _, _, err = a.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: t.channel, Timestamp: t.thread, Limit: readBackLimit, IncludeAllMetadata: true,
		})
	} else {
		var res *slack.GetConversationHistoryResponse
		res, err = a.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: t.channel, Limit: readBackLimit, IncludeAllMetadata: true,
		})
		if res != nil {
			msgs = res.Messages
		}
	}
	if err != nil {
		return nil, fmt.Errorf("read back the conversation: %w", err)
	}
	found := make(map[int]bool)
	for _, m := range msgs {
		md := m.Metadata
		if md.EventType != replyEventType || (m.BotID != r.Data.me.botID && m.User != r.Data.me.userID) {
			continue
		}
		if got, _ := md.EventPayload["id"].(string); got != id {
			continue
		}
		// JSON numbers decode as float64.
		if part, ok := md.EventPayload["part"].(float64); ok && part >= 0 && part == float64(int(part)) {
			found[int(part)] = true
		}
	}
	return found, nil
}

// skipPosted returns which parts of answer id to leave out because the
// bot already posted them. When the conversation cannot be read for want
// of a scope, it logs that once and returns none (every part is posted:
// at least once). Any other failure (a 429, a timeout, Slack's 5xx) is
// returned, classified as a send's: the outbox tries again later, rather
// than risk a repeat.
func (a *Adapter) skipPosted(ctx context.Context, r *run, t target, id string) (map[int]bool, error) {
	found, err := a.postedParts(ctx, r, t, id)
	if err == nil {
		return found, nil
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) && cannotReadBack[se.Err] {
		a.logOnce("readback/"+se.Err, "cannot read back a conversation to check whether an answer already went out (the *:history scopes, see docs/adapters/slack.md): sending it again, which may repeat it",
			"channel", t.channel, "err", se.Err)
		return nil, nil
	}
	return nil, a.classifySend(t.channel, err)
}

// cannotReadBack are the refusals of a history read that waiting does not
// fix: the answer is posted without the check.
var cannotReadBack = map[string]bool{
	"missing_scope":     true,
	"not_in_channel":    true,
	"channel_not_found": true,
	"thread_not_found":  true,
}
