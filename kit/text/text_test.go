package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{name: "short stays", s: "abc", n: 5, want: "abc"},
		{name: "exact stays", s: "abc", n: 3, want: "abc"},
		{name: "ascii cut", s: "abcdef", n: 3, want: "abc"},
		{name: "zero", s: "abc", n: 0, want: ""},
		{name: "negative", s: "abc", n: -1, want: ""},
		{name: "two-byte character not halved", s: "aПривет", n: 2, want: "a"},
		{name: "two-byte character kept whole", s: "aПривет", n: 3, want: "aП"},
		{name: "emoji not halved", s: "ok😀", n: 5, want: "ok"},
		{name: "emoji whole", s: "ok😀", n: 6, want: "ok😀"},
		{name: "uzbek apostrophe", s: "o‘zbek", n: 2, want: "o"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.s, tt.n); got != tt.want {
				t.Fatalf("Clip(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}

func TestShorten(t *testing.T) {
	if got := Shorten("abc", 3); got != "abc" {
		t.Fatalf("Shorten kept = %q", got)
	}
	if got := Shorten("abcdef", 3); got != "abc…" {
		t.Fatalf("Shorten cut = %q", got)
	}
	if got := Shorten("Привет", 3); got != "П…" {
		t.Fatalf("Shorten cyrillic = %q", got)
	}
}

func FuzzClip(f *testing.F) {
	f.Add("Привет, 😀 o‘zbek", 7)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Clip(s, n)
		if len(got) > max(n, 0) || !strings.HasPrefix(s, got) {
			t.Fatalf("Clip(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Clip(%q, %d) = %q halves a character", s, n, got)
		}
		if len(s) > n && n > 0 && utf8.ValidString(s) {
			// Nothing more would fit: the next character is too long.
			_, size := utf8.DecodeRuneInString(s[len(got):])
			if len(got)+size <= n {
				t.Fatalf("Clip(%q, %d) = %q cut too much", s, n, got)
			}
		}
	})
}
