package discord

import (
	"encoding/json"
	"net/url"
	"strconv"
	"time"
)

// Gateway intents (Discord's bit values).
const (
	IntentGuilds                      = 1 << 0
	IntentGuildMembers                = 1 << 1 // privileged
	IntentGuildModeration             = 1 << 2
	IntentGuildEmojis                 = 1 << 3
	IntentGuildIntegrations           = 1 << 4
	IntentGuildWebhooks               = 1 << 5
	IntentGuildInvites                = 1 << 6
	IntentGuildVoiceStates            = 1 << 7
	IntentGuildPresences              = 1 << 8 // privileged
	IntentGuildMessages               = 1 << 9
	IntentGuildMessageReactions       = 1 << 10
	IntentGuildMessageTyping          = 1 << 11
	IntentDirectMessages              = 1 << 12
	IntentDirectMessageReactions      = 1 << 13
	IntentDirectMessageTyping         = 1 << 14
	IntentMessageContent              = 1 << 15 // privileged
	IntentGuildScheduledEvents        = 1 << 16
	IntentAutoModerationConfiguration = 1 << 20
	IntentAutoModerationExecution     = 1 << 21
	IntentGuildMessagePolls           = 1 << 24
	IntentDirectMessagePolls          = 1 << 25

	// PrivilegedIntents are the intents an application must enable in the
	// developer portal (see Bot.DisallowIntents).
	PrivilegedIntents = IntentGuildMembers | IntentGuildPresences | IntentMessageContent

	// validIntents is every defined bit; IDENTIFY with another bit is
	// closed with 4013.
	validIntents = 1<<17 - 1 | IntentAutoModerationConfiguration | IntentAutoModerationExecution |
		IntentGuildMessagePolls | IntentDirectMessagePolls
)

// Channel types.
const (
	ChannelTypeGuildText     = 0
	ChannelTypeDM            = 1
	ChannelTypePublicThread  = 11
	ChannelTypePrivateThread = 12
)

// Message types.
const (
	MessageTypeDefault              = 0
	MessageTypeThreadCreated        = 18
	MessageTypeReply                = 19
	MessageTypeThreadStarterMessage = 21
)

// JSON error codes the fake answers with (Discord's "code" field).
const (
	CodeGeneral              = 0
	CodeUnknownChannel       = 10003
	CodeUnknownMessage       = 10008
	CodeUnknownUser          = 10013
	CodeMissingAccess        = 50001
	CodeCannotExecuteOnDM    = 50003
	CodeCannotEditOthers     = 50005
	CodeEmptyMessage         = 50006
	CodeCannotSendToUser     = 50007
	CodeMissingPermissions   = 50013
	CodeInvalidChannelType   = 50024
	CodeInvalidFormBody      = 50035
	CodeInvalidAPIVersion    = 50041
	CodeThreadAlreadyCreated = 160004
)

// Limits.
const (
	MaxMessageLength    = 2000 // characters of content
	MaxHistoryLimit     = 100  // GET /channels/{id}/messages?limit=
	defaultHistoryLimit = 50
	maxGatewayPayload   = 4096 // bytes a client may send in one payload
)

// Gateway close codes.
const (
	CloseUnknownError         = 4000
	CloseUnknownOpcode        = 4001
	CloseDecodeError          = 4002
	CloseNotAuthenticated     = 4003
	CloseAuthenticationFailed = 4004
	CloseAlreadyAuthenticated = 4005
	CloseInvalidSeq           = 4007
	CloseRateLimited          = 4008
	CloseSessionTimedOut      = 4009
	CloseInvalidShard         = 4010
	CloseShardingRequired     = 4011
	CloseInvalidAPIVersion    = 4012
	CloseInvalidIntents       = 4013
	CloseDisallowedIntents    = 4014
)

// closeReasons are Discord's close frame reasons.
var closeReasons = map[int]string{
	CloseUnknownError:         "Unknown error.",
	CloseUnknownOpcode:        "Unknown opcode.",
	CloseDecodeError:          "Error while decoding payload.",
	CloseNotAuthenticated:     "Not authenticated.",
	CloseAuthenticationFailed: "Authentication failed.",
	CloseAlreadyAuthenticated: "Already authenticated.",
	CloseInvalidSeq:           "Invalid seq.",
	CloseRateLimited:          "Rate limited.",
	CloseSessionTimedOut:      "Session timed out.",
	CloseInvalidShard:         "Invalid shard.",
	CloseShardingRequired:     "Sharding required.",
	CloseInvalidAPIVersion:    "Invalid API version.",
	CloseInvalidIntents:       "Invalid intent(s).",
	CloseDisallowedIntents:    "Disallowed intent(s).",
}

