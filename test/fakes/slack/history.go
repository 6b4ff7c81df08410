package slack

import (
	"maps"
	"slices"
	"strconv"
)

// conversations.history and conversations.replies, as the app reads them
// back: one page (no cursor beyond it: has_more says there is more), the
// metadata of posted messages only with include_all_metadata=true, the
// bot's messages with bot_id. History lists a channel's top-level
// messages (thread parents included, replies not), newest first; replies
// lists a thread's parent and then its replies, oldest first.

// maxHistoryLimit is the largest page Slack serves (it caps limit there).
const maxHistoryLimit = 999

func historyLimit(raw string) int {
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return 100 // Slack's default
	}
	return min(n, maxHistoryLimit)
}

func (t *Team) conversationsHistory(req apiRequest) (map[string]any, string) {
	p := req.params
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	c, ok := t.channels[p["channel"]]
	if !ok || (c.IsPrivate && !c.BotMember) {
		return nil, "channel_not_found"
	}
	if !c.IsIM && !c.BotMember {
		return nil, "not_in_channel"
	}
	var top []*storedMessage
	for _, m := range t.messages[c.ID] {
		if m.threadTS == "" || m.threadTS == m.ts {
			top = append(top, m)
		}
	}
	slices.Reverse(top)
	return page(top, historyLimit(p["limit"]), truthy(p["include_all_metadata"])), ""
}

func (t *Team) conversationsReplies(req apiRequest) (map[string]any, string) {
	p := req.params
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	c, ok := t.channels[p["channel"]]
	if !ok || (c.IsPrivate && !c.BotMember) {
		return nil, "channel_not_found"
	}
	if p["ts"] == "" {
		return nil, "invalid_arguments"
	}
	root, parent := t.threadLocked(c.ID, p["ts"])
	if parent == nil {
		return nil, "thread_not_found"
	}
	thread := []*storedMessage{parent}
	for _, m := range t.messages[c.ID] {
		if m.threadTS == root && m.ts != root {
			thread = append(thread, m)
		}
	}
	return page(thread, historyLimit(p["limit"]), truthy(p["include_all_metadata"])), ""
}

// page is the answer of a history method: the first limit of msgs.
func page(msgs []*storedMessage, limit int, withMetadata bool) map[string]any {
	more := len(msgs) > limit
	msgs = msgs[:min(len(msgs), limit)]
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		j := maps.Clone(m.ev)
		if withMetadata && m.metadata != nil {
			j["metadata"] = m.metadata
		}
		out = append(out, j)
	}
	return map[string]any{
		"messages":          out,
		"has_more":          more,
		"pin_count":         0,
		"response_metadata": map[string]any{"next_cursor": ""},
	}
}

// truthy is a boolean argument as Slack reads one: "true" or "1"
// (slack-go sends "1").
func truthy(v string) bool { return v == "true" || v == "1" }
