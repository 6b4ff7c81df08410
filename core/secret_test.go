package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	const value = "super-secret-value-1234567890abcdef"
	s := Secret(value)
	type holder struct {
		Key Secret `json:"key"`
	}
	var logBuf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logBuf, nil))
	log.Info("x", "key", s, "nested", holder{Key: s})
	js, _ := json.Marshal(holder{Key: s})
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", s),
		"%s":   fmt.Sprintf("%s", s),
		"%+v":  fmt.Sprintf("%+v", holder{Key: s}),
		"%#v":  fmt.Sprintf("%#v", holder{Key: s}),
		"json": string(js),
		"slog": logBuf.String(),
		"err":  fmt.Errorf("auth with %v failed", s).Error(),
	}
	for name, out := range outputs {
		if strings.Contains(out, value) {
			t.Errorf("%s leaks the secret: %s", name, out)
		}
		if !strings.Contains(out, "[REDACTED]") {
			t.Errorf("%s does not say [REDACTED]: %s", name, out)
		}
	}
	if s.Reveal() != value {
		t.Fatal("Reveal lost the value")
	}
}

func TestSecretEqual(t *testing.T) {
	s := Secret("0123456789abcdef0123456789abcdef")
	if !s.Equal("0123456789abcdef0123456789abcdef") {
		t.Fatal("equal secret not accepted")
	}
	for _, c := range []string{"", "0123456789abcdef0123456789abcde", "0123456789abcdef0123456789abcdeF", "x"} {
		if s.Equal(c) {
			t.Fatalf("Equal(%q) = true", c)
		}
	}
	if Secret("").Equal("") {
		t.Fatal("an empty secret must never match")
	}
}
