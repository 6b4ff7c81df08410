package selarti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/switchboard-gw/switchboard/kit/text"
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
	var obj object
	if err := obj.scan(body); err != nil {
		return Webhook{}, err
	}
	return obj.webhook()
}

// webhook reads the fields of the scanned object.
func (o *object) webhook() (Webhook, error) {
	var (
		w   Webhook
		err error
	)

	// Routing fields. A duplicate is ambiguous (which one routes?), so
	// it is an error here while it is only a warning elsewhere.
	for _, f := range []int{iExternalChatID, iMessageID, iMessageType, iMessageText} {
		if o.dup[f] {
			return Webhook{}, &WebhookError{Field: fieldNames[f], Reason: "appears more than once"}
		}
	}
	if w.ExternalChatID, err = requiredID(o.raw[iExternalChatID], FieldExternalChatID, maxExternalChatID); err != nil {
		return Webhook{}, err
	}
	if w.MessageID, err = requiredID(o.raw[iMessageID], FieldMessageID, maxMessageID); err != nil {
		return Webhook{}, err
	}
	if w.MessageType, err = messageType(o.raw[iMessageType]); err != nil {
		return Webhook{}, err
	}
	if w.MessageText, err = messageText(o.raw[iMessageText], w.MessageType); err != nil {
		return Webhook{}, err
	}

	// Everything else, in a fixed order so that Warnings are stable.
	warn := func(field, reason string) {
		w.Warnings = append(w.Warnings, field+": "+reason)
	}
	for _, f := range [...]struct {
		i   int
		dst *bool
	}{
		{iClose, &w.Close},
		{iOperator, &w.Operator},
		{iGetContact, &w.GetContact},
		{iInterest, &w.Interest},
		{iSuccess, &w.Success},
		{iIsBot, &w.IsBot},
	} {
		v, ok := flagValue(o.raw[f.i])
		if !ok {
			warn(fieldNames[f.i], "unrecognised flag value")
		}
		*f.dst = v
	}
	for _, f := range [...]struct {
		i   int
		dst *string
	}{
		{iTaskID, &w.TaskID},
		{iThreadID, &w.ThreadID},
		{iChannelID, &w.ChannelID},
		{iCompanyID, &w.CompanyID},
		{iManagerID, &w.ManagerID},
		{iTitle, &w.Title},
		{iPanelURL, &w.PanelURL},
		{iShareURL, &w.ShareURL},
		{iWhType, &w.WhType},
	} {
		v, ok := textValue(o.raw[f.i])
		if !ok {
			warn(fieldNames[f.i], "expected a string or a number, got "+kindOf(o.raw[f.i]))
		}
		*f.dst = v
	}
	w.Contacts = contactsValue(o.raw[iContacts])

	for _, f := range o.order {
		warn(fieldNames[f], "appears more than once, the last value is used")
	}
	return w, nil
}

// Indexes of the documented webhook fields in object.
const (
	iChannelID = iota
	iClose
	iCompanyID
	iContacts
	iExternalChatID
	iGetContact
	iInterest
	iIsBot
	iManagerID
	iMessageID
	iMessageText
	iMessageType
	iOperator
	iPanelURL
	iShareURL
	iSuccess
	iTaskID
	iThreadID
	iTitle
	iWhType
	numFields
)

// fieldNames maps the indexes to the field names.
var fieldNames = [numFields]string{
	iChannelID: FieldChannelID, iClose: FieldClose, iCompanyID: FieldCompanyID,
	iContacts: FieldContacts, iExternalChatID: FieldExternalChatID,
	iGetContact: FieldGetContact, iInterest: FieldInterest, iIsBot: FieldIsBot,
	iManagerID: FieldManagerID, iMessageID: FieldMessageID,
	iMessageText: FieldMessageText, iMessageType: FieldMessageType,
	iOperator: FieldOperator, iPanelURL: FieldPanelURL, iShareURL: FieldShareURL,
	iSuccess: FieldSuccess, iTaskID: FieldTaskID, iThreadID: FieldThreadID,
	iTitle: FieldTitle, iWhType: FieldWhType,
}

