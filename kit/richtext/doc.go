// Package richtext is the rich-text pipeline every adapter shares: it
// turns the assistant's Markdown into what one messenger can show, cut
// into messages that fit that messenger's limit.
//
// The pipeline has three steps:
//
//  1. Parse reads the Markdown (CommonMark plus GFM strikethrough) into a
//     Doc: a flat, balanced stream of Tokens, each either visible text or
//     the start or end of an element (bold, italic, strikethrough, inline
//     code, code block, link, block quote). What no messenger shows as
//     such is already turned into text that reads well in a chat:
//     headings are bold lines, list items "• " lines, images links, raw
//     HTML the text it is. Link destinations are filtered here (http and
//     https with a host, and tg://); a renderer may restrict them further.
//     Text makes a Doc of plain text, for notices, and WithPrefix puts a
//     plain prefix (the operator mark) before one.
//  2. Split cuts a Doc into Parts that each fit a Limit: a maximum and a
//     Measure (UTF-16 code units, characters or bytes), counted on the
//     visible text (Telegram) or on the rendered string (Discord, Slack).
//     Cuts fall on the visible text only, so one can never land inside a
//     tag, an escape or an entity; elements open at a cut are closed at
//     the end of one part and opened again at the start of the next, so
//     every part is well-formed on its own.
//  3. A Renderer writes a Doc in one network's syntax: TelegramHTML,
//     DiscordMarkdown, SlackMrkdwn, PlainText and SafeHTML. Every renderer
//     escapes the text, so that nothing from the input can ever form
//     markup the renderer did not write itself.
//
// A typical adapter does
//
//	doc := richtext.Parse(msg.Text)
//	for _, p := range richtext.Split(doc, richtext.DiscordMarkdown{}, richtext.DiscordLimit) {
//		send(p.Text)
//	}
//
// Everything here is safe for concurrent use.
package richtext

import (
	"strings"
	"unicode"
)

// Kind says what a Token is.
type Kind uint8

const (
	// KindText is visible text.
	KindText Kind = iota
	// KindOpen starts an element.
	KindOpen
	// KindClose ends the element most recently opened.
	KindClose
)

// Tag is the element a KindOpen or KindClose token starts or ends.
type Tag uint8

const (
	// Bold is strong emphasis (**x**, and headings).
	Bold Tag = iota + 1
	// Italic is emphasis (*x*, _x_).
	Italic
	// Strike is GFM strikethrough (~~x~~).
	Strike
	// Code is inline code. It holds only text.
	Code
	// Pre is a code block; its Attr is the language ("" when none or
	// not a plain word). It holds only text.
	Pre
	// Link is a hyperlink; its Attr is the destination. It never holds
	// another link, inline code or a code block.
	Link
	// Quote is a block quote. Quotes do not nest.
	Quote
)

var tagNames = [...]string{"", "bold", "italic", "strike", "code", "pre", "link", "quote"}

// String returns the tag's name, such as "bold".
func (t Tag) String() string {
	if int(t) < len(tagNames) {
		return tagNames[t]
	}
	return "tag?"
}

// Token is one piece of a Doc.
type Token struct {
	Kind Kind
	// Text is the visible text of a KindText token, unescaped: exactly
	// what a reader sees.
	Text string
	// Tag is the element a KindOpen or KindClose token starts or ends.
	Tag Tag
	// Attr is the destination of a Link or the language of a Pre, on
	// both its KindOpen and its KindClose token.
	Attr string
}

func textTok(s string) Token              { return Token{Kind: KindText, Text: s} }
func openTok(tag Tag, attr string) Token  { return Token{Kind: KindOpen, Tag: tag, Attr: attr} }
func closeTok(tag Tag, attr string) Token { return Token{Kind: KindClose, Tag: tag, Attr: attr} }

