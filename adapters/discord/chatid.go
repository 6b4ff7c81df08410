package discord

import (
	"fmt"
	"strings"

	"github.com/switchboard-gw/switchboard/kit/text"
)

// Native chat ids. Selarti keeps one dialog (context, contact, flags) per
// chat id, so an id must be one conversation with one person:
//
//   - "<channel id>" for a channel that is one conversation as a whole: a
//     direct message channel, or a thread the bot started for a user.
//   - "<channel id>:<user id>" for one user's conversation in a shared
//     guild channel: two users of one channel get two dialogs, never one
//     mixed. The answer goes to the channel, as a reply to that user's
//     last message.
type target struct {
	channel string
	user    string // "" for a channel that is a conversation of its own
}

func (t target) native() string {
	if t.user == "" {
		return t.channel
	}
	return t.channel + ":" + t.user
}

// parseTarget parses a native chat id.
func parseTarget(native string) (target, error) {
	channel, user, shared := strings.Cut(native, ":")
	t := target{channel: channel, user: user}
	if !snowflakeRE.MatchString(channel) || (shared && !snowflakeRE.MatchString(user)) {
		return target{}, fmt.Errorf("chat id %q is not a Discord channel or channel:user id", text.Shorten(native, 48))
	}
	return t, nil
}
