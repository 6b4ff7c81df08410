package richtext

// This file is the Telegram pipeline as it was before this package
// (adapters/telegram markdown.go, format.go and split.go), its top-level
// names prefixed with "old" and nothing else changed. Tests compare
// against it: TelegramHTML must stay byte-identical to it for every
// input, and Split must cut as it did wherever no element kept whole is
// involved.

import (
	"bufio"
	"bytes"
	stdhtml "html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	extast "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// oldMarkdownTokens converts the assistant's Markdown to formatted tokens,
// walking goldmark's syntax tree. What Telegram's HTML style can show is
// kept (bold, italic, strikethrough, inline code, code blocks with their
// language, links, block quotes); what it cannot is turned into plain text
// that reads well in a chat (headings become bold lines, list items
// "• " lines, images links to the image). Raw HTML in the Markdown is shown
// as the text it is: the result never contains a tag the oldConverter did not
// make itself.
func oldMarkdownTokens(md string) []oldToken {
	src := []byte(md)
	p := oldParsers.Get().(parser.Parser)
	defer oldParsers.Put(p)
	doc := p.Parse(text.NewReader(src))
	c := &oldConverter{src: src}
	c.blocks(doc, "\n\n")
	return oldTrimTokens(c.toks)
}

// oldParsers holds goldmark oldParsers for CommonMark plus GFM strikethrough
// (~~x~~), the dialect assistants write. goldmark does not document
// concurrent use of one parser, and building one per message was the
// adapter's largest allocation (a benchmark run: 14% of all bytes), so
// each is used by one goroutine at a time and then reused.
var oldParsers = sync.Pool{New: func() any {
	return goldmark.New(goldmark.WithExtensions(extension.Strikethrough)).Parser()
}}

// oldConverter accumulates tokens while walking one document.
type oldConverter struct {
	src  []byte
	toks []oldToken
	// Nesting state: Telegram does not let code, pre or links contain
	// other entities (bold and italic excepted), nor block quotes nest.
	inLink, inCode, inQuote int
	listDepth               int
}

func (c *oldConverter) text(s string) {
	if s != "" {
		c.toks = append(c.toks, oldTextTok(s))
	}
}

// blocks renders the block children of n, with sep between those that
// produced any output.
func (c *oldConverter) blocks(n ast.Node, sep string) {
	first := true
	for ch := n.FirstChild(); ch != nil; ch = ch.NextSibling() {
		mark := len(c.toks)
		if !first {
			c.text(sep)
		}
		before := len(c.toks)
		c.block(ch)
		if len(c.toks) == before {
			c.toks = c.toks[:mark] // nothing rendered: no separator either
			continue
		}
		first = false
	}
}

func (c *oldConverter) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		c.inlines(n)
	case *ast.Heading:
		c.wrap(oldTagBold, "", func() { c.inlines(n) })
	case *ast.ThematicBreak:
		c.text("———")
	case *ast.FencedCodeBlock:
		c.codeBlock(n, string(n.Language(c.src)))
	case *ast.CodeBlock:
		c.codeBlock(n, "")
	case *ast.Blockquote:
		if c.inQuote > 0 {
			c.blocks(n, "\n")
			return
		}
		c.inQuote++
		c.wrap(oldTagQuote, "", func() { c.blocks(n, "\n") })
		c.inQuote--
	case *ast.List:
		c.list(n)
	case *ast.HTMLBlock:
		// Shown as typed; the text is escaped when serialised.
		var b strings.Builder
		c.lines(&b, n.Lines())
		if n.HasClosure() {
			b.Write(n.ClosureLine.Value(c.src))
		}
		c.text(strings.TrimRight(b.String(), "\n"))
	default:
		if n.Type() == ast.TypeInline {
			c.inline(n)
			return
		}
		c.blocks(n, "\n\n")
	}
}

// oldMaxListIndent is the deepest list indentation shown.
const oldMaxListIndent = 4

