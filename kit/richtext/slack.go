package richtext

import (
	"bytes"
	"strings"
	"unicode"
	"unicode/utf8"
)

// SlackMrkdwn renders for Slack's mrkdwn (a message's text, and mrkdwn
// text objects): *bold*, _italic_, ~strike~, `code`, ```pre``` (Slack
// shows no language), links <url|text> (http, https and mailto) and
// block quotes ("> " on every line).
//
// Slack's documented escaping is &, < and > as &amp;, &lt; and &gt;,
// everywhere in the text, code included; that is exactly what is
// escaped, and it is what keeps the input from forming a link, a mention
// (<@U123>, <!here>) or any other <...> command. Slack has no escape for
// * _ ~ and `: a literal pair of them in the input, such as "*a*", may
// format. Only what would swallow or restyle the rest of a message is
// defused, with invisible characters: a run of three backticks (a code
// block) gets a zero-width space, and a line beginning with > (a quote)
// a soft hyphen before it. A "|" in a link's text, which would end it,
// is written "∣". Slack sends no mention for a bare "@here" unless the
// message is posted with link_names, which the adapter should leave off.
type SlackMrkdwn struct{}

// Render returns d as Slack mrkdwn.
func (SlackMrkdwn) Render(d Doc) string { return SlackMrkdwn{}.render(d.toks, nil) }

// slack is the state of one rendering.
type slack struct {
	writer
	toks []Token
	// open counts the open elements of each tag; a nested second one
	// writes no markers, which would close the first.
	open [Quote + 1]int
	link linkMode
	// fence is the open inline code's delimiter, and padEnd whether its
	// code ends with a backtick.
	fence  string
	padEnd bool
	// lineStart: at the start of a line, after the quote marker and any
	// spaces; col0: right at it.
	lineStart, col0 bool
	// newline: a block just ended and what follows begins a line.
	// boundary: a closing marker was just written, which a letter or
	// digit right after it would keep from closing.
	newline, boundary bool
}

var (
	// slackText is Slack's escaping: &, < and > are its control
	// characters (entities, and <...> links, mentions and commands).
	slackText = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;"}
	// slackLinkText also replaces the characters that would end a
	// link's text: | separates the address from the text, and an
	// escaped > is already safe.
	slackLinkText = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;", '|': "∣"}
)

// slackMarkers are the markers of the styles.
var slackMarkers = [...]string{Bold: "*", Italic: "_", Strike: "~"}

// linked reports whether a link is being written as one.
func (s *slack) linked() bool { return s.link == linkAuto || s.link == linkMasked }

// softHyphen is invisible and not a space: a line that begins with it
// does not begin with >.
const softHyphen = "\u00ad"

func (SlackMrkdwn) render(toks []Token, tr *trace) string {
	s := &slack{writer: writer{tr: tr, b: make([]byte, 0, sizeHint(toks))}, toks: toks, lineStart: true, col0: true}
	for k, t := range toks {
		s.token(k)
		switch t.Kind {
		case KindText:
			s.text(t.Text)
			s.advance(len(t.Text))
		case KindOpen:
			s.start(k, t)
		case KindClose:
			s.end(t)
		}
	}
	return s.done(len(toks))
}

// put writes s, which holds no line break, after what is pending.
func (s *slack) put(str string) {
	if str == "" {
		return
	}
	if s.newline {
		s.nl()
	}
	if s.boundary {
		s.boundary = false
		if r, _ := utf8.DecodeRuneInString(str); isAlnum(r) {
			// Slack formats only between word boundaries: "*a*b"
			// shows its stars. A zero-width space makes the boundary
			// (jsx-slack's "exact mode" does the same).
			s.str(zwsp)
		}
	}
	s.str(str)
	s.col0 = false
	if !blank(str) {
		s.lineStart = false
	}
}

