package richtext

// TelegramHTML renders for the Bot API's HTML style (parse_mode "HTML").
// Telegram supports every element of a Doc as a tag: b, i, s, code, pre
// (with the language as the class of a nested code tag), a and
// blockquote. Text is escaped (&, <, >) and attribute values also have "
// escaped, so nothing from the input can ever form a tag. Telegram counts
// the visible text after parsing the entities (TelegramLimit).
type TelegramHTML struct{}

// Render returns d as Telegram HTML.
func (TelegramHTML) Render(d Doc) string { return TelegramHTML{}.render(d.toks, nil) }

var (
	// htmlText are the characters that must not appear raw in HTML text:
	// < and > would start or end a tag, & an entity.
	htmlText = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;"}
	// htmlAttr adds the quote that would end a double-quoted attribute.
	htmlAttr = escapeTable{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;"}
)

// telegramTags are the tags of the elements, the only strings ever
// written between "<" and ">".
var telegramTags = [...]string{Bold: "b", Italic: "i", Strike: "s", Code: "code", Pre: "pre", Link: "a", Quote: "blockquote"}

func (TelegramHTML) render(toks []Token, tr *trace) string {
	w := writer{tr: tr, b: make([]byte, 0, sizeHint(toks))}
	for k, t := range toks {
		w.token(k)
		switch t.Kind {
		case KindText:
			w.text(t.Text, &htmlText)
			w.advance(len(t.Text))
		case KindOpen:
			switch {
			case t.Tag == Link:
				w.str(`<a href="`)
				w.escaped(t.Attr, &htmlAttr)
				w.str(`">`)
			case t.Tag == Pre && t.Attr != "":
				// Telegram takes a pre block's language from a nested
				// code tag's class.
				w.str(`<pre><code class="language-`)
				w.escaped(t.Attr, &htmlAttr)
				w.str(`">`)
			default:
				w.str("<" + telegramTags[t.Tag] + ">")
			}
		case KindClose:
			if t.Tag == Pre && t.Attr != "" {
				w.str("</code></pre>")
			} else {
				w.str("</" + telegramTags[t.Tag] + ">")
			}
		}
	}
	return w.done(len(toks))
}
