package richtext

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// mdGen writes random Markdown from a small grammar of what assistants
// write and what breaks converters: words in several scripts, emoji,
// emphasis, code, fences with languages, links good and bad, lists,
// quotes, headings, raw HTML and stray special characters.
type mdGen struct{ r *rand.Rand }

var genWords = []string{
	"hello", "world", "price", "lamp", "the", "a", "is", "ok.", "yes!", "why?", "so…",
	"Привет", "мир", "цена", "o‘zbek", "tilida", "gʻalaba", "Oʻzbekiston", "shahar",
	"😀", "👍🏽", "🇺🇿", "中文", "日本語", "한국어",
	"snake_case", "a*b", "e-mail", "x~y", "pipe|s", "1.", "2)", "#tag", "-", "+", ">", ">>>", "-#",
	"@everyone", "@here", "@Everyone", "<@123>", "<#42>", "<@&7>", "<@!9>", "<:smile:1>", "<t:1>",
	"&", "&amp;", "&lt;", "<", ">", "*", "**", "_", "__", "~", "~~", "`", "``", "```", "|", "||", "\\", "\\*",
	"[", "]", "(", ")", "[x](y)", "'", "\"", ":", "https://e.com/a_b", "http://x.y/(z)", "https://e.com/*x*",
	"https://e.com/@everyone", "www.e.com", "mailto:a@b.c", "\u200b", "\u00ad",
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

func (g mdGen) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g mdGen) words(n int) string {
	var b []string
	for range 1 + g.r.IntN(n) {
		b = append(b, g.pick(genWords))
	}
	return strings.Join(b, " ")
}

func (g mdGen) inline() string {
	w := g.words(3)
	switch g.r.IntN(22) {
	case 0:
		return "**" + w + "**"
	case 1:
		return "*" + w + "*"
	case 2:
		return "_" + w + "_"
	case 3:
		return "~~" + w + "~~"
	case 4:
		return "`" + w + "`"
	case 5:
		return "``" + w + " ` " + w + "``"
	case 6:
		return "[" + w + "](https://e.com/" + g.pick([]string{"x", "a_b", "(p)", "q?a=1&b=2", "%20", "ä"}) + ")"
	case 7:
		return "[" + w + "](" + g.pick([]string{"tg://user?id=1", "javascript:alert(1)", "/rel", "mailto:a@b.c", "https://", "HTTP://E.COM"}) + ")"
	case 8:
		return "<https://e.com/" + g.pick([]string{"auto", "a_b", "x*y"}) + ">"
	case 9:
		return "![" + w + "](https://e.com/i.png)"
	case 10:
		return g.pick([]string{"<b>raw</b>", "<br>", "<script>x</script>", "<a href=\"javascript:x\">y</a>", "<!-- c -->"})
	case 11:
		return "***" + w + "***"
	case 12:
		return "**" + w + " *" + g.words(2) + "* " + w + "**"
	case 13:
		return "foo**" + w + "**bar"
	case 14:
		return "foo*" + w + "*bar"
	case 15:
		return "[**" + w + "** `c`](https://e.com)"
	case 16:
		return strings.Repeat(g.pick(genWords), 1+g.r.IntN(40)) // a long word
	}
	return w
}

func (g mdGen) paragraph() string {
	var b strings.Builder
	for i := range 1 + g.r.IntN(12) {
		if i > 0 {
			b.WriteString(g.pick([]string{" ", " ", " ", "\n", "  \n", ". ", "! "}))
		}
		b.WriteString(g.inline())
	}
	return b.String()
}

func (g mdGen) code() string {
	var lines []string
	for range 1 + g.r.IntN(8) {
		lines = append(lines, g.pick([]string{"x := 1", "if a < b && c > d {", "}", "```", "``", "`", "s := `raw`", "@everyone", "<@123>", "    indented", "", "print(\"hi\") # done", "a\\b", strings.Repeat("long_line ", 1+g.r.IntN(30))}))
	}
	return strings.Join(lines, "\n")
}

func (g mdGen) block() string {
	switch g.r.IntN(14) {
	case 0:
		return strings.Repeat("#", 1+g.r.IntN(3)) + " " + g.words(4)
	case 1, 2:
		var items []string
		for range 1 + g.r.IntN(5) {
			items = append(items, g.pick([]string{"- ", "* ", "+ "})+g.paragraph())
		}
		if g.r.IntN(3) == 0 {
			items = append(items, "  - "+g.inline())
		}
		return strings.Join(items, "\n")
	case 3:
		var items []string
		for i := range 1 + g.r.IntN(5) {
			items = append(items, fmt.Sprintf("%d. %s", i+1, g.paragraph()))
		}
		return strings.Join(items, "\n")
	case 4:
		lines := strings.Split(g.paragraph()+"\n"+g.paragraph(), "\n")
		return "> " + strings.Join(lines, "\n> ")
	case 5:
		return "```" + g.pick([]string{"", "go", "python", "c++", "c#", "objective-c", "\"><x>", "js extra"}) + "\n" + g.code() + "\n```"
	case 6:
		return "> ```py\n> " + strings.ReplaceAll(g.code(), "\n", "\n> ") + "\n> ```"
	case 7:
		return "    " + strings.ReplaceAll(g.code(), "\n", "\n    ")
	case 8:
		return g.pick([]string{"---", "***", "<div onclick=\"x\">\nhi\n</div>", "> > nested\n>> deeper"})
	}
	return g.paragraph()
}

func (g mdGen) doc() string {
	var blocks []string
	for range 1 + g.r.IntN(10) {
		blocks = append(blocks, g.block())
	}
	return strings.Join(blocks, g.pick([]string{"\n\n", "\n\n", "\n", "\n\n\n"}))
}

// plainDoc is a doc without code, code blocks or links: text, emphasis,
// lists, quotes, headings and stray characters.
func (g mdGen) plainDoc() string {
	md := g.doc()
	for _, c := range []string{"`", "[", "<", "    "} {
		md = strings.ReplaceAll(md, c, "")
	}
	return md
}

// allRenderers are the renderers, each with the limits tried on it.
var allRenderers = []struct {
	name string
	r    Renderer
	// rendered: the network counts the rendered string.
	rendered bool
}{
	{"telegram", TelegramHTML{}, false},
	{"discord", DiscordMarkdown{}, true},
	{"slack", SlackMrkdwn{}, true},
	{"plain", PlainText{}, true},
	{"html", SafeHTML{}, true},
}

// TestSplitProperties splits a few thousand random documents with every
// renderer and limits from tiny to large, and checks every rule of Split
// (see checkSplit).
func TestSplitProperties(t *testing.T) {
	docs := 3000
	if testing.Short() {
		docs = 300
	}
	for _, rr := range allRenderers {
		t.Run(rr.name, func(t *testing.T) {
			t.Parallel()
			g := mdGen{newRand(1)} // the same documents for every renderer
			for i := range docs {
				md := g.doc()
				d := Parse(md)
				maxes := []int{1 + g.r.IntN(12), 12 + g.r.IntN(60), 60 + g.r.IntN(500), 500 + g.r.IntN(4000)}
				l := Limit{Max: maxes[i%len(maxes)], Measure: Measure(g.r.IntN(3)), Rendered: rr.rendered || g.r.IntN(4) == 0}
				if err := checkSplit(d, rr.r, l); err != nil {
					t.Fatalf("doc %d, %+v: %v\nmarkdown: %q", i, l, err, md)
				}
			}
		})
	}
}
