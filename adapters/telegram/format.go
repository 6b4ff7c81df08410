package telegram

import (
	"strings"
	"unicode"
	"unicode/utf16"
)

// The formatting pipeline: Markdown (markdown.go) becomes a stream of
// tokens, the stream is cut into messages (split.go), and each message is
// serialised to Telegram HTML here. Working on tokens rather than on HTML
// text is what makes the cutting safe: text tokens hold the visible,
// unescaped text, so a cut can never land inside a tag or an entity, and
// the length that Telegram limits (visible UTF-16 code units) is simply
// the length of the text tokens.

// tokKind says what a token is.
type tokKind uint8

const (
	tokText  tokKind = iota // visible text
	tokOpen                 // a start tag
	tokClose                // an end tag
)

// Tags the converter emits: a subset of what Telegram's HTML style
// supports, and the only strings ever written between "<" and ">".
const (
	tagBold   = "b"
	tagItalic = "i"
	tagStrike = "s"
	tagCode   = "code"
	tagPre    = "pre"
	tagLink   = "a"
	tagQuote  = "blockquote"
)

// token is one piece of a formatted message.
type token struct {
	kind tokKind
	// text is the visible text of a tokText, unescaped.
	text string
	// tag is the tag of a tokOpen or tokClose.
	tag string
	// attr is the href of a link, or the language of a pre block.
	attr string
}

func textTok(s string) token          { return token{kind: tokText, text: s} }
func openTok(tag, attr string) token  { return token{kind: tokOpen, tag: tag, attr: attr} }
func closeTok(tag, attr string) token { return token{kind: tokClose, tag: tag, attr: attr} }

// renderHTML serialises tokens to Telegram HTML. Text is escaped (&, <, >)
// and attribute values also have " escaped, so nothing from the input can
// ever form a tag. The tokens must be balanced, which every producer in
// this package guarantees.
func renderHTML(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case tokText:
			b.WriteString(escapeText(t.text))
		case tokOpen:
			switch {
			case t.tag == tagLink:
				b.WriteString(`<a href="` + escapeAttr(t.attr) + `">`)
			case t.tag == tagPre && t.attr != "":
				// Telegram takes a pre block's language from a nested
				// code tag's class.
				b.WriteString(`<pre><code class="language-` + escapeAttr(t.attr) + `">`)
			default:
				b.WriteString("<" + t.tag + ">")
			}
		case tokClose:
			if t.tag == tagPre && t.attr != "" {
				b.WriteString("</code></pre>")
			} else {
				b.WriteString("</" + t.tag + ">")
			}
		}
	}
	return b.String()
}

// plainText is the visible text of tokens, as a user sees it.
func plainText(toks []token) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tokText {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

var (
	textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

func escapeText(s string) string { return textEscaper.Replace(s) }
func escapeAttr(s string) string { return attrEscaper.Replace(s) }

// utf16Len is the length of s in UTF-16 code units: Telegram measures
// texts in them, so an emoji outside the Basic Multilingual Plane counts
// twice.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// dropEmpty removes elements that contain no text (an open tag directly
// followed, after removing inner empty elements, by its close tag).
// Telegram would make empty entities of them, which it may refuse.
func dropEmpty(toks []token) []token {
	out := make([]token, 0, len(toks))
	for _, t := range toks {
		if t.kind == tokClose && len(out) > 0 {
			if last := out[len(out)-1]; last.kind == tokOpen && last.tag == t.tag {
				out = out[:len(out)-1]
				continue
			}
		}
		if t.kind == tokText && t.text == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}

// trimTokens removes leading and trailing whitespace from the visible text
// (Telegram trims messages too, and a message of only whitespace is
// refused) and then empty elements.
func trimTokens(toks []token) []token {
	toks = append([]token(nil), toks...)
	for i := 0; i < len(toks); i++ {
		if toks[i].kind != tokText {
			continue
		}
		toks[i].text = strings.TrimLeftFunc(toks[i].text, unicode.IsSpace)
		if toks[i].text != "" {
			break
		}
	}
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].kind != tokText {
			continue
		}
		toks[i].text = strings.TrimRightFunc(toks[i].text, unicode.IsSpace)
		if toks[i].text != "" {
			break
		}
	}
	return dropEmpty(toks)
}
