package richtext

import (
	"bufio"
	"bytes"
	stdhtml "html"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	extast "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/parser"
	"github.com/yuin/goldmark/renderer/html"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
)

// Parse reads the assistant's Markdown into a Doc, walking goldmark's
// syntax tree. What messengers can show is kept (bold, italic,
// strikethrough, inline code, code blocks with their language, links,
// block quotes); what they cannot is turned into plain text that reads
// well in a chat (headings become bold lines, list items "• " lines,
// images links to the image). Raw HTML in the Markdown is kept as the
// text it is: a renderer escapes it like any other text. Parse is safe
// for concurrent use.
func Parse(markdown string) Doc {
	src := []byte(markdown)
	p := parsers.Get().(parser.Parser)
	defer parsers.Put(p)
	doc := p.Parse(text.NewReader(src))
	c := &converter{src: src}
	c.blocks(doc, "\n\n")
	return newDoc(c.toks)
}

// parsers holds goldmark parsers for CommonMark plus GFM strikethrough
// (~~x~~), the dialect assistants write. goldmark does not document
// concurrent use of one parser, and building one per message was the
// adapter's largest allocation (a benchmark run: 14% of all bytes), so
// each is used by one goroutine at a time and then reused.
var parsers = sync.Pool{New: func() any {
	return goldmark.New(goldmark.WithExtensions(extension.Strikethrough)).Parser()
}}

// converter accumulates tokens while walking one document.
type converter struct {
	src  []byte
	toks []Token
	// Nesting state. A Doc nests only what every network can: code,
	// pre and links hold no other code, pre or link (Telegram refuses
	// entities in code, Discord and Slack show markers inside it as
	// typed), and block quotes do not nest (Telegram has no nested
	// quote, Slack none either).
	inLink, inCode, inQuote int
	listDepth               int
}

func (c *converter) text(s string) {
	if s != "" {
		c.toks = append(c.toks, textTok(s))
	}
}

