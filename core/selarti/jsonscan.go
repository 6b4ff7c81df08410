package selarti

import (
	"bytes"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the small JSON scanner behind ParseWebhook. It checks the
// same grammar as encoding/json (RFC 8259, the same nesting limit) in one
// pass over the body without allocating, and decodes strings exactly as
// encoding/json does (invalid UTF-8 and lone surrogates become U+FFFD).
// encoding/json cannot be used directly: it resolves duplicate keys
// silently and matches struct fields case-insensitively, and its Decoder
// allocates for every token.

// maxNestingDepth is encoding/json's limit on nested arrays and objects
// within one value.
const maxNestingDepth = 10000

// errBodyEnd is the error for a body that ends inside the JSON object.
// Each is new: the caller may keep or change it.
func errBodyEnd() error {
	return &WebhookError{Reason: "invalid JSON: unexpected end of body"}
}

// scanner reads JSON from d, at offset p.
type scanner struct {
	d []byte
	p int
}

// isSpace reports whether c is JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n'
}

// more skips whitespace and reports whether anything follows.
func (s *scanner) more() bool {
	for s.p < len(s.d) && isSpace(s.d[s.p]) {
		s.p++
	}
	return s.p < len(s.d)
}

// peek skips whitespace and returns the next byte without consuming it,
// or errBodyEnd at the end of the body.
func (s *scanner) peek() (byte, error) {
	if !s.more() {
		return 0, errBodyEnd()
	}
	return s.d[s.p], nil
}

// syntaxError describes an unexpected byte the way encoding/json does,
// quoting that one byte and never more of the input.
func syntaxError(c byte, context string) error {
	return &WebhookError{Reason: "invalid JSON: invalid character " + quoteChar(c) + " " + context}
}

// quoteChar formats c as encoding/json's error messages do.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	return "'" + q[1:len(q)-1] + "'"
}

// skipString moves past the string starting at s.p (its opening quote)
// and reports whether it contains escapes.
func (s *scanner) skipString() (escaped bool, err error) {
	d := s.d
	i := s.p + 1
	for i < len(d) {
		c := d[i]
		if !stringSpecial[c] {
			i++
			continue
		}
		switch {
		case c == '"':
			s.p = i + 1
			return escaped, nil
		case c == '\\':
			escaped = true
			i++
			if i == len(d) {
				return false, errBodyEnd()
			}
			switch d[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for range 4 {
					if i == len(d) {
						return false, errBodyEnd()
					}
					if !isHex(d[i]) {
						return false, syntaxError(d[i], `in \u hexadecimal character escape`)
					}
					i++
				}
			default:
				return false, syntaxError(d[i], "in string escape code")
			}
		default:
			return false, syntaxError(c, "in string literal")
		}
	}
	return false, errBodyEnd()
}