// list renders items as lines: "• item" or "3. item", nested lists
// indented by two spaces per level.
func (c *oldConverter) list(l *ast.List) {
	// Indentation stops growing after a few levels: deeper nesting does
	// not read better in a chat, and would let odd input blow up.
	indent := strings.Repeat("  ", min(c.listDepth, oldMaxListIndent))
	c.listDepth++
	defer func() { c.listDepth-- }()
	num := l.Start
	if num == 0 {
		num = 1
	}
	// A loose list (items separated by blank lines) keeps its blank lines.
	itemSep := "\n"
	if !l.IsTight {
		itemSep = "\n\n"
	}
	first := true
	for item := l.FirstChild(); item != nil; item = item.NextSibling() {
		if !first {
			c.text(itemSep)
		}
		first = false
		marker := "• "
		if l.IsOrdered() {
			marker = strconv.Itoa(num) + ". "
			num++
		}
		c.text(indent + marker)
		sep := "\n"
		if !l.IsTight {
			sep = "\n\n"
		}
		c.blocks(item, sep)
	}
}

// codeBlock renders a code block as pre (with its language, when it is a
// plain word), or as plain text where Telegram cannot nest a pre.
func (c *oldConverter) codeBlock(n ast.Node, lang string) {
	var b strings.Builder
	c.lines(&b, n.Lines())
	code := strings.TrimRight(b.String(), "\n")
	if strings.TrimSpace(code) == "" {
		return
	}
	if c.inLink > 0 || c.inCode > 0 {
		c.text(code)
		return
	}
	if !oldLangRE.MatchString(lang) {
		lang = ""
	}
	c.inCode++
	c.wrap(oldTagPre, lang, func() { c.text(code) })
	c.inCode--
}

// oldLangRE is the language names kept on a code block: a word such as "go",
// "c++", "objective-c" or "c#". Anything else is dropped, not escaped,
// because it would only be noise in the class attribute.
var oldLangRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+#.-]{0,31}$`)

func (c *oldConverter) lines(b *strings.Builder, lines *text.Segments) {
	for i := range lines.Len() {
		seg := lines.At(i)
		b.Write(seg.Value(c.src))
	}
}

// wrap renders body between an open and a close tag.
func (c *oldConverter) wrap(tag, attr string, body func()) {
	c.toks = append(c.toks, oldOpenTok(tag, attr))
	body()
	c.toks = append(c.toks, oldCloseTok(tag, attr))
}

func (c *oldConverter) inlines(n ast.Node) {
	for ch := n.FirstChild(); ch != nil; ch = ch.NextSibling() {
		c.inline(ch)
	}
}

func (c *oldConverter) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		if n.IsRaw() {
			c.text(string(n.Segment.Value(c.src)))
		} else {
			c.text(oldUnescapeMarkdown(n.Segment.Value(c.src)))
		}
		// In a chat, a single newline in the assistant's text is meant
		// as a line break, not (as CommonMark has it) as a space.
		if n.SoftLineBreak() || n.HardLineBreak() {
			c.text("\n")
		}
	case *ast.String:
		if n.IsCode() || n.IsRaw() {
			c.text(string(n.Value))
		} else {
			c.text(oldUnescapeMarkdown(n.Value))
		}
	case *ast.CodeSpan:
		var b strings.Builder
		for ch := n.FirstChild(); ch != nil; ch = ch.NextSibling() {
			if t, ok := ch.(*ast.Text); ok {
				v := t.Segment.Value(c.src)
				b.Write(bytes.TrimSuffix(v, []byte("\n")))
				if bytes.HasSuffix(v, []byte("\n")) {
					b.WriteByte(' ')
				}
			}
		}
		if c.inLink > 0 || c.inCode > 0 {
			c.text(b.String())
			return
		}
		c.inCode++
		c.wrap(oldTagCode, "", func() { c.text(b.String()) })
		c.inCode--
	case *ast.Emphasis:
		tag := oldTagItalic
		if n.Level >= 2 {
			tag = oldTagBold
		}
		c.styled(tag, n)
	case *extast.Strikethrough:
		c.styled(oldTagStrike, n)
	case *ast.Link:
		c.link(oldLinkURL(n.Destination), n, "")
	case *ast.AutoLink:
		label := string(n.Label(c.src))
		if n.AutoLinkType != ast.AutoLinkURL {
			// An e-mail address: Telegram recognises it in plain text.
			c.text(label)
			return
		}
		c.link(oldLinkURL(n.URL(c.src)), nil, label)
	case *ast.Image:
		alt := strings.TrimSpace(oldPlainInline(n, c.src))
		if alt == "" {
			alt = "image"
		}
		c.link(oldLinkURL(n.Destination), nil, alt)
	case *ast.RawHTML:
		var b strings.Builder
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			b.Write(seg.Value(c.src))
		}
		raw := b.String()
		if oldBrRE.MatchString(raw) {
			c.text("\n") // the one tag assistants use for a line break
			return
		}
		c.text(raw)
	default:
		c.inlines(n)
	}
}