// fieldIndex returns the index of a documented field, or -1 for any
// other key (those are ignored, duplicates included).
func fieldIndex(key string) int {
	switch key {
	case FieldChannelID:
		return iChannelID
	case FieldClose:
		return iClose
	case FieldCompanyID:
		return iCompanyID
	case FieldContacts:
		return iContacts
	case FieldExternalChatID:
		return iExternalChatID
	case FieldGetContact:
		return iGetContact
	case FieldInterest:
		return iInterest
	case FieldIsBot:
		return iIsBot
	case FieldManagerID:
		return iManagerID
	case FieldMessageID:
		return iMessageID
	case FieldMessageText:
		return iMessageText
	case FieldMessageType:
		return iMessageType
	case FieldOperator:
		return iOperator
	case FieldPanelURL:
		return iPanelURL
	case FieldShareURL:
		return iShareURL
	case FieldSuccess:
		return iSuccess
	case FieldTaskID:
		return iTaskID
	case FieldThreadID:
		return iThreadID
	case FieldTitle:
		return iTitle
	case FieldWhType:
		return iWhType
	}
	return -1
}

// object is the webhook's JSON object: the raw value of each documented
// field, pointing into the body.
type object struct {
	raw   [numFields][]byte // the last value of each field; nil if absent
	dup   [numFields]bool   // fields seen more than once
	order []int             // those fields, in the order their repeats came
}

// decodeOptions make jsontext read what encoding/json reads: duplicate
// names (object.set tells them apart itself) and invalid UTF-8 (strings
// decode with U+FFFD for it, and the routing fields refuse it).
var decodeOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
}

// decoder reads one body. Decoders are pooled: a new jsontext.Decoder
// and its state would be most of ParseWebhook's allocations.
type decoder struct {
	in  bytes.Buffer // the body itself: jsontext reads a bytes.Buffer in place
	dec jsontext.Decoder
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// scan checks that body is exactly one JSON object (nothing before or
// after it but whitespace) and notes where the documented fields' values
// are. It reads the object member by member, rather than unmarshalling,
// to see duplicate names, which encoding/json silently resolves to the
// last one.
func (o *object) scan(body []byte) error {
	d := decoders.Get().(*decoder)
	defer func() {
		// Keep no reference to the body in the pool.
		d.in = bytes.Buffer{}
		d.dec.Reset(&d.in)
		decoders.Put(d)
	}()
	d.in = *bytes.NewBuffer(body)
	d.dec.Reset(&d.in, decodeOptions...)
	switch d.dec.PeekKind() {
	case '{':
	case 0:
		if _, err := d.dec.ReadToken(); err == io.EOF {
			return &WebhookError{Reason: "body is empty"}
		}
		fallthrough
	default:
		return &WebhookError{Reason: "body must be one JSON object"}
	}
	return o.members(&d.dec, body, body, 0)
}

// members reads the object that dec reads from src, where src[k] is
// body[base+k] (but for the prefix that object.reread puts before it),
// and then checks that nothing but whitespace follows it.
func (o *object) members(dec *jsontext.Decoder, src, body []byte, base int) error {
	if _, err := dec.ReadToken(); err != nil { // the '{'
		return syntaxError(src)
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			return syntaxError(src)
		}
		i := nameIndex(name)
		nameEnd := int(dec.InputOffset())
		value, err := dec.ReadValue()
		if err != nil {
			return o.reread(src, body, base, nameEnd, i)
		}
		end := base + int(dec.InputOffset())
		o.set(i, body[end-len(value):end])
	}
	if _, err := dec.ReadToken(); err != nil { // the '}'
		return syntaxError(src)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return &WebhookError{Reason: "unexpected data after the JSON object"}
	}
	return nil
}

// rereadPrefix stands for an object up to a member's value in reread.
// The value is an array, so that what follows it reads exactly as it
// would after the value it stands for, an array or an object.
const rereadPrefix = `{"":[]`

