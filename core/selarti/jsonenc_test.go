package selarti

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

// encodeMap is what Send's body was built with before appendObject, and
// the reference for it: a json.Encoder without HTML escaping.
func encodeMap(t *testing.T, m map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzAppendObject checks appendObject byte for byte against encoding/json.
func FuzzAppendObject(f *testing.F) {
	for _, s := range []string{
		"", "plain", `"quoted" \ back\slash / slash`, "<b>&amp;</b>", "tab\tnl\ncr\rbs\bff\f",
		"\x00\x01\x1f\x7f", "Привет 😀", "\u2028\u2029", "a\xffb\xc3\x28c\xed\xa0\x80", "\ufffd",
	} {
		f.Add(s, "task_id", s)
	}
	f.Fuzz(func(t *testing.T, a, key, b string) {
		members := []member{{"message", a}, {key, b}, {"chat_id", "webchat:1"}}
		want := map[string]string{}
		for _, m := range members {
			if _, dup := want[m.key]; dup {
				return // a Client refuses colliding field names
			}
			want[m.key] = m.value
		}
		got := appendObject(nil, members)
		if w := encodeMap(t, want); !bytes.Equal(got, w) {
			t.Fatalf("appendObject = %q\nencoding/json: %q", got, w)
		}
	})
}

func TestSendBodyBytes(t *testing.T) {
	msg := Message{TaskID: "t1", ChatID: "webchat:abc", Text: "<b>\"Hi\"</b> & \\ \n\t\x01 \u2028 Привет \xff", Name: "Ann", Phone: "+49 1", IdempotencyKey: "k1"}
	for _, tt := range []struct {
		name string
		wire Wire
		want map[string]string
	}{
		{"default wire", Wire{}, map[string]string{"task_id": "t1", "chat_id": "webchat:abc", "message": msg.Text, "name": "Ann", "phone": "+49 1"}},
		{"custom wire", Wire{TextField: "a_text", ChatIDField: "zz", IdempotencyKeyField: "idem"},
			map[string]string{"task_id": "t1", "zz": "webchat:abc", "a_text": msg.Text, "name": "Ann", "phone": "+49 1", "idem": "k1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Config{BaseURL: "http://127.0.0.1:1", APIKey: "k", Wire: tt.wire})
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.encode(msg)
			if err != nil {
				t.Fatal(err)
			}
			if want := encodeMap(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("body = %q\nwant  %q", got, want)
			}
		})
	}
}

// jsontext's Encoder writes what encoding/json writes, U+2028 and U+2029
// included (EscapeForJS), but for invalid UTF-8: a raw U+FFFD where
// encoding/json writes the escape \ufffd (both decode to the same string,
// but the bytes differ). That is why Send keeps appendObject, whose bytes
// are encoding/json's (TestSendBodyBytes, FuzzAppendObject); its cost is
// measured by BenchmarkSendEncodeJSONText.
func TestJSONTextEncoderInvalidUTF8(t *testing.T) {
	var (
		enc jsontext.Encoder
		out bytes.Buffer
	)
	for _, tt := range []struct {
		text string
		same bool
	}{
		{"<b>\"Hi\"</b> & \\ \n\t\x01\x7f \u2028\u2029 Привет \ufffd", true},
		{"a\xffb", false},
	} {
		m := Message{TaskID: "t", ChatID: "c", Text: tt.text}
		got, err := encodeJSONText(&enc, &out, DefaultWire(), m)
		if err != nil {
			t.Fatal(err)
		}
		want := encodeMap(t, map[string]string{"task_id": "t", "chat_id": "c", "message": tt.text})
		if bytes.Equal(got, want) != tt.same {
			t.Errorf("%q: jsontext %q, encoding/json %q", tt.text, got, want)
		}
		var a, b map[string]string
		if json.Unmarshal(got, &a) != nil || json.Unmarshal(want, &b) != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%q: jsontext %q and encoding/json %q read differently", tt.text, got, want)
		}
	}
}
