package engine

import (
	"fmt"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/text"
	"strings"
)

// maxIDInError is how much of a malformed id an error message quotes: enough
// to recognise it, not enough for a hostile one to flood the logs.
const maxIDInError = 64

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
		return ChatID{}, fmt.Errorf("chat id %q: missing \"<instance>:\" prefix", text.Shorten(s, maxIDInError))
	}
	c := ChatID{Instance: instance, Native: native}
	if err := c.validate(); err != nil {
		return ChatID{}, err
	}
	return c, nil
}

func (c ChatID) validate() error {
	if !core.ValidInstanceName(c.Instance) {
		return fmt.Errorf("chat id: invalid instance name %q", text.Shorten(c.Instance, maxIDInError))
	}
	if err := core.CheckNativeID(c.Native); err != nil {
		return fmt.Errorf("chat id: %w", err)
	}
	return nil
}
