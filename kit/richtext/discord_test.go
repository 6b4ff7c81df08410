package richtext

import "testing"

func TestDiscordMarkdown(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want string
	}{
		{name: "plain text", md: "Hello there", want: "Hello there"},
		{name: "every special character is escaped", md: `a \\ b \* c \_ d \~ e ` + "\\`" + ` f | g \[h\] (i) < j > k & l`,
			want: `a \\ b \* c \_ d \~ e ` + "\\`" + ` f \| g \[h\] (i) \< j > k & l`},
		{name: "block markers at a line start are escaped", md: "\\# not heading\n\n\\- not item\n\n\\> not quote\n\n1\\. not list\n\n\\+ plus\n\n\\-# sub",
			want: "\\# not heading\n\n\\- not item\n\n\\> not quote\n\n1\\. not list\n\n\\+ plus\n\n\\-# sub"},
		{name: "block markers elsewhere are not", md: "a # b - c > d 1. e -# f", want: "a # b - c > d 1. e -# f"},
		{name: "mentions are neutralised", md: "@everyone @here @Everyone <@123> <#42> <@&7> <@!9> <:e:1> <t:1> a@b.c",
			want: "@\u200beveryone @\u200bhere @\u200bEveryone \\<@123> \\<#42> \\<@&7> \\<@!9> \\<:e:1> \\<t:1> a@b.c"},
		{name: "html is text", md: "<b>x</b> <script>", want: "\\<b>x\\</b> \\<script>"},
		{name: "bold italic strike", md: "**b** *i* _i_ ~~s~~", want: "**b** _i_ _i_ ~~s~~"},
		{name: "bold italic nested", md: "***bi*** **a *b* c** *a **b** c*", want: "_**bi**_ **a _b_ c** _a **b** c_"},
		{name: "italic inside a word", md: "foo*bar*baz", want: "foo\u200b_bar_\u200bbaz"},
		{name: "italic next to italic", md: "*a*_b_", want: "_a_\u200b_b_"},
		{name: "underscores in words", md: "snake_case_word", want: "snake\\_case\\_word"},
		{name: "nested bold writes no markers", md: "**a __b__ c**", want: "**a b c**"},
		{name: "inline code", md: "run `a<b && c\\d`", want: "run `a<b && c\\d`"},
		{name: "code with a backtick", md: "``a`b``", want: "``a`b``"},
		{name: "code beginning and ending with backticks", md: "`` `x` ``", want: "``\u200b`x`\u200b``"},
		{name: "code with double backticks", md: "``` a``b ```", want: "``a`\u200b`b``"},
		{name: "mentions in code", md: "`<@1> @here <#2> <b>`", want: "`<\u200b@1> @\u200bhere <\u200b#2> <b>`"},
		{name: "code block with language", md: "```go\nif a < b {\n}\n```", want: "```go\nif a < b {\n}\n```"},
		{name: "fences in a code block are broken", md: "```\nx ``` y ```` z\n`\n```", want: "```\nx ``\u200b` y ``\u200b`` z\n`\n```"},
		{name: "code block with odd language", md: "```\"><script>\nx\n```", want: "```\nx\n```"},
		{name: "code block in a list item begins a line", md: "- ```\n  x\n  ```", want: "• \n```\nx\n```"},
		{name: "link", md: "[shop](https://shop.example.com/?a=1&b=\"2\")", want: "[shop](https://shop.example.com/?a=1&b=%222%22)"},
		{name: "link with parentheses", md: "[a](https://e.com/(x))", want: "[a](https://e.com/%28x%29)"},
		{name: "link with formatted text", md: "[**big** *deal*](https://e.com)", want: "[**big** _deal_](https://e.com)"},
		{name: "link text with brackets", md: "[a \\[b\\]](https://e.com)", want: "[a \\[b\\]](https://e.com)"},
		{name: "tg link is its text", md: "[me](tg://user?id=42)", want: "me"},
		{name: "autolink", md: "<https://e.com/a_b>", want: "<https://e.com/a_b>"},
		{name: "bare urls are wrapped", md: "see https://e.com/a_b. (https://e.com/x) https://e.com/x_y_z~.", want: "see <https://e.com/a_b>. (<https://e.com/x>) <https://e.com/x_y_z>\\~."},
		{name: "a scheme alone is not linked", md: "https:// and https://.", want: "https:\\// and https:\\//."},
		{name: "mass mention in a url", md: "https://e.com/@everyone", want: "<https://e.com/@\u200beveryone>"},
		{name: "image", md: "![the lamp](https://e.com/lamp.png)", want: "[the lamp](https://e.com/lamp.png)"},
		{name: "heading", md: "# Our prices\n\nCheap.", want: "**Our prices**\n\nCheap."},
		{name: "lists", md: "- one\n- two\n\n3. c\n4. d", want: "• one\n• two\n\n3\\. c\n4\\. d"},
		{name: "blockquote", md: "> said\n> twice", want: "> said\n> twice"},
		{name: "blockquote with markers", md: "> \\# a\n> \\> b", want: "> \\# a\n> \\> b"},
		{name: "code in a blockquote", md: "> ```py\n> x\n> y\n> ```", want: "> ```py\n> x\n> y\n> ```"},
		{name: "blockquote in a list item begins a line", md: "- > a", want: "• \n> a"},
		{name: "thematic break", md: "a\n\n---\n\nb", want: "a\n\n———\n\nb"},
		{name: "unicode", md: "Привет, **мир** 😀 o‘zbek", want: "Привет, **мир** 😀 o‘zbek"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Parse(tt.md)
			got := DiscordMarkdown{}.Render(d)
			if got != tt.want {
				t.Fatalf("DiscordMarkdown(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
			if err := checkDiscord(got, d.Plain()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
