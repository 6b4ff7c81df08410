package richtext

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzSeeds are tricky inputs for every fuzz target.
var fuzzSeeds = []string{
	"**bold** _it_ `code` [l](https://e.com) <b>raw</b> & < >",
	"```go\nx < y ``` z\n```\n> quote\n- item\n1. one",
	"# h\n\n***x*** ~~s~~ ![i](https://e.com/i.png) <https://a.b>",
	"[**`x`**](https://e.com \"t\") \\* &amp; &#0; \x00",
	"> > nested\n> ```\n> code\n> ```",
	"@everyone @here <@123> <#42> <@&7> <:e:1> <t:1:R> ||spoiler|| __u__",
	"\\# h\n\\- i\n\\> q\n1\\. n\n-# sub\n>>> all",
	"see https://e.com/a_b*c*. (https://e.com/(x)) https:// https://@everyone",
	"foo*bar*baz snake_case_word *a*_b_ **a***b*",
	"`` `x` `` ``` a``b ``` `<@1>` ````\n````",
	"[a|b > c](https://e.com/?a=1&b=2|3) [x](tg://user?id=1) [y](mailto:a@b.c)",
	"o‘zbek tilida gʻalaba Привет мир 😀👍🏽🇺🇿 中文 日本語",
	"<div onclick=\"x\">\nhi\n</div>\n\n<script>alert(1)</script> \" ' &",
	"- a\n  - b\n    - c\n      - d\n        - e\n          - f",
	strings.Repeat("word ", 50),
	strings.Repeat("&<>", 30),
	strings.Repeat("x", 500),
	"```\n" + strings.Repeat("line of code\n", 40) + "```",
}

// fuzzLimit maps the fuzzer's number to a limit from tiny to large, in
// any measure.
func fuzzLimit(n int, rendered bool) Limit {
	u := uint(n)
	return Limit{Max: int(u / 3 % 400), Measure: Measure(u % 3), Rendered: rendered}
}

func fuzzSplit(f *testing.F, r Renderer, rendered bool, extra func(t *testing.T, md string, limit int, d Doc)) {
	for _, s := range fuzzSeeds {
		f.Add(s, 40)
		f.Add(s, 301)
	}
	f.Fuzz(func(t *testing.T, md string, limit int) {
		if !utf8.ValidString(md) {
			return // the core refuses invalid UTF-8 before it gets here
		}
		d := Parse(md)
		if err := checkSplit(d, r, fuzzLimit(limit, rendered)); err != nil {
			t.Fatalf("%v\nmarkdown %q, limit %+v", err, md, fuzzLimit(limit, rendered))
		}
		if extra != nil {
			extra(t, md, limit, d)
		}
	})
}

// FuzzTelegramHTML: every part is HTML Telegram accepts, shows exactly
// the part's visible text, and is within the limit (visible UTF-16
// units). (Until the Telegram adapter moved onto this package, it also
// checked the rendering byte for byte against the adapter's old
// converter: see the history of oracle_test.go.)
func FuzzTelegramHTML(f *testing.F) {
	fuzzSplit(f, TelegramHTML{}, false, func(t *testing.T, md string, limit int, d Doc) {
		// The adapter's own fuzz test, as it was.
		limit = 2 + int(uint(limit)%200) // (uint: abs(math.MinInt) is negative)
		parts := formatParts(md, "", limit)
		checkParts(t, parts, limit)
	})
}

// FuzzDiscordMarkdown: every part within the limit, with balanced fences
// and markers and nothing from the input Discord could read as
// formatting, a mention or a link (see checkDiscord).
func FuzzDiscordMarkdown(f *testing.F) { fuzzSplit(f, DiscordMarkdown{}, true, nil) }

// FuzzSlackMrkdwn: every part within the limit, with balanced fences and
// no raw & < > outside the renderer's own links (see checkSlack).
func FuzzSlackMrkdwn(f *testing.F) { fuzzSplit(f, SlackMrkdwn{}, true, nil) }

// FuzzPlainText: every part within the limit, its visible text with link
// addresses.
func FuzzPlainText(f *testing.F) { fuzzSplit(f, PlainText{}, true, nil) }

// FuzzSafeHTML: every part, parsed as a browser would, holds only the
// allowed elements and attributes, and links to http(s) only.
func FuzzSafeHTML(f *testing.F) { fuzzSplit(f, SafeHTML{}, true, nil) }
