package richtext

import (
	"unicode/utf16"
	"unicode/utf8"
)

// Measure is the unit a network counts a message's length in.
type Measure uint8

const (
	// UTF16 counts UTF-16 code units, as Telegram does: a character
	// outside the Basic Multilingual Plane (most emoji) counts twice.
	UTF16 Measure = iota
	// Runes counts Unicode code points, as Discord does.
	Runes
	// Bytes counts bytes of UTF-8.
	Bytes
)

// Len returns the length of s in m.
func (m Measure) Len(s string) int {
	switch m {
	case Bytes:
		return len(s)
	case Runes:
		return utf8.RuneCountInString(s)
	}
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// runeLen is the length of r in m.
func (m Measure) runeLen(r rune) int {
	switch m {
	case Bytes:
		return utf8.RuneLen(r)
	case Runes:
		return 1
	}
	return utf16.RuneLen(r)
}

// widest is the most one character can measure: room for any one
// character of visible text.
func (m Measure) widest() int {
	switch m {
	case Bytes:
		return utf8.UTFMax
	case Runes:
		return 1
	}
	return 2
}

// prefix returns the length in bytes of the longest prefix of s that is
// at most n long in m.
func (m Measure) prefix(s string, n int) int {
	if m == Bytes {
		if n >= len(s) {
			return len(s)
		}
		// Back up to the start of the character that does not fit.
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return max(n, 0)
	}
	units := 0
	for i, r := range s {
		units += m.runeLen(r)
		if units > n {
			return i
		}
	}
	return len(s)
}

// Limit is how long one message may be on a network.
type Limit struct {
	// Max is the longest a message may be, in Measure. A Max below what
	// one character can need is raised to it (see Split).
	Max int
	// Measure is what the network counts.
	Measure Measure
	// Rendered says the network counts the rendered string (Discord and
	// Slack count the markup, the escapes and the markers reopened at a
	// cut); false says it counts only the visible text (Telegram parses
	// the entities first, so markup costs nothing and "&lt;" one unit).
	Rendered bool
}

// Limits of the networks whose rules are known.
var (
	// TelegramLimit: 4096 UTF-16 code units of visible text, counted
	// after entity parsing.
	TelegramLimit = Limit{Max: 4096, Measure: UTF16}
	// DiscordLimit: 2000 characters of message content, Markdown
	// included.
	DiscordLimit = Limit{Max: 2000, Measure: Runes, Rendered: true}
	// SlackLimit: 4000 characters of mrkdwn, escapes and markup included.
	// Slack takes up to 40,000 and truncates beyond, but recommends
	// staying under 4,000: a longer message is shown folded, and some
	// clients and notifications cut it.
	SlackLimit = Limit{Max: 4000, Measure: Runes, Rendered: true}
)

// minRendered is the least Max of a Limit on the rendered string: the
// longest any one character becomes in this package's renderers, with
// room to spare (SafeHTML writes " as &quot;, six units; Slack a
// line-initial > as a soft hyphen and &gt;).
const minRendered = 8

// effective returns l with Max raised to room for any one character.
func (l Limit) effective() Limit {
	floor := l.Measure.widest()
	if l.Rendered {
		floor = max(floor, minRendered)
	}
	l.Max = max(l.Max, floor)
	return l
}
