package core

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
)

// Secret holds a credential (an API key, a bot token, a webhook secret).
// Every way of printing it, fmt, JSON, slog, yields "[REDACTED]", so a
// secret cannot leak into logs or error messages by accident. Use Reveal
// at the one place that must send it.
type Secret string

// Redacted is what every printed Secret shows.
const Redacted = "[REDACTED]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, for %#v.
func (s Secret) GoString() string { return Redacted }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML, and JSON map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Equal compares the secret with a candidate in constant time. Both sides
// are hashed first so that the comparison does not even leak the length.
func (s Secret) Equal(candidate string) bool {
	if s == "" {
		return false
	}
	a := sha256.Sum256([]byte(s))
	b := sha256.Sum256([]byte(candidate))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