// oldBrRE matches an HTML line break tag.
var oldBrRE = regexp.MustCompile(`(?i)^<br\s*/?>$`)

// styled renders bold, italic or strikethrough, which Telegram allows
// anywhere but inside code.
func (c *oldConverter) styled(tag string, n ast.Node) {
	if c.inCode > 0 {
		c.inlines(n)
		return
	}
	c.wrap(tag, "", func() { c.inlines(n) })
}

// link renders a link to href ("" when the URL is not one Telegram
// should link) with the children of n, or label when n is nil. A link in
// a link keeps only its text.
func (c *oldConverter) link(href string, n ast.Node, label string) {
	body := func() {
		if n != nil {
			c.inlines(n)
		} else {
			c.text(label)
		}
	}
	if href == "" || c.inLink > 0 || c.inCode > 0 {
		body()
		return
	}
	start := len(c.toks)
	c.inLink++
	c.wrap(oldTagLink, href, body)
	c.inLink--
	if oldPlainText(c.toks[start:]) == "" {
		// [](https://x): show the address rather than an empty link.
		c.toks = c.toks[:start]
		c.wrap(oldTagLink, href, func() { c.text(href) })
	}
}

// oldLinkURL returns the URL a Markdown link destination points to, or ""
// unless it is an absolute http or https URL, or a tg:// link. Other
// schemes (javascript:, data:, relative paths) are not linked: Telegram
// refuses or ignores them, and they are no use in a chat. mailto: is left
// out too, because Telegram already shows e-mail addresses as links.
func oldLinkURL(dest []byte) string {
	raw := string(util.URLEscape(dest, true))
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return ""
		}
		return raw
	case "tg":
		return raw
	}
	return ""
}

