package selarti

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// body builds a webhook body from the routing fields plus extra members
// (raw JSON text after a comma).
func body(extra string) string {
	b := `{"external_chat_id":"webchat:abc123","message_id":"m1","message_type":"bot","message_text":"Hello!"`
	if extra != "" {
		b += "," + extra
	}
	return b + "}"
}

func TestParseWebhookFull(t *testing.T) {
	in := `{
		"channel_id": "1721129985149x1",
		"close": "no",
		"company_id": 42,
		"contacts": {"phone": "+49 123", "username": "ann"},
		"external_chat_id": "tg-sales:42",
		"get_contact": "yes",
		"interest": true,
		"is_bot": "false",
		"manager_id": "mgr",
		"message_id": "1721129985149x478019552540622850",
		"message_text": "*Hi* there",
		"message_type": "operator",
		"operator": "yes",
		"panel_url": "https://selarti.com/panel/1",
		"share_url": "https://selarti.com/share/1",
		"success": 0,
		"task_id": "1721129985149x478019552540622850",
		"thread_id": "th1",
		"title": "Ann Lee",
		"wh_type": "all_messages",
		"something_new": {"x": [1, 2]}
	}`
	got, err := ParseWebhook([]byte(in))
	if err != nil {
		t.Fatalf("ParseWebhook: %v", err)
	}
	want := Webhook{
		ExternalChatID: "tg-sales:42",
		MessageID:      "1721129985149x478019552540622850",
		MessageType:    TypeOperator,
		MessageText:    "*Hi* there",
		Close:          false,
		Operator:       true,
		GetContact:     true,
		Interest:       true,
		Success:        false,
		IsBot:          false,
		TaskID:         "1721129985149x478019552540622850",
		ThreadID:       "th1",
		ChannelID:      "1721129985149x1",
		CompanyID:      "42",
		ManagerID:      "mgr",
		Title:          "Ann Lee",
		PanelURL:       "https://selarti.com/panel/1",
		ShareURL:       "https://selarti.com/share/1",
		WhType:         "all_messages",
		Contacts:       `{"phone":"+49 123","username":"ann"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseWebhook =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseWebhookRouting(t *testing.T) {
	tests := []struct {
		name                string
		in                  string
		chat, id, typ, text string
	}{
		{"plain", body(""), "webchat:abc123", "m1", "bot", "Hello!"},
		{"surrounding whitespace", " \n\t" + body("") + "\r\n ", "webchat:abc123", "m1", "bot", "Hello!"},
		{"numeric ids", `{"external_chat_id":123456789,"message_id":-17,"message_type":"bot","message_text":"x"}`, "123456789", "-17", "bot", "x"},
		{"big numeric id kept literally", `{"external_chat_id":1721129985149478019552540622850,"message_id":1.5e3,"message_type":"bot","message_text":"x"}`, "1721129985149478019552540622850", "1.5e3", "bot", "x"},
		{"type trimmed and lower-cased", `{"external_chat_id":"c","message_id":"m","message_type":"  OPERATOR ","message_text":"x"}`, "c", "m", "operator", "x"},
		{"type user with empty text", `{"external_chat_id":"c","message_id":"m","message_type":"User","message_text":""}`, "c", "m", "user", ""},
		{"ids not trimmed", `{"external_chat_id":" c ","message_id":"m","message_type":"bot","message_text":"x"}`, " c ", "m", "bot", "x"},
		{"escapes and unicode", `{"external_chat_id":"webchat:\u00e9","message_id":"m","message_type":"bot","message_text":"line\nnext 😀"}`, "webchat:é", "m", "bot", "line\nnext 😀"},
		{"max lengths", `{"external_chat_id":"` + strings.Repeat("c", 512) + `","message_id":"` + strings.Repeat("m", 256) + `","message_type":"bot","message_text":"x"}`, strings.Repeat("c", 512), strings.Repeat("m", 256), "bot", "x"},
		{"unknown fields ignored", body(`"foo":[{"bar":null}],"EXTERNAL_CHAT_ID":"other"`), "webchat:abc123", "m1", "bot", "Hello!"},
		{"keys and values with escapes", `{"ext\u0065rnal_chat_id":"c\/1","message\u005fid":"m","message_type":"\u0042ot","message_text":"a\ud83d\ude00\n"}`, "c/1", "m", "bot", "a😀\n"},
		{"routing fields last", `{"title":"t","close":"yes","contacts":{"a":[1]},"message_text":"x","message_type":"user","message_id":"m","external_chat_id":"c"}`, "c", "m", "user", "x"},
		{"deeply nested unknown field", body(`"x":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000)), "webchat:abc123", "m1", "bot", "Hello!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tt.in))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if w.ExternalChatID != tt.chat || w.MessageID != tt.id || w.MessageType != tt.typ || w.MessageText != tt.text {
				t.Errorf("got (%q, %q, %q, %q), want (%q, %q, %q, %q)",
					w.ExternalChatID, w.MessageID, w.MessageType, w.MessageText, tt.chat, tt.id, tt.typ, tt.text)
			}
			if len(w.Warnings) != 0 {
				t.Errorf("Warnings = %v, want none", w.Warnings)
			}
		})
	}
}

