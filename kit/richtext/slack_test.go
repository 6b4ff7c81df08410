package richtext

import "testing"

func TestSlackMrkdwn(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want string
	}{
		{name: "plain text", md: "Hello there", want: "Hello there"},
		{name: "exactly & < > are escaped", md: `5 < 6 & 7 > 3 "q" 'a' \* \_ \~ | \\`, want: `5 &lt; 6 &amp; 7 &gt; 3 "q" 'a' * _ ~ | \`},
		{name: "entities stay escaped", md: "&amp; &lt;b&gt; &copy;", want: "&amp; &lt;b&gt; ©"},
		{name: "commands and mentions are text", md: "<!here> <@U123> <#C1|x> @here", want: "&lt;!here&gt; &lt;@U123&gt; &lt;#C1|x&gt; @here"},
		{name: "a line beginning with > is not a quote", md: "\\> not quote\n\na\n\\>b", want: "\u00ad&gt; not quote\n\na\n\u00ad&gt;b"},
		{name: "> elsewhere", md: "a > b", want: "a &gt; b"},
		{name: "bold italic strike", md: "**b** *i* _i_ ~~s~~", want: "*b* _i_ _i_ ~s~"},
		{name: "nested", md: "***bi*** **a *b* c**", want: "_*bi*_ *a _b_ c*"},
		{name: "inside a word", md: "foo**bar**baz", want: "foo\u200b*bar*\u200bbaz"},
		{name: "markers side by side", md: "*a*_b_", want: "_a_\u200b_b_"},
		{name: "nested bold writes no markers", md: "**a __b__ c**", want: "*a b c*"},
		{name: "inline code is escaped too", md: "run `a<b && c`", want: "run `a&lt;b &amp;&amp; c`"},
		{name: "code with a backtick", md: "``a`b``", want: "```a`b```"},
		{name: "code with backticks at its ends", md: "`` `x` ``", want: "```\u200b`x`\u200b```"},
		{name: "code block ignores the language", md: "```go\nif a < b {\n}\n```", want: "```if a &lt; b {\n}```"},
		{name: "fences in a code block are broken", md: "```\nx ``` y\n```", want: "```x ``\u200b` y```"},
		{name: "fences in text are broken", md: "a ``` b", want: "a ``\u200b` b"},
		{name: "backticks in text", md: "a \\`\\`\\`\\` b", want: "a ``\u200b`` b"},
		{name: "backticks after code", md: "`0`\\``0", want: "`0``\u200b`0"},
		{name: "link", md: "[shop](https://shop.example.com/?a=1&b=2)", want: "<https://shop.example.com/?a=1&amp;b=2|shop>"},
		{name: "link text without | or markers", md: "[a|b **c** & <d>](https://e.com)", want: "<https://e.com|a∣b c &amp; &lt;d&gt;>"},
		{name: "autolink", md: "<https://e.com/x>", want: "<https://e.com/x>"},
		{name: "tg link is its text", md: "[me](tg://user?id=42)", want: "me"},
		{name: "bold link", md: "**[a](https://e.com)**", want: "*<https://e.com|a>*"},
		{name: "heading and lists", md: "# T\n\n- a\n- b\n\n1. c", want: "*T*\n\n• a\n• b\n\n1. c"},
		{name: "blockquote", md: "> said\n> twice", want: "> said\n> twice"},
		{name: "blockquote with code", md: "> ```\n> x\n> y\n> ```", want: "> ```x\n> y```"},
		{name: "unicode", md: "Привет, **мир** 😀", want: "Привет, *мир* 😀"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Parse(tt.md)
			got := SlackMrkdwn{}.Render(d)
			if got != tt.want {
				t.Fatalf("SlackMrkdwn(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
			if err := checkSlack(got, d.Plain()); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("mailto link", func(t *testing.T) {
		d := Doc{toks: []Token{openTok(Link, "mailto:a@b.c"), textTok("write"), closeTok(Link, "mailto:a@b.c")}}
		if got, want := (SlackMrkdwn{}).Render(d), "<mailto:a@b.c|write>"; got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
}