// oldPlainInline is the plain text of an inline node's children (an image's
// alt text).
func oldPlainInline(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(ch ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch t := ch.(type) {
		case *ast.Text:
			b.WriteString(oldUnescapeMarkdown(t.Segment.Value(src)))
		case *ast.String:
			b.WriteString(string(t.Value))
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// oldUnescapeMarkdown resolves Markdown's backslash escapes and HTML entity
// references in a text segment, exactly as goldmark's own HTML renderer
// does: it renders with goldmark's writer and unescapes the result.
func oldUnescapeMarkdown(seg []byte) string {
	if !bytes.ContainsAny(seg, "\\&\x00") {
		return string(seg)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	html.DefaultWriter.Write(w, seg)
	_ = w.Flush()
	return stdhtml.UnescapeString(buf.String())
}

// The formatting pipeline: Markdown (markdown.go) becomes a stream of
// tokens, the stream is cut into messages (split.go), and each message is
// serialised to Telegram HTML here. Working on tokens rather than on HTML
// text is what makes the cutting safe: text tokens hold the visible,
// unescaped text, so a cut can never land inside a tag or an entity, and
// the length that Telegram limits (visible UTF-16 code units) is simply
// the length of the text tokens.

// oldTokKind says what a oldToken is.
type oldTokKind uint8

const (
	oldTokText  oldTokKind = iota // visible text
	oldTokOpen                    // a start tag
	oldTokClose                   // an end tag
)

// Tags the oldConverter emits: a subset of what Telegram's HTML style
// supports, and the only strings ever written between "<" and ">".
const (
	oldTagBold   = "b"
	oldTagItalic = "i"
	oldTagStrike = "s"
	oldTagCode   = "code"
	oldTagPre    = "pre"
	oldTagLink   = "a"
	oldTagQuote  = "blockquote"
)

// oldToken is one piece of a formatted message.
type oldToken struct {
	kind oldTokKind
	// text is the visible text of a oldTokText, unescaped.
	text string
	// tag is the tag of a oldTokOpen or oldTokClose.
	tag string
	// attr is the href of a link, or the language of a pre block.
	attr string
}

func oldTextTok(s string) oldToken          { return oldToken{kind: oldTokText, text: s} }
func oldOpenTok(tag, attr string) oldToken  { return oldToken{kind: oldTokOpen, tag: tag, attr: attr} }
func oldCloseTok(tag, attr string) oldToken { return oldToken{kind: oldTokClose, tag: tag, attr: attr} }

// oldRenderHTML serialises tokens to Telegram HTML. Text is escaped (&, <, >)
// and attribute values also have " escaped, so nothing from the input can
// ever form a tag. The tokens must be balanced, which every producer in
// this package guarantees.
func oldRenderHTML(toks []oldToken) string {
	var b strings.Builder
	for _, t := range toks {
		switch t.kind {
		case oldTokText:
			b.WriteString(oldEscapeText(t.text))
		case oldTokOpen:
			switch {
			case t.tag == oldTagLink:
				b.WriteString(`<a href="` + oldEscapeAttr(t.attr) + `">`)
			case t.tag == oldTagPre && t.attr != "":
				// Telegram takes a pre block's language from a nested
				// code tag's class.
				b.WriteString(`<pre><code class="language-` + oldEscapeAttr(t.attr) + `">`)
			default:
				b.WriteString("<" + t.tag + ">")
			}
		case oldTokClose:
			if t.tag == oldTagPre && t.attr != "" {
				b.WriteString("</code></pre>")
			} else {
				b.WriteString("</" + t.tag + ">")
			}
		}
	}
	return b.String()
}

// oldPlainText is the visible text of tokens, as a user sees it.
func oldPlainText(toks []oldToken) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == oldTokText {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

var (
	oldTextEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")
	oldAttrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
)

func oldEscapeText(s string) string { return oldTextEscaper.Replace(s) }
func oldEscapeAttr(s string) string { return oldAttrEscaper.Replace(s) }

// oldUtf16Len is the length of s in UTF-16 code units: Telegram measures
// texts in them, so an emoji outside the Basic Multilingual Plane counts
// twice.
func oldUtf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// oldDropEmpty removes elements that contain no text (an open tag directly
// followed, after removing inner empty elements, by its close tag).
// Telegram would make empty entities of them, which it may refuse.
func oldDropEmpty(toks []oldToken) []oldToken {
	out := make([]oldToken, 0, len(toks))
	for _, t := range toks {
		if t.kind == oldTokClose && len(out) > 0 {
			if last := out[len(out)-1]; last.kind == oldTokOpen && last.tag == t.tag {
				out = out[:len(out)-1]
				continue
			}
		}
		if t.kind == oldTokText && t.text == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}

// oldTrimTokens removes leading and trailing whitespace from the visible text
// (Telegram trims messages too, and a message of only whitespace is
// refused) and then empty elements.
func oldTrimTokens(toks []oldToken) []oldToken {
	toks = append([]oldToken(nil), toks...)
	for i := 0; i < len(toks); i++ {
		if toks[i].kind != oldTokText {
			continue
		}
		toks[i].text = strings.TrimLeftFunc(toks[i].text, unicode.IsSpace)
		if toks[i].text != "" {
			break
		}
	}
	for i := len(toks) - 1; i >= 0; i-- {
		if toks[i].kind != oldTokText {
			continue
		}
		toks[i].text = strings.TrimRightFunc(toks[i].text, unicode.IsSpace)
		if toks[i].text != "" {
			break
		}
	}
	return oldDropEmpty(toks)
}

// oldMaxMessageLen is Telegram's limit on one message: 4096 UTF-16 code
// units of visible text, counted after entity parsing (so "&lt;" is one).
const oldMaxMessageLen = 4096

// oldPart is one Telegram message of a possibly longer text.
type oldPart struct {
	html  string // the message in Telegram HTML
	plain string // the same text without formatting, the fallback
}

// oldFormatParts converts the assistant's Markdown, with an optional plain
// prefix (the operator mark), into messages of at most limit UTF-16 units
// each.
func oldFormatParts(md, prefix string, limit int) []oldPart {
	toks := oldMarkdownTokens(md)
	if prefix != "" {
		toks = oldTrimTokens(append([]oldToken{oldTextTok(prefix)}, toks...))
	}
	var out []oldPart
	for _, p := range oldSplitTokens(toks, limit) {
		out = append(out, oldPart{html: oldRenderHTML(p), plain: oldPlainText(p)})
	}
	return out
}

// oldSplitTokens cuts a oldToken stream into messages whose visible text is at
// most limit UTF-16 units. Cuts fall on a paragraph break if one lies in
// the second half of the allowed length, else on a line break, the end of
// a sentence, a space, and only as a last resort inside a word (never
// inside a character). Tags open at a cut are closed at the end of one
// message and opened again at the start of the next, so every message is
// well-formed on its own and a bold phrase or a code block stays
// formatted across the cut. Whitespace at a cut is dropped.
func oldSplitTokens(toks []oldToken, limit int) [][]oldToken {
	return oldSliceTokens(toks, oldCutRanges(oldPlainText(toks), limit))
}

// oldSpan is a range of byte offsets into the visible text.
type oldSpan struct{ start, end int }

// oldCutRanges chooses the messages' ranges of the visible text vis.
func oldCutRanges(vis string, limit int) []oldSpan {
	limit = max(limit, 2) // room for any one character
	var out []oldSpan
	pos := oldSkipSpaces(vis, 0)
	for pos < len(vis) {
		rest := vis[pos:]
		hard := oldPrefixBytes(rest, limit)
		if hard == len(rest) {
			if end := pos + len(strings.TrimRightFunc(rest, unicode.IsSpace)); end > pos {
				out = append(out, oldSpan{pos, end})
			}
			break
		}
		cut := oldBestCut(rest, hard, max(oldPrefixBytes(rest, limit/2), 1))
		if end := pos + len(strings.TrimRightFunc(rest[:cut], unicode.IsSpace)); end > pos {
			out = append(out, oldSpan{pos, end})
		}
		pos = oldSkipSpaces(vis, pos+cut)
	}
	return out
}

// oldPrefixBytes returns the length in bytes of the longest prefix of s that
// is at most n UTF-16 units long.
func oldPrefixBytes(s string, n int) int {
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > n {
			return i
		}
	}
	return len(s)
}

// oldBestCut returns where to cut rest, whose first hard bytes fit in one
// message: at the best boundary between byte lo and byte hard, or at hard.
// A boundary right at hard counts (the text that fits may end just before
// a space), hence the searches look one or two bytes past it; cutting at
// index i keeps bytes [0, i), so i never exceeds hard.
func oldBestCut(rest string, hard, lo int) int {
	upTo := func(extra int) string { return rest[:min(len(rest), hard+extra)] }
	if i := strings.LastIndex(upTo(2), "\n\n"); i >= lo {
		return i
	}
	if i := strings.LastIndexByte(upTo(1), '\n'); i >= lo {
		return i
	}
	if i := oldLastSentenceEnd(upTo(1), lo); i >= lo {
		return i
	}
	if i := strings.LastIndexAny(upTo(1), " \t"); i >= lo {
		return i
	}
	return hard
}

// oldLastSentenceEnd returns the index of the last space at or after lo that
// follows the end of a sentence (".", "!", "?" or "…", possibly followed
// by closing quotes or brackets), or -1.
func oldLastSentenceEnd(w string, lo int) int {
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

// oldSkipSpaces returns the index of the first non-space at or after i.
func oldSkipSpaces(s string, i int) int {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !unicode.IsSpace(r) {
			break
		}
		i += n
	}
	return i
}

// oldSliceTokens cuts toks at the given ranges of the visible text, closing
// the open tags at the end of each range and reopening them at the start
// of the next.
func oldSliceTokens(toks []oldToken, spans []oldSpan) [][]oldToken {
	var (
		parts  [][]oldToken
		stack  []oldToken // tags open at the current position
		cur    []oldToken
		inPart bool
		vpos   int // visible bytes before the current oldToken
		k      int // the current oldSpan
	)
	for _, t := range toks {
		switch t.kind {
		case oldTokOpen:
			stack = append(stack, t)
			if inPart {
				cur = append(cur, t)
			}
			continue
		case oldTokClose:
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
					break // the next message begins in a later oldToken
				}
				i = max(i, sp.start-start)
				cur = append([]oldToken(nil), stack...) // reopen what is open
				inPart = true
			}
			e := min(sp.end, vpos)
			if e-start > i {
				cur = append(cur, oldTextTok(s[i:e-start]))
			}
			i = e - start
			if sp.end > vpos {
				break // the message goes on in a later oldToken
			}
			for j := len(stack) - 1; j >= 0; j-- {
				cur = append(cur, oldCloseTok(stack[j].tag, stack[j].attr))
			}
			parts = append(parts, oldDropEmpty(cur))
			cur, inPart = nil, false
			k++
		}
	}
	return parts
}
