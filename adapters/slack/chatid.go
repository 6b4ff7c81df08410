package slack

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/switchboard-gw/switchboard/kit/text"
)

// Native chat ids. Selarti keeps one dialog (context, contact, flags) per
// chat id, so an id must be one conversation with one person, and every
// message of that conversation must map to the same id:
//
//   - "<team>:<channel>" for a direct message: the DM is the
//     conversation ("T0123ABCD:D0456EFGH").
//   - "<team>:<channel>:<thread ts>" for a mention in a channel with
//     reply_in_thread: the mention's thread is the conversation, named
//     by its parent's ts (the mention's own ts when it starts the thread,
//     its thread_ts when it is already in one), so every mention in the
//     thread continues one dialog, and the answer goes to the thread.
//   - "<team>:<channel>:u<user>" for a mention in a channel without
//     threading: each user of a channel has a dialog of their own there,
//     never one shared with whoever else mentions the app in that
//     channel, and the answer goes to the channel.
//
// The team comes first because Slack's ids are only unique within a
// workspace (and a Slack Connect channel has the same id in every
// workspace it is shared with): the id says which workspace's bot token
// answers it, and Send refuses an id of another workspace.
type target struct {
	team    string
	channel string
	thread  string // the thread's parent ts; "" when not threaded
	user    string // the channel user's own dialog; "" otherwise
}

var (
	teamRE    = regexp.MustCompile(`^[TE][A-Z0-9]{2,20}$`)
	channelRE = regexp.MustCompile(`^[CDG][A-Z0-9]{2,20}$`)
	userRE    = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)
	tsRE      = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,9}$`)
)

// isIM reports whether a channel id is a direct message's.
func isIM(channel string) bool { return strings.HasPrefix(channel, "D") }

func (t target) native() string {
	switch {
	case t.thread != "":
		return t.team + ":" + t.channel + ":" + t.thread
	case t.user != "":
		return t.team + ":" + t.channel + ":u" + t.user
	}
	return t.team + ":" + t.channel
}

// parseTarget parses a native chat id, strictly: only what the adapter
// hands out parses.
func parseTarget(native string) (target, error) {
	bad := func() (target, error) {
		return target{}, fmt.Errorf("chat id %q is not a Slack team:channel, team:channel:thread_ts or team:channel:u<user> id", text.Shorten(native, 64))
	}
	parts := strings.Split(native, ":")
	if len(parts) < 2 || len(parts) > 3 || !teamRE.MatchString(parts[0]) || !channelRE.MatchString(parts[1]) {
		return bad()
	}
	t := target{team: parts[0], channel: parts[1]}
	if len(parts) == 2 {
		if !isIM(t.channel) {
			return bad() // a channel conversation is always a thread's or a user's
		}
		return t, nil
	}
	if isIM(t.channel) {
		return bad() // a DM is one conversation as a whole
	}
	switch rest := parts[2]; {
	case tsRE.MatchString(rest):
		t.thread = rest
	case strings.HasPrefix(rest, "u") && userRE.MatchString(rest[1:]):
		t.user = rest[1:]
	default:
		return bad()
	}
	return t, nil
}
