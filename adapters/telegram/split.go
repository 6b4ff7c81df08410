package telegram

import (
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// maxMessageLen is Telegram's limit on one message: 4096 UTF-16 code
// units of visible text, counted after entity parsing (so "&lt;" is one).
const maxMessageLen = 4096

// part is one Telegram message of a possibly longer text.
type part struct {
	html  string // the message in Telegram HTML
	plain string // the same text without formatting, the fallback
}

// formatParts converts the assistant's Markdown, with an optional plain
// prefix (the operator mark), into messages of at most limit UTF-16 units
// each.
func formatParts(md, prefix string, limit int) []part {
	toks := markdownTokens(md)
	if prefix != "" {
		toks = trimTokens(append([]token{textTok(prefix)}, toks...))
	}
	var out []part
	for _, p := range splitTokens(toks, limit) {
		out = append(out, part{html: renderHTML(p), plain: plainText(p)})
	}
	return out
}

// splitTokens cuts a token stream into messages whose visible text is at
// most limit UTF-16 units. Cuts fall on a paragraph break if one lies in
// the second half of the allowed length, else on a line break, the end of
// a sentence, a space, and only as a last resort inside a word (never
// inside a character). Tags open at a cut are closed at the end of one
// message and opened again at the start of the next, so every message is
// well-formed on its own and a bold phrase or a code block stays
// formatted across the cut. Whitespace at a cut is dropped.
func splitTokens(toks []token, limit int) [][]token {
	return sliceTokens(toks, cutRanges(plainText(toks), limit))
}

// span is a range of byte offsets into the visible text.
type span struct{ start, end int }

// cutRanges chooses the messages' ranges of the visible text vis.
func cutRanges(vis string, limit int) []span {
	limit = max(limit, 2) // room for any one character
	var out []span
	pos := skipSpaces(vis, 0)
	for pos < len(vis) {
		rest := vis[pos:]
		hard := prefixBytes(rest, limit)
		if hard == len(rest) {
			if end := pos + len(strings.TrimRightFunc(rest, unicode.IsSpace)); end > pos {
				out = append(out, span{pos, end})
			}
			break
		}
		cut := bestCut(rest, hard, max(prefixBytes(rest, limit/2), 1))
		if end := pos + len(strings.TrimRightFunc(rest[:cut], unicode.IsSpace)); end > pos {
			out = append(out, span{pos, end})
		}
		pos = skipSpaces(vis, pos+cut)
	}
	return out
}

// prefixBytes returns the length in bytes of the longest prefix of s that
// is at most n UTF-16 units long.
func prefixBytes(s string, n int) int {
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > n {
			return i
		}
	}
	return len(s)
}

// bestCut returns where to cut rest, whose first hard bytes fit in one
// message: at the best boundary between byte lo and byte hard, or at hard.
// A boundary right at hard counts (the text that fits may end just before
// a space), hence the searches look one or two bytes past it; cutting at
// index i keeps bytes [0, i), so i never exceeds hard.
func bestCut(rest string, hard, lo int) int {
	upTo := func(extra int) string { return rest[:min(len(rest), hard+extra)] }
	if i := strings.LastIndex(upTo(2), "\n\n"); i >= lo {
		return i
	}
	if i := strings.LastIndexByte(upTo(1), '\n'); i >= lo {
		return i
	}
	if i := lastSentenceEnd(upTo(1), lo); i >= lo {
		return i
	}
	if i := strings.LastIndexAny(upTo(1), " \t"); i >= lo {
		return i
	}
	return hard
}

// lastSentenceEnd returns the index of the last space at or after lo that
// follows the end of a sentence (".", "!", "?" or "…", possibly followed
// by closing quotes or brackets), or -1.
func lastSentenceEnd(w string, lo int) int {
	for i := len(w) - 1; i >= lo && i > 0; i-- {
		if w[i] != ' ' && w[i] != '\t' {
			continue
		}
		before := strings.TrimRight(w[:i], `"')]»”’`)
		r, _ := utf8.DecodeLastRuneInString(before)
		switch r {
		case '.', '!', '?', '…':
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

// sliceTokens cuts toks at the given ranges of the visible text, closing
// the open tags at the end of each range and reopening them at the start
// of the next.
func sliceTokens(toks []token, spans []span) [][]token {
	var (
		parts  [][]token
		stack  []token // tags open at the current position
		cur    []token
		inPart bool
		vpos   int // visible bytes before the current token
		k      int // the current span
	)
	for _, t := range toks {
		switch t.kind {
		case tokOpen:
			stack = append(stack, t)
			if inPart {
				cur = append(cur, t)
			}
			continue
		case tokClose:
			stack = stack[:len(stack)-1]
			if inPart {
				cur = append(cur, t)
			}
			continue
		}
		s, start := t.text, vpos
		vpos += len(s)
		i := 0 // bytes of s already handled
		for k < len(spans) {
			sp := spans[k]
			if !inPart {
				if sp.start >= vpos {
					break // the next message begins in a later token
				}
				i = max(i, sp.start-start)
				cur = append([]token(nil), stack...) // reopen what is open
				inPart = true
			}
			e := min(sp.end, vpos)
			if e-start > i {
				cur = append(cur, textTok(s[i:e-start]))
			}
			i = e - start
			if sp.end > vpos {
				break // the message goes on in a later token
			}
			for j := len(stack) - 1; j >= 0; j-- {
				cur = append(cur, closeTok(stack[j].tag, stack[j].attr))
			}
			parts = append(parts, dropEmpty(cur))
			cur, inPart = nil, false
			k++
		}
	}
	return parts
}
