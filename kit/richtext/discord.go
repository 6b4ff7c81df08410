package richtext

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DiscordMarkdown renders for Discord's message Markdown: **bold**,
// _italic_, ~~strike~~, `code`, ```lang fenced blocks```, masked links
// ("[link text](url)", http and https only; other links keep their text) and
// block quotes ("> " on every line). Discord counts the rendered content,
// markup included (DiscordLimit).
//
// Every character Discord would read as formatting in plain text is
// escaped with a backslash (Discord drops a backslash before any
// punctuation, so an escape never shows), mentions are neutralised, and
// bare URLs are written as <url>, so that nothing from the input can form
// formatting, a mention or a broken link. The adapter should still send
// allowed_mentions with an empty parse list: these escapes keep a
// mention from being written, allowed_mentions from pinging anyone.
type DiscordMarkdown struct{}

// Render returns d as Discord Markdown.
func (DiscordMarkdown) Render(d Doc) string { return DiscordMarkdown{}.render(d.toks, nil) }

// zwsp, the zero-width space, separates characters Discord would
// otherwise read together, without showing.
const zwsp = "\u200b"

// linkMode is how the open link is written.
type linkMode uint8

const (
	linkNone   linkMode = iota // no link open
	linkText                   // not a web link: only its text
	linkAuto                   // its text is its address: <url>
	linkMasked                 // [text](url)
)

// discord is the state of one rendering.
type discord struct {
	writer
	toks []Token
	// open counts the open elements of each tag. A second bold inside a
	// bold (which Markdown allows) writes no markers: "**a **b** c**"
	// would close the first.
	open [Quote + 1]int
	link linkMode
	// tick is the open inline code's delimiter, and padEnd whether its
	// code ends with a backtick.
	tick   string
	padEnd bool
	// ticks counts the backticks just written in a code block.
	ticks int
	// lineStart: the output is at the start of a line (after the quote
	// marker, and any spaces); col0: right at it, no spaces; digits: the
	// line so far is only digits.
	lineStart, col0, digits bool
	// newline: a block (a quote, a code block) just ended, and what
	// follows must begin a new line. boundary: an italic "_" was just
	// closed, and a word character after it would undo it.
	newline, boundary bool
}

func (DiscordMarkdown) render(toks []Token, tr *trace) string {
	d := &discord{writer: writer{tr: tr, b: make([]byte, 0, sizeHint(toks))}, toks: toks, lineStart: true, col0: true}
	for k, t := range toks {
		d.token(k)
		switch t.Kind {
		case KindText:
			switch {
			case d.open[Code] > 0 || d.open[Pre] > 0:
				d.code(t.Text)
			case d.link == linkAuto:
				d.raw(t.Text)
			default:
				d.text(t.Text)
			}
			d.advance(len(t.Text))
		case KindOpen:
			d.start(k, t)
		case KindClose:
			d.end(t)
		}
	}
	return d.done(len(toks))
}

// flush writes what is pending before output that begins with next.
func (d *discord) flush(next byte) {
	if d.newline && next != '\n' {
		d.nl()
	}
	d.newline = false
	if d.boundary && isWordByte(next) {
		d.str(zwsp)
	}
	d.boundary = false
}

// put writes s, which holds no line break.
func (d *discord) put(s string) {
	if s == "" {
		return
	}
	d.flush(s[0])
	d.str(s)
	d.digits, d.col0 = false, false
	if !blank(s) {
		d.lineStart = false
	}
}

// nl starts a new line, inside the open quote if there is one.
func (d *discord) nl() {
	d.newline, d.boundary = false, false
	d.byte('\n')
	if d.open[Quote] > 0 {
		// Discord quotes one line per marker ("> "): every line of a
		// quote needs its own, code block lines included.
		d.str("> ")
	}
	d.lineStart, d.col0, d.digits = true, true, false
}

