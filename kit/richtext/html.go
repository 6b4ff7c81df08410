package richtext

// SafeHTML renders an HTML fragment for the built-in webchat, to be put
// into a page as it is. It can only ever contain the elements <strong>,
// <em>, <s>, <code>, <pre> (holding a <code>, with class="language-x"
// for a known language), <a href="..." rel="noopener noreferrer
// nofollow" target="_blank"> (for http and https only; other links keep
// their text), <blockquote> and <br>: every text and attribute value is
// escaped (& < > " '), so no input can make another element, an
// attribute or a script.
//
// The look follows the webchat's own Markdown rendering: line breaks are
// <br>, paragraphs are separated by an empty line (<br><br>), list items
// are the Doc's "• " lines, and a code block or quote, a block of its
// own, is not framed by extra line breaks.
type SafeHTML struct{}

// Render returns d as an HTML fragment.
func (SafeHTML) Render(d Doc) string { return SafeHTML{}.render(d.toks, nil) }

var (
	// safeText escapes what could end text (< >, & for entities) or a
	// quoted attribute value (" and '), and makes line breaks <br>:
	// HTML collapses them. A NUL, which browsers drop or replace, is
	// written as the replacement character they would show.
	safeText = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;", '\'': "&#39;", '\n': "<br>", 0: "\uFFFD"}
	// safePre keeps line breaks, which a pre shows.
	safePre = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;", '\'': "&#39;", 0: "\uFFFD"}
)

// safeTags are the elements' tags.
var safeTags = [...]string{Bold: "strong", Italic: "em", Strike: "s", Code: "code", Quote: "blockquote"}

func (SafeHTML) render(toks []Token, tr *trace) string {
	w := writer{tr: tr, b: make([]byte, 0, sizeHint(toks))}
	pre := 0
	linked := false // the open link is written as one
	for k, t := range toks {
		w.token(k)
		switch t.Kind {
		case KindText:
			esc := &safeText
			if pre > 0 {
				esc = &safePre
			}
			// A block (code, quote) breaks the line itself: the line
			// breaks that separate it from the text around would be
			// blank lines. (A code block's own lines are kept.)
			s := t.Text
			lead, trail := 0, len(s)
			if pre == 0 && k > 0 && isBlock(toks[k-1]) {
				for lead < len(s) && s[lead] == '\n' {
					lead++
				}
			}
			if pre == 0 && k+1 < len(toks) && isBlock(toks[k+1]) {
				for trail > lead && s[trail-1] == '\n' {
					trail--
				}
			}
			w.skip(0, lead)
			w.textRange(s, lead, trail, esc)
			w.skip(trail, len(s))
			w.advance(len(s))
		case KindOpen:
			switch t.Tag {
			case Pre:
				pre++
				w.str("<pre><code")
				if t.Attr != "" && validLang(t.Attr) {
					w.str(` class="language-`)
					w.escaped(t.Attr, &safePre)
					w.str(`"`)
				}
				w.str(">")
			case Link:
				linked = isHTTP(t.Attr)
				if linked {
					w.str(`<a href="`)
					w.escaped(t.Attr, &safePre)
					w.str(`" rel="noopener noreferrer nofollow" target="_blank">`)
				}
			default:
				w.str("<" + safeTags[t.Tag] + ">")
			}
		case KindClose:
			switch t.Tag {
			case Pre:
				pre--
				w.str("</code></pre>")
			case Link:
				if linked {
					w.str("</a>")
				}
				linked = false
			default:
				w.str("</" + safeTags[t.Tag] + ">")
			}
		}
	}
	return w.done(len(toks))
}

// isBlock reports whether t opens or closes a block element.
func isBlock(t Token) bool {
	return t.Kind != KindText && (t.Tag == Pre || t.Tag == Quote)
}