// reread reads the value of a member on its own, after the decoder
// refused it within the object (the member's name ends at src[nameEnd:]
// and its field index is i). This is how a value nested 10,000 deep is
// read: jsontext, like encoding/json, counts the object around it in its
// limit of 10,000 levels, while ParseWebhook has always allowed a field
// the whole limit. Any other error in the value is found again here. The
// rest of the object is then read after rereadPrefix.
func (o *object) reread(src, body []byte, base, nameEnd, i int) error {
	start := skipSpace(src, nameEnd)
	if start == len(src) || src[start] != ':' {
		return syntaxError(src)
	}
	start = skipSpace(src, start+1)
	dec := jsontext.NewDecoder(bytes.NewBuffer(src[start:]), decodeOptions...)
	if _, err := dec.ReadValue(); err != nil {
		return syntaxError(src[start:])
	}
	end := start + int(dec.InputOffset())
	o.set(i, body[base+start:base+end])
	rest := append([]byte(rereadPrefix), src[end:]...)
	return o.members(jsontext.NewDecoder(bytes.NewBuffer(rest), decodeOptions...),
		rest, body, base+end-len(rereadPrefix))
}

// skipSpace returns the offset of the first byte of src[i:] that is not
// JSON whitespace, or len(src).
func skipSpace(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t' || src[i] == '\r' || src[i] == '\n') {
		i++
	}
	return i
}

// syntaxError describes the first syntax error in src as encoding/json
// finds it, in its words (as ParseWebhook always has): they quote one
// character of the input and never more. A body that ends before the
// object does is said to end. Only a body that jsontext refused comes
// here, so this second reading costs nothing on the common path.
func syntaxError(src []byte) error {
	var se *json.SyntaxError
	switch err := json.NewDecoder(bytes.NewReader(src)).Decode(&struct{}{}); {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF): // io.EOF: src is blank
		return errBodyEnd()
	case errors.As(err, &se):
		return &WebhookError{Reason: "invalid JSON: " + se.Error()}
	}
	// encoding/json found no syntax error where jsontext did: never seen
	// (FuzzWebhookAgainstEncodingJSON looks for it).
	return &WebhookError{Reason: "invalid JSON"}
}

// errBodyEnd is the error for a body that ends inside the JSON object.
func errBodyEnd() error {
	return &WebhookError{Reason: "invalid JSON: unexpected end of body"}
}

// nameIndex returns the field index of the member name (a JSON string,
// quotes included), or -1 for any other name.
func nameIndex(name []byte) int {
	if bytes.IndexByte(name, '\\') >= 0 {
		// Rare: a name spelled with escapes is compared decoded, as
		// encoding/json would.
		return fieldIndex(unquote(name))
	}
	return fieldIndex(string(name[1 : len(name)-1])) // no allocation: only compared
}

// set records the value of the field with index i (nothing for -1),
// noting a repeat.
func (o *object) set(i int, value []byte) {
	if i < 0 {
		return
	}
	if o.raw[i] != nil && !o.dup[i] {
		o.dup[i] = true
		o.order = append(o.order, i)
	}
	o.raw[i] = value
}

