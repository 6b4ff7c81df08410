// Package text has the string helpers that the core, the engine and every
// adapter share, so that each exists once and is right once: cutting a
// string to a byte budget without splitting a UTF-8 character.
package text

import "unicode/utf8"

// Clip returns s cut to at most n bytes, at a UTF-8 character boundary
// (a character that does not fit is dropped whole, never halved). A
// negative n counts as 0.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Ellipsis is what Shorten puts where it cut.
const Ellipsis = "…"

// Shorten is Clip followed by an ellipsis when something was cut: for
// error messages and log lines, which must stay short however long and
// hostile the input.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Clip(s, n) + Ellipsis
}
