package engine

import (
	"bytes"
	"strings"
	"testing"
)

func TestLoggerRedactsCredentialKeys(t *testing.T) {
	var buf bytes.Buffer
	log := NewLogger(LogConfig{Level: "info", Format: "json"}, &buf)
	log.Info("x", "bot_token", "123:ABC", "Authorization", "Bearer xyz", "chat", "42")
	out := buf.String()
	for _, leak := range []string{"123:ABC", "Bearer xyz"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q: %s", leak, out)
		}
	}
	if !strings.Contains(out, `"chat":"42"`) {
		t.Errorf("log lost an ordinary attribute: %s", out)
	}
}