// nl starts a new line, inside the open quote if there is one.
func (s *slack) nl() {
	s.newline, s.boundary = false, false
	s.byte('\n')
	if s.open[Quote] > 0 {
		s.str("> ") // Slack quotes line by line, like Discord
	}
	s.lineStart, s.col0 = true, true
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// marker writes an opening marker, set off by a zero-width space from a
// letter or digit before it (see put), or from a closing marker.
func (s *slack) marker(m string) {
	if s.newline {
		s.nl()
	}
	// Right after a closing marker, "_a__b_" would read as one "__"; a
	// fence right after a backtick would be a longer one.
	if last := s.lastRune(); s.boundary || isAlnum(last) || m[0] == '`' && last == '`' {
		s.str(zwsp)
	}
	s.boundary = false
	s.put(m)
}

// text writes visible text.
func (s *slack) text(str string) {
	code := s.open[Code] > 0 || s.open[Pre] > 0
	esc := &slackText
	if s.link == linkMasked {
		esc = &slackLinkText
	}
	for i := 0; i < len(str); {
		if !s.newline && !s.boundary && s.link != linkAuto && s.plain(str[i]) {
			// The common case: a run written as it is.
			j := i + 1
			for j < len(str) && s.plain(str[j]) {
				j++
			}
			s.run(str, i, j)
			s.col0 = false
			if !blank(str[i:j]) {
				s.lineStart = false
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(str[i:])
		s.begin(i)
		switch {
		case r == '\n' && s.link == linkMasked:
			s.put(" ") // a link's text is one line
		case r == '\n':
			s.nl()
		case r == '`' && s.link != linkAuto:
			// A run of three backticks would end a code block, or
			// begin one in text and swallow the rest of the message (a
			// single one ends inline code, which is why code with a
			// backtick is written between triple ones): a zero-width
			// space breaks every run, fences the renderer wrote
			// included.
			if bytes.HasSuffix(s.b, []byte("``")) {
				s.str(zwsp)
			}
			s.put("`")
		case s.link == linkAuto:
			s.put(slackURL(str[i : i+n]))
		case !code && s.lineStart && (r == '>' || r == '＞'):
			// Slack reads a line that begins with &gt; (or a
			// fullwidth ＞) as a quote, escaped or not; a soft hyphen
			// before it makes it text.
			s.put(softHyphen)
			if r == '>' {
				s.put(esc['>'])
			} else {
				s.put(str[i : i+n])
			}
		case r < utf8.RuneSelf && esc[r] != "":
			s.put(esc[r])
		default:
			s.put(str[i : i+n])
		}
		s.finish(i)
		i += n
	}
}

// plain reports whether byte c of text may be written as it is: not one
// of the characters escaped or watched, and not the first byte of
// anything at the start of a line (where "＞" is watched).
func (s *slack) plain(c byte) bool {
	if c >= utf8.RuneSelf {
		return !s.lineStart
	}
	return c != '&' && c != '<' && c != '>' && c != '`' && c != '|' && c != '\n' && c >= ' ' || c == '\t'
}

// start writes the markup that opens t, toks[k].
func (s *slack) start(k int, t Token) {
	if t.Tag == Quote && s.open[Quote] == 0 && !s.col0 {
		s.nl() // a quote begins a line (before it is open: no marker yet)
	}
	s.open[t.Tag]++
	first := s.open[t.Tag] == 1
	if s.linked() && t.Tag != Link {
		// Slack shows a link's text as it is: no formatting inside.
		return
	}
	switch t.Tag {
	case Bold, Italic, Strike:
		if first {
			s.marker(slackMarkers[t.Tag])
		}
	case Code, Pre:
		// Inline code ends at the next backtick and has no escape:
		// code that holds one is written between triple backticks, as
		// a code block is. A backtick at either end of the code is set
		// off from the fence by a zero-width space.
		code := elementText(s.toks, k)
		s.fence = "`"
		if t.Tag == Pre || strings.Contains(code, "`") {
			s.fence = "```"
		}
		if t.Tag == Pre && !s.col0 {
			s.nl() // a code block begins a line
		}
		s.marker(s.fence)
		if strings.HasPrefix(code, "`") {
			s.str(zwsp)
		}
		s.padEnd = strings.HasSuffix(code, "`")
	case Link:
		s.link = linkText
		if !hasPrefixFold(t.Attr, "mailto:") && !isHTTP(t.Attr) {
			return // Slack would not link it (a tg:// link): the text
		}
		if text := elementText(s.toks, k); text == t.Attr {
			s.link = linkAuto
			s.put("<")
			return
		}
		s.link = linkMasked
		s.put("<" + slackURL(t.Attr) + "|")
	case Quote:
		if first {
			s.put("> ")
			s.lineStart, s.col0 = true, true
		}
	}
}

// end writes the markup that closes t.
func (s *slack) end(t Token) {
	s.open[t.Tag]--
	last := s.open[t.Tag] == 0
	if s.linked() && t.Tag != Link {
		return
	}
	switch t.Tag {
	case Bold, Italic, Strike:
		if last {
			s.put(slackMarkers[t.Tag])
			s.boundary = true
		}
	case Code, Pre:
		if s.padEnd {
			s.str(zwsp)
		}
		s.put(s.fence)
		s.boundary = true
		if t.Tag == Pre {
			s.newline = true
		}
	case Link:
		if s.link == linkAuto || s.link == linkMasked {
			s.put(">")
		}
		s.link = linkNone
	case Quote:
		if last {
			s.newline = true
		}
	}
}

// slackURL returns href for a link: & as &amp; (Slack reads entities in
// link addresses too), and what would end the address (| and >) or
// start another (<) percent-encoded, as are spaces and controls.
func slackURL(href string) string {
	if !strings.ContainsAny(href, "&|<> \t\n\r\x7f") && !strings.ContainsFunc(href, func(r rune) bool { return r < ' ' }) {
		return href
	}
	var b strings.Builder
	for i := 0; i < len(href); i++ {
		c := href[i]
		switch {
		case c == '&':
			b.WriteString("&amp;")
		case c <= ' ' || c == 0x7f || c == '|' || c == '<' || c == '>':
			b.WriteString("%")
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
