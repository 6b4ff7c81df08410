package slack

import (
	"context"
	"errors"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// messageLimit is how long one message is (richtext.SlackLimit): a reply
// longer than Slack's recommended 4,000 characters reads better as
// several messages.
var messageLimit = richtext.SlackLimit

// maxParts bounds the messages one answer is split into (40,000
// characters, what Slack would take in one): an assistant gone wrong must
// not flood a channel.
const maxParts = 10

// Send delivers one message from the assistant or an operator: Markdown
// rendered as Slack mrkdwn by the kit, split at 4,000 characters (never
// inside a code block or a link that fits in one message), each part
// posted with chat.postMessage to the chat's channel, in its thread when
// the chat is a thread, paced per channel. A split message resumes after
// the parts that went out if a later one fails (kit/outbound.Progress).
//
// chat.postMessage takes no idempotency key (its arguments have none;
// the client_msg_id on users' messages is set by Slack's own clients):
// each part carries its Selarti id as metadata instead, and a message
// that may have gone out already (core.Outbound.MaybeSent) is first
// looked for in the conversation (readback.go).
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
	if t.team != r.Data.me.team {
		return fmt.Errorf("send message to %s: %w: the chat is in workspace %s, this instance's bot token is for %s", t.native(), core.ErrUnknownChat, t.team, r.Data.me.team)
	}
	doc := richtext.Parse(msg.Text)
	if msg.From == core.SenderOperator {
		doc = doc.WithPrefix(a.cfg.OperatorPrefix)
	}
	parts := richtext.Split(doc, richtext.SlackMrkdwn{}, messageLimit)
	if len(parts) == 0 {
		return core.Permanent(fmt.Errorf("send message to %s: empty text", t.native()))
	}
	if len(parts) > maxParts {
		a.log.Warn("message too long, only its beginning is sent", "chat", msg.ChatID, "message_id", msg.ID, "parts", len(parts), "sent_parts", maxParts)
		parts = parts[:maxParts]
	}
	var posted map[int]bool
	if msg.MaybeSent && msg.ID != "" {
		if posted, err = a.skipPosted(ctx, r, t, msg.ID); err != nil {
			return fmt.Errorf("check whether the message to %s already went out: %w", t.native(), err)
		}
		if len(posted) > 0 {
			a.log.Info("answer found already posted: not posted again", "chat", msg.ChatID, "message_id", msg.ID, "parts_found", len(posted), "parts", len(parts))
		}
	}
	from, err := a.progress.SendParts(ctx, msg.ID, len(parts), func(ctx context.Context, i int) error {
		if posted[i] {
			return nil
		}
		return a.post(ctx, t, parts[i].Text, msg.ID, i)
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

// post sends one message of mrkdwn to t's channel, in its thread if it
// has one, after waiting for the channel's turn (about one message a
// second, as Slack allows). Mentions in the text cannot notify anyone:
// the renderer escapes <, > and &, and link_names stays off.
// id and part, for an answer, go in the message's metadata (see
// readback.go); a notice has no id.
func (a *Adapter) post(ctx context.Context, t target, mrkdwn, id string, part int) error {
	if err := a.limits.Wait(ctx, t.channel); err != nil {
		return err
	}
	opts := []slack.MsgOption{slack.MsgOptionText(mrkdwn, false)}
	if id != "" {
		opts = append(opts, slack.MsgOptionMetadata(replyMetadata(id, part)))
	}
	if t.thread != "" {
		opts = append(opts, slack.MsgOptionTS(t.thread))
	}
	if !a.cfg.UnfurlLinks {
		opts = append(opts, slack.MsgOptionDisableLinkUnfurl(), slack.MsgOptionDisableMediaUnfurl())
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	_, _, err := a.api.PostMessageContext(cctx, t.channel, opts...)
	return err
}

// notify sends one of the adapter's own short replies in the background,
// best effort and bounded, to the chat (and thread) of native.
func (a *Adapter) notify(r *run, native, text string) {
	if text == "" {
		return
	}
	t, err := parseTarget(native)
	if err != nil {
		return
	}
	sent := a.notices.Go(r, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		defer cancel()
		if err := a.post(ctx, t, richtext.SlackMrkdwn{}.Render(richtext.Text(text)), "", 0); err != nil {
			a.log.Warn("notice not sent", "chat", native, "err", err)
		}
	})
	if !sent {
		a.log.Debug("notice skipped, too many in flight", "chat", native)
	}
}
