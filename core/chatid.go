package core

import (
	"fmt"
	"regexp"
	"strings"
)

// MaxNativeIDLen bounds a native chat id. Every network we know of uses far
// shorter ids; the bound keeps a hostile webhook from making us store or
// log megabytes.
const MaxNativeIDLen = 256

// instanceNameRE is the grammar of instance names. Names are also chat-id
// namespaces and appear in URLs and metric labels, so they are kept to a
// small, case-insensitive-safe alphabet (viper lowercases map keys).
var instanceNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidInstanceName reports whether name may name an adapter instance.
func ValidInstanceName(name string) bool { return instanceNameRE.MatchString(name) }

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
	if !ValidInstanceName(c.Instance) {
		return fmt.Errorf("chat id: invalid instance name %q", truncateForError(c.Instance))
	}
	if c.Native == "" {
		return fmt.Errorf("chat id: empty native id")
	}
	if len(c.Native) > MaxNativeIDLen {
		return fmt.Errorf("chat id: native id longer than %d bytes", MaxNativeIDLen)
	}
	for _, r := range c.Native {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("chat id: control character in native id")
		}
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
