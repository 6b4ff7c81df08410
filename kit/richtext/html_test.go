package richtext

import "testing"

func TestSafeHTML(t *testing.T) {
	link := func(href, text string) string {
		return `<a href="` + href + `" rel="noopener noreferrer nofollow" target="_blank">` + text + `</a>`
	}
	tests := []struct {
		name string
		md   string
		want string
	}{
		{name: "plain text", md: "Hello there", want: "Hello there"},
		{name: "every special character is escaped", md: `5 < 6 & 7 > 3 "q" 'a'`, want: `5 &lt; 6 &amp; 7 &gt; 3 &quot;q&quot; &#39;a&#39;`},
		{name: "html in markdown is text", md: `<b onclick="x">x</b> <script>alert(1)</script>`, want: `&lt;b onclick=&quot;x&quot;&gt;x&lt;/b&gt; &lt;script&gt;alert(1)&lt;/script&gt;`},
		{name: "formatting", md: "**b** *i* ~~s~~ `c<d`", want: "<strong>b</strong> <em>i</em> <s>s</s> <code>c&lt;d</code>"},
		{name: "line breaks and paragraphs", md: "one\ntwo\n\nthree", want: "one<br>two<br><br>three"},
		{name: "code block with language", md: "a\n\n```go\nif a < b {\n}\n```\n\nb", want: `a<pre><code class="language-go">if a &lt; b {` + "\n" + `}</code></pre>b`},
		{name: "code block without language", md: "```\nx\n```", want: "<pre><code>x</code></pre>"},
		{name: "code block keeps its own line breaks", md: "a\n\n```\n\nx\n```", want: "a<pre><code>\nx</code></pre>"},
		{name: "code block with odd language", md: "```\"><script>\nx\n```", want: "<pre><code>x</code></pre>"},
		{name: "link", md: `[shop](https://shop.example.com/?a=1&b="2"')`, want: link("https://shop.example.com/?a=1&amp;b=%222%22&#39;", "shop")},
		{name: "tg link is its text", md: "[me](tg://user?id=42)", want: "me"},
		{name: "javascript link is its text", md: "[x](javascript:alert(1))", want: "x"},
		{name: "blockquote", md: "a\n\n> said\n> twice\n\nb", want: "a<blockquote>said<br>twice</blockquote>b"},
		{name: "lists", md: "- a\n- b", want: "• a<br>• b"},
		{name: "heading", md: "# T\n\nx", want: "<strong>T</strong><br><br>x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Parse(tt.md)
			got := SafeHTML{}.Render(d)
			if got != tt.want {
				t.Fatalf("SafeHTML(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
			if err := checkSafeHTML(got, d.Plain()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
