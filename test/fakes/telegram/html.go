package telegram

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// HTMLError is why ParseHTML refused a text. Its message is what the Bot
// API puts after "Bad Request: can't parse entities: ".
type HTMLError struct{ Msg string }

func (e *HTMLError) Error() string { return e.Msg }

// ParseHTML parses a text in the Bot API's HTML style (parse_mode "HTML")
// the way Telegram does: it returns the visible text and its formatting
// entities (offsets and lengths in UTF-16 code units), or the error
// Telegram reports. The visible text is trimmed of leading and trailing
// whitespace, as Telegram trims a message.
//
// It accepts exactly the documented tags (b, strong, i, em, u, ins, s,
// strike, del, span class="tg-spoiler", tg-spoiler, a href, tg-emoji,
// code, pre, blockquote [expandable]), the named entities &lt; &gt; &amp;
// &quot; and numeric entities; a "&" that starts no entity is a literal
// "&", as in Telegram. Error texts follow Telegram's ("Unsupported start
// tag \"foo\" at byte offset 3", "Can't find end tag corresponding to
// start tag \"b\"").
//
// It is stricter than Telegram in two undocumented corners, on purpose,
// so that a client that passes here is safe there: the documented nesting
// rules are enforced as errors (Telegram silently drops the offending
// entity), and a link must be an absolute http, https, tg or ton URL.
func ParseHTML(s string) (string, []MessageEntity, error) {
	if !utf8.ValidString(s) {
		return "", nil, &HTMLError{Msg: "strings must be encoded in UTF-8"}
	}
	p := htmlParser{src: s}
	if err := p.run(); err != nil {
		return "", nil, err
	}
	text, ents := trimEntities(p.out.String(), p.entities)
	return text, ents, nil
}

// openTag is a start tag waiting for its end tag.
type openTag struct {
	name     string // lowercased tag name
	entity   string // entity type; "" for a tag that makes no entity (code inside pre)
	start    int    // UTF-16 offset where the entity starts
	seq      int
	url      string
	language string
	emojiID  string
}

type htmlParser struct {
	src      string
	out      strings.Builder
	n16      int // UTF-16 length of out
	stack    []openTag
	entities []seqEntity
	opened   int // start tags seen, for ordering entities
}

// seqEntity is an entity and the position of its start tag among all
// start tags: of two entities over the same text, the outer one comes
// first.
type seqEntity struct {
	MessageEntity
	seq int
}

func (p *htmlParser) emit(r rune) {
	p.out.WriteRune(r)
	p.n16 += utf16.RuneLen(r)
}

func (p *htmlParser) run() error {
	s := p.src
	for i := 0; i < len(s); {
		switch s[i] {
		case '&':
			r, n := decodeEntity(s[i:])
			if n == 0 {
				p.emit('&')
				i++
				continue
			}
			p.emit(r)
			i += n
		case '<':
			var err error
			if i+1 < len(s) && s[i+1] == '/' {
				i, err = p.endTag(i)
			} else {
				i, err = p.startTag(i)
			}
			if err != nil {
				return err
			}
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			p.emit(r)
			i += n
		}
	}
	if len(p.stack) > 0 {
		return &HTMLError{Msg: fmt.Sprintf("Can't find end tag corresponding to start tag %q", p.stack[len(p.stack)-1].name)}
	}
	return nil
}

// supportedTags maps each start tag to the entity it makes.
var supportedTags = map[string]string{
	"a": "text_link", "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
	"u": "underline", "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
	"del": "strikethrough", "span": "spoiler", "tg-spoiler": "spoiler", "tg-emoji": "custom_emoji",
	"code": "code", "pre": "pre", "blockquote": "blockquote",
}

func isHTMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *htmlParser) startTag(begin int) (int, error) {
	s := p.src
	i := begin + 1
	for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '>' {
		i++
	}
	if i >= len(s) {
		return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
	}
	name := strings.ToLower(s[begin+1 : i])
	entity, ok := supportedTags[name]
	if !ok {
		return 0, &HTMLError{Msg: fmt.Sprintf("Unsupported start tag %q at byte offset %d", name, begin)}
	}
	attrs := map[string]string{}
	for {
		for i < len(s) && isHTMLSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
		}
		if s[i] == '>' {
			i++
			break
		}
		attrBegin := i
		for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '>' && s[i] != '=' {
			i++
		}
		attr := strings.ToLower(s[attrBegin:i])
		if attr == "" {
			return 0, &HTMLError{Msg: fmt.Sprintf("Empty attribute name in the tag %q at byte offset %d", name, attrBegin)}
		}
		for i < len(s) && isHTMLSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
		}
		if s[i] != '=' {
			attrs[attr] = "" // a boolean attribute, like blockquote's "expandable"
			continue
		}
		i++
		for i < len(s) && isHTMLSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
		}
		var raw string
		if q := s[i]; q == '"' || q == '\'' {
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed start tag at byte offset %d", begin)}
			}
			raw = s[i+1 : i+1+end]
			i += end + 2
		} else {
			valueBegin := i
			for i < len(s) && !isHTMLSpace(s[i]) && s[i] != '>' {
				i++
			}
			raw = s[valueBegin:i]
		}
		attrs[attr] = decodeEntities(raw)
	}

	p.opened++
	tag := openTag{name: name, entity: entity, start: p.n16, seq: p.opened}
	switch name {
	case "a":
		href, ok := attrs["href"]
		if !ok {
			return 0, &HTMLError{Msg: fmt.Sprintf("Tag \"a\" must have attribute \"href\" at byte offset %d", begin)}
		}
		if !validLinkURL(href) {
			return 0, &HTMLError{Msg: fmt.Sprintf("Wrong URL %q in tag \"a\" at byte offset %d", href, begin)}
		}
		tag.url = href
	case "span":
		if attrs["class"] != "tg-spoiler" {
			return 0, &HTMLError{Msg: fmt.Sprintf("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)}
		}
	case "tg-emoji":
		id := attrs["emoji-id"]
		if _, err := strconv.ParseInt(id, 10, 64); err != nil {
			return 0, &HTMLError{Msg: fmt.Sprintf("Custom emoji identifier must be non-empty at byte offset %d", begin)}
		}
		tag.emojiID = id
	case "blockquote":
		if _, ok := attrs["expandable"]; ok {
			tag.entity = "expandable_blockquote"
		}
	case "code":
		// <pre><code class="language-x"> gives the pre its language and
		// makes no entity of its own.
		if n := len(p.stack); n > 0 && p.stack[n-1].name == "pre" && p.stack[n-1].start == p.n16 {
			tag.entity = ""
			if lang, ok := strings.CutPrefix(attrs["class"], "language-"); ok {
				p.stack[n-1].language = lang
			}
		}
	}
	if err := p.checkNesting(tag, begin); err != nil {
		return 0, err
	}
	p.stack = append(p.stack, tag)
	return i, nil
}

// checkNesting enforces the documented nesting rules: bold, italic,
// underline, strikethrough and spoiler may nest in anything but code and
// pre; blockquotes do not nest; other entities do not contain each other.
func (p *htmlParser) checkNesting(tag openTag, begin int) error {
	if tag.entity == "" {
		return nil
	}
	for _, outer := range p.stack {
		if outer.entity == "" {
			continue
		}
		ok := false
		switch {
		case outer.entity == "code" || outer.entity == "pre":
			ok = false
		case isStyle(tag.entity):
			ok = true
		case isQuote(outer.entity):
			ok = !isQuote(tag.entity)
		case isStyle(outer.entity):
			ok = true
		}
		if !ok {
			return &HTMLError{Msg: fmt.Sprintf("Entity %q can't be nested in entity %q at byte offset %d", tag.entity, outer.entity, begin)}
		}
	}
	return nil
}

func isStyle(entity string) bool {
	switch entity {
	case "bold", "italic", "underline", "strikethrough", "spoiler":
		return true
	}
	return false
}

func isQuote(entity string) bool { return entity == "blockquote" || entity == "expandable_blockquote" }

// validLinkURL accepts absolute http(s) URLs with a host, and tg:// and
// ton:// links.
func validLinkURL(href string) bool {
	u, err := url.Parse(href)
	if err != nil {
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		return u.Host != ""
	case "tg", "ton":
		return true
	}
	return false
}

func (p *htmlParser) endTag(begin int) (int, error) {
	s := p.src
	end := strings.IndexByte(s[begin:], '>')
	if end < 0 {
		return 0, &HTMLError{Msg: fmt.Sprintf("Unclosed end tag at byte offset %d", begin)}
	}
	name := strings.ToLower(strings.TrimSpace(s[begin+2 : begin+end]))
	if len(p.stack) == 0 {
		return 0, &HTMLError{Msg: fmt.Sprintf("Unexpected end tag at byte offset %d", begin)}
	}
	top := p.stack[len(p.stack)-1]
	if top.name != name {
		return 0, &HTMLError{Msg: fmt.Sprintf("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.name, name)}
	}
	p.stack = p.stack[:len(p.stack)-1]
	if top.entity != "" && p.n16 > top.start {
		e := MessageEntity{Type: top.entity, Offset: top.start, Length: p.n16 - top.start, URL: top.url, Language: top.language, CustomEmojiID: top.emojiID}
		p.entities = append(p.entities, seqEntity{MessageEntity: e, seq: top.seq})
	}
	return begin + end + 1, nil
}

// namedEntities are the only named entities the Bot API knows.
var namedEntities = []struct {
	name string
	r    rune
}{{"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}}

// decodeEntity decodes the HTML entity at the start of s. It returns the
// rune and the bytes used, or 0 bytes when s starts no supported entity.
func decodeEntity(s string) (rune, int) {
	for _, e := range namedEntities {
		if strings.HasPrefix(s, e.name) {
			return e.r, len(e.name)
		}
	}
	if !strings.HasPrefix(s, "&#") {
		return 0, 0
	}
	semi := strings.IndexByte(s, ';')
	if semi < 3 || semi > 12 {
		return 0, 0
	}
	digits, base := s[2:semi], 10
	if digits[0] == 'x' || digits[0] == 'X' {
		digits, base = digits[1:], 16
	}
	v, err := strconv.ParseUint(digits, base, 32)
	if err != nil || digits == "" || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
		return 0, 0
	}
	return rune(v), semi + 1
}

// decodeEntities decodes every entity in an attribute value.
func decodeEntities(s string) string {
	if !strings.Contains(s, "&") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '&' {
			if r, n := decodeEntity(s[i:]); n > 0 {
				b.WriteRune(r)
				i += n
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// trimEntities trims leading and trailing whitespace (Unicode's) from
// text, as Telegram does, and moves and clips the entities to match; entities left
// empty are dropped.
func trimEntities(text string, ents []seqEntity) (string, []MessageEntity) {
	sort.SliceStable(ents, func(i, j int) bool {
		a, b := ents[i], ents[j]
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		if a.Length != b.Length {
			return a.Length > b.Length
		}
		return a.seq < b.seq
	})
	trimmed := strings.TrimLeftFunc(text, unicode.IsSpace)
	lead := utf16Len(text[:len(text)-len(trimmed)])
	trimmed = strings.TrimRightFunc(trimmed, unicode.IsSpace)
	total := utf16Len(trimmed)
	out := make([]MessageEntity, 0, len(ents))
	for _, se := range ents {
		e := se.MessageEntity
		start, end := e.Offset-lead, e.Offset+e.Length-lead
		start, end = max(start, 0), min(end, total)
		if end <= start {
			continue
		}
		e.Offset, e.Length = start, end-start
		out = append(out, e)
	}
	return trimmed, out
}

// utf16Len is the length of s in UTF-16 code units, the unit in which
// Telegram measures texts and entity offsets.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// EntityText returns the part of text an entity covers (offsets in UTF-16
// code units).
func EntityText(text string, e MessageEntity) string {
	u := utf16.Encode([]rune(text))
	if e.Offset < 0 || e.Length < 0 || e.Offset+e.Length > len(u) {
		return ""
	}
	return string(utf16.Decode(u[e.Offset : e.Offset+e.Length]))
}