// isWordByte reports whether c is a word character to a JavaScript
// regular expression's \b: Discord's underscore italic needs a \b on
// both sides, so "snake_case_word" stays as it is.
func isWordByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// discordEscaped are the characters escaped with a backslash wherever
// they are in text.
const discordEscaped = "" +
	`\` + // escapes the next character: a literal one must not
	`*_~|` + // bold, italic, underline (__), strikethrough, spoiler (||)
	"`" + // inline code and code blocks
	`[]` + // a masked link [text](url): with both brackets escaped, ( and ) cannot form one
	`<` // mentions <@123> <@!123> <#123> <@&123>, emoji <:x:1>, timestamps <t:1>, commands </x:1>, autolinks <url>

// discordLineStart are the characters escaped at the start of a line
// (after any spaces), where they start a block: a heading (# ## ###), a
// block quote (> and >>>), a list item (- * +) or subtext (-#). Elsewhere
// they are plain, and left so. (A list item "1. " is handled apart.)
const discordLineStart = `#>-+`

// discordPlainASCII are the ASCII characters text() may write as they
// are, whatever comes before or after them; so are all others but ASCII.
var discordPlainASCII = func() (plain [utf8.RuneSelf]bool) {
	for c := range utf8.RuneSelf {
		plain[c] = c >= ' ' && c != 0x7f && !strings.ContainsRune(discordEscaped+discordLineStart+"0123456789.@hH/", rune(c))
	}
	plain['\t'] = true
	return plain
}()

func discordPlain(c byte) bool { return c >= utf8.RuneSelf || discordPlainASCII[c] }

