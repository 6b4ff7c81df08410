package engine

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
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

// TestLoggerWritesDurationsAsText: a duration reads "720h0m0s" in JSON
// logs, as in text ones, not as a count of nanoseconds; in a group too.
func TestLoggerWritesDurationsAsText(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log := NewLogger(LogConfig{Level: "info", Format: format}, &buf)
		log.Info("x", "session_ttl", 720*time.Hour, slog.Group("retry", "after", 1500*time.Millisecond))
		out := buf.String()
		if strings.Contains(out, "2592000000000000") || strings.Contains(out, "1500000000") {
			t.Errorf("%s: a duration in nanoseconds: %s", format, out)
		}
		for _, want := range []string{"720h0m0s", "1.5s"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: no %q in %s", format, want, out)
			}
		}
	}
}