// Doc is a formatted text, ready to render. Its tokens are balanced
// (every KindOpen has its KindClose, properly nested), no element is
// empty, no text token is empty, no two text tokens are adjacent, and the
// visible text has no leading or trailing whitespace. The zero Doc is
// empty. A Doc is immutable, and safe to share between goroutines.
type Doc struct {
	toks []Token
}

// Text returns a Doc of plain text s, without Markdown parsing: for the
// adapter's own notices. Like Parse, it trims surrounding whitespace.
func Text(s string) Doc {
	return newDoc([]Token{textTok(s)})
}

// WithPrefix returns d with the plain text prefix before it (the
// operator mark, such as "👤 Operator: "), trimmed again as a whole: an
// empty d gives the trimmed prefix alone. An empty prefix returns d.
func (d Doc) WithPrefix(prefix string) Doc {
	if prefix == "" {
		return d
	}
	return newDoc(append([]Token{textTok(prefix)}, d.toks...))
}

// Plain returns the visible text: what a reader sees, without
// formatting. It is also what Telegram shows of TelegramHTML, and its
// plain-text fallback.
func (d Doc) Plain() string { return plainText(d.toks) }

// IsEmpty reports whether d has no visible text (a network refuses an
// empty message; Split returns no part for it).
func (d Doc) IsEmpty() bool { return len(d.toks) == 0 }

// Tokens returns a copy of d's tokens, for a renderer written outside
// this package. See Doc for what the stream guarantees.
func (d Doc) Tokens() []Token { return append([]Token(nil), d.toks...) }

// newDoc makes a Doc of balanced tokens: trimmed, without empty elements
// and with adjacent text merged.
func newDoc(toks []Token) Doc {
	return Doc{toks: mergeText(trimTokens(toks))}
}

// plainText is the visible text of tokens.
func plainText(toks []Token) string {
	var b strings.Builder
	for _, t := range toks {
		if t.Kind == KindText {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// dropEmpty removes elements that contain no text (an open tag directly
// followed, after removing inner empty elements, by its close tag), and
// empty text, in place. Telegram would make empty entities of them, which
// it may refuse; other networks would show stray markers.
func dropEmpty(toks []Token) []Token {
	out := toks[:0]
	for _, t := range toks {
		if t.Kind == KindClose && len(out) > 0 {
			if last := out[len(out)-1]; last.Kind == KindOpen && last.Tag == t.Tag {
				out = out[:len(out)-1]
				continue
			}
		}
		if t.Kind == KindText && t.Text == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}

// trimTokens removes leading and trailing whitespace from the visible text
// (Telegram trims messages too, and a message of only whitespace is
// refused) and then empty elements.
func trimTokens(toks []Token) []Token {
	toks = append([]Token(nil), toks...)
	for i := 0; i < len(toks); i++ {
		if toks[i].Kind != KindText {
			continue
		}
		toks[i].Text = strings.TrimLeftFunc(toks[i].Text, unicode.IsSpace)
		if toks[i].Text != "" {
			break
		}
	}
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].Kind != KindText {
			continue
		}
		toks[i].Text = strings.TrimRightFunc(toks[i].Text, unicode.IsSpace)
		if toks[i].Text != "" {
			break
		}
	}
	return dropEmpty(toks)
}

// mergeText joins adjacent text tokens, in place. The converter emits
// text in pieces (a separator, a list marker, each goldmark text
// segment); renderers that look at the text around a character (Discord's
// line starts and bare URLs) need it whole, and fewer tokens are cheaper
// to split. Serialised, the stream is the same.
func mergeText(toks []Token) []Token {
	out := toks[:0]
	for i := 0; i < len(toks); {
		j := i + 1
		if toks[i].Kind == KindText {
			for j < len(toks) && toks[j].Kind == KindText {
				j++
			}
		}
		if j == i+1 {
			out = append(out, toks[i])
			i = j
			continue
		}
		var b strings.Builder
		for _, t := range toks[i:j] {
			b.WriteString(t.Text)
		}
		out = append(out, textTok(b.String()))
		i = j
	}
	return out
}