// Resumable reports whether Discord keeps a session resumable after it
// closed the connection with code: 4004, 4007, 4009 and 4010-4014 end the
// session (the client must IDENTIFY anew), other codes do not.
func Resumable(code int) bool {
	switch code {
	case CloseAuthenticationFailed, CloseInvalidSeq, CloseSessionTimedOut, CloseInvalidShard,
		CloseShardingRequired, CloseInvalidAPIVersion, CloseInvalidIntents, CloseDisallowedIntents:
		return false
	}
	return true
}

// User is a Discord user: a person made with Server.NewUser, or a bot's own
// user (Bot.User).
type User struct {
	ID         string
	Username   string
	GlobalName string // display name; "" is null on the wire
	Bot        bool
}

// Mention is the user's mention markup, "<@id>".
func (u User) Mention() string { return "<@" + u.ID + ">" }

// Channel describes a channel the fake knows: a guild text channel, a DM
// or a thread.
type Channel struct {
	ID       string
	Type     int // ChannelType*
	GuildID  string
	Name     string
	ParentID string // threads: the channel it is in
	OwnerID  string // threads: who started it
	// RecipientID and BotID are the two sides of a DM.
	RecipientID string
	BotID       string
}

// Attachment is a file on a message. Data, when set, is served at URL.
type Attachment struct {
	ID          string
	Filename    string
	ContentType string
	Size        int // default len(Data)
	URL         string
	Width       int
	Height      int
	Data        []byte
}

// MessageReference is a message_reference: what a reply points at.
type MessageReference struct {
	Type            int    `json:"type,omitempty"`
	MessageID       string `json:"message_id,omitempty"`
	ChannelID       string `json:"channel_id,omitempty"`
	GuildID         string `json:"guild_id,omitempty"`
	FailIfNotExists *bool  `json:"fail_if_not_exists,omitempty"`
}

