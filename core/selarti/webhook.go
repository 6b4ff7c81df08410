package selarti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Length limits of the routing ids. Our own chat ids are far shorter; the
// limits keep a hostile body from planting huge keys in the store.
const (
	maxExternalChatID = 512
	maxMessageID      = 256
)

// Webhook is one "All messages" webhook from Selarti: a message written in
// a dialog of the task, by the assistant, an operator, or the user.
type Webhook struct {
	// ExternalChatID is the chat_id we sent: it routes the message back.
	ExternalChatID string
	// MessageID is Selarti's message id, the key for de-duplication.
	MessageID string
	// MessageType is TypeBot, TypeOperator or TypeUser (normalised to
	// lower case). TypeUser is the user's own message echoed back: it
	// must not be delivered to the user.
	MessageType string
	// MessageText is the text, possibly Markdown. It is non-blank unless
	// MessageType is TypeUser.
	MessageText string

	// Close: the dialog was closed.
	Close bool
	// Operator: the dialog was handed to a human operator.
	Operator bool
	// GetContact: the user shared a phone or e-mail.
	GetContact bool
	// Interest: the user showed interest.
	Interest bool
	// Success: the dialog was marked successful.
	Success bool
	// IsBot: Selarti thinks the other side is a bot.
	IsBot bool

	// TaskID is the Selarti task id.
	TaskID string
	// ThreadID is Selarti's dialog id.
	ThreadID string
	// ChannelID is the Selarti channel id.
	ChannelID string
	// CompanyID is the Selarti company id.
	CompanyID string
	// ManagerID is the manager's id.
	ManagerID string
	// Title is the user's full name as Selarti shows it.
	Title string
	// PanelURL links to the dialog in Selarti's panel, with reply rights.
	PanelURL string
	// ShareURL is a read-only link to the dialog.
	ShareURL string
	// WhType is the webhook type (event kind).
	WhType string
	// Contacts is the contact data in whatever shape it arrived, as text:
	// a JSON string as is, an object or array as compact JSON, a number
	// or boolean as its literal, "" for null or absent.
	Contacts string

	// Warnings lists non-fatal oddities in non-routing fields, such as
	// "close: unrecognised flag value". They never carry field values.
	Warnings []string
}

// WebhookError says why a webhook body was rejected. Its text never
// contains more than a short, quoted excerpt of the input.
type WebhookError struct {
	// Field is the JSON field at fault, or "" for the body as a whole.
	Field string
	// Reason says what is wrong.
	Reason string
}

// Error returns "webhook: <field>: <reason>" or "webhook: <reason>".
func (e *WebhookError) Error() string {
	if e.Field == "" {
		return "webhook: " + e.Reason
	}
	return "webhook: " + e.Field + ": " + e.Reason
}

// ParseWebhook parses the body of an "All messages" webhook. The body is
// outside input: it must be exactly one JSON object whose routing fields
// (external_chat_id, message_id, message_type, message_text) are present
// and well-formed, or ParseWebhook returns a *WebhookError. Every other
// field is read leniently, since Selarti documents none of their shapes:
// an odd value there becomes a zero value plus a Warning, never an error,
// so that it cannot make a message undeliverable. Unknown fields are
// ignored. The caller bounds the body's size before calling.
func ParseWebhook(body []byte) (Webhook, error) {
	obj, err := splitObject(body)
	if err != nil {
		return Webhook{}, err
	}
	var w Webhook

	// Routing fields. A duplicate is ambiguous (which one routes?), so
	// it is an error here while it is only a warning elsewhere.
	for _, f := range []string{FieldExternalChatID, FieldMessageID, FieldMessageType, FieldMessageText} {
		if obj.dup[f] {
			return Webhook{}, &WebhookError{Field: f, Reason: "appears more than once"}
		}
	}
	if w.ExternalChatID, err = requiredID(obj.fields, FieldExternalChatID, maxExternalChatID); err != nil {
		return Webhook{}, err
	}
	if w.MessageID, err = requiredID(obj.fields, FieldMessageID, maxMessageID); err != nil {
		return Webhook{}, err
	}
	if w.MessageType, err = messageType(obj.fields); err != nil {
		return Webhook{}, err
	}
	if w.MessageText, err = messageText(obj.fields, w.MessageType); err != nil {
		return Webhook{}, err
	}

	// Everything else, in a fixed order so that Warnings are stable.
	warn := func(field, reason string) {
		w.Warnings = append(w.Warnings, field+": "+reason)
	}
	for _, f := range []struct {
		name string
		dst  *bool
	}{
		{FieldClose, &w.Close},
		{FieldOperator, &w.Operator},
		{FieldGetContact, &w.GetContact},
		{FieldInterest, &w.Interest},
		{FieldSuccess, &w.Success},
		{FieldIsBot, &w.IsBot},
	} {
		v, ok := flagValue(obj.fields[f.name])
		if !ok {
			warn(f.name, "unrecognised flag value")
		}
		*f.dst = v
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{FieldTaskID, &w.TaskID},
		{FieldThreadID, &w.ThreadID},
		{FieldChannelID, &w.ChannelID},
		{FieldCompanyID, &w.CompanyID},
		{FieldManagerID, &w.ManagerID},
		{FieldTitle, &w.Title},
		{FieldPanelURL, &w.PanelURL},
		{FieldShareURL, &w.ShareURL},
		{FieldWhType, &w.WhType},
	} {
		v, ok := textValue(obj.fields[f.name])
		if !ok {
			warn(f.name, "expected a string or a number, got "+kindOf(obj.fields[f.name]))
		}
		*f.dst = v
	}
	w.Contacts = contactsValue(obj.fields[FieldContacts])

	for _, f := range obj.order {
		if obj.dup[f] {
			warn(f, "appears more than once, the last value is used")
		}
	}
	return w, nil
}

