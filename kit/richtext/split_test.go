package richtext

import (
	"strings"
	"testing"
)

// splitTexts splits md and returns the parts' texts, after checking
// every rule of Split on them.
func splitTexts(t *testing.T, md string, r Renderer, l Limit) []string {
	t.Helper()
	d := Parse(md)
	if err := checkSplit(d, r, l); err != nil {
		t.Fatal(err)
	}
	return texts(Split(d, r, l))
}

func TestSplitRules(t *testing.T) {
	discord := func(n int) Limit { return Limit{Max: n, Measure: Runes, Rendered: true} }
	tests := []struct {
		name string
		md   string
		r    Renderer
		l    Limit
		want []string
	}{
		// No part over the limit, as the network counts it: markup,
		// escapes and the markers reopened at a cut included.
		{name: "reopened markers count", md: "**one two three four five**", r: DiscordMarkdown{}, l: discord(14),
			want: []string{"**one two**", "**three four**", "**five**"}},
		{name: "escapes count, and are never cut", md: "&&&& &&&& &&&&", r: SlackMrkdwn{}, l: Limit{Max: 12, Measure: Bytes, Rendered: true},
			want: []string{"&amp;&amp;", "&amp;&amp;", "&amp;&amp;", "&amp;&amp;", "&amp;&amp;", "&amp;&amp;"}},
		{name: "quote markers count on every line", md: "> quoted text that goes on and on and on", r: DiscordMarkdown{}, l: discord(20),
			want: []string{"> quoted text that", "> goes on and on and", "> on"}},
		{name: "an element too long for a message is cut in a word", md: "aaaa **bbbb** cccc", r: SafeHTML{}, l: Limit{Max: 20, Measure: Bytes, Rendered: true},
			want: []string{"aaaa", "<strong>bbb</strong>", "<strong>b</strong>", "cccc"}},
		// Never inside a character.
		{name: "bytes: never inside a character", md: "ééééé", r: PlainText{}, l: Limit{Max: 5, Measure: Bytes},
			want: []string{"éé", "éé", "é"}},
		{name: "utf-16: astral characters count twice", md: "😀😀😀 😀", r: DiscordMarkdown{}, l: Limit{Max: 5, Measure: UTF16},
			want: []string{"😀😀", "😀 😀"}},
		{name: "runes: astral characters count once", md: "😀😀😀 😀", r: DiscordMarkdown{}, l: Limit{Max: 3, Measure: Runes},
			want: []string{"😀😀😀", "😀"}},
		// Elements that fit in one message are not cut.
		{name: "inline code is not cut", md: "see the `inline code` here", r: TelegramHTML{}, l: TelegramLimitOf(14),
			want: []string{"see the", "<code>inline code</code>", "here"}},
		{name: "a link is not cut", md: "a long sentence here [the link](https://e.com) end", r: TelegramHTML{}, l: TelegramLimitOf(30),
			want: []string{`a long sentence here <a href="https://e.com">the link</a>`, "end"}},
		{name: "the cut goes before an element even early", md: "aaaaaaaaaa `bbbbbbbbbbbbbbbbbbbb`", r: TelegramHTML{}, l: TelegramLimitOf(25),
			want: []string{"aaaaaaaaaa", "<code>bbbbbbbbbbbbbbbbbbbb</code>"}},
		{name: "even inside a word", md: "aaaaaaaaaa`bbbbbbbbbbbbbbbbbbbb`", r: DiscordMarkdown{}, l: discord(25),
			want: []string{"aaaaaaaaaa", "`bbbbbbbbbbbbbbbbbbbb`"}},
		{name: "a code block that fits is not cut", md: "intro line\n\n```\nline one\nline two\n```\n\nafter", r: DiscordMarkdown{}, l: discord(30),
			want: []string{"intro line", "```\nline one\nline two\n```", "after"}},
		// Only an element longer than a message is cut inside, a code
		// block at a line break, and closed and reopened.
		{name: "a long code block is cut at a line break", md: "intro\n\n```\nline one\nline two\nline three\n```", r: DiscordMarkdown{}, l: discord(30),
			want: []string{"intro\n\n```\nline one\n```", "```\nline two\nline three\n```"}},
		{name: "even early in the part", md: "```go\nx\nyyyyyyyyyyyyyyyyyyyyyyyyy\n```", r: SlackMrkdwn{}, l: discord(31),
			want: []string{"```x```", "```yyyyyyyyyyyyyyyyyyyyyyyyy```"}},
		// Whitespace at a cut is dropped.
		{name: "whitespace at a cut is dropped", md: "para one is here.\n\n   \n\n  para two", r: TelegramHTML{}, l: TelegramLimitOf(20),
			want: []string{"para one is here.", "para two"}},
		{name: "whitespace in a code block at a cut too", md: "```\naaaa   \n   bbbb\n```", r: TelegramHTML{}, l: TelegramLimitOf(8),
			want: []string{"<pre>aaaa</pre>", "<pre>bbbb</pre>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitTexts(t, tt.md, tt.r, tt.l)
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Fatalf("parts\n got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// TelegramLimitOf is Telegram's way of counting, with max n.
func TelegramLimitOf(n int) Limit { return Limit{Max: n, Measure: UTF16} }

func TestSplitEmpty(t *testing.T) {
	for _, d := range []Doc{{}, Parse(""), Parse("  \n\n "), Text(" \t"), Parse("\u00a0\u3000"), Parse("```\n  \n```")} {
		for _, rr := range allRenderers {
			if parts := Split(d, rr.r, Limit{Max: 10}); len(parts) != 0 {
				t.Fatalf("%s: parts of an empty doc: %+v", rr.name, parts)
			}
		}
	}
}

func TestSplitWhole(t *testing.T) {
	d := Parse("**hello** _world_ & [link](https://e.com) `x`")
	for _, rr := range allRenderers {
		parts := Split(d, rr.r, Limit{Max: 1000, Rendered: rr.rendered})
		if len(parts) != 1 || parts[0].Text != rr.r.Render(d) || parts[0].Doc.Plain() != d.Plain() {
			t.Fatalf("%s: %+v", rr.name, parts)
		}
	}
}

func TestSplitTinyLimits(t *testing.T) {
	// Below room for one character, the limit is raised; markup that
	// leaves no room for text is dropped rather than the limit broken.
	d := Parse("```python\nab\n```\n\n[x](https://example.com/a/long/path) **b**")
	for _, rr := range allRenderers {
		for _, m := range []Measure{UTF16, Runes, Bytes} {
			for max := range 12 {
				if err := checkSplit(d, rr.r, Limit{Max: max, Measure: m, Rendered: true}); err != nil {
					t.Fatalf("%s, %d %v: %v", rr.name, max, m, err)
				}
			}
		}
	}
	got := texts(Split(d, DiscordMarkdown{}, Limit{Max: 8, Measure: Runes, Rendered: true}))
	if want := []string{"ab", "x **b**"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestSplitLongLinkLosesItsAddress(t *testing.T) {
	long := "https://example.com/" + strings.Repeat("p", 100)
	parts := Split(Parse("see [the page]("+long+") now"), DiscordMarkdown{}, Limit{Max: 60, Measure: Runes, Rendered: true})
	if len(parts) != 1 || parts[0].Text != "see the page now" {
		t.Fatalf("parts %q", texts(parts))
	}
}

func TestSplitOperatorPrefix(t *testing.T) {
	d := Parse("**hi** " + strings.Repeat("word ", 30)).WithPrefix("👤 Operator: ")
	parts := Split(d, DiscordMarkdown{}, Limit{Max: 50, Measure: Runes, Rendered: true})
	if !strings.HasPrefix(parts[0].Text, "👤 Operator: **hi**") || strings.Contains(parts[1].Text, "Operator") {
		t.Fatalf("parts %q", texts(parts))
	}
	if got := Parse("").WithPrefix(" 👤 Operator: ").Plain(); got != "👤 Operator:" {
		t.Fatalf("a prefix alone is %q", got)
	}
}

// doubled is a renderer from outside the package, which Split cannot
// trace: every "x" costs two.
type doubled struct{}

func (doubled) Render(d Doc) string { return strings.ReplaceAll(PlainText{}.Render(d), "x", "xx") }

func TestSplitOutsideRenderer(t *testing.T) {
	g := mdGen{newRand(3)}
	for range 300 {
		md := g.doc() + " " + strings.Repeat("x", g.r.IntN(300))
		l := Limit{Max: 8 + g.r.IntN(200), Measure: Measure(g.r.IntN(3)), Rendered: true}
		for i, p := range Split(Parse(md), doubled{}, l) {
			if n := l.Measure.Len(p.Text); n > l.Max {
				t.Fatalf("part %d %q is %d, over %d", i, p.Text, n, l.Max)
			}
			if p.Text != (doubled{}).Render(p.Doc) {
				t.Fatalf("part %d is not its doc rendered", i)
			}
		}
	}
}

func TestMeasure(t *testing.T) {
	for s, want := range map[string][3]int{"": {}, "abc": {3, 3, 3}, "é": {1, 1, 2}, "Привет": {6, 6, 12}, "😀": {2, 1, 4}, "👍🏽": {4, 2, 8}, "中文": {2, 2, 6}} {
		for m, w := range want {
			if got := Measure(m).Len(s); got != w {
				t.Errorf("%d.Len(%q) = %d, want %d", m, s, got, w)
			}
		}
	}
}
