package richtext

import (
	"strings"
	"unicode/utf8"
)

// Renderer writes a Doc in one network's syntax. The renderers of this
// package are TelegramHTML, DiscordMarkdown, SlackMrkdwn, PlainText and
// SafeHTML; a renderer written elsewhere walks Doc.Tokens.
//
// Render must escape every text so that nothing in it can form markup,
// and should depend only on the tokens it is given: Split renders each
// part on its own.
type Renderer interface {
	Render(d Doc) string
}

// tracer is implemented by this package's renderers. It renders like
// Render and, when tr is not nil, notes in tr where each visible
// character and each token landed in the output, so that Split can
// estimate what a part would cost without rendering every candidate.
type tracer interface {
	render(toks []Token, tr *trace) string
}

// trace maps a rendering back to the Doc it came from.
type trace struct {
	// beg and end are, for each visible byte that starts a character,
	// the output offsets where that character's rendering begins and
	// ends (escapes, and what a renderer writes because of it, such as
	// the quote marker after a line break, belong to the character).
	beg, end []int32
	// tok is, for each token, the output offset where its rendering
	// begins; tok[len(toks)] is the output's length.
	tok []int32
}

func newTrace(toks []Token, visible int) *trace {
	return &trace{
		beg: make([]int32, visible+1),
		end: make([]int32, visible+1),
		tok: make([]int32, len(toks)+1),
	}
}

// writer is the output of a renderer, with the bookkeeping of a trace.
type writer struct {
	b   []byte
	tr  *trace
	vis int // visible bytes before the current text token
}

func (w *writer) str(s string) { w.b = append(w.b, s...) }
func (w *writer) byte(c byte)  { w.b = append(w.b, c) }

// String returns the output.
func (w *writer) String() string { return string(w.b) }

// token notes that token k begins here.
func (w *writer) token(k int) {
	if w.tr != nil {
		w.tr.tok[k] = int32(len(w.b))
	}
}

// done notes the end of the output, after the last of n tokens.
func (w *writer) done(n int) string {
	if w.tr != nil {
		w.tr.tok[n] = int32(len(w.b))
	}
	return w.String()
}

// begin notes that the character at byte i of the current text token
// begins here; finish that it ends here.
func (w *writer) begin(i int) {
	if w.tr != nil {
		w.tr.beg[w.vis+i] = int32(len(w.b))
	}
}

func (w *writer) finish(i int) {
	if w.tr != nil {
		w.tr.end[w.vis+i] = int32(len(w.b))
	}
}

// advance moves past a text token of n bytes.
func (w *writer) advance(n int) { w.vis += n }

// lastRune is the last character written, or 0.
func (w *writer) lastRune() rune {
	r, _ := utf8.DecodeLastRune(w.b)
	if r == utf8.RuneError {
		return 0
	}
	return r
}

// blank reports whether s is only spaces and tabs.
func blank(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != ' ' && s[i] != '\t' {
			return false
		}
	}
	return true
}

// render renders toks with r, through its tracer when it has one.
func render(r Renderer, toks []Token, tr *trace) string {
	if t, ok := r.(tracer); ok {
		return t.render(toks, tr)
	}
	return r.Render(Doc{toks: toks})
}

// isHTTP reports whether href is an http or https URL, the only links
// most networks make clickable.
func isHTTP(href string) bool {
	return hasPrefixFold(href, "http://") || hasPrefixFold(href, "https://")
}

// hasPrefixFold is strings.HasPrefix, ignoring ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// elementText is the visible text of the element opened at toks[k], up
// to its close (or the end of toks).
func elementText(toks []Token, k int) string {
	var b strings.Builder
	depth := 0
	for _, t := range toks[k:] {
		switch t.Kind {
		case KindOpen:
			depth++
		case KindClose:
			depth--
		case KindText:
			b.WriteString(t.Text)
		}
		if depth == 0 {
			break
		}
	}
	return b.String()
}

// escapeTable maps the ASCII bytes a renderer escapes to their escapes.
type escapeTable [128]string

// text writes s, a text token's text, with the bytes in esc replaced by
// their escapes, tracing each character.
func (w *writer) text(s string, esc *escapeTable) { w.textRange(s, 0, len(s), esc) }

// textRange is text for the bytes [from, to) of the token's text s.
func (w *writer) textRange(s string, from, to int, esc *escapeTable) {
	if w.tr == nil {
		w.escaped(s[from:to], esc)
		return
	}
	for i := from; i < to; {
		if c := s[i]; c < utf8.RuneSelf && esc[c] != "" {
			w.begin(i)
			w.str(esc[c])
			w.finish(i)
			i++
			continue
		}
		j := i + 1
		for j < to && (s[j] >= utf8.RuneSelf || esc[s[j]] == "") {
			j++
		}
		w.run(s, i, j)
		i = j
	}
}

// run writes the bytes [i, j) of the current text token's text s as they
// are: copied at once, each character traced to its place.
func (w *writer) run(s string, i, j int) {
	base := int32(len(w.b) - i)
	w.str(s[i:j])
	if w.tr == nil {
		return
	}
	beg, end := w.tr.beg[w.vis:], w.tr.end[w.vis:]
	for k := i; k < j; {
		n := 1
		if s[k] >= utf8.RuneSelf {
			_, n = utf8.DecodeRuneInString(s[k:j])
		}
		beg[k], end[k] = base+int32(k), base+int32(k+n)
		k += n
	}
}

// skip notes that the single-byte characters [from, to) of the current
// text token are not written at all.
func (w *writer) skip(from, to int) {
	for i := from; i < to; i++ {
		w.begin(i)
		w.finish(i)
	}
}

// escaped writes s with the bytes in esc replaced by their escapes, as
// markup: an attribute value, not traced.
func (w *writer) escaped(s string, esc *escapeTable) {
	last := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < utf8.RuneSelf && esc[c] != "" {
			w.str(s[last:i])
			w.str(esc[c])
			last = i + 1
		}
	}
	w.str(s[last:])
}

// sizeHint is a guess at a rendering's length, to allocate once.
func sizeHint(toks []Token) int {
	n := 0
	for _, t := range toks {
		n += len(t.Text) + 8
	}
	return n + n/8
}
