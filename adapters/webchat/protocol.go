package webchat

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/richtext"
)

// The WebSocket protocol: JSON text frames, documented in README.md. The
// client speaks first with a hello; everything after that is a message
// from the client, or one of the server frames below.

// Frame types.
const (
	typeHello   = "hello"
	typeWelcome = "welcome"
	typeMessage = "message"
	typeEvent   = "event"
	typeAck     = "ack"
	typeError   = "error"
	typeStatus  = "status"
)

// Error codes carried by error frames. They let the page tell a message
// it should re-send later (retry) from one it never can.
const (
	codeBadJSON       = "bad_json"
	codeUnknownType   = "unknown_type"
	codeHelloFirst    = "hello_first"
	codeBadID         = "bad_id"
	codeEmpty         = "empty"
	codeTooLong       = "too_long"
	codeRateLimited   = "rate_limited"
	codeDeliverFailed = "deliver_failed"
	codeTooManyConns  = "too_many_connections"
	// codeTooManySessions refuses a hello that would start a session
	// when the client's address has started too many (ip_session_limit).
	codeTooManySessions = "too_many_sessions"
)

// clientFrame is any frame a browser sends; Type says which fields count.
type clientFrame struct {
	Type string `json:"type"`
	// hello
	Session string `json:"session"`
	LastSeq int64  `json:"last_seq"`
	Epoch   string `json:"epoch"`
	Name    string `json:"name"`
	// message
	ID   string `json:"id"`
	Text string `json:"text"`
	// Retry marks a message the user asked to send again after a status
	// frame said it was not delivered (core.Inbound.Retry).
	Retry bool `json:"retry"`
}

// welcomeFrame answers hello. LastSeq is the newest seq the server holds
// for the session, and Epoch names this incarnation of the session: it is
// stored with the session, so it survives restarts, and changes only when
// the session was forgotten (expired), when seqs start again at 1. A
// client whose epoch differs, or that has seen a higher seq, must start
// counting again: the server has replayed all it has.
type welcomeFrame struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	LastSeq int64  `json:"last_seq"`
	Epoch   string `json:"epoch"`
}

// messageFrame is one history entry that is a message. ID is the client's
// message id, set for user messages only, so that the tab that sent it can
// match it to the bubble it already shows. HTML is the assistant's or the
// operator's Markdown rendered for the page (see renderReply); Text stays
// the message as written.
type messageFrame struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"`
	From string `json:"from"`
	Text string `json:"text"`
	HTML string `json:"html,omitempty"`
	TS   string `json:"ts"`
	ID   string `json:"id,omitempty"`
}

// renderReply renders a reply's Markdown for the page with the kit's one
// pipeline (kit/richtext.SafeHTML: a few elements, every text escaped).
// The page rebuilds it from an allowlist all the same (app.js copySafe).
// It costs 2-12 µs a message (BenchmarkParseSplit's html cases), paid
// when a reply is pushed or replayed.
func renderReply(markdown string) string {
	return richtext.SafeHTML{}.Render(richtext.Parse(markdown))
}

// eventFrame is one history entry that is a change of the dialog's state.
// It carries a seq like messages do, so a reloaded page shows the note at
// the right place.
type eventFrame struct {
	Type     string `json:"type"`
	Seq      int64  `json:"seq"`
	Operator bool   `json:"operator"`
	Closed   bool   `json:"closed"`
	TS       string `json:"ts"`
}

// ackFrame tells the sending tab that its message was accepted.
type ackFrame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Seq  int64  `json:"seq"`
}

// errorFrame reports a problem with one client frame. Retry says whether
// re-sending the same message later can succeed.
type errorFrame struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	Code  string `json:"code"`
	Error string `json:"error"`
	Retry bool   `json:"retry"`
}

// encode marshals a server frame. The frame types above cannot fail to
// marshal, so an error here is a programming error; it yields a generic
// error frame rather than a panic.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`{"type":"error","code":"internal","error":"internal error"}`)
	}
	return b
}

// formatTS formats a timestamp for frames.
func formatTS(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// newEpoch returns a short random name for one incarnation of a session.
func newEpoch() string { return newSessionID()[:8] }

// sessionIDLen is the length of a session id: 16 random bytes in unpadded
// base64url.
const sessionIDLen = 22

// newSessionID returns 128 random bits as unpadded base64url. The id is
// the only thing that ties a browser to its conversation, so it must be
// unguessable.
func newSessionID() string {
	var b [16]byte
	// crypto/rand.Read never returns an error (it crashes the program
	// irrecoverably instead), per its documentation since Go 1.24.
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validSessionID reports whether id looks like one newSessionID makes.
// Unknown but well-formed ids are accepted, so that browsers keep their
// conversation id across a gateway restart.
func validSessionID(id string) bool {
	if len(id) != sessionIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// maxClientIDLen bounds a client message id; crypto.randomUUID makes 36.
const maxClientIDLen = 64

// validClientID reports whether id may be a client message id: the core
// uses it as a dedupe key, so it must be present, short and printable.
func validClientID(id string) bool {
	if id == "" || len(id) > maxClientIDLen {
		return false
	}
	for _, r := range id {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// maxNameRunes bounds the display name a browser may claim.
const maxNameRunes = 64

// cleanName trims a client's display name, drops control characters and
// cuts it to maxNameRunes: it ends up as a dialog title in Selarti.
func cleanName(name string) string {
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	if r := []rune(name); len(r) > maxNameRunes {
		name = strings.TrimSpace(string(r[:maxNameRunes]))
	}
	return name
}

// shortID shortens a session id for logs and errors, as the core shows
// it: the full id reads the whole conversation, so it is treated like a
// credential (see PrivateChatIDs).
func shortID(id string) string { return core.ShortChatID(id) }

// inboundID is the core.Inbound.ID of a client's message. The client's id
// is unique only within its session (a page may number its messages 1, 2,
// 3), and Inbound.ID must be unique within the instance, or a message of
// one session that reuses an id another session used is taken for a
// redelivery and dropped. So the id is scoped by the session, through a
// digest of it rather than the id itself: the session id is a credential,
// and the core shows Inbound.ID in logs and may send it to Selarti as an
// idempotency key. 96 bits of SHA-256 never collide among real sessions.
func inboundID(session, clientID string) string {
	sum := sha256.Sum256([]byte(session))
	return base64.RawURLEncoding.EncodeToString(sum[:12]) + "/" + clientID
}
