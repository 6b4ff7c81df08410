package core

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{name: "plain", raw: "https://selarti.com/api/1.1", want: "https://selarti.com/api/1.1"},
		{name: "user and password", raw: "https://alice:s3cret@selarti.example/api", want: "https://alice:xxxxx@selarti.example/api"},
		{name: "token as user", raw: "https://s3cret@selarti.example/api", want: "https://xxxxx@selarti.example/api"},
		{name: "unparseable", raw: "https://alice:s3cret@[bad/api", want: "https://xxxxx@[bad/api"},
		{name: "not a URL", raw: "no url here", want: "no url here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RedactURL(tt.raw)
			if got != tt.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tt.raw, got, tt.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("the secret is still there: %q", got)
			}
		})
	}
}
