package selarti

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// maxNestingDepth is the nesting limit of encoding/json and of jsontext.
const maxNestingDepth = 10000

// jsonSeeds are JSON values, valid and not, for the fuzz tests.
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

// FuzzWebhookAgainstEncodingJSON checks ParseWebhook's reading of JSON
// (jsontext) against encoding/json's reading of the same body: a body that
// starts as an object is refused as invalid JSON exactly when encoding/json
// finds it invalid, with encoding/json's description of the error; a valid
// one yields, for every documented field, the same last raw value, the same
// repeats in the same order (encoding/json's Decoder walks the members), and
// the same decoded strings and compacted objects; and ParseWebhook's result
// is what its rules make of encoding/json's reading.
func FuzzWebhookAgainstEncodingJSON(f *testing.F) {
	for _, s := range webhookSeeds() {
		f.Add([]byte(s))
	}
	for _, s := range []string{`{"":n`, `{"a":"\`, `{"a":"\u12`, `{"a":1.`, `{"a":-`, `{"a":t`, `{"a" `, `{"a":[1,`, `{1.`} {
		f.Add([]byte(s))
	}
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
		f.Add([]byte(body(`"title":` + s)))
		f.Add([]byte(body(`"contacts":` + s + `,"contacts":[` + s + `]`)))
		f.Add([]byte(`{"external_chat_id":` + s + `,"message_id":"m","message_type":"bot","message_text":` + s + `}`))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got object
		err := got.scan(in)
		w, werr := ParseWebhook(in)
		if len(in) > 16<<10 {
			// encoding/json counts the object in its nesting limit,
			// ParseWebhook gives a field the whole limit: they may
			// disagree on a value nested 10,000 deep.
			return
		}
		var we *WebhookError
		if err != nil && !errors.As(err, &we) {
			t.Fatalf("error %v is %T, want *WebhookError", err, err)
		}
		trimmed := bytes.TrimLeft(in, " \t\r\n")
		switch {
		case len(trimmed) == 0:
			if err == nil || we.Reason != "body is empty" {
				t.Fatalf("%q: err = %v, want body is empty", in, err)
			}
			return
		case trimmed[0] != '{':
			if err == nil || we.Reason != "body must be one JSON object" {
				t.Fatalf("%q: err = %v, want body must be one JSON object", in, err)
			}
			return
		case !json.Valid(in):
			if want, exact := encodingJSONReason(in); err == nil ||
				(exact && we.Reason != want) || (!exact && !strings.HasPrefix(we.Reason, "invalid JSON")) {
				t.Fatalf("%q: err = %v; encoding/json: %s", in, err, want)
			}
			return
		case err != nil:
			t.Fatalf("%q: refused a body that encoding/json reads: %v", in, err)
		}

		want := referenceObject(t, in)
		for i := range numFields {
			if (got.raw[i] == nil) != (want.raw[i] == nil) || !bytes.Equal(got.raw[i], want.raw[i]) {
				t.Fatalf("%s: raw value %q, encoding/json: %q", fieldNames[i], got.raw[i], want.raw[i])
			}
		}
		if got.dup != want.dup || !reflect.DeepEqual(got.order, want.order) {
			t.Fatalf("repeats %v %v, encoding/json: %v %v", got.dup, got.order, want.dup, want.order)
		}
		for i, raw := range want.raw {
			switch kindOf(raw) {
			case "a string":
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatal(err)
				}
				if u := unquote(raw); u != s {
					t.Fatalf("%s: %q decodes to %q, encoding/json: %q", fieldNames[i], raw, u, s)
				}
			case "an object", "an array":
				var b bytes.Buffer
				if err := json.Compact(&b, raw); err != nil {
					t.Fatal(err)
				}
				if c := compact(raw); c != b.String() {
					t.Fatalf("%s: %q compacts to %q, json.Compact: %q", fieldNames[i], raw, c, b.String())
				}
			}
		}
		ww, wwerr := want.webhook()
		if !reflect.DeepEqual(w, ww) || (werr == nil) != (wwerr == nil) || (werr != nil && werr.Error() != wwerr.Error()) {
			t.Fatalf("ParseWebhook = %+v, %v; from encoding/json's reading: %+v, %v", w, werr, ww, wwerr)
		}
	})
}

// referenceObject reads the members of the JSON object in with
// encoding/json's Decoder, which sees each member, repeats included.
func referenceObject(t *testing.T, in []byte) object {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(in))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("encoding/json: %v, %v", tok, err)
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		o.set(fieldIndex(tok.(string)), raw)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		t.Fatalf("encoding/json: %v, %v", tok, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("encoding/json: data after the object: %v", err)
	}
	return o
}

