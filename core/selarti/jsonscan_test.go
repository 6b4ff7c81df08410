package selarti

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// jsonSeeds are JSON values, valid and not, for the scanner's fuzz tests.
var jsonSeeds = []string{
	`""`, `"abc"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"\u0041\u00e9\u4e2d"`, `"\ud83d\ude00"`,
	`"\ud800"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`, "\"a\xffb\xc3\x28\"",
	"\"\xed\xa0\x80\"", `"\ufffd"`, "\"\u2028\"", `"\x"`, `"\u12g4"`, "\"a\x01\"", `"abc`, `"\`,
	`0`, `-0`, `1.5e-3`, `-12E+05`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`, `0x10`,
	`true`, `false`, `null`, `tru`, `nul`, `True`, `nulll`,
	`{}`, `[]`, `{ }`, `[ ]`, `{"a":1}`, ` { "a" : [ 1 , { "b" : null } ] } `, `{"a":1,}`, `[1,]`,
	`{"a" 1}`, `{"a":1 "b":2}`, `{1:2}`, `[1 2]`, `{"a":[}`, `[{]`, `{"a":{"b":{"c":[[[]]]}}}`,
	"[\"\\\" ] \", 1 ,\t\"x\"]", `[1]x`, `{} {}`, ``, ` `,
}

// FuzzJSONValue checks the scanner against encoding/json: it accepts
// exactly the values json.Valid does, and compact agrees with
// json.Compact.
func FuzzJSONValue(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s := scanner{d: in}
		err := s.skipValue()
		if err == nil {
			if s.more() {
				err = &WebhookError{Reason: "trailing data"}
			}
		}
		if valid := json.Valid(in); valid != (err == nil) {
			t.Fatalf("%q: json.Valid = %v, scanner error = %v", in, valid, err)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "webhook: invalid JSON: ") && err.Error() != "webhook: trailing data" {
				t.Fatalf("%q: error %q", in, err)
			}
			return
		}
		v := bytes.Trim(in, " \t\r\n")
		if v[0] != '{' && v[0] != '[' {
			return
		}
		var want bytes.Buffer
		if err := json.Compact(&want, v); err != nil {
			t.Fatal(err)
		}
		if got := compact(v); got != want.String() {
			t.Fatalf("compact(%q) = %q, json.Compact: %q", v, got, want.String())
		}
	})
}

// FuzzUnquote checks that a string the scanner accepts decodes exactly as
// json.Unmarshal decodes it.
func FuzzUnquote(f *testing.F) {
	for _, s := range jsonSeeds {
		if strings.HasPrefix(s, `"`) {
			f.Add([]byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 || in[0] != '"' {
			return
		}
		s := scanner{d: in}
		if _, err := s.skipString(); err != nil || s.p != len(in) {
			return
		}
		var want string
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatalf("%q: the scanner accepted what json.Unmarshal refuses: %v", in, err)
		}
		if got := unquote(in[1 : len(in)-1]); got != want {
			t.Fatalf("unquote(%q) = %q, json.Unmarshal: %q", in, got, want)
		}
	})
}

func TestSkipValueDepth(t *testing.T) {
	for _, tt := range []struct {
		depth int
		ok    bool
	}{{maxNestingDepth, true}, {maxNestingDepth + 1, false}} {
		for _, open := range []string{"[", `{"a":`} {
			in := strings.Repeat(open, tt.depth) + "1" + strings.Repeat(string(closing(open[0])), tt.depth)
			s := scanner{d: []byte(in)}
			err := s.skipValue()
			if (err == nil) != tt.ok || (err != nil && !strings.Contains(err.Error(), "exceeded max depth")) {
				t.Errorf("%s × %d: err = %v, want ok = %v", open, tt.depth, err, tt.ok)
			}
			if json.Valid([]byte(in)) != tt.ok {
				t.Errorf("%s × %d: encoding/json disagrees", open, tt.depth)
			}
		}
	}
}

func TestSyntaxErrorText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`[1,]`, `invalid character ']' looking for beginning of value`},
		{`{"a" 1}`, `invalid character '1' after object key`},
		{`{"a":1 "b":2}`, `invalid character '"' after object key:value pair`},
		{`[1 2]`, `invalid character '2' after array element`},
		{`{1:2}`, `invalid character '1' looking for beginning of object key string`},
		{`"\x"`, `invalid character 'x' in string escape code`},
		{`"\u12g4"`, `invalid character 'g' in \u hexadecimal character escape`},
		{"\"\x01\"", `invalid character '\x01' in string literal`},
		{`tru `, `invalid character ' ' in literal true (expecting 'e')`},
		{`1.x`, `invalid character 'x' after decimal point in numeric literal`},
		{`1e+x`, `invalid character 'x' in exponent of numeric literal`},
		{`-x`, `invalid character 'x' in numeric literal`},
		{`'a'`, `invalid character '\'' looking for beginning of value`},
		{`[1`, `unexpected end of body`},
		{`"abc`, `unexpected end of body`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			s := scanner{d: []byte(tt.in)}
			err := s.skipValue()
			if want := "webhook: invalid JSON: " + tt.want; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
		})
	}
}