// text writes visible text outside code.
func (d *discord) text(s string) {
	slash := -1 // a slash to escape
	for i := 0; i < len(s); {
		if !d.newline && !d.boundary && discordPlain(s[i]) && i != slash {
			// The common case: a run written as it is.
			j := i + 1
			for j < len(s) && discordPlain(s[j]) && j != slash {
				j++
			}
			d.run(s, i, j)
			d.digits, d.col0 = false, false
			if !blank(s[i:j]) {
				d.lineStart = false
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		d.begin(i)
		switch {
		case r == '\n':
			d.nl()
		case r >= '0' && r <= '9':
			// Digits at a line start could begin an ordered list item
			// ("1. "); the dot after them is escaped.
			digits := d.lineStart || d.digits
			d.put(s[i : i+n])
			d.digits = digits
		case r == '.' && d.digits:
			d.put(`\.`)
		case d.lineStart && strings.ContainsRune(discordLineStart, r), strings.ContainsRune(discordEscaped, r):
			d.put(`\` + s[i:i+n])
		case r == '@' && massMention(s[i+1:]):
			// @everyone and @here ping a whole server; a zero-width
			// space after the @ keeps the text and loses the mention.
			d.put("@" + zwsp)
		case (r == 'h' || r == 'H') && d.link != linkMasked && (hasPrefixFold(s[i:], "http://") || hasPrefixFold(s[i:], "https://")):
			if u := bareURL(s[i:]); u > 0 {
				d.url(s, i, i+u)
				i += u
				continue
			}
			// Not an address, but Discord would link what follows
			// (https?://[^\s<]+ is enough): the first slash, escaped,
			// keeps it from reading one.
			slash = i + strings.IndexByte(s[i:], '/')
			d.put(s[i : i+n])
		case i == slash:
			d.put(`\/`)
		default:
			d.put(s[i : i+n])
		}
		d.finish(i)
		i += n
	}
}

// url writes the bare URL s[i:j] as <url>. Discord would link it anyway,
// but it would read Markdown inside it (a URL's _ or * could close an
// italic or bold around it, and an escaping backslash would break it),
// and Discord reads nothing inside <...>. It also shows no preview for
// such a link, which is what a chat answer wants.
func (d *discord) url(s string, i, j int) {
	d.put("<")
	last := i
	for k := i; k < j; {
		_, n := utf8.DecodeRuneInString(s[k:])
		if k > i {
			d.begin(k)
		}
		d.str(s[k : k+n])
		if s[k] == '@' && massMention(s[k+1:j]) {
			d.str(zwsp) // as in text: an address is no place for a mention
		}
		d.finish(k)
		last = k
		k += n
	}
	d.str(">")
	d.finish(last)
	d.lineStart, d.col0, d.digits = false, false, false
}

// raw writes text as it is: a link's address, inside <...>.
func (d *discord) raw(s string) {
	for i := 0; i < len(s); {
		_, n := utf8.DecodeRuneInString(s[i:])
		d.begin(i)
		d.put(s[i : i+n])
		if s[i] == '@' && massMention(s[i+1:]) {
			d.str(zwsp)
		}
		d.finish(i)
		i += n
	}
}

// code writes the text of inline code or a code block. Backslashes are
// literal in code, so nothing is escaped; only what would end the code
// early, or mention someone, is broken up with a zero-width space.
func (d *discord) code(s string) {
	inline := d.open[Pre] == 0
	for i := 0; i < len(s); {
		if !d.newline && !d.boundary && codePlain(s[i]) {
			j := i + 1
			for j < len(s) && codePlain(s[j]) {
				j++
			}
			d.run(s, i, j)
			d.ticks, d.digits, d.col0 = 0, false, false
			if !blank(s[i:j]) {
				d.lineStart = false
			}
			i = j
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		d.begin(i)
		switch {
		case r == '\n':
			d.nl()
			d.ticks = 0
		case r == '`' && inline:
			// The code is between double backticks (see start), which
			// a pair inside it would close: every pair is broken.
			d.put("`")
			if strings.HasPrefix(s[i+1:], "`") {
				d.str(zwsp)
			}
		case r == '`':
			// Discord ends a code block at the next ``` wherever it is:
			// a run of three backticks in the code would close the
			// block and let the rest be read as Markdown. A zero-width
			// space after every second backtick of a run keeps the
			// code visibly the same.
			if d.ticks == 2 {
				d.str(zwsp)
				d.ticks = 0
			}
			d.put("`")
			d.ticks++
		case r == '@' && massMention(s[i+1:]):
			d.put("@" + zwsp)
			d.ticks = 0
		case r == '<' && idMention(s[i+1:]):
			// Whether Discord pings from inside code is not something
			// to rely on; <@123> loses its mention as "<\u200b@123>".
			d.put("<" + zwsp)
			d.ticks = 0
		default:
			d.put(s[i : i+n])
			d.ticks = 0
		}
		d.finish(i)
		i += n
	}
}

// codePlain reports whether code() writes byte c of code as it is.
func codePlain(c byte) bool { return c != '\n' && c != '`' && c != '@' && c != '<' }

// start writes the markup that opens t, toks[k].
func (d *discord) start(k int, t Token) {
	if t.Tag == Quote && d.open[Quote] == 0 && !d.col0 {
		d.nl() // a quote begins a line (before it is open: no marker yet)
	}
	d.open[t.Tag]++
	first := d.open[t.Tag] == 1
	if d.link == linkAuto && t.Tag != Link {
		return // nothing is read inside <url>, formatting included
	}
	switch t.Tag {
	case Bold:
		if first {
			d.put("**")
		}
	case Italic:
		if first {
			// _ rather than *: "*" italic next to "**" bold misparses
			// ("**a***b*" is bold "a*" then "b*"). _ italic needs a
			// word boundary outside it, so inside a word it is set off
			// by zero-width spaces.
			d.flush('_')
			if n := len(d.b); n > 0 && isWordByte(d.b[n-1]) {
				d.str(zwsp)
			}
			d.put("_")
		}
	case Strike:
		if first {
			d.put("~~")
		}
	case Code:
		// Code holding a backtick goes between double backticks, and a
		// backtick at either end is set off from them by a zero-width
		// space: "``" followed by "`" would be read as a code block.
		code := elementText(d.toks, k)
		d.tick = "`"
		if strings.Contains(code, "`") {
			d.tick = "``"
		}
		d.put(d.tick)
		if strings.HasPrefix(code, "`") {
			d.str(zwsp)
		}
		d.padEnd = strings.HasSuffix(code, "`")
	case Pre:
		// A fence must begin a line; the code begins on the next one,
		// so that its first line is never read as the language.
		if !d.col0 {
			d.nl()
		}
		lang := t.Attr
		if !validLang(lang) {
			lang = ""
		}
		d.put("```" + lang)
		d.nl()
		d.ticks = 0
	case Link:
		d.link = linkText
		if !isHTTP(t.Attr) {
			return // Discord links http and https only: the text alone
		}
		if text := elementText(d.toks, k); text == t.Attr && !strings.ContainsAny(text, " \t\n<>") {
			d.link = linkAuto
			d.put("<")
			return
		}
		d.link = linkMasked
		d.put("[")
	case Quote:
		if first {
			d.put("> ")
			d.lineStart, d.col0 = true, true
		}
	}
}

// end writes the markup that closes t.
func (d *discord) end(t Token) {
	d.open[t.Tag]--
	last := d.open[t.Tag] == 0
	if d.link == linkAuto && t.Tag != Link {
		return
	}
	switch t.Tag {
	case Bold:
		if last {
			d.put("**")
		}
	case Italic:
		if last {
			d.put("_")
			d.boundary = true
		}
	case Strike:
		if last {
			d.put("~~")
		}
	case Code:
		if d.padEnd {
			d.str(zwsp)
		}
		d.put(d.tick)
	case Pre:
		d.nl()
		d.put("```")
		d.newline = true
	case Link:
		switch d.link {
		case linkAuto:
			d.put(">")
		case linkMasked:
			d.put("](" + discordURL(t.Attr) + ")")
		}
		d.link = linkNone
	case Quote:
		if last {
			d.newline = true
		}
	}
}

// discordURLEncoded reports whether discordURL percent-encodes href[i].
func discordURLEncoded(href string, i int) bool {
	c := href[i]
	return c <= ' ' || c == 0x7f || strings.IndexByte(`()<>"\`+"`", c) >= 0 || c == '@' && massMention(href[i+1:])
}

// massMention reports whether s, what follows an @, makes it @everyone or
// @here.
func massMention(s string) bool {
	return hasPrefixFold(s, "everyone") || hasPrefixFold(s, "here")
}

// idMention reports whether s, what follows a <, makes it a user, role or
// channel mention: @123, @!123, @&123 or #123.
func idMention(s string) bool {
	if strings.HasPrefix(s, "@!") || strings.HasPrefix(s, "@&") {
		s = s[2:]
	} else if strings.HasPrefix(s, "@") || strings.HasPrefix(s, "#") {
		s = s[1:]
	} else {
		return false
	}
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// bareURL returns the length of the web address at the start of s:
// "http://" or "https://", then everything up to a space, < or >, less
// the punctuation at its end that belongs to the sentence (and a closing
// bracket the address did not open); or 0 if nothing is left.
func bareURL(s string) int {
	var scheme int
	switch {
	case hasPrefixFold(s, "https://"):
		scheme = len("https://")
	case hasPrefixFold(s, "http://"):
		scheme = len("http://")
	default:
		return 0
	}
	run := scheme
	for run < len(s) {
		r, n := utf8.DecodeRuneInString(s[run:])
		if unicode.IsSpace(r) || r == '<' || r == '>' {
			break
		}
		run += n
	}
	end := run
	for end > scheme {
		c := s[end-1]
		switch {
		case strings.IndexByte(`.,:;!?'"*_~|`, c) >= 0,
			c == ')' && strings.Count(s[:end], "(") < strings.Count(s[:end], ")"),
			c == ']' && strings.Count(s[:end], "[") < strings.Count(s[:end], "]"):
			end--
			continue
		}
		break
	}
	if end == scheme {
		return 0
	}
	return end
}

// discordURL returns href for a masked link's (...): parentheses and
// anything that could end the destination early are percent-encoded,
// and an @ that would spell a mass mention too.
func discordURL(href string) string {
	clean := true
	for i := 0; i < len(href) && clean; i++ {
		clean = !discordURLEncoded(href, i)
	}
	if clean {
		return href
	}
	var b strings.Builder
	for i := 0; i < len(href); i++ {
		c := href[i]
		switch {
		case discordURLEncoded(href, i):
			b.WriteString("%")
			b.WriteByte("0123456789ABCDEF"[c>>4])
			b.WriteByte("0123456789ABCDEF"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