// encodingJSONReason is the reason ParseWebhook gives for a body that
// starts as an object and that encoding/json finds invalid: encoding/json's
// own message, or the end of the body where encoding/json reads all of it
// without an error (then the byte 0x01, invalid anywhere in JSON, is where
// it stops). exact is false where the message is about the nesting limit,
// which encoding/json counts from the body's object and ParseWebhook from
// the object's members (see reread).
func encodingJSONReason(in []byte) (reason string, exact bool) {
	var se *json.SyntaxError
	if !errors.As(json.Unmarshal(in, &struct{}{}), &se) {
		return "(no syntax error)", true
	}
	msg := se.Error()
	switch {
	case strings.HasSuffix(msg, "after top-level value"):
		return "unexpected data after the JSON object", true
	case errors.As(json.Unmarshal(append(in[:len(in):len(in)], 1), &struct{}{}), &se) && se.Offset == int64(len(in))+1:
		return "invalid JSON: unexpected end of body", true
	}
	return "invalid JSON: " + msg, !strings.Contains(msg, "exceeded max depth")
}

// deep returns a JSON value nested n deep, arrays or objects.
func deep(n int, objects bool) string {
	if objects {
		return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)
	}
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

func TestParseWebhookDepth(t *testing.T) {
	for _, tt := range []struct {
		depth int
		ok    bool
	}{{maxNestingDepth, true}, {maxNestingDepth + 1, false}} {
		for _, objects := range []bool{false, true} {
			v := deep(tt.depth, objects)
			_, err := ParseWebhook([]byte(body(`"x":` + v)))
			if (err == nil) != tt.ok || (err != nil && err.Error() != "webhook: invalid JSON: invalid character '"+v[:1]+"' exceeded max depth") {
				t.Errorf("%.5s × %d: err = %v, want ok = %v", v, tt.depth, err, tt.ok)
			}
			if json.Valid([]byte(v)) != tt.ok {
				t.Errorf("%.5s × %d: encoding/json disagrees on the value alone", v, tt.depth)
			}
		}
	}
}

// A value nested 10,000 deep is read on its own (see reread); what comes
// after it is read as after any other value.
func TestParseWebhookAfterDeepValue(t *testing.T) {
	arr, obj := deep(maxNestingDepth, false), deep(maxNestingDepth, true)
	routing := `"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":"x"`
	t.Run("accepted", func(t *testing.T) {
		for _, tt := range []struct {
			name, in string
			check    func(Webhook) bool
		}{
			{"contacts", `{"contacts":` + arr + `,` + routing + `}`, func(w Webhook) bool { return w.Contacts == arr }},
			{"contacts with spaces", `{"contacts": ` + strings.ReplaceAll(obj, ":", " : ") + ` ,` + routing + `}`, func(w Webhook) bool { return w.Contacts == obj }},
			{"routing fields after two deep values", `{"a":` + arr + ` , "b" :` + obj + `,` + routing + `,"title":"t"}`, func(w Webhook) bool { return w.Title == "t" && w.MessageText == "x" }},
			{"last member", `{` + routing + `,"a":` + obj + " }\n", func(w Webhook) bool { return w.ExternalChatID == "c" }},
			{"repeat after a deep value", `{"title":"a","contacts":` + arr + `,"title":"b",` + routing + `}`, func(w Webhook) bool {
				return w.Title == "b" && reflect.DeepEqual(w.Warnings, []string{"title: appears more than once, the last value is used"})
			}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				w, err := ParseWebhook([]byte(tt.in))
				if err != nil {
					t.Fatal(err)
				}
				if !tt.check(w) {
					t.Errorf("unexpected result %.200v", w)
				}
			})
		}
	})
	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct{ name, in, want string }{
			{"routing field", `{"external_chat_id":` + arr + `,"message_id":"m","message_type":"bot","message_text":"x"}`, "webhook: external_chat_id: expected a string or a number, got an array"},
			{"repeated routing field", `{"message_id":` + arr + `,` + routing + `}`, "webhook: message_id: appears more than once"},
			{"trailing comma", `{"a":` + arr + `,}`, "webhook: invalid JSON: invalid character '}' looking for beginning of object key string"},
			{"missing comma", `{"a":` + arr + ` "b":1}`, `webhook: invalid JSON: invalid character '"' after object key:value pair`},
			{"number after the value", `{"a":` + arr + `.5}`, "webhook: invalid JSON: invalid character '.' after object key:value pair"},
			{"end of body after the value", `{"a":` + arr + ` `, "webhook: invalid JSON: unexpected end of body"},
			{"end of body in the value", `{"a":` + arr[:maxNestingDepth+5], "webhook: invalid JSON: unexpected end of body"},
			{"error in the value", `{"a":` + strings.Replace(obj, `"a":1`, `"a":1,}`, 1) + `}`, "webhook: invalid JSON: invalid character '}' looking for beginning of object key string"},
			{"error in the next value", `{"a":` + arr + `,"b":[1,]}`, "webhook: invalid JSON: invalid character ']' looking for beginning of value"},
			{"data after the object", `{"a":` + arr + `} x`, "webhook: unexpected data after the JSON object"},
			{"missing colon", `{"a":` + arr + `,"b" 1}`, "webhook: invalid JSON: invalid character '1' after object key"},
			{"too deep after a deep value", `{"a":` + arr + `,"b":[` + arr + `]}`, "webhook: invalid JSON: invalid character '[' exceeded max depth"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				w, err := ParseWebhook([]byte(tt.in))
				if err == nil || err.Error() != tt.want {
					t.Errorf("err = %v, want %s", err, tt.want)
				}
				if !reflect.DeepEqual(w, Webhook{}) {
					t.Errorf("non-zero Webhook with an error")
				}
			})
		}
	})
}