// object is a JSON object split into its raw members.
type object struct {
	fields map[string]json.RawMessage
	dup    map[string]bool // keys seen more than once
	order  []string        // known keys seen more than once, in order
}

// isKnownField reports whether key is a documented webhook field;
// duplicates of other keys are not worth a warning since we ignore them.
func isKnownField(key string) bool {
	switch key {
	case FieldChannelID, FieldClose, FieldCompanyID, FieldContacts,
		FieldExternalChatID, FieldGetContact, FieldInterest, FieldIsBot,
		FieldManagerID, FieldMessageID, FieldMessageText, FieldMessageType,
		FieldOperator, FieldPanelURL, FieldShareURL, FieldSuccess,
		FieldTaskID, FieldThreadID, FieldTitle, FieldWhType:
		return true
	}
	return false
}

// splitObject checks that body is exactly one JSON object (nothing before
// or after it but whitespace) and returns its members. Walking the tokens
// ourselves, rather than unmarshalling into a map, lets us see duplicate
// keys, which encoding/json silently resolves to the last one.
func splitObject(body []byte) (object, error) {
	notObject := &WebhookError{Reason: "body must be one JSON object"}
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return object{}, &WebhookError{Reason: "body is empty"}
	}
	if trimmed[0] != '{' {
		return object{}, notObject
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil { // the '{'
		return object{}, invalidJSON(err)
	}
	obj := object{fields: map[string]json.RawMessage{}, dup: map[string]bool{}}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return object{}, invalidJSON(err)
		}
		key, ok := tok.(string)
		if !ok {
			return object{}, &WebhookError{Reason: "invalid JSON: object key is not a string"}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return object{}, invalidJSON(err)
		}
		if _, seen := obj.fields[key]; seen && isKnownField(key) && !obj.dup[key] {
			obj.dup[key] = true
			obj.order = append(obj.order, key)
		}
		obj.fields[key] = raw
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return object{}, invalidJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return object{}, &WebhookError{Reason: "unexpected data after the JSON object"}
	}
	return obj, nil
}

// invalidJSON turns a decoder error into a WebhookError. The decoder's
// messages quote at most one offending character, never the input.
func invalidJSON(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &WebhookError{Reason: "invalid JSON: unexpected end of body"}
	}
	return &WebhookError{Reason: "invalid JSON: " + err.Error()}
}

// kindOf names the JSON type of raw, for warnings and errors.
func kindOf(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// isNumber reports whether raw is a JSON number (the decoder has already
// checked that it is valid JSON, so the first byte decides).
func isNumber(raw json.RawMessage) bool {
	return len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))
}