// stringSpecial marks the bytes that end a run of plain string content:
// the quote, the backslash and the control characters (invalid there).
var stringSpecial = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// closing returns the byte that closes the container opened by c.
func closing(c byte) byte {
	if c == '{' {
		return '}'
	}
	return ']'
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipNumber moves past the number starting at s.p:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) skipNumber() error {
	d, i := s.d, s.p
	if d[i] == '-' {
		i++
	}
	// digits requires at least one digit at i, then takes the rest.
	digits := func(context string) error {
		if i == len(d) {
			return errBodyEnd()
		}
		if !isDigit(d[i]) {
			return syntaxError(d[i], context)
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
		return nil
	}
	switch {
	case i == len(d):
		return errBodyEnd()
	case d[i] == '0':
		i++
	default:
		if err := digits("in numeric literal"); err != nil {
			return err
		}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if err := digits("after decimal point in numeric literal"); err != nil {
			return err
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if err := digits("in exponent of numeric literal"); err != nil {
			return err
		}
	}
	s.p = i
	return nil
}

// skipLiteral moves past lit (true, false or null) starting at s.p.
func (s *scanner) skipLiteral(lit string) error {
	for k := range len(lit) {
		i := s.p + k
		if i == len(s.d) {
			return errBodyEnd()
		}
		if s.d[i] != lit[k] {
			return syntaxError(s.d[i], "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	s.p += len(lit)
	return nil
}

// skipKey moves past an object key and its colon.
func (s *scanner) skipKey() error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != '"' {
		return syntaxError(c, "looking for beginning of object key string")
	}
	if _, err := s.skipString(); err != nil {
		return err
	}
	return s.skipColon()
}

// skipColon moves past the colon after an object key.
func (s *scanner) skipColon() error {
	c, err := s.peek()
	if err != nil {
		return err
	}
	if c != ':' {
		return syntaxError(c, "after object key")
	}
	s.p++
	return nil
}

// skipValue checks the JSON value at s.p (after whitespace) and moves
// past it. Open arrays and objects are kept on a small stack rather than
// by recursion, so that deep nesting costs no goroutine stack.
func (s *scanner) skipValue() error {
	var buf [32]byte
	open := buf[:0] // '{' or '[' per open container, innermost last
	for {
		// A value starts here.
		c, err := s.peek()
		if err != nil {
			return err
		}
		switch {
		case c == '{' || c == '[':
			if len(open) == maxNestingDepth {
				return syntaxError(c, "exceeded max depth")
			}
			s.p++
			open = append(open, c)
			next, err := s.peek()
			if err != nil {
				return err
			}
			if next == closing(c) { // empty
				s.p++
				open = open[:len(open)-1]
				break
			}
			if c == '{' {
				if err := s.skipKey(); err != nil {
					return err
				}
			}
			continue // to the first member's value
		case c == '"':
			_, err = s.skipString()
		case c == '-' || isDigit(c):
			err = s.skipNumber()
		case c == 't':
			err = s.skipLiteral("true")
		case c == 'f':
			err = s.skipLiteral("false")
		case c == 'n':
			err = s.skipLiteral("null")
		default:
			return syntaxError(c, "looking for beginning of value")
		}
		if err != nil {
			return err
		}

		// After a value: close containers, or go on to the next member.
		for {
			if len(open) == 0 {
				return nil
			}
			c, err := s.peek()
			if err != nil {
				return err
			}
			inner := open[len(open)-1]
			if c == closing(inner) {
				s.p++
				open = open[:len(open)-1]
				continue
			}
			if c != ',' {
				if inner == '{' {
					return syntaxError(c, "after object key:value pair")
				}
				return syntaxError(c, "after array element")
			}
			s.p++
			if inner == '{' {
				if err := s.skipKey(); err != nil {
					return err
				}
			}
			break
		}
	}
}

// unquote decodes the body of a JSON string that skipString accepted
// (without its quotes) as encoding/json does: escapes resolved, a lone
// or unpaired surrogate escape and each byte of invalid UTF-8 replaced by
// U+FFFD.
func unquote(s []byte) string {
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s) // the common case: nothing to decode
	}
	var b strings.Builder
	b.Grow(len(s))
	for len(s) > 0 {
		n := bytes.IndexByte(s, '\\')
		if n < 0 {
			n = len(s)
		}
		writeValid(&b, s[:n])
		if s = s[n:]; len(s) < 2 {
			b.Write(s) // a lone backslash: unreachable for scanned input
			break
		}
		if s[1] != 'u' {
			b.WriteByte(unescape[s[1]])
			s = s[2:]
			continue
		}
		rr := getu4(s)
		if rr < 0 {
			b.WriteByte('\\') // unreachable for scanned input
			s = s[1:]
			continue
		}
		s = s[6:]
		if utf16.IsSurrogate(rr) {
			if dec := utf16.DecodeRune(rr, getu4(s)); dec != unicode.ReplacementChar {
				b.WriteRune(dec)
				s = s[6:]
				continue
			}
			rr = unicode.ReplacementChar
		}
		b.WriteRune(rr)
	}
	return b.String()
}

// unescape maps the byte after a backslash to what it stands for (\u
// aside).
var unescape = [256]byte{
	'"': '"', '\\': '\\', '/': '/',
	'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t',
}

// writeValid writes run to b with each byte of invalid UTF-8 replaced by
// U+FFFD, as encoding/json does.
func writeValid(b *strings.Builder, run []byte) {
	if utf8.Valid(run) {
		b.Write(run)
		return
	}
	for len(run) > 0 {
		r, size := utf8.DecodeRune(run)
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.Write(run[:size])
		}
		run = run[size:]
	}
}

// getu4 decodes \uXXXX at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// compact returns a JSON array or object that skipValue accepted without
// its insignificant whitespace, as json.Compact does.
func compact(raw []byte) string {
	var b strings.Builder
	b.Grow(len(raw))
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case isSpace(c):
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
