package telegram

import (
	"slices"
	"testing"
)

func TestParseHTML(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		ents    []MessageEntity
		wantErr string
	}{
		{name: "plain", in: "hello", want: "hello"},
		{name: "entities", in: "a &lt;b&gt; &amp; &quot;c&quot; &#65;&#x42;", want: `a <b> & "c" AB`},
		{name: "bare ampersand is literal", in: "AT&T &nbsp; &#xZZ;", want: "AT&T &nbsp; &#xZZ;"},
		{name: "nested styles", in: "<b>bold <i>both</i></b>", want: "bold both",
			ents: []MessageEntity{{Type: "bold", Offset: 0, Length: 9}, {Type: "italic", Offset: 5, Length: 4}}},
		{name: "aliases", in: "<strong>a</strong><em>b</em><ins>c</ins><del>d</del><strike>e</strike><tg-spoiler>f</tg-spoiler><span class=\"tg-spoiler\">g</span>",
			want: "abcdefg", ents: []MessageEntity{{Type: "bold", Length: 1}, {Type: "italic", Offset: 1, Length: 1}, {Type: "underline", Offset: 2, Length: 1},
				{Type: "strikethrough", Offset: 3, Length: 1}, {Type: "strikethrough", Offset: 4, Length: 1}, {Type: "spoiler", Offset: 5, Length: 1}, {Type: "spoiler", Offset: 6, Length: 1}}},
		{name: "offsets count UTF-16", in: "😀 <b>x</b>", want: "😀 x", ents: []MessageEntity{{Type: "bold", Offset: 3, Length: 1}}},
		{name: "link with entity in href", in: `<a href="https://e.com/?a=1&amp;b=2">go</a>`, want: "go",
			ents: []MessageEntity{{Type: "text_link", Length: 2, URL: "https://e.com/?a=1&b=2"}}},
		{name: "single-quoted and unquoted attributes", in: `<a href='https://e.com'>x</a> <a href=https://f.com>y</a>`, want: "x y",
			ents: []MessageEntity{{Type: "text_link", Length: 1, URL: "https://e.com"}, {Type: "text_link", Offset: 2, Length: 1, URL: "https://f.com"}}},
		{name: "pre with language", in: "<pre><code class=\"language-go\">x := 1</code></pre>", want: "x := 1",
			ents: []MessageEntity{{Type: "pre", Length: 6, Language: "go"}}},
		{name: "code in pre not at start makes its own entity", in: "<pre>a<code>b</code></pre>", wantErr: `Entity "code" can't be nested in entity "pre" at byte offset 6`},
		{name: "blockquote expandable", in: "<blockquote expandable>q</blockquote>", want: "q", ents: []MessageEntity{{Type: "expandable_blockquote", Length: 1}}},
		{name: "custom emoji", in: `<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>`, want: "👍", ents: []MessageEntity{{Type: "custom_emoji", Length: 2, CustomEmojiID: "5368324170671202286"}}},
		{name: "trimmed, entities moved", in: "\n  <b>x</b> \n", want: "x", ents: []MessageEntity{{Type: "bold", Length: 1}}},
		{name: "empty entity dropped", in: "<b></b>x", want: "x"},
		{name: "upper-case tags", in: "<B>x</B>", want: "x", ents: []MessageEntity{{Type: "bold", Length: 1}}},
		{name: "style in link", in: `<a href="https://e.com"><b>x</b></a>`, want: "x", ents: []MessageEntity{{Type: "text_link", Length: 1, URL: "https://e.com"}, {Type: "bold", Length: 1}}},
		{name: "code in blockquote", in: "<blockquote>a <code>b</code></blockquote>", want: "a b", ents: []MessageEntity{{Type: "blockquote", Length: 3}, {Type: "code", Offset: 2, Length: 1}}},

		{name: "bare less-than", in: "a < b", wantErr: `Unsupported start tag "" at byte offset 2`},
		{name: "unknown tag", in: "<p>x</p>", wantErr: `Unsupported start tag "p" at byte offset 0`},
		{name: "br is not supported", in: "a<br>b", wantErr: `Unsupported start tag "br" at byte offset 1`},
		{name: "unclosed start tag", in: "<b", wantErr: "Unclosed start tag at byte offset 0"},
		{name: "unclosed end tag", in: "<b>x</b", wantErr: "Unclosed end tag at byte offset 4"},
		{name: "missing end tag", in: "<b>x", wantErr: `Can't find end tag corresponding to start tag "b"`},
		{name: "unexpected end tag", in: "x</b>", wantErr: "Unexpected end tag at byte offset 1"},
		{name: "crossed tags", in: "<b><i>x</b></i>", wantErr: `Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{name: "link without href", in: "<a>x</a>", wantErr: `Tag "a" must have attribute "href" at byte offset 0`},
		{name: "javascript link", in: `<a href="javascript:alert(1)">x</a>`, wantErr: `Wrong URL "javascript:alert(1)" in tag "a" at byte offset 0`},
		{name: "relative link", in: `<a href="/x">x</a>`, wantErr: `Wrong URL "/x" in tag "a" at byte offset 0`},
		{name: "span without class", in: "<span>x</span>", wantErr: `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{name: "bold in code", in: "<code><b>x</b></code>", wantErr: `Entity "bold" can't be nested in entity "code" at byte offset 6`},
		{name: "code in link", in: `<a href="https://e.com"><code>x</code></a>`, wantErr: `Entity "code" can't be nested in entity "text_link" at byte offset 24`},
		{name: "nested blockquotes", in: "<blockquote><blockquote>x</blockquote></blockquote>", wantErr: `Entity "blockquote" can't be nested in entity "blockquote" at byte offset 12`},
		{name: "unterminated attribute", in: `<a href="https://e.com>x</a>`, wantErr: "Unclosed start tag at byte offset 0"},
		{name: "invalid UTF-8", in: "a\xffb", wantErr: "strings must be encoded in UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ents, err := ParseHTML(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if got != tt.want || !slices.Equal(ents, tt.ents) {
				t.Fatalf("ParseHTML(%q) = %q %+v, want %q %+v", tt.in, got, ents, tt.want, tt.ents)
			}
		})
	}
}

func TestEntityText(t *testing.T) {
	text, ents, err := ParseHTML("😀 <b>bold ✓</b>")
	if err != nil {
		t.Fatal(err)
	}
	if got := EntityText(text, ents[0]); got != "bold ✓" {
		t.Fatalf("EntityText = %q", got)
	}
	if got := EntityText(text, MessageEntity{Offset: 10, Length: 5}); got != "" {
		t.Fatalf("out of range EntityText = %q", got)
	}
}

func FuzzParseHTML(f *testing.F) {
	for _, s := range []string{"<b>x</b>", "a &amp; b", "<a href=\"https://e.com\">x</a>", "<pre><code class=\"language-go\">x</code></pre>", "<", "&#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text, ents, err := ParseHTML(s)
		if err != nil {
			return
		}
		n := utf16Len(text)
		for _, e := range ents {
			if e.Offset < 0 || e.Length <= 0 || e.Offset+e.Length > n {
				t.Fatalf("entity %+v out of text of length %d", e, n)
			}
		}
	})
}