// requiredID reads a routing id: a non-blank string, or a number (Bubble
// may send numbers) kept as its literal text. Ids are opaque: the value
// is not trimmed or otherwise changed.
func requiredID(fields map[string]json.RawMessage, name string, maxLen int) (string, error) {
	raw, present := fields[name]
	if !present {
		return "", &WebhookError{Field: name, Reason: "missing"}
	}
	var v string
	switch {
	case isNumber(raw):
		v = string(raw)
	case len(raw) > 0 && raw[0] == '"':
		s, err := jsonString(raw)
		if err != nil {
			return "", &WebhookError{Field: name, Reason: err.Error()}
		}
		// U+FFFD is what encoding/json makes of a lone surrogate escape;
		// an id containing it could never match the one we sent.
		if strings.ContainsRune(s, utf8.RuneError) {
			return "", &WebhookError{Field: name, Reason: "invalid UTF-8"}
		}
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return "", &WebhookError{Field: name, Reason: "contains a control character"}
		}
		v = s
	default:
		return "", &WebhookError{Field: name, Reason: "expected a string or a number, got " + kindOf(raw)}
	}
	if strings.TrimSpace(v) == "" {
		return "", &WebhookError{Field: name, Reason: "empty"}
	}
	if len(v) > maxLen {
		return "", &WebhookError{Field: name, Reason: fmt.Sprintf("longer than %d bytes", maxLen)}
	}
	return v, nil
}

// messageType reads message_type, trimmed and lower-cased.
func messageType(fields map[string]json.RawMessage) (string, error) {
	raw, present := fields[FieldMessageType]
	if !present {
		return "", &WebhookError{Field: FieldMessageType, Reason: "missing"}
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", &WebhookError{Field: FieldMessageType, Reason: "expected a string, got " + kindOf(raw)}
	}
	s, err := jsonString(raw)
	if err != nil {
		return "", &WebhookError{Field: FieldMessageType, Reason: err.Error()}
	}
	switch t := strings.ToLower(strings.TrimSpace(s)); t {
	case TypeBot, TypeOperator, TypeUser:
		return t, nil
	default:
		return "", &WebhookError{Field: FieldMessageType, Reason: fmt.Sprintf("unknown type %q", truncate(s, 32))}
	}
}

// messageText reads message_text: a string, which may be blank only for
// the user's own echoed message (a blank bot or operator message would
// reach the user as nothing, and most networks refuse an empty text).
func messageText(fields map[string]json.RawMessage, typ string) (string, error) {
	raw, present := fields[FieldMessageText]
	if !present {
		return "", &WebhookError{Field: FieldMessageText, Reason: "missing"}
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", &WebhookError{Field: FieldMessageText, Reason: "expected a string, got " + kindOf(raw)}
	}
	s, err := jsonString(raw)
	if err != nil {
		return "", &WebhookError{Field: FieldMessageText, Reason: err.Error()}
	}
	if strings.TrimSpace(s) == "" && typ != TypeUser {
		return "", &WebhookError{Field: FieldMessageText, Reason: "empty in a " + typ + " message"}
	}
	return s, nil
}

// jsonString decodes a raw JSON string, refusing invalid UTF-8, which
// encoding/json would silently turn into U+FFFD.
func jsonString(raw json.RawMessage) (string, error) {
	if !utf8.Valid(raw) {
		return "", errors.New("invalid UTF-8")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("malformed string")
	}
	return s, nil
}

// flagValue reads a yes/no flag leniently: JSON booleans; the strings
// yes/no, true/false, 1/0, y/n, да/нет (any case, trimmed) and ""; the
// numbers 0 and 1; null or absent. ok is false for anything else, which
// then reads as false.
func flagValue(raw json.RawMessage) (v, ok bool) {
	if len(raw) == 0 {
		return false, true
	}
	switch {
	case raw[0] == 'n':
		return false, true
	case raw[0] == 't':
		return true, true
	case raw[0] == 'f':
		return false, true
	case isNumber(raw):
		n, err := strconv.ParseFloat(string(raw), 64)
		switch {
		case err != nil:
			return false, false
		case n == 0:
			return false, true
		case n == 1:
			return true, true
		}
		return false, false
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false, false
		}
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "yes", "true", "1", "y", "да":
			return true, true
		case "no", "false", "0", "n", "нет", "":
			return false, true
		}
	}
	return false, false
}

// textValue reads a non-routing id or text: a string as is, a number as
// its literal, null or absent as "". ok is false for other types.
func textValue(raw json.RawMessage) (string, bool) {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return "", true
	case isNumber(raw):
		return string(raw), true
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return "", false
		}
		return s, true
	}
	return "", false
}

// contactsValue keeps contacts in whatever shape they came, as text.
func contactsValue(raw json.RawMessage) string {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return ""
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return s
	case raw[0] == '{' || raw[0] == '[':
		var buf bytes.Buffer
		if json.Compact(&buf, raw) != nil {
			return ""
		}
		return buf.String()
	}
	return string(raw)
}
