// Package selarti speaks Selarti's HTTP API: the client that sends user
// messages (auth, send external message) and the parser of the "All
// messages" webhook. Everything we inferred about the wire format, rather
// than read in Selarti's docs, is kept in Wire so that a correction is a
// one-line change (or a config override), and the simulator in
// test/fakes/selarti follows the same mapping.
package selarti

// Wire names the paths and JSON fields of Selarti's API. Paths are
// relative to the base URL (https://selarti.com/api/1.1).
type Wire struct {
	// AuthPath exchanges the API key for a bearer token. [CODE]
	AuthPath string `mapstructure:"auth_path"`
	// AuthKeyField is the JSON field that carries the API key. [CODE]
	AuthKeyField string `mapstructure:"auth_key_field"`
	// SendPath is "Send external message". [INFER]
	SendPath string `mapstructure:"send_path"`
	// The JSON fields of "Send external message". [INFER]
	TaskIDField   string `mapstructure:"task_id_field"`
	ChatIDField   string `mapstructure:"chat_id_field"`
	TextField     string `mapstructure:"text_field"`
	PhoneField    string `mapstructure:"phone_field"`
	NameField     string `mapstructure:"name_field"`
	UsernameField string `mapstructure:"username_field"`
	// IdempotencyKeyField, when set, carries a key that stays the same
	// when a message is sent again (after a timeout or a crash between
	// Selarti's answer and our bookkeeping), so that a Selarti that
	// honours it can drop the repeat. Selarti documents no such field, so
	// it is empty (not sent) by default. [INFER]
	IdempotencyKeyField string `mapstructure:"idempotency_key_field"`
}

// DefaultWire is our best reading of Selarti's API; see
// shared/selarti-api.md for what is documented and what is inferred.
func DefaultWire() Wire {
	return Wire{
		AuthPath:      "/wf/auth",
		AuthKeyField:  "key",
		SendPath:      "/wf/send_external_message",
		TaskIDField:   "task_id",
		ChatIDField:   "chat_id",
		TextField:     "message",
		PhoneField:    "phone",
		NameField:     "name",
		UsernameField: "username",
	}
}

// WithDefaults returns w with every empty field taken from DefaultWire, so
// a config may override one name and keep the rest.
func (w Wire) WithDefaults() Wire {
	d := DefaultWire()
	fill := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	fill(&w.AuthPath, d.AuthPath)
	fill(&w.AuthKeyField, d.AuthKeyField)
	fill(&w.SendPath, d.SendPath)
	fill(&w.TaskIDField, d.TaskIDField)
	fill(&w.ChatIDField, d.ChatIDField)
	fill(&w.TextField, d.TextField)
	fill(&w.PhoneField, d.PhoneField)
	fill(&w.NameField, d.NameField)
	fill(&w.UsernameField, d.UsernameField)
	return w
}

// Webhook field names of the "All messages" webhook, as documented on
// Selarti's manual page. [DOC]
const (
	FieldChannelID      = "channel_id"
	FieldClose          = "close"
	FieldCompanyID      = "company_id"
	FieldContacts       = "contacts"
	FieldExternalChatID = "external_chat_id"
	FieldGetContact     = "get_contact"
	FieldInterest       = "interest"
	FieldIsBot          = "is_bot"
	FieldManagerID      = "manager_id"
	FieldMessageID      = "message_id"
	FieldMessageText    = "message_text"
	FieldMessageType    = "message_type"
	FieldOperator       = "operator"
	FieldPanelURL       = "panel_url"
	FieldShareURL       = "share_url"
	FieldSuccess        = "success"
	FieldTaskID         = "task_id"
	FieldThreadID       = "thread_id"
	FieldTitle          = "title"
	FieldWhType         = "wh_type"
)

// Message types of the webhook's message_type field. [DOC]
const (
	TypeBot      = "bot"
	TypeOperator = "operator"
	TypeUser     = "user"
)
