package engine

import (
	"fmt"
	"github.com/switchboard-gw/switchboard/core"
	"strings"
)

// ChatID is a namespaced chat id: the adapter instance that owns the chat,
// and the chat's id on that network. Its string form, "<instance>:<native>",
// is what Switchboard sends to Selarti as chat_id and what comes back as
// external_chat_id.
type ChatID struct {
	Instance string
	Native   string
}

// String returns "<instance>:<native>".
func (c ChatID) String() string { return c.Instance + ":" + c.Native }

// NewChatID builds a ChatID and checks both parts.
func NewChatID(instance, native string) (ChatID, error) {
	c := ChatID{Instance: instance, Native: native}
	if err := c.validate(); err != nil {
		return ChatID{}, err
	}
	return c, nil
}

// ParseChatID parses "<instance>:<native>". The instance part runs up to
// the first ":" and must be a valid instance name; the native part is the
// rest and may itself contain ":" (Slack's "T123:C456", say). The native
// part must be non-empty, at most MaxNativeIDLen bytes, and free of
// control characters.
func ParseChatID(s string) (ChatID, error) {
	instance, native, ok := strings.Cut(s, ":")
	if !ok {
		return ChatID{}, fmt.Errorf("chat id %q: missing \"<instance>:\" prefix", truncateForError(s))
	}
	c := ChatID{Instance: instance, Native: native}
	if err := c.validate(); err != nil {
		return ChatID{}, err
	}
	return c, nil
}

func (c ChatID) validate() error {
	if !core.ValidInstanceName(c.Instance) {
		return fmt.Errorf("chat id: invalid instance name %q", truncateForError(c.Instance))
	}
	if err := core.CheckNativeID(c.Native); err != nil {
		return fmt.Errorf("chat id: %w", err)
	}
	return nil
}

// truncateForError keeps error messages (and the log lines they end up in)
// short when the input is hostile.
func truncateForError(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