// blocks renders the block children of n, with sep between those that
// produced any output.
func (c *converter) blocks(n ast.Node, sep string) {
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

func (c *converter) block(n ast.Node) {
	switch n := n.(type) {
	case *ast.Paragraph, *ast.TextBlock:
		c.inlines(n)
	case *ast.Heading:
		c.wrap(Bold, "", func() { c.inlines(n) })
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
		c.wrap(Quote, "", func() { c.blocks(n, "\n") })
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

// maxListIndent is the deepest list indentation shown.
const maxListIndent = 4

// list renders items as lines: "• item" or "3. item", nested lists
// indented by two spaces per level.
func (c *converter) list(l *ast.List) {
	// Indentation stops growing after a few levels: deeper nesting does
	// not read better in a chat, and would let odd input blow up.
	indent := strings.Repeat("  ", min(c.listDepth, maxListIndent))
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
// plain word), or as plain text where a pre cannot nest.
func (c *converter) codeBlock(n ast.Node, lang string) {
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
	if !validLang(lang) {
		lang = ""
	}
	c.inCode++
	c.wrap(Pre, lang, func() { c.text(code) })
	c.inCode--
}

// validLang reports whether lang is a language name kept on a code
// block: a word such as "go", "c++", "objective-c" or "c#",
// [A-Za-z0-9][A-Za-z0-9_+#.-]{0,31}. Anything else is dropped, not
// escaped, because it would only be noise in the class attribute (and
// in Discord's fence).
func validLang(lang string) bool {
	if lang == "" || len(lang) > 32 {
		return false
	}
	for i := 0; i < len(lang); i++ {
		c := lang[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && strings.IndexByte("_+#.-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (c *converter) lines(b *strings.Builder, lines *text.Segments) {
	for i := range lines.Len() {
		seg := lines.At(i)
		b.Write(seg.Value(c.src))
	}
}

// wrap renders body between an open and a close tag.
func (c *converter) wrap(tag Tag, attr string, body func()) {
	c.toks = append(c.toks, openTok(tag, attr))
	body()
	c.toks = append(c.toks, closeTok(tag, attr))
}

func (c *converter) inlines(n ast.Node) {
	for ch := n.FirstChild(); ch != nil; ch = ch.NextSibling() {
		c.inline(ch)
	}
}

func (c *converter) inline(n ast.Node) {
	switch n := n.(type) {
	case *ast.Text:
		if n.IsRaw() {
			c.text(string(n.Segment.Value(c.src)))
		} else {
			c.text(unescapeMarkdown(n.Segment.Value(c.src)))
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
			c.text(unescapeMarkdown(n.Value))
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
		c.wrap(Code, "", func() { c.text(b.String()) })
		c.inCode--
	case *ast.Emphasis:
		tag := Italic
		if n.Level >= 2 {
			tag = Bold
		}
		c.styled(tag, n)
	case *extast.Strikethrough:
		c.styled(Strike, n)
	case *ast.Link:
		c.link(linkURL(n.Destination), n, "")
	case *ast.AutoLink:
		label := string(n.Label(c.src))
		if n.AutoLinkType != ast.AutoLinkURL {
			// An e-mail address: Telegram recognises it in plain text.
			c.text(label)
			return
		}
		c.link(linkURL(n.URL(c.src)), nil, label)
	case *ast.Image:
		alt := strings.TrimSpace(plainInline(n, c.src))
		if alt == "" {
			alt = "image"
		}
		c.link(linkURL(n.Destination), nil, alt)
	case *ast.RawHTML:
		var b strings.Builder
		for i := range n.Segments.Len() {
			seg := n.Segments.At(i)
			b.Write(seg.Value(c.src))
		}
		raw := b.String()
		if brRE.MatchString(raw) {
			c.text("\n") // the one tag assistants use for a line break
			return
		}
		c.text(raw)
	default:
		c.inlines(n)
	}
}

// brRE matches an HTML line break tag.
var brRE = regexp.MustCompile(`(?i)^<br\s*/?>$`)

// styled renders bold, italic or strikethrough, which every network
// allows anywhere but inside code.
func (c *converter) styled(tag Tag, n ast.Node) {
	if c.inCode > 0 {
		c.inlines(n)
		return
	}
	c.wrap(tag, "", func() { c.inlines(n) })
}

// link renders a link to href ("" when the URL is not one to link) with the children of n, or label when n is nil. A link in
// a link keeps only its text.
func (c *converter) link(href string, n ast.Node, label string) {
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
	c.wrap(Link, href, body)
	c.inLink--
	if plainText(c.toks[start:]) == "" {
		// [](https://x): show the address rather than an empty link.
		c.toks = c.toks[:start]
		c.wrap(Link, href, func() { c.text(href) })
	}
}

// linkURL returns the URL a Markdown link destination points to, or ""
// unless it is an absolute http or https URL, or a tg:// link. Other
// schemes (javascript:, data:, relative paths) are not linked: Telegram
// refuses or ignores them, and they are no use in a chat. mailto: is left
// out too, because Telegram already shows e-mail addresses as links.
func linkURL(dest []byte) string {
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

// plainInline is the plain text of an inline node's children (an image's
// alt text).
func plainInline(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(ch ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch t := ch.(type) {
		case *ast.Text:
			b.WriteString(unescapeMarkdown(t.Segment.Value(src)))
		case *ast.String:
			b.WriteString(string(t.Value))
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// unescapeMarkdown resolves Markdown's backslash escapes and HTML entity
// references in a text segment, exactly as goldmark's own HTML renderer
// does: it renders with goldmark's writer and unescapes the result.
func unescapeMarkdown(seg []byte) string {
	if !bytes.ContainsAny(seg, "\\&\x00") {
		return string(seg)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	html.DefaultWriter.Write(w, seg)
	_ = w.Flush()
	return stdhtml.UnescapeString(buf.String())
}