// AllowedMentions is a message's allowed_mentions as the bot sent it.
type AllowedMentions struct {
	Parse       []string `json:"parse"`
	Users       []string `json:"users,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	RepliedUser bool     `json:"replied_user"`
}

// Message is a message stored in a channel, as the fake holds it (content
// always complete, whatever a bot's intents).
type Message struct {
	ID              string
	ChannelID       string
	GuildID         string
	Type            int // MessageType*
	Author          User
	Content         string
	Timestamp       time.Time
	EditedTimestamp time.Time // zero when never edited
	Mentions        []User
	MentionEveryone bool
	Attachments     []Attachment
	Embeds          []json.RawMessage
	Reference       *MessageReference
	ThreadID        string // the thread started from this message, if any
}

// MessageSpec is a message for Server.Post to create as if a user (or
// another bot) had posted it in a Discord client.
type MessageSpec struct {
	ChannelID string
	Author    User // a user from NewUser, or another Bot's User()
	Content   string
	// Attachments get an id and a URL on the fake if they have none.
	Attachments []Attachment
	Embeds      []json.RawMessage
	// ReplyTo is the id of a message in the same channel to reply to
	// (type 19). The replied-to author is mentioned, as the Discord client
	// does by default, unless NoReplyPing.
	ReplyTo     string
	NoReplyPing bool
	// Mentions are mentioned in addition to the <@id> in Content.
	Mentions []User
}

// File is an uploaded file of a multipart request.
type File struct {
	Field       string // "files[0]"
	Name        string
	ContentType string
	Data        []byte
}

// SentMessage is a message a bot created (or edited) through REST.
type SentMessage struct {
	ID              string
	ChannelID       string
	Content         string
	Reference       *MessageReference
	AllowedMentions *AllowedMentions
	Embeds          []json.RawMessage
	Components      []json.RawMessage
	Files           []File
	Flags           int
	TTS             bool
	Nonce           string
	At              time.Time
}

// Typing is one successful POST /channels/{id}/typing.
type Typing struct {
	ChannelID string
	At        time.Time
}

// Reaction is one reaction a bot added or removed.
type Reaction struct {
	ChannelID string
	MessageID string
	Emoji     string // unescaped: "👍" or "name:id"
	Removed   bool
	At        time.Time
}

// Call is one REST request the fake received.
type Call struct {
	Method  string
	Route   string // "POST /channels/{id}/messages"; "" for an unknown route
	Path    string // as requested, "/api/v10/channels/123/messages"
	Version string // "10" or "9"
	Query   url.Values
	// BotID is the authenticated bot's user id; "" when the request had
	// no (valid) token.
	BotID string
	Body  []byte
	// Status is the HTTP status answered, 0 when the connection was
	// dropped or the client went away first. Code is the JSON error code.
	Status   int
	Code     int
	Injected bool // a Fault decided the answer
	At       time.Time
}

// Identify is one op 2 IDENTIFY the gateway received.
type Identify struct {
	Token          string // as sent ("Bot " prefix kept)
	Intents        int
	Properties     map[string]string
	Compress       bool
	LargeThreshold int
	Shard          []int
	Presence       json.RawMessage
	Version        string // the connection's ?v=
	Encoding       string
	Path           string // "/gateway" or "/resume" (resume_gateway_url)
	// SessionID is the session created; "" when refused with CloseCode.
	SessionID string
	CloseCode int
	At        time.Time
}

// Resume is one op 6 RESUME the gateway received.
type Resume struct {
	SessionID string
	Seq       int64
	Path      string
	// Result is "resumed", "invalid_session" (op 9 sent) or "closed"
	// (with CloseCode).
	Result    string
	CloseCode int
	Replayed  int // dispatches replayed before RESUMED
	At        time.Time
}

// Hangup is the end of a gateway connection that carried a session (it
// identified or resumed on it, and no RESUME elsewhere took the session
// over since).
type Hangup struct {
	SessionID string
	// ByFake: the fake closed or dropped the connection (Server.Close
	// included), and Code is its close code, 0 for a drop. Otherwise the
	// client ended it and Code is the code of its close frame, -1 when
	// the connection just broke.
	ByFake bool
	Code   int
	// SessionEnded: the session ended with the connection (a client's
	// close with 1000 or 1001, as on Discord, or a fake's code Resumable
	// reports false for); otherwise it stays resumable.
	SessionEnded bool
	At           time.Time
}

// SessionInfo describes one gateway session.
type SessionInfo struct {
	ID         string
	BotID      string
	Intents    int
	Shard      [2]int
	Seq        int64 // last sequence number dispatched
	Connected  bool
	Version    string
	Heartbeats int
	Compressed bool
}

// Fault is one injected failure of a REST request. A zero Status with a
// Delay only slows the request down.
type Fault struct {
	Status  int
	Code    int    // JSON error code (default 0)
	Message string // default Discord's text for Status
	// RetryAfter, Global and Scope shape a 429.
	RetryAfter time.Duration
	Global     bool
	Scope      string // "user" (default), "global" (with Global) or "shared"
	// BucketHeaders adds the route's X-RateLimit-* headers to a global
	// 429, with X-RateLimit-Reset-After = RetryAfter. Discord's example of
	// a global 429 has none; discordgo only takes its global lock (which
	// holds every bucket) when it sees X-RateLimit-Global together with
	// X-RateLimit-Reset-After.
	BucketHeaders bool
	// Delay is waited before the request is looked at; if the client goes
	// away meanwhile the request is not processed.
	Delay time.Duration
	// Drop closes the connection without an answer, unprocessed.
	Drop bool
}

// TooManyRequests is a 429 of a route bucket (global false, scope "user")
// or of the bot's global limit (global true, scope "global").
func TooManyRequests(retryAfter time.Duration, global bool) Fault {
	f := Fault{Status: 429, RetryAfter: retryAfter, Global: global, Scope: "user"}
	if global {
		f.Scope = "global"
	}
	return f
}

// ServerError is a 5xx. discordgo retries a 502 by itself (up to
// MaxRestRetries times, at once); other statuses are returned as errors.
func ServerError(status int) Fault { return Fault{Status: status} }

// MissingPermissions is 403 {"message":"Missing Permissions","code":50013}.
func MissingPermissions() Fault {
	return Fault{Status: 403, Code: CodeMissingPermissions, Message: "Missing Permissions"}
}

// discordEpoch is the first millisecond of 2015, Discord's snowflake epoch.
const discordEpoch = 1420070400000

// SnowflakeTime returns the time encoded in a snowflake id.
func SnowflakeTime(id string) time.Time {
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(int64(n>>22) + discordEpoch).UTC()
}

// SnowflakeAt returns the smallest snowflake of time t, for `after` and
// `before` queries by time.
func SnowflakeAt(t time.Time) string {
	ms := t.UnixMilli() - discordEpoch
	if ms < 0 {
		ms = 0
	}
	return strconv.FormatUint(uint64(ms)<<22, 10)
}
