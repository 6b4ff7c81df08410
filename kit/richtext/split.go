package richtext

import (
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Part is one message of a split Doc.
type Part struct {
	// Doc is the part's own document, well-formed on its own: render it
	// another way (Telegram's plain fallback is Doc.Plain()).
	Doc Doc
	// Text is Doc rendered by the Split's renderer.
	Text string
}

// Split cuts d into messages that each fit l, rendered by r. A Doc that
// fits whole is one part, rendered exactly as r.Render(d); an empty Doc
// gives no part.
//
// The cuts fall on the visible text, never inside a character, a tag, an
// escape or an entity. Each part is as long as the limit allows, cut at a
// paragraph break if one lies in the second half of the allowed length,
// else at a line break, the end of a sentence, a space, and only as a last
// resort inside a word. A code block, inline code or link that fits in
// one message is never cut: the part ends before it instead, even if that
// leaves the part short. Only such an element longer than a message is
// cut inside (a code block at a line break in it, if it has one).
// Elements open at a cut are closed at the end of one part and opened
// again at the start of the next, so each part is well-formed on its own
// (balanced tags, balanced code fences). Whitespace at a cut is dropped.
//
// When l counts the rendered string (l.Rendered), Split measures every
// part it returns as rendered, markup reopened at the cut included, and
// no part is over l.Max. This package's renderers tell Split where each
// character lands in their output, so it can choose a cut from one
// rendering of the whole Doc; for another Renderer it estimates by the
// visible text and shortens a part that came out too long. A link whose
// destination alone takes more than half a message is kept as its text,
// and a part whose reopened markup leaves no room for any text is sent
// without formatting. l.Max is raised to room for one character (two
// UTF-16 units, four bytes, and at least 8 when l.Rendered) if it is
// below that.
//
// Split is linear in the size of d: it renders the parts, and when l
// counts the rendered string the whole Doc once more, traced. A
// 40,000-character reply splits in about 0.5 ms for Telegram and 1 ms for
// Discord or Slack on a small server (BenchmarkSplit40k), a tenth of
// what parsing it takes.
func Split(d Doc, r Renderer, l Limit) []Part {
	if d.IsEmpty() {
		return nil
	}
	l = l.effective()
	vis := d.Plain()
	visible := l.Measure.Len(vis)
	if !l.Rendered && visible <= l.Max {
		return []Part{{Doc: d, Text: render(r, d.toks, nil)}}
	}
	_, traced := r.(tracer)
	if l.Rendered && (!traced || visible <= l.Max) {
		// (This package's renderers never write less than the visible
		// text: a Doc longer than that does not fit, and its rendering
		// is traced below.)
		if whole := render(r, d.toks, nil); l.Measure.Len(whole) <= l.Max {
			return []Part{{Doc: d, Text: whole}}
		}
	}
	s := newSplitter(d.toks, vis, r, l)
	if l.Rendered && traced && l.Measure.Len(s.whole) <= l.Max && len(s.toks) == len(d.toks) {
		return []Part{{Doc: d, Text: s.whole}}
	}
	var parts []Part
	var cur cursor
	for pos := 0; pos < len(s.vis); {
		cur.advance(s, pos)
		var p Part
		p, pos = s.next(&cur, pos)
		parts = append(parts, p)
	}
	return parts
}

// span is a range of byte offsets into the visible text.
type span struct{ start, end int }

// splitter holds what Split knows about one Doc.
type splitter struct {
	toks []Token
	vis  string // the visible text
	at   []int  // visible offset where each token begins; at[len(toks)] = len(vis)
	r    Renderer
	l    Limit
	// match pairs each open token with its close and back.
	match []int
	// whole and tr are the whole Doc rendered and traced, when l counts
	// the rendered string and r can trace; markup is the rendered
	// length of each open and close token.
	whole  string
	tr     *trace
	markup []int
	// keep are the code blocks, inline code and links that fit in one
	// message, which no cut may fall inside; pres are all code blocks.
	// Both are sorted and disjoint.
	keep, pres []span
}

func newSplitter(toks []Token, vis string, r Renderer, l Limit) *splitter {
	s := &splitter{r: r, l: l, vis: vis}
	if l.Rendered {
		toks = s.unlinkLong(toks) // the visible text stays the same
	}
	s.index(toks)
	if _, ok := r.(tracer); ok && l.Rendered {
		s.tr = newTrace(s.toks, len(s.vis))
		s.whole = render(r, s.toks, s.tr)
		s.markup = make([]int, len(s.toks))
		for k, t := range s.toks {
			if t.Kind != KindText {
				s.markup[k] = l.Measure.Len(s.whole[s.tr.tok[k]:s.tr.tok[k+1]])
			}
		}
	}
	s.elements()
	return s
}

// unlinkLong returns toks without the links whose destination alone
// takes more than half a message (each part of the link would carry it):
// their text stays, as text.
func (s *splitter) unlinkLong(toks []Token) []Token {
	long := func(t Token) bool {
		return t.Kind != KindText && t.Tag == Link && s.l.Measure.Len(t.Attr) > s.l.Max/2
	}
	if !slices.ContainsFunc(toks, long) {
		return toks
	}
	out := make([]Token, 0, len(toks))
	for _, t := range toks {
		if !long(t) {
			out = append(out, t)
		}
	}
	return mergeText(out)
}

// index fills toks, at and match.
func (s *splitter) index(toks []Token) {
	s.toks = toks
	s.at = make([]int, len(toks)+1)
	s.match = make([]int, len(toks))
	var stack []int
	v := 0
	for k, t := range toks {
		s.at[k] = v
		switch t.Kind {
		case KindText:
			v += len(t.Text)
		case KindOpen:
			stack = append(stack, k)
		case KindClose:
			o := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			s.match[o], s.match[k] = k, o
		}
	}
	s.at[len(toks)] = v
}

// elements finds the code blocks, inline code and links, and which of
// them fit in one message.
func (s *splitter) elements() {
	var cur cursor
	for k, t := range s.toks {
		if t.Kind != KindOpen || (t.Tag != Code && t.Tag != Pre && t.Tag != Link) {
			continue
		}
		// Whitespace at an element's ends may be dropped at a cut like
		// any other: the element is its text without it.
		sp := span{s.at[k], s.at[s.match[k]]}
		text := s.vis[sp.start:sp.end]
		sp.start += len(text) - len(strings.TrimLeftFunc(text, unicode.IsSpace))
		sp.end -= len(text) - len(strings.TrimRightFunc(text, unicode.IsSpace))
		if sp.end <= sp.start {
			continue
		}
		if t.Tag == Pre {
			s.pres = append(s.pres, sp)
		}
		cur.advance(s, sp.start)
		if s.fits(&cur, sp) {
			s.keep = append(s.keep, sp)
		}
	}
}

// fits reports whether the element at sp, opened inside whatever
// encloses it, fits in one message on its own.
func (s *splitter) fits(cur *cursor, sp span) bool {
	m, limit := s.l.Measure, s.l.Max
	if m.Len(s.vis[sp.start:sp.end]) > limit && (!s.l.Rendered || s.tr != nil) {
		// A rendering is never shorter than the visible text (with
		// this package's renderers; an outside one is rendered below to
		// make sure).
		return false
	}
	if !s.l.Rendered {
		return true
	}
	if s.tr != nil {
		_, n, cost := s.fit(cur, sp.start, 2*limit, sp.end)
		if n < sp.end-sp.start {
			return false // by far too long
		}
		if cost <= limit/2 {
			return true // plainly fits, whatever the estimate missed
		}
	}
	return m.Len(render(s.r, s.slice(cur, sp.start, sp.end), nil)) <= limit
}

// cursor walks the tokens in step with a position in the visible text.
type cursor struct {
	k     int   // the text token containing the position
	stack []int // the open tokens before k, outermost first
}

// advance moves c forward to the text token containing visible offset
// pos.
func (c *cursor) advance(s *splitter, pos int) {
	for c.k < len(s.toks) {
		t := s.toks[c.k]
		switch t.Kind {
		case KindText:
			if s.at[c.k]+len(t.Text) > pos {
				return
			}
		case KindOpen:
			c.stack = append(c.stack, c.k)
		case KindClose:
			c.stack = c.stack[:len(c.stack)-1]
		}
		c.k++
	}
}

// slice returns the tokens of the visible range [start, end), which
// begins in c's token: the elements open there are reopened, and those
// open at the end closed.
func (s *splitter) slice(c *cursor, start, end int) []Token {
	// The last token is the text token holding the last byte.
	last := sort.Search(len(s.toks), func(k int) bool { return s.at[k+1] >= end })
	last = max(last, c.k)
	out := make([]Token, 0, last-c.k+1+2*len(c.stack))
	stack := make([]int, 0, len(c.stack)+4)
	for _, o := range c.stack {
		out = append(out, s.toks[o])
		stack = append(stack, o)
	}
	for k := c.k; k < len(s.toks); k++ {
		t := s.toks[k]
		switch t.Kind {
		case KindOpen:
			out = append(out, t)
			stack = append(stack, k)
		case KindClose:
			out = append(out, t)
			stack = stack[:len(stack)-1]
		case KindText:
			ts, te := s.at[k], s.at[k]+len(t.Text)
			if a, b := max(start, ts)-ts, min(end, te)-ts; b > a {
				out = append(out, textTok(t.Text[a:b]))
			}
			if end <= te {
				for j := len(stack) - 1; j >= 0; j-- {
					o := s.toks[stack[j]]
					out = append(out, closeTok(o.Tag, o.Attr))
				}
				return dropEmpty(out)
			}
		}
	}
	return dropEmpty(out)
}

// maxAttempts bounds how often Split shortens a part that came out over
// the limit before it gives up its formatting.
const maxAttempts = 8

// next returns the part that begins at visible offset pos (at c), and
// where the next part begins.
func (s *splitter) next(c *cursor, pos int) (Part, int) {
	rest := s.vis[pos:]
	budget := s.l.Max
	strip := false // the part's markup does not fit: send it without
	for attempt := 0; ; attempt++ {
		half, hard := s.capacity(c, pos, budget, strip)
		if hard == 0 || attempt == maxAttempts {
			if strip {
				return s.one(c, pos)
			}
			strip, budget, attempt = true, s.l.Max, -1
			continue
		}
		if attempt == 0 && !strip {
			if hard < len(rest) && s.l.Rendered && len(rest) <= utf8.UTFMax*s.l.Max && s.l.Measure.Len(rest) <= s.l.Max {
				// The estimate may be a little pessimistic: a rest that
				// could fit is rendered to find out.
				if p, ok := s.part(c, pos, len(s.vis), false); ok {
					return p, len(s.vis)
				}
			}
			hard = s.extend(pos, hard)
		}
		cut := hard
		if hard < len(rest) {
			cut = s.bestCut(pos, hard, max(half, 1))
		}
		end := pos + len(strings.TrimRightFunc(rest[:cut], unicode.IsSpace))
		if p, ok := s.part(c, pos, end, strip); ok {
			return p, skipSpaces(s.vis, pos+cut)
		} else if n := s.l.Measure.Len(p.Text); n > 0 {
			budget = min(budget-1, budget*s.l.Max/n)
		}
	}
}

// part renders the range [pos, end) and reports whether it fits.
func (s *splitter) part(c *cursor, pos, end int, strip bool) (Part, bool) {
	toks := s.slice(c, pos, end)
	if strip {
		toks = textOnly(toks)
	}
	p := Part{Doc: Doc{toks: toks}, Text: render(s.r, toks, nil)}
	return p, !s.l.Rendered || s.l.Measure.Len(p.Text) <= s.l.Max
}

// one is the last resort: a part of one character, without formatting
// if it does not fit with it.
func (s *splitter) one(c *cursor, pos int) (Part, int) {
	_, n := utf8.DecodeRuneInString(s.vis[pos:])
	p, ok := s.part(c, pos, pos+n, false)
	if !ok {
		p, _ = s.part(c, pos, pos+n, true)
	}
	return p, skipSpaces(s.vis, pos+n)
}

// textOnly returns the text of toks without its elements.
func textOnly(toks []Token) []Token {
	out := make([]Token, 0, 1)
	for _, t := range toks {
		if t.Kind == KindText {
			out = append(out, t)
		}
	}
	return mergeText(out)
}

// capacity returns how many bytes of visible text from pos fit in half
// the budget and in the whole budget. The visible text is measured as it
// is; a rendering, by the trace of the whole Doc when there is one, else
// by the visible text (the part is then rendered and checked).
func (s *splitter) capacity(c *cursor, pos, budget int, strip bool) (half, hard int) {
	rest := s.vis[pos:]
	if strip {
		// Without the markup of the elements open here, up to the end
		// of the first of them to close: after it, formatting may fit
		// again.
		for _, o := range c.stack {
			rest = rest[:min(len(rest), max(s.at[s.match[o]]-pos, 1))]
		}
	}
	if s.tr == nil || strip {
		return s.l.Measure.prefix(rest, budget/2), s.l.Measure.prefix(rest, budget)
	}
	half, hard, _ = s.fit(c, pos, budget, len(s.vis))
	return half, hard
}

// fit returns how many bytes of visible text from pos (at c), up to stop,
// fit in budget once rendered, and in half of it, by the trace of the
// whole Doc, and what they cost: the markup reopened at pos, the
// rendering of the text and of the markup within it, and the markup that
// closes what is open at the end.
func (s *splitter) fit(c *cursor, pos, budget, stop int) (half, n, cost int) {
	width := &unitWidths[s.l.Measure]
	closing := 0
	for _, o := range c.stack {
		cost += s.markup[o]
		closing += s.markup[s.match[o]]
	}
	half = -1
	out := int(s.tr.beg[pos])
	for k := c.k; k < len(s.toks); k++ {
		t := s.toks[k]
		switch t.Kind {
		case KindOpen:
			closing += s.markup[s.match[k]]
		case KindClose:
			closing -= s.markup[k]
		case KindText:
			ts := s.at[k]
			i := max(pos-ts, 0)
			if ts+len(t.Text) < stop {
				// Most tokens fit whole: one sum for all their bytes.
				_, n := utf8.DecodeLastRuneInString(t.Text)
				e := max(int(s.tr.end[ts+len(t.Text)-n]), out)
				next := cost
				for _, b := range []byte(s.whole[out:e]) {
					next += int(width[b])
				}
				if next+closing <= budget && (half >= 0 || next+closing <= budget/2) {
					cost, out = next, e
					continue
				}
			}
			for i < len(t.Text) {
				v := ts + i
				e := max(int(s.tr.end[v]), out)
				next := cost
				for _, b := range []byte(s.whole[out:e]) {
					next += int(width[b])
				}
				if half < 0 && next+closing > budget/2 {
					half = v - pos
				}
				if next+closing > budget {
					return half, v - pos, cost
				}
				cost, out = next, e
				i++
				for i < len(t.Text) && !utf8.RuneStart(t.Text[i]) {
					i++
				}
				if ts+i >= stop {
					if half < 0 {
						half = ts + i - pos
					}
					return half, ts + i - pos, cost + closing
				}
			}
		}
	}
	if half < 0 {
		half = len(s.vis) - pos
	}
	return half, len(s.vis) - pos, cost + closing
}

// unitWidths are, for each Measure, what each byte of UTF-8 adds to a
// length: a character counts at its first byte.
var unitWidths = func() (w [3][256]uint8) {
	for b := range 256 {
		w[Bytes][b] = 1
		if utf8.RuneStart(byte(b)) {
			w[Runes][b] = 1
			w[UTF16][b] = 1
			if b >= 0xF0 && b <= 0xF4 {
				w[UTF16][b] = 2 // outside the Basic Multilingual Plane
			}
		}
	}
	return w
}()

// extend returns hard, or more when hard falls inside an element that
// begins at pos and fits in one message: the estimate fell short of what
// was measured, and the element goes whole.
func (s *splitter) extend(pos, hard int) int {
	if e, ok := s.within(s.keep, pos+hard); ok && e.start == pos {
		return e.end - pos
	}
	return hard
}

// within returns the span of spans strictly containing visible offset p.
func (s *splitter) within(spans []span, p int) (span, bool) {
	i := sort.Search(len(spans), func(i int) bool { return spans[i].end > p })
	if i < len(spans) && spans[i].start < p && p < spans[i].end {
		return spans[i], true
	}
	return span{}, false
}

// blocked reports whether a cut at pos+i would fall inside an element
// that fits in one message and begins at or after pos, and where that
// element begins, relative to pos.
func (s *splitter) blocked(pos, i int) (int, bool) {
	if e, ok := s.within(s.keep, pos+i); ok && e.start >= pos {
		return e.start - pos, true
	}
	return 0, false
}

// bestCut returns where to cut the visible text from pos, whose first hard
// bytes fit in one message: at the best boundary between byte lo and byte
// hard, or at hard. A boundary right at hard counts (the text that fits
// may end just before a space), hence the searches look one or two bytes
// past it; cutting at index i keeps bytes [0, i), so i never exceeds hard.
// No cut falls inside an element kept whole: the boundaries inside one
// are passed over, and a cut at hard inside one moves to its start.
func (s *splitter) bestCut(pos, hard, lo int) int {
	rest := s.vis[pos:]
	upTo := func(extra int) string { return rest[:min(len(rest), hard+extra)] }
	if i := s.lastIndex(pos, upTo(2), lo, 2, func(w string) int { return strings.LastIndex(w, "\n\n") }); i >= 0 {
		return i
	}
	lastNL := func(w string) int { return strings.LastIndexByte(w, '\n') }
	if i := s.lastIndex(pos, upTo(1), lo, 1, lastNL); i >= 0 {
		return i
	}
	if p, ok := s.within(s.pres, pos+hard); ok {
		// A code block longer than a message is cut at a line break in
		// it, even early in the part, rather than inside a line.
		if i := s.lastIndex(pos, upTo(1), max(p.start-pos+1, 1), 1, lastNL); i >= 0 {
			return i
		}
	}
	if i := s.lastSentenceEnd(pos, upTo(1), lo); i >= 0 {
		return i
	}
	if i := s.lastIndex(pos, upTo(1), lo, 1, func(w string) int { return strings.LastIndexAny(w, " \t") }); i >= 0 {
		return i
	}
	if start, ok := s.blocked(pos, hard); ok && start > 0 {
		return start
	}
	return hard
}

// lastIndex returns the last match of find in w (a prefix of the text
// from pos) at or after lo that is not inside an element kept whole, or
// -1. width is the length of a match.
func (s *splitter) lastIndex(pos int, w string, lo, width int, find func(string) int) int {
	for {
		i := find(w)
		if i < lo {
			return -1
		}
		start, ok := s.blocked(pos, i)
		if !ok {
			return i
		}
		w = w[:min(len(w)-1, start+width)] // matches at the element's start are fine
	}
}

// lastSentenceEnd returns the index of the last space at or after lo that
// follows the end of a sentence (".", "!", "?" or "…", possibly followed
// by closing quotes or brackets) and is not inside an element kept whole,
// or -1.
func (s *splitter) lastSentenceEnd(pos int, w string, lo int) int {
	for i := len(w) - 1; i >= lo && i > 0; i-- {
		if w[i] != ' ' && w[i] != '\t' {
			continue
		}
		before := strings.TrimRight(w[:i], `"')]»”’`)
		r, _ := utf8.DecodeLastRuneInString(before)
		switch r {
		case '.', '!', '?', '…':
			if start, ok := s.blocked(pos, i); ok {
				i = start + 1 // the loop goes on from the element's start
				continue
			}
			return i
		}
	}
	return -1
}

// skipSpaces returns the index of the first non-space at or after i.
func skipSpaces(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}
