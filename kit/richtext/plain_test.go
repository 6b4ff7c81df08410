package richtext

import "testing"

func TestPlainText(t *testing.T) {
	tests := []struct {
		name string
		md   string
		want string
	}{
		{name: "formatting is dropped", md: "**b** *i* ~~s~~ `c` <b>x</b> & <", want: "b i s c <b>x</b> & <"},
		{name: "link shows its address", md: "see [the shop](https://shop.example.com/?a=1)", want: "see the shop (https://shop.example.com/?a=1)"},
		{name: "link that is its address", md: "<https://e.com/x> and [https://e.com](https://e.com)", want: "https://e.com/x and https://e.com"},
		{name: "tg link is its text", md: "[me](tg://user?id=42)", want: "me"},
		{name: "bad link is its text", md: "[x](javascript:alert(1))", want: "x"},
		{name: "image", md: "![lamp](https://e.com/l.png)", want: "lamp (https://e.com/l.png)"},
		{name: "blocks", md: "# T\n\n- a\n- b\n\n> q\n\n```\ncode\n```", want: "T\n\n• a\n• b\n\nq\n\ncode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Parse(tt.md)
			got := PlainText{}.Render(d)
			if got != tt.want {
				t.Fatalf("PlainText(%q)\n got %q\nwant %q", tt.md, got, tt.want)
			}
			if err := checkPlain(got, d); err != nil {
				t.Fatal(err)
			}
		})
	}
}
