package engine

import (
	"io"
	"log/slog"
	"strings"

	"github.com/switchboard-gw/switchboard/core"
)

// NewLogger builds the gateway's logger from the log config. As a second
// line of defence behind the Secret type, any attribute whose key names a
// credential is redacted whatever its type. Durations are written as text
// ("720h0m0s") in both formats: the JSON handler would write nanoseconds.
func NewLogger(cfg LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	switch cfg.Level {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: replaceAttr}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// credentialWords are substrings of attribute keys whose values are never
// logged.
var credentialWords = []string{"secret", "token", "password", "api_key", "apikey", "authorization"}

func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	a = redactAttr(groups, a)
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func redactAttr(_ []string, a slog.Attr) slog.Attr {
	key := strings.ToLower(a.Key)
	for _, w := range credentialWords {
		if strings.Contains(key, w) {
			return slog.String(a.Key, core.Redacted)
		}
	}
	return a
}