func TestSyntaxErrorText(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"x":[1,]}`, `invalid character ']' looking for beginning of value`},
		{`{"x" 1}`, `invalid character '1' after object key`},
		{`{"x":{"a" 1}}`, `invalid character '1' after object key`},
		{`{"x":1 "b":2}`, `invalid character '"' after object key:value pair`},
		{`{"x":[1 2]}`, `invalid character '2' after array element`},
		{`{1:2}`, `invalid character '1' looking for beginning of object key string`},
		{`{"x":{1:2}}`, `invalid character '1' looking for beginning of object key string`},
		{`{"x":"\x"}`, `invalid character 'x' in string escape code`},
		{`{"x":"\u12g4"}`, `invalid character 'g' in \u hexadecimal character escape`},
		{"{\"x\":\"\x01\"}", `invalid character '\x01' in string literal`},
		{"{\"x\x01\":1}", `invalid character '\x01' in string literal`},
		{`{"x":tru }`, `invalid character ' ' in literal true (expecting 'e')`},
		{`{"x":nul}`, `invalid character '}' in literal null (expecting 'l')`},
		{`{"x":1.x}`, `invalid character 'x' after decimal point in numeric literal`},
		{`{"x":1e+x}`, `invalid character 'x' in exponent of numeric literal`},
		{`{"x":-x}`, `invalid character 'x' in numeric literal`},
		{`{"x":'a'}`, `invalid character '\'' looking for beginning of value`},
		{`{"x":[1`, `unexpected end of body`},
		{`{"x":"abc`, `unexpected end of body`},
		{`{"x`, `unexpected end of body`},
		{`{`, `unexpected end of body`},
		{`{"x":1,`, `unexpected end of body`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseWebhook([]byte(tt.in))
			if want := "webhook: invalid JSON: " + tt.want; err == nil || err.Error() != want {
				t.Errorf("err = %v, want %q", err, want)
			}
		})
	}
}

func TestUnquoteAndCompact(t *testing.T) {
	for _, s := range jsonSeeds {
		raw := []byte(s)
		if !json.Valid(raw) {
			continue
		}
		switch kindOf(raw) {
		case "a string":
			var want string
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if got := unquote(raw); got != want {
				t.Errorf("unquote(%q) = %q, json.Unmarshal: %q", raw, got, want)
			}
		case "an object", "an array":
			raw = bytes.TrimSpace(raw)
			var want bytes.Buffer
			if err := json.Compact(&want, raw); err != nil {
				t.Fatal(err)
			}
			if got := compact(raw); got != want.String() {
				t.Errorf("compact(%q) = %q, json.Compact: %q", raw, got, want.String())
			}
		}
	}
	// Longer than unquote's and compact's buffers on the stack.
	long := strings.Repeat(`é\n\ud800 `, 100)
	var want string
	if err := json.Unmarshal([]byte(`"`+long+`"`), &want); err != nil {
		t.Fatal(err)
	}
	if got := unquote([]byte(`"` + long + `"`)); got != want {
		t.Errorf("unquote of %d bytes: %q, want %q", len(long), got, want)
	}
	arr := "[ " + strings.Repeat(`"a b" , `, 200) + "1 ]"
	if got, want := compact([]byte(arr)), "["+strings.Repeat(`"a b",`, 200)+"1]"; got != want {
		t.Errorf("compact of %d bytes: %q, want %q", len(arr), got, want)
	}
}