// kindOf names the JSON type of raw, for warnings and errors.
func kindOf(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch jsontext.Value(raw).Kind() {
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
func isNumber(raw []byte) bool { return jsontext.Value(raw).Kind() == '0' }

// isString reports whether raw is a JSON string.
func isString(raw []byte) bool { return jsontext.Value(raw).Kind() == '"' }

// requiredID reads a routing id: a non-blank string, or a number (Bubble
// may send numbers) kept as its literal text. Ids are opaque: the value
// is not trimmed or otherwise changed.
func requiredID(raw []byte, name string, maxLen int) (string, error) {
	if raw == nil {
		return "", &WebhookError{Field: name, Reason: "missing"}
	}
	var v string
	switch {
	case isNumber(raw):
		v = string(raw)
	case isString(raw):
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
func messageType(raw []byte) (string, error) {
	if raw == nil {
		return "", &WebhookError{Field: FieldMessageType, Reason: "missing"}
	}
	if !isString(raw) {
		return "", &WebhookError{Field: FieldMessageType, Reason: "expected a string, got " + kindOf(raw)}
	}
	var buf [maxWord]byte
	if word, ok := lowerWord(&buf, raw); ok {
		if t, ok := knownType(string(word)); ok {
			return t, nil
		}
	}
	s, err := jsonString(raw)
	if err != nil {
		return "", &WebhookError{Field: FieldMessageType, Reason: err.Error()}
	}
	if t, ok := knownType(strings.ToLower(strings.TrimSpace(s))); ok {
		return t, nil
	}
	return "", &WebhookError{Field: FieldMessageType, Reason: fmt.Sprintf("unknown type %q", text.Shorten(s, 32))}
}

// knownType returns the message type t names, if any.
func knownType(t string) (string, bool) {
	switch t {
	case TypeBot:
		return TypeBot, true
	case TypeOperator:
		return TypeOperator, true
	case TypeUser:
		return TypeUser, true
	}
	return "", false
}

// messageText reads message_text: a string, which may be blank only for
// the user's own echoed message (a blank bot or operator message would
// reach the user as nothing, and most networks refuse an empty text).
func messageText(raw []byte, typ string) (string, error) {
	if raw == nil {
		return "", &WebhookError{Field: FieldMessageText, Reason: "missing"}
	}
	if !isString(raw) {
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
func jsonString(raw []byte) (string, error) {
	if !utf8.Valid(raw) {
		return "", errors.New("invalid UTF-8")
	}
	return unquote(raw), nil
}

// maxWord is the longest keyword lowerWord is used for: "operator".
const maxWord = len(TypeOperator)

// lowerWord is the fast path for the keywords of message_type and the
// flags: it returns the text of the JSON string raw trimmed and
// lower-cased, written into buf, so that a keyword costs no allocation.
// ok is false unless the text is plain ASCII (no escapes) of at most
// maxWord bytes; the caller then decodes it in full. For such text the
// result is exactly strings.ToLower(strings.TrimSpace(text)): the only
// whitespace plain JSON text can hold is the space, and ASCII letters
// fold alone.
func lowerWord(buf *[maxWord]byte, raw []byte) (word []byte, ok bool) {
	s := raw[1 : len(raw)-1]
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	if len(s) > maxWord {
		return nil, false
	}
	for i, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			return nil, false
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(s)], true
}

// flagValue reads a yes/no flag leniently: JSON booleans; the strings
// yes/no, true/false, 1/0, y/n, да/нет (any case, trimmed) and ""; the
// numbers 0 and 1; null or absent. ok is false for anything else, which
// then reads as false.
func flagValue(raw []byte) (v, ok bool) {
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
		if len(raw) == 1 { // a digit: no need to convert
			return raw[0] == '1', raw[0] == '0' || raw[0] == '1'
		}
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
	case isString(raw):
		var buf [maxWord]byte
		if word, ok := lowerWord(&buf, raw); ok {
			return flagWord(string(word))
		}
		return flagWord(strings.ToLower(strings.TrimSpace(unquote(raw))))
	}
	return false, false
}

// flagWord reads a flag given as a string, trimmed and lower-cased.
func flagWord(s string) (v, ok bool) {
	switch s {
	case "yes", "true", "1", "y", "да":
		return true, true
	case "no", "false", "0", "n", "нет", "":
		return false, true
	}
	return false, false
}

// textValue reads a non-routing id or text: a string as is, a number as
// its literal, null or absent as "". ok is false for other types.
func textValue(raw []byte) (string, bool) {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return "", true
	case isNumber(raw):
		return string(raw), true
	case isString(raw):
		return unquote(raw), true
	}
	return "", false
}

// contactsValue keeps contacts in whatever shape they came, as text.
func contactsValue(raw []byte) string {
	switch {
	case len(raw) == 0 || raw[0] == 'n':
		return ""
	case isString(raw):
		return unquote(raw)
	case raw[0] == '{' || raw[0] == '[':
		return compact(raw)
	}
	return string(raw)
}

// unquote decodes raw, a JSON string (quotes included) that the decoder
// has checked, as encoding/json does: escapes resolved, each byte of
// invalid UTF-8 and each lone surrogate escape replaced by U+FFFD.
func unquote(raw []byte) string {
	if s := raw[1 : len(raw)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s) // the common case: nothing to decode
	}
	var buf [256]byte
	// The error can only be about invalid UTF-8, replaced as said above.
	b, _ := jsontext.AppendUnquote(buf[:0], raw)
	return string(b)
}

// compact returns a JSON array or object that the decoder has checked
// without its insignificant whitespace, as json.Compact does: strings and
// numbers are kept as they are written.
func compact(raw []byte) string {
	var buf [512]byte
	b, err := jsontext.AppendFormat(buf[:0], raw, compactOptions...)
	if err != nil {
		return string(raw) // not reached: the decoder accepted raw
	}
	return string(b)
}

// compactOptions are those of jsontext.Value.Compact.
var compactOptions = []jsontext.Options{
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
	jsontext.PreserveRawStrings(true),
}
