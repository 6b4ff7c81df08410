package richtext

import (
	"strings"
	"testing"

	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

func TestMarkdownToHTML(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want string
	}{
		{name: "plain text", md: "Hello there", want: "Hello there"},
		{name: "special characters are escaped", md: `5 < 6 & 7 > 3 "quoted"`, want: `5 &lt; 6 &amp; 7 &gt; 3 "quoted"`},
		{name: "html in markdown is shown, not obeyed", md: `<b>x</b> <script>alert(1)</script>`, want: `&lt;b&gt;x&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;`},
		{name: "html block", md: "<div onclick=\"x\">\nhi\n</div>", want: "&lt;div onclick=\"x\"&gt;\nhi\n&lt;/div&gt;"},
		{name: "br becomes a line break", md: "one<br>two<BR/>three", want: "one\ntwo\nthree"},
		{name: "bold and italic", md: "**bold** and *it* and _it_ and __b__", want: "<b>bold</b> and <i>it</i> and <i>it</i> and <b>b</b>"},
		{name: "bold italic", md: "***both***", want: "<i><b>both</b></i>"},
		{name: "strikethrough", md: "~~old~~ new", want: "<s>old</s> new"},
		{name: "inline code escapes and keeps backslashes", md: "run `a<b && c\\d`", want: "run <code>a&lt;b &amp;&amp; c\\d</code>"},
		{name: "code block with language", md: "```go\nif a < b && c {\n}\n```", want: "<pre><code class=\"language-go\">if a &lt; b &amp;&amp; c {\n}</code></pre>"},
		{name: "code block with odd language", md: "```\"><script>\nx\n```", want: "<pre>x</pre>"},
		{name: "indented code block", md: "    x := 1\n    y := 2", want: "<pre>x := 1\ny := 2</pre>"},
		{name: "empty code block is dropped", md: "a\n\n```\n```\n\nb", want: "a\n\nb"},
		{name: "link", md: "[shop](https://shop.example.com/?a=1&b=\"2\")", want: `<a href="https://shop.example.com/?a=1&amp;b=%222%22">shop</a>`},
		{name: "link with formatted text", md: "[**big** deal](https://e.com)", want: `<a href="https://e.com"><b>big</b> deal</a>`},
		{name: "code in link loses code", md: "[`x`](https://e.com)", want: `<a href="https://e.com">x</a>`},
		{name: "javascript link is text", md: "[click](javascript:alert(1))", want: "click"},
		{name: "relative link is text", md: "[home](/home)", want: "home"},
		{name: "mailto link is text", md: "[mail us](mailto:a@b.com)", want: "mail us"},
		{name: "tg link", md: "[me](tg://user?id=42)", want: `<a href="tg://user?id=42">me</a>`},
		{name: "empty link text shows the address", md: "[](https://e.com)", want: `<a href="https://e.com">https://e.com</a>`},
		{name: "autolink", md: "<https://e.com/x>", want: `<a href="https://e.com/x">https://e.com/x</a>`},
		{name: "email autolink is text", md: "<me@e.com>", want: "me@e.com"},
		{name: "bare url stays text", md: "see https://e.com", want: "see https://e.com"},
		{name: "image becomes a link", md: "![the lamp](https://e.com/lamp.png)", want: `<a href="https://e.com/lamp.png">the lamp</a>`},
		{name: "image with a bad url is its alt text", md: "![lamp](data:image/png;base64,xx)", want: "lamp"},
		{name: "heading is a bold line", md: "# Our prices\n\nCheap.", want: "<b>Our prices</b>\n\nCheap."},
		{name: "bullet list", md: "- one\n- two", want: "• one\n• two"},
		{name: "ordered list keeps its start", md: "3. c\n4. d", want: "3. c\n4. d"},
		{name: "nested list is indented", md: "- a\n  - b\n- c", want: "• a\n  • b\n• c"},
		{name: "loose list item paragraphs", md: "- a\n\n  more\n- b", want: "• a\n\nmore\n\n• b"},
		{name: "blockquote", md: "> said\n> twice", want: "<blockquote>said\ntwice</blockquote>"},
		{name: "nested blockquote is flattened", md: "> a\n>> b", want: "<blockquote>a\nb</blockquote>"},
		{name: "code in blockquote", md: "> run `x`", want: "<blockquote>run <code>x</code></blockquote>"},
		{name: "thematic break", md: "a\n\n---\n\nb", want: "a\n\n———\n\nb"},
		{name: "soft line break is kept", md: "line one\nline two", want: "line one\nline two"},
		{name: "backslash escapes", md: `\*not bold\* \_ \<b\>`, want: "*not bold* _ &lt;b&gt;"},
		{name: "entities are resolved then escaped", md: "&copy; &amp; &lt;b&gt; &#169;", want: "© &amp; &lt;b&gt; ©"},
		{name: "surrounding whitespace trimmed", md: "\n\n  hi  \n\n", want: "hi"},
		{name: "unicode", md: "Привет, **мир** 😀", want: "Привет, <b>мир</b> 😀"},
		{name: "simulator price list", md: "**Our prices**\n\n- Smart lamp: **$29**\n- Wireless speaker: **$59**\n\nSee the full catalogue at [shop.example.com](https://shop.example.com/catalogue).",
			want: "<b>Our prices</b>\n\n• Smart lamp: <b>$29</b>\n• Wireless speaker: <b>$59</b>\n\nSee the full catalogue at <a href=\"https://shop.example.com/catalogue\">shop.example.com</a>."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := TelegramHTML{}.Render(Parse(tt.md))
			if got != tt.want {
				t.Fatalf("markdownToHTML(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
			if _, _, err := faketelegram.ParseHTML(got); err != nil {
				t.Fatalf("Telegram would refuse %q: %v", got, err)
			}
		})
	}
}

// part is one Telegram message as the adapter sends it: the HTML, and
// the plain text fallback.
type part struct {
	html  string
	plain string
}

// maxMessageLen is Telegram's limit, as the adapter had it.
const maxMessageLen = 4096

// formatParts is what the Telegram adapter did with a message, on this
// package: Markdown, with an optional plain prefix (the operator mark),
// into messages of at most limit UTF-16 units each.
func formatParts(md, prefix string, limit int) []part {
	var out []part
	for _, p := range Split(Parse(md).WithPrefix(prefix), TelegramHTML{}, Limit{Max: limit, Measure: UTF16}) {
		out = append(out, part{html: p.Text, plain: p.Doc.Plain()})
	}
	return out
}

func utf16Len(s string) int { return UTF16.Len(s) }

// checkParts checks what every message of a split must be: valid Telegram
// HTML whose visible text is the part's plain text, within the limit.
func checkParts(t *testing.T, parts []part, limit int) {
	t.Helper()
	for i, p := range parts {
		plain, _, err := faketelegram.ParseHTML(p.html)
		if err != nil {
			t.Fatalf("part %d is not valid Telegram HTML: %v\n%q", i, err, p.html)
		}
		if plain != strings.TrimSpace(p.plain) || plain == "" {
			t.Fatalf("part %d: Telegram would show %q, plain fallback is %q", i, plain, p.plain)
		}
		if n := utf16Len(p.plain); n > limit {
			t.Fatalf("part %d is %d UTF-16 units long, limit %d", i, n, limit)
		}
	}
}

func TestSplit(t *testing.T) {
	sentence := "This sentence is exactly fifty characters long ok. " // 51 with the space
	tests := []struct {
		name  string
		md    string
		limit int
		want  []string // HTML of each part
	}{
		{name: "short text is one part", md: "hello **world**", limit: 100, want: []string{"hello <b>world</b>"}},
		{name: "paragraph boundary preferred", md: "aaaa aaaa aaaa.\n\nbbbb bbbb. cccc", limit: 25,
			want: []string{"aaaa aaaa aaaa.", "bbbb bbbb. cccc"}},
		{name: "line boundary next", md: "- one one one\n- two two two\n- three", limit: 30,
			want: []string{"• one one one\n• two two two", "• three"}},
		{name: "sentence boundary next", md: "First part here. Second part! Third one", limit: 30,
			want: []string{"First part here. Second part!", "Third one"}},
		{name: "word boundary next", md: "alpha beta gamma delta epsilon", limit: 12,
			want: []string{"alpha beta", "gamma delta", "epsilon"}},
		{name: "early boundaries are not taken", md: "a. " + strings.Repeat("x", 20) + " yy", limit: 20,
			want: []string{"a. " + strings.Repeat("x", 17), "xxx yy"}},
		{name: "hard cut in a long word", md: strings.Repeat("z", 25), limit: 10,
			want: []string{"zzzzzzzzzz", "zzzzzzzzzz", "zzzzz"}},
		{name: "bold across the cut is closed and reopened", md: "**one two three four**", limit: 10,
			want: []string{"<b>one two</b>", "<b>three four</b>"}},
		{name: "link across the cut keeps its href", md: "[one two three four](https://e.com)", limit: 10,
			want: []string{`<a href="https://e.com">one two</a>`, `<a href="https://e.com">three four</a>`}},
		{name: "code block across the cut", md: "```py\nline one\nline two\n```", limit: 10,
			want: []string{`<pre><code class="language-py">line one</code></pre>`, `<pre><code class="language-py">line two</code></pre>`}},
		{name: "entities count as one character", md: strings.Repeat("<", 10) + " " + strings.Repeat("&", 10), limit: 10,
			want: []string{strings.Repeat("&lt;", 10), strings.Repeat("&amp;", 10)}},
		{name: "astral characters count twice", md: strings.Repeat("😀", 6), limit: 10,
			want: []string{strings.Repeat("😀", 5), "😀"}},
		{name: "no empty element at a cut", md: "aaaa aaaa **b**", limit: 9,
			want: []string{"aaaa aaaa", "<b>b</b>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := formatParts(tt.md, "", tt.limit)
			var got []string
			for _, p := range parts {
				got = append(got, p.html)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Fatalf("parts\n got %q\nwant %q", got, tt.want)
			}
			checkParts(t, parts, tt.limit)
		})
	}

	t.Run("6000 characters of prose make two full messages", func(t *testing.T) {
		md := strings.Repeat(sentence, 6000/len(sentence)+1)[:6000]
		parts := formatParts(md, "", maxMessageLen)
		if len(parts) != 2 {
			t.Fatalf("%d parts, want 2", len(parts))
		}
		checkParts(t, parts, maxMessageLen)
		if !strings.HasSuffix(parts[0].plain, "ok.") {
			t.Fatalf("first part does not end at a sentence: ...%q", parts[0].plain[len(parts[0].plain)-20:])
		}
		if got := parts[0].plain + " " + parts[1].plain; got != strings.TrimSpace(md) {
			t.Fatal("the parts do not add up to the text")
		}
	})
	t.Run("operator prefix goes on the first part only", func(t *testing.T) {
		parts := formatParts("**hi** "+strings.Repeat("word ", 30), "👤 Operator: ", 50)
		if !strings.HasPrefix(parts[0].html, "👤 Operator: <b>hi</b>") || strings.Contains(parts[1].html, "Operator") {
			t.Fatalf("parts = %q, %q", parts[0].html, parts[1].html)
		}
		checkParts(t, parts, 50)
	})
	t.Run("whitespace only yields no parts", func(t *testing.T) {
		if parts := formatParts("  \n\n ", "", 10); len(parts) != 0 {
			t.Fatalf("parts = %+v", parts)
		}
	})
}