func TestParseWebhookErrors(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		in     string
		field  string
		reason string
	}{
		{"empty body", "", "", "empty"},
		{"blank body", " \n ", "", "empty"},
		{"null", "null", "", "one JSON object"},
		{"array", `[` + body("") + `]`, "", "one JSON object"},
		{"string", `"hello"`, "", "one JSON object"},
		{"number", `42`, "", "one JSON object"},
		{"two objects", body("") + body(""), "", "after the JSON object"},
		{"trailing garbage", body("") + " x", "", "after the JSON object"},
		{"trailing comma", `{"external_chat_id":"c",}`, "", "invalid JSON"},
		{"truncated", `{"external_chat_id":"c"`, "", "invalid JSON"},
		{"missing colon", `{"external_chat_id" "c"}`, "", "invalid JSON"},
		{"bom", "\ufeff" + body(""), "", "one JSON object"},
		{"bad escape in an unknown field", body(`"x":"\q"`), "", "invalid JSON: invalid character 'q' in string escape code"},
		{"control character in an unknown field", body("\"x\":\"a\tb\""), "", `invalid JSON: invalid character '\t' in string literal`},
		{"bad number in an unknown field", body(`"x":01`), "", "invalid JSON: invalid character '1' after object key:value pair"},
		{"nested too deep", body(`"x":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001)), "", "invalid JSON: invalid character '[' exceeded max depth"},
		{"syntax error after a bad routing field", `{"external_chat_id":null,"x":}`, "", "invalid JSON"},

		{"chat id missing", `{"message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "missing"},
		{"chat id empty", `{"external_chat_id":"","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "empty"},
		{"chat id blank", `{"external_chat_id":"  ","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "empty"},
		{"chat id null", `{"external_chat_id":null,"message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "got null"},
		{"chat id bool", `{"external_chat_id":true,"message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "got a boolean"},
		{"chat id object", `{"external_chat_id":{"id":1},"message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "got an object"},
		{"chat id too long", `{"external_chat_id":"` + long(513) + `","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "longer than 512 bytes"},
		{"chat id invalid utf8", "{\"external_chat_id\":\"c\xff\",\"message_id\":\"m\",\"message_type\":\"bot\",\"message_text\":\"x\"}", FieldExternalChatID, "invalid UTF-8"},
		{"chat id lone surrogate", `{"external_chat_id":"c\ud800","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "invalid UTF-8"},
		{"chat id control char", `{"external_chat_id":"c\u0000d","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "control character"},
		{"chat id duplicate", `{"external_chat_id":"a","external_chat_id":"b","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "more than once"},
		{"chat id duplicate spelled with an escape", `{"external_chat_id":"a","external\u005fchat_id":"a","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "more than once"},
		{"chat id U+FFFD", `{"external_chat_id":"c\ufffd","message_id":"m","message_type":"bot","message_text":"x"}`, FieldExternalChatID, "invalid UTF-8"},

		{"message id missing", `{"external_chat_id":"c","message_type":"bot","message_text":"x"}`, FieldMessageID, "missing"},
		{"message id empty", `{"external_chat_id":"c","message_id":"","message_type":"bot","message_text":"x"}`, FieldMessageID, "empty"},
		{"message id array", `{"external_chat_id":"c","message_id":["m"],"message_type":"bot","message_text":"x"}`, FieldMessageID, "got an array"},
		{"message id too long", `{"external_chat_id":"c","message_id":"` + long(257) + `","message_type":"bot","message_text":"x"}`, FieldMessageID, "longer than 256 bytes"},

		{"type missing", `{"external_chat_id":"c","message_id":"m","message_text":"x"}`, FieldMessageType, "missing"},
		{"type unknown", `{"external_chat_id":"c","message_id":"m","message_type":"admin","message_text":"x"}`, FieldMessageType, `unknown type "admin"`},
		{"type a flag word", `{"external_chat_id":"c","message_id":"m","message_type":"yes","message_text":"x"}`, FieldMessageType, `unknown type "yes"`},
		{"type with a tab", `{"external_chat_id":"c","message_id":"m","message_type":"bot\t?","message_text":"x"}`, FieldMessageType, `unknown type "bot\t?"`},
		{"type empty", `{"external_chat_id":"c","message_id":"m","message_type":"","message_text":"x"}`, FieldMessageType, "unknown type"},
		{"type number", `{"external_chat_id":"c","message_id":"m","message_type":1,"message_text":"x"}`, FieldMessageType, "got a number"},
		{"type null", `{"external_chat_id":"c","message_id":"m","message_type":null,"message_text":"x"}`, FieldMessageType, "got null"},
		{"type duplicate", `{"external_chat_id":"c","message_id":"m","message_type":"user","message_type":"bot","message_text":"x"}`, FieldMessageType, "more than once"},

		{"text missing", `{"external_chat_id":"c","message_id":"m","message_type":"bot"}`, FieldMessageText, "missing"},
		{"text null", `{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":null}`, FieldMessageText, "got null"},
		{"text number", `{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":5}`, FieldMessageText, "got a number"},
		{"text empty for bot", `{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":""}`, FieldMessageText, "empty in a bot message"},
		{"text blank for operator", `{"external_chat_id":"c","message_id":"m","message_type":"operator","message_text":" \n "}`, FieldMessageText, "empty in a operator message"},
		{"text missing for user", `{"external_chat_id":"c","message_id":"m","message_type":"user"}`, FieldMessageText, "missing"},
		{"text invalid utf8", "{\"external_chat_id\":\"c\",\"message_id\":\"m\",\"message_type\":\"bot\",\"message_text\":\"a\xc3\x28b\"}", FieldMessageText, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseWebhook succeeded (%+v), want an error", w)
			}
			var we *WebhookError
			if !errors.As(err, &we) {
				t.Fatalf("err = %v (%T), want *WebhookError", err, err)
			}
			if we.Field != tt.field || !strings.Contains(we.Reason, tt.reason) {
				t.Errorf("err = %q (field %q), want field %q and a reason containing %q", err, we.Field, tt.field, tt.reason)
			}
			if !reflect.DeepEqual(w, Webhook{}) {
				t.Errorf("got a non-zero Webhook with the error: %+v", w)
			}
		})
	}
}

func TestParseWebhookFlags(t *testing.T) {
	tests := []struct {
		raw      string // JSON value of "close"; "" means absent
		want     bool
		wantWarn bool
	}{
		{"", false, false},
		{"null", false, false},
		{"true", true, false},
		{"false", false, false},
		{`"yes"`, true, false},
		{`"no"`, false, false},
		{`" YES "`, true, false},
		{`"True"`, true, false},
		{`"false"`, false, false},
		{`"1"`, true, false},
		{`"0"`, false, false},
		{`"y"`, true, false},
		{`"N"`, false, false},
		{`"да"`, true, false},
		{`"ДА"`, true, false},
		{`"Нет"`, false, false},
		{`""`, false, false},
		{`"\u0079es"`, true, false},
		{`"\tNo\n"`, false, false},
		{`"YEſ"`, false, true}, // not folded to "yes" (strings.ToLower keeps ſ)
		{`"yes\u0000"`, false, true},
		{`"operator"`, false, true},
		{"1", true, false},
		{"0", false, false},
		{"1.0", true, false},
		{"1e0", true, false},
		{"-0", false, false},
		{"0.0e5", false, false},
		{"1e400", false, true},
		{"9", false, true},
		{"2", false, true},
		{"-1", false, true},
		{`"maybe"`, false, true},
		{`"yes please"`, false, true},
		{"{}", false, true},
		{`["yes"]`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			extra := ""
			if tt.raw != "" {
				extra = `"close":` + tt.raw
			}
			w, err := ParseWebhook([]byte(body(extra)))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if w.Close != tt.want {
				t.Errorf("Close = %v, want %v", w.Close, tt.want)
			}
			var wantWarnings []string
			if tt.wantWarn {
				wantWarnings = []string{"close: unrecognised flag value"}
			}
			if !reflect.DeepEqual(w.Warnings, wantWarnings) {
				t.Errorf("Warnings = %q, want %q", w.Warnings, wantWarnings)
			}
		})
	}
}

func TestParseWebhookEachFlag(t *testing.T) {
	w, err := ParseWebhook([]byte(body(`"close":"yes","operator":"yes","get_contact":"yes","interest":"yes","success":"yes","is_bot":"yes"`)))
	if err != nil {
		t.Fatal(err)
	}
	if !w.Close || !w.Operator || !w.GetContact || !w.Interest || !w.Success || !w.IsBot {
		t.Errorf("flags not all set: %+v", w)
	}
	w, err = ParseWebhook([]byte(body(`"close":"?","operator":"?","get_contact":"?","interest":"?","success":"?","is_bot":"?"`)))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"close: unrecognised flag value", "operator: unrecognised flag value",
		"get_contact: unrecognised flag value", "interest: unrecognised flag value",
		"success: unrecognised flag value", "is_bot: unrecognised flag value",
	}
	if !reflect.DeepEqual(w.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", w.Warnings, want)
	}
}

func TestParseWebhookLenientFields(t *testing.T) {
	tests := []struct {
		name         string
		extra        string
		check        func(Webhook) string // the value under test
		want         string
		wantWarnings []string
	}{
		{"title string", `"title":"Ann"`, func(w Webhook) string { return w.Title }, "Ann", nil},
		{"task id number", `"task_id":1721129985149`, func(w Webhook) string { return w.TaskID }, "1721129985149", nil},
		{"thread id null", `"thread_id":null`, func(w Webhook) string { return w.ThreadID }, "", nil},
		{"manager id object", `"manager_id":{"id":"x"}`, func(w Webhook) string { return w.ManagerID }, "", []string{"manager_id: expected a string or a number, got an object"}},
		{"wh type bool", `"wh_type":true`, func(w Webhook) string { return w.WhType }, "", []string{"wh_type: expected a string or a number, got a boolean"}},
		{"panel url array", `"panel_url":["a"]`, func(w Webhook) string { return w.PanelURL }, "", []string{"panel_url: expected a string or a number, got an array"}},
		{"contacts string", `"contacts":"+49 123, @ann"`, func(w Webhook) string { return w.Contacts }, "+49 123, @ann", nil},
		{"contacts object compacted", `"contacts": { "phone" : "+49 123" , "tags" : [ 1, 2 ] }`, func(w Webhook) string { return w.Contacts }, `{"phone":"+49 123","tags":[1,2]}`, nil},
		{"contacts array", `"contacts":[ "a", "b" ]`, func(w Webhook) string { return w.Contacts }, `["a","b"]`, nil},
		{"contacts keep string content verbatim", `"contacts": { "a" : "b \" } ,\u00e9" , "c":[ ] }`, func(w Webhook) string { return w.Contacts }, `{"a":"b \" } ,\u00e9","c":[]}`, nil},
		{"contacts with escapes", `"contacts":"\u0041nn\n\ud800"`, func(w Webhook) string { return w.Contacts }, "Ann\n\uFFFD", nil},
		{"contacts boolean", `"contacts":true`, func(w Webhook) string { return w.Contacts }, "true", nil},
		{"contacts null", `"contacts":null`, func(w Webhook) string { return w.Contacts }, "", nil},
		{"contacts number", `"contacts":123456789`, func(w Webhook) string { return w.Contacts }, "123456789", nil},
		{"contacts absent", ``, func(w Webhook) string { return w.Contacts }, "", nil},
		{"duplicate title", `"title":"a","title":"b"`, func(w Webhook) string { return w.Title }, "b", []string{"title: appears more than once, the last value is used"}},
		{"duplicate unknown key", `"x":1,"x":2`, func(w Webhook) string { return w.Title }, "", nil},
		{"invalid utf8 in title", "\"title\":\"A\xffB\"", func(w Webhook) string { return w.Title }, "A\uFFFDB", nil},
		{"invalid utf8 in title, byte by byte", "\"title\":\"A\xed\xa0\x80B\"", func(w Webhook) string { return w.Title }, "A\uFFFD\uFFFD\uFFFDB", nil},
		{"title with escapes", `"title":"\"Ann\" \u0026 \\o/"`, func(w Webhook) string { return w.Title }, `"Ann" & \o/`, nil},
		{"duplicates warned in the order of their repeats", `"wh_type":1,"close":true,"wh_type":2,"close":false,"wh_type":3`, func(w Webhook) string { return w.WhType }, "3",
			[]string{"wh_type: appears more than once, the last value is used", "close: appears more than once, the last value is used"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := ParseWebhook([]byte(body(tt.extra)))
			if err != nil {
				t.Fatalf("ParseWebhook: %v", err)
			}
			if got := tt.check(w); got != tt.want {
				t.Errorf("value = %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(w.Warnings, tt.wantWarnings) {
				t.Errorf("Warnings = %q, want %q", w.Warnings, tt.wantWarnings)
			}
		})
	}
}

func TestWebhookErrorText(t *testing.T) {
	tests := []struct {
		err  WebhookError
		want string
	}{
		{WebhookError{Field: "message_id", Reason: "missing"}, "webhook: message_id: missing"},
		{WebhookError{Reason: "body is empty"}, "webhook: body is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

// webhookSeeds are the seed corpus of FuzzParseWebhook.
func webhookSeeds() []string {
	return []string{
		body(""),
		body(`"close":"yes","operator":1,"contacts":{"a":[1,{"b":null}]},"task_id":12,"title":null`),
		`{"external_chat_id":123,"message_id":4.5e6,"message_type":" USER ","message_text":""}`,
		`{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":"x","external_chat_id":"d"}`,
		`{"external_chat_id":"c\ud800","message_id":"m","message_type":"bot","message_text":"x"}`,
		"{\"external_chat_id\":\"c\xff\",\"message_id\":\"m\",\"message_type\":\"bot\",\"message_text\":\"x\"}",
		`{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":"  "}`,
		`{"is_bot":"да","interest":"Нет","success":[],"close":{}}`,
		`[]`, `null`, `"x"`, `{}`, `{} {}`, `{"a":`, ``, "\ufeff{}",
		`{"ext\u0065rnal_chat_id":"c","message_id":"m","message_type":"\u0062ot","message_text":"\ud83d\ude00\ud800\u0041","close":"\u0079es"}`,
		`{"external_chat_id":"c","message_id":"m","message_type":"bot","message_text":"x","contacts":{ "a" : "b \" } " },"title":"a","title":"b"}`,
		`{"a":1,}`, `{"a" 1}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":tru}`, `{"a":01}`, `{"a":"\x"}`, `{"a":[1,]}`, `{"a":1}x`,
	}
}

func FuzzParseWebhook(f *testing.F) {
	for _, s := range webhookSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkSyntaxAgreement(t, in)
		w, err := ParseWebhook(in)
		w2, err2 := ParseWebhook(in)
		if !reflect.DeepEqual(w, w2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %+v %v / %+v %v", w, err, w2, err2)
		}
		if err != nil {
			var we *WebhookError
			if !errors.As(err, &we) {
				t.Fatalf("err %v is %T, want *WebhookError", err, err)
			}
			if !reflect.DeepEqual(w, Webhook{}) {
				t.Fatalf("non-zero Webhook with an error: %+v", w)
			}
			return
		}
		if strings.TrimSpace(w.ExternalChatID) == "" || strings.TrimSpace(w.MessageID) == "" {
			t.Fatalf("empty routing id: %+v", w)
		}
		if len(w.ExternalChatID) > maxExternalChatID || len(w.MessageID) > maxMessageID {
			t.Fatalf("routing id over the limit: %d, %d", len(w.ExternalChatID), len(w.MessageID))
		}
		if !utf8.ValidString(w.ExternalChatID) || !utf8.ValidString(w.MessageID) || !utf8.ValidString(w.MessageText) {
			t.Fatalf("invalid UTF-8 in a routing field: %+v", w)
		}
		switch w.MessageType {
		case TypeBot, TypeOperator:
			if strings.TrimSpace(w.MessageText) == "" {
				t.Fatalf("blank text for %s", w.MessageType)
			}
		case TypeUser:
		default:
			t.Fatalf("MessageType = %q", w.MessageType)
		}
		checkAgainstEncodingJSON(t, in, w)
	})
}

// checkAgainstEncodingJSON checks an accepted body's string values
// against encoding/json's reading of it (where, too, the last of
// duplicate keys wins).
func checkAgainstEncodingJSON(t *testing.T, in []byte, w Webhook) {
	t.Helper()
	if len(in) > 16<<10 {
		return // encoding/json counts the outer object in its depth limit
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(in, &obj); err != nil {
		t.Fatalf("accepted a body that encoding/json refuses: %v", err)
	}
	for name, got := range map[string]string{
		FieldMessageText: w.MessageText, FieldTaskID: w.TaskID, FieldThreadID: w.ThreadID,
		FieldChannelID: w.ChannelID, FieldCompanyID: w.CompanyID, FieldManagerID: w.ManagerID,
		FieldTitle: w.Title, FieldPanelURL: w.PanelURL, FieldShareURL: w.ShareURL,
		FieldWhType: w.WhType, FieldContacts: w.Contacts,
	} {
		raw := obj[name]
		if len(raw) == 0 || raw[0] != '"' {
			continue
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("%s = %q, encoding/json reads %q", name, got, want)
		}
	}
}

func TestFieldIndex(t *testing.T) {
	seen := map[string]bool{}
	for i, name := range fieldNames {
		if name == "" || seen[name] {
			t.Errorf("fieldNames[%d] = %q: empty or repeated", i, name)
		}
		seen[name] = true
		if got := fieldIndex(name); got != i {
			t.Errorf("fieldIndex(%q) = %d, want %d", name, got, i)
		}
	}
	for _, key := range []string{"", "EXTERNAL_CHAT_ID", "message_text ", "x"} {
		if got := fieldIndex(key); got != -1 {
			t.Errorf("fieldIndex(%q) = %d, want -1", key, got)
		}
	}
}

// For a body that starts as an object, a syntax error is reported
// exactly when encoding/json finds the body invalid.
func TestParseWebhookSyntaxAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range append(webhookSeeds(), jsonSeeds...) {
		checkSyntaxAgreement(t, []byte(s))
	}
}

func checkSyntaxAgreement(t *testing.T, in []byte) {
	t.Helper()
	if len(in) > 16<<10 || !bytes.HasPrefix(bytes.TrimLeft(in, " \t\r\n"), []byte("{")) {
		return
	}
	_, err := ParseWebhook(in)
	var we *WebhookError
	syntax := errors.As(err, &we) && (strings.HasPrefix(we.Reason, "invalid JSON") || strings.Contains(we.Reason, "after the JSON object"))
	if json.Valid(in) == syntax {
		t.Fatalf("%q: json.Valid = %v, ParseWebhook error = %v", in, json.Valid(in), err)
	}
}
