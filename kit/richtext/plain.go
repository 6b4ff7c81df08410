package richtext

// PlainText renders readable plain text, for a network without
// formatting: the visible text, with each web link written "text (url)"
// unless its text already is the address. Nothing is escaped, since
// nothing is markup; a tg:// link, of no use outside Telegram, keeps
// only its text. Use it with Limit.Rendered: the addresses count.
type PlainText struct{}

// Render returns d as plain text.
func (PlainText) Render(d Doc) string { return PlainText{}.render(d.toks, nil) }

func (PlainText) render(toks []Token, tr *trace) string {
	w := writer{tr: tr, b: make([]byte, 0, sizeHint(toks))}
	var none escapeTable
	show := false // the open link's address is shown after its text
	for k, t := range toks {
		w.token(k)
		switch t.Kind {
		case KindText:
			w.text(t.Text, &none)
			w.advance(len(t.Text))
		case KindOpen:
			if t.Tag == Link {
				show = isHTTP(t.Attr) && elementText(toks, k) != t.Attr
			}
		case KindClose:
			if t.Tag == Link && show {
				w.str(" (" + t.Attr + ")")
				show = false
			}
		}
	}
	return w.done(len(toks))
}
