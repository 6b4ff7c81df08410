package discord

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// The REST handlers. Each runs with s.mu held and returns the status and
// body of success, or an error answer.

func getGateway(q *request) (int, any, *apiError) {
	return http.StatusOK, map[string]string{"url": q.s.GatewayURL()}, nil
}

func getGatewayBot(q *request) (int, any, *apiError) {
	used := 0
	for _, id := range q.bot.identifies {
		if time.Since(id.At) < 24*time.Hour && id.SessionID != "" {
			used++
		}
	}
	return http.StatusOK, map[string]any{
		"url":    q.s.GatewayURL(),
		"shards": 1,
		"session_start_limit": map[string]int{
			"total": 1000, "remaining": max(1000-used, 0), "reset_after": 86400000, "max_concurrency": 1,
		},
	}, nil
}

func getMe(q *request) (int, any, *apiError) {
	return http.StatusOK, wireMeOf(q.bot.user), nil
}

func getUser(q *request) (int, any, *apiError) {
	id := q.params["user_id"]
	if !isSnowflake(id) {
		return 0, nil, notSnowflake("user_id", id)
	}
	u, ok := q.s.users[id]
	if !ok {
		return 0, nil, errUnknownUser
	}
	return http.StatusOK, wireUserOf(u), nil
}

func getApplication(q *request) (int, any, *apiError) {
	b := q.bot
	return http.StatusOK, map[string]any{
		"id":                     b.user.ID,
		"name":                   b.user.Username,
		"icon":                   nil,
		"description":            "",
		"bot_public":             true,
		"bot_require_code_grant": false,
		"bot":                    wireUserOf(b.user),
		"verify_key":             randomHex(32),
		"flags":                  b.applicationFlagsLocked(),
	}, nil
}

func createDM(q *request) (int, any, *apiError) {
	var p struct {
		RecipientID flexID `json:"recipient_id"`
	}
	if e := q.decode(&p); e != nil {
		return 0, nil, e
	}
	id := string(p.RecipientID)
	if id == "" {
		return 0, nil, formError("recipient_id", "BASE_TYPE_REQUIRED", "This field is required")
	}
	if !isSnowflake(id) {
		return 0, nil, notSnowflake("recipient_id", id)
	}
	u, ok := q.s.users[id]
	if !ok {
		return 0, nil, errUnknownUser
	}
	ch := q.bot.dmLocked(u)
	return http.StatusOK, q.s.wireChannelLocked(ch, q.bot), nil
}

func getChannel(q *request) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, q.s.wireChannelLocked(ch, q.bot), nil
}

// listMessages is GET /channels/{id}/messages: newest first, at most
// limit (1-100, default 50), before / after / around a message id.
func listMessages(q *request) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	limit := defaultHistoryLimit
	if v := q.query.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return 0, nil, formError("limit", "NUMBER_TYPE_COERCE", fmt.Sprintf("Value \"%s\" is not int.", v))
		case n < 1:
			return 0, nil, formError("limit", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 1.")
		case n > MaxHistoryLimit:
			return 0, nil, formError("limit", "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
		}
		limit = n
	}
	for _, k := range []string{"around", "before", "after"} {
		if v := q.query.Get(k); v != "" && !isSnowflake(v) {
			return 0, nil, notSnowflake(k, v)
		}
	}
	msgs := ch.messages // ascending
	var pick []*message
	switch {
	case q.query.Get("around") != "":
		a := q.query.Get("around")
		i := 0
		for i < len(msgs) && idLess(msgs[i].id, a) {
			i++
		}
		// Discord centres the window on the message: limit/2 older ones,
		// the message (if it exists) and newer ones up to limit.
		lo := max(i-limit/2, 0)
		hi := min(lo+limit, len(msgs))
		lo = max(hi-limit, 0)
		pick = msgs[lo:hi]
	case q.query.Get("before") != "":
		b := q.query.Get("before")
		i := 0
		for i < len(msgs) && idLess(msgs[i].id, b) {
			i++
		}
		pick = msgs[max(i-limit, 0):i]
	case q.query.Get("after") != "":
		a := q.query.Get("after")
		i := 0
		for i < len(msgs) && !idLess(a, msgs[i].id) {
			i++
		}
		pick = msgs[i:min(i+limit, len(msgs))]
	default:
		pick = msgs[max(len(msgs)-limit, 0):]
	}
	out := make([]*wireMessage, 0, len(pick))
	for i := len(pick) - 1; i >= 0; i-- {
		out = append(out, q.s.wireMessageLocked(pick[i], q.bot, q.contentIntent(), false, 0))
	}
	return http.StatusOK, out, nil
}

func getMessage(q *request) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	m, e := q.message(ch)
	if e != nil {
		return 0, nil, e
	}
	return http.StatusOK, q.s.wireMessageLocked(m, q.bot, q.contentIntent(), false, 0), nil
}

// referenceIn is a message_reference as a client sends it.
type referenceIn struct {
	Type            int    `json:"type"`
	MessageID       flexID `json:"message_id"`
	ChannelID       flexID `json:"channel_id"`
	GuildID         flexID `json:"guild_id"`
	FailIfNotExists *bool  `json:"fail_if_not_exists"`
}

type allowedMentionsIn struct {
	Parse       []string `json:"parse"`
	Users       []flexID `json:"users"`
	Roles       []flexID `json:"roles"`
	RepliedUser bool     `json:"replied_user"`
}

type messageIn struct {
	Content         *string            `json:"content"`
	Nonce           flexID             `json:"nonce"`
	EnforceNonce    bool               `json:"enforce_nonce"`
	TTS             bool               `json:"tts"`
	Embeds          []json.RawMessage  `json:"embeds"`
	Components      []json.RawMessage  `json:"components"`
	AllowedMentions *allowedMentionsIn `json:"allowed_mentions"`
	Reference       *referenceIn       `json:"message_reference"`
	StickerIDs      []flexID           `json:"sticker_ids"`
	Flags           int                `json:"flags"`
	Poll            json.RawMessage    `json:"poll"`
}

func (a *allowedMentionsIn) out() *AllowedMentions {
	if a == nil {
		return nil
	}
	o := &AllowedMentions{Parse: a.Parse, RepliedUser: a.RepliedUser}
	for _, u := range a.Users {
		o.Users = append(o.Users, string(u))
	}
	for _, r := range a.Roles {
		o.Roles = append(o.Roles, string(r))
	}
	return o
}

// mentionsFor returns who a bot's message mentions: the users in content
// that allowed_mentions lets through (all when it is absent), and the
// replied-to author when replied_user (or allowed_mentions is absent).
func (s *Server) mentionsFor(content string, am *AllowedMentions, repliedAuthor string) []string {
	var out []string
	for _, id := range s.contentMentionsLocked(content) {
		if am == nil || slices.Contains(am.Parse, "users") || slices.Contains(am.Users, id) {
			out = append(out, id)
		}
	}
	if repliedAuthor != "" && (am == nil || am.RepliedUser) && !slices.Contains(out, repliedAuthor) {
		out = append(out, repliedAuthor)
	}
	return out
}

func validateContent(content string, embeds int) *apiError {
	if utf8.RuneCountInString(content) > MaxMessageLength {
		return formError("content", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", MaxMessageLength))
	}
	if embeds > 10 {
		return formError("embeds", "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
	}
	return nil
}

func createMessage(q *request) (int, any, *apiError) {
	s, b := q.s, q.bot
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	var p messageIn
	if e := q.decode(&p); e != nil {
		return 0, nil, e
	}
	content := ""
	if p.Content != nil {
		content = *p.Content
	}
	if e := validateContent(content, len(p.Embeds)); e != nil {
		return 0, nil, e
	}
	if content == "" && len(p.Embeds) == 0 && len(q.files) == 0 && len(p.StickerIDs) == 0 && len(p.Components) == 0 && len(p.Poll) == 0 {
		return 0, nil, errEmptyMessage
	}
	if !b.canSendLocked(ch) {
		return 0, nil, errMissingPerms
	}
	if ch.typ == ChannelTypeDM && b.dmsClosed[ch.dmUser.ID] {
		return 0, nil, errCannotSendToUser
	}
	nonce := string(p.Nonce)
	if len(nonce) > maxNonceLength {
		return 0, nil, formError("nonce", "BASE_TYPE_MAX_LENGTH", fmt.Sprintf("Must be %d or fewer in length.", maxNonceLength))
	}
	if p.EnforceNonce && nonce != "" {
		// Discord: "If true and nonce is present, it will be checked for
		// uniqueness in the past few minutes. If another message was
		// created by the same author with the same nonce, that message
		// will be returned and no new message will be created."
		if use, ok := b.nonces[nonce]; ok && time.Since(use.at) < nonceWindow {
			if old := s.messageLocked(use.channel, use.message); old != nil {
				return http.StatusOK, s.wireMessageLocked(old, b, true, false, 0), nil
			}
		}
	}
	m := &message{id: s.newIDLocked(), typ: MessageTypeDefault, ch: ch, author: b.user, content: content,
		embeds: p.Embeds, components: p.Components, flags: p.Flags, tts: p.TTS, nonce: string(p.Nonce)}
	m.at = SnowflakeTime(m.id)
	am := p.AllowedMentions.out()
	var sentRef *MessageReference
	repliedAuthor := ""
	if r := p.Reference; r != nil && r.MessageID != "" {
		sentRef = &MessageReference{Type: r.Type, MessageID: string(r.MessageID), ChannelID: string(r.ChannelID), GuildID: string(r.GuildID), FailIfNotExists: r.FailIfNotExists}
		refCh := ch.id
		if r.ChannelID != "" {
			refCh = string(r.ChannelID)
		}
		rm := s.messageLocked(refCh, string(r.MessageID))
		if rm != nil && (rm.ch.guild != ch.guild || !b.canViewLocked(rm.ch)) {
			rm = nil
		}
		switch {
		case rm != nil:
			m.typ = MessageTypeReply
			m.ref = &MessageReference{MessageID: rm.id, ChannelID: rm.ch.id}
			if ch.guild != nil {
				m.ref.GuildID = ch.guild.id
			}
			if rm.author.ID != b.user.ID {
				repliedAuthor = rm.author.ID
			}
		case r.FailIfNotExists == nil || *r.FailIfNotExists:
			return 0, nil, formError("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
		}
	}
	m.mentions = s.mentionsFor(content, am, repliedAuthor)
	m.mentionEveryone = ch.guild != nil && (am == nil || slices.Contains(am.Parse, "everyone")) &&
		(containsWord(content, "@everyone") || containsWord(content, "@here"))
	for _, f := range q.files {
		m.attachments = append(m.attachments, s.attachLocked(ch, Attachment{Filename: f.Name, ContentType: f.ContentType, Data: f.Data}))
	}
	s.storeLocked(m)
	if p.EnforceNonce && nonce != "" {
		if b.nonces == nil {
			b.nonces = map[string]nonceUse{}
		}
		b.nonces[nonce] = nonceUse{channel: ch.id, message: m.id, at: time.Now()}
	}
	sent := SentMessage{ID: m.id, ChannelID: ch.id, Content: content, Reference: sentRef, AllowedMentions: am,
		Embeds: p.Embeds, Components: p.Components, Files: q.files, Flags: p.Flags, TTS: p.TTS, Nonce: string(p.Nonce), At: time.Now()}
	if !s.unrecorded {
		b.sent = append(b.sent, sent)
	}
	if fn := b.onSent; fn != nil {
		q.after = append(q.after, func() { fn(sent) })
	}
	s.dispatchMessageLocked("MESSAGE_CREATE", m)
	return http.StatusOK, s.wireMessageLocked(m, b, true, false, 0), nil
}

// Nonces: at most 25 characters, and with enforce_nonce unique per author
// for "the past few minutes".
const (
	maxNonceLength = 25
	nonceWindow    = 5 * time.Minute
)

func containsWord(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if s[i:i+len(w)] == w {
			return true
		}
	}
	return false
}

func editMessage(q *request) (int, any, *apiError) {
	s, b := q.s, q.bot
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	m, e := q.message(ch)
	if e != nil {
		return 0, nil, e
	}
	if m.author.ID != b.user.ID {
		return 0, nil, errForbidden(CodeCannotEditOthers, "Cannot edit a message authored by another user")
	}
	var p struct {
		Content         *string            `json:"content"`
		Embeds          *[]json.RawMessage `json:"embeds"`
		Components      *[]json.RawMessage `json:"components"`
		AllowedMentions *allowedMentionsIn `json:"allowed_mentions"`
		Flags           *int               `json:"flags"`
	}
	if e := q.decode(&p); e != nil {
		return 0, nil, e
	}
	content, embeds, components := m.content, m.embeds, m.components
	if p.Content != nil {
		content = *p.Content
	}
	if p.Embeds != nil {
		embeds = *p.Embeds
	}
	if p.Components != nil {
		components = *p.Components
	}
	if e := validateContent(content, len(embeds)); e != nil {
		return 0, nil, e
	}
	if content == "" && len(embeds) == 0 && len(m.attachments) == 0 && len(components) == 0 && len(q.files) == 0 {
		return 0, nil, errEmptyMessage
	}
	am := p.AllowedMentions.out()
	m.content, m.embeds, m.components = content, embeds, components
	if p.Flags != nil {
		m.flags = *p.Flags
	}
	repliedAuthor := ""
	if m.ref != nil && m.typ == MessageTypeReply {
		if rm := s.messageLocked(m.ref.ChannelID, m.ref.MessageID); rm != nil && slices.Contains(m.mentions, rm.author.ID) {
			repliedAuthor = rm.author.ID
		}
	}
	m.mentions = s.mentionsFor(content, am, repliedAuthor)
	for _, f := range q.files {
		m.attachments = append(m.attachments, s.attachLocked(ch, Attachment{Filename: f.Name, ContentType: f.ContentType, Data: f.Data}))
	}
	m.edited = time.Now().UTC()
	if !s.unrecorded {
		b.edits = append(b.edits, SentMessage{ID: m.id, ChannelID: ch.id, Content: content, AllowedMentions: am,
			Embeds: embeds, Components: components, Files: q.files, Flags: m.flags, At: time.Now()})
	}
	s.broadcastLocked()
	s.dispatchMessageLocked("MESSAGE_UPDATE", m)
	return http.StatusOK, s.wireMessageLocked(m, b, true, false, 0), nil
}

func deleteMessage(q *request) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	m, e := q.message(ch)
	if e != nil {
		return 0, nil, e
	}
	if m.author.ID != q.bot.user.ID {
		if ch.typ == ChannelTypeDM {
			return 0, nil, errForbidden(CodeCannotExecuteOnDM, "Cannot execute action on a DM channel")
		}
		return 0, nil, errMissingPerms
	}
	if !q.s.unrecorded {
		q.bot.deleted = append(q.bot.deleted, m.id)
	}
	q.s.deleteLocked(m)
	return http.StatusNoContent, nil, nil
}

func triggerTyping(q *request) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	if !q.bot.canSendLocked(ch) {
		return 0, nil, errMissingPerms
	}
	if !q.s.unrecorded {
		q.bot.typing = append(q.bot.typing, Typing{ChannelID: ch.id, At: time.Now()})
	}
	q.s.broadcastLocked()
	return http.StatusNoContent, nil, nil
}

type threadIn struct {
	Name                *string `json:"name"`
	AutoArchiveDuration int     `json:"auto_archive_duration"`
	Type                *int    `json:"type"`
	Invitable           *bool   `json:"invitable"`
	RateLimitPerUser    int     `json:"rate_limit_per_user"`
}

func (p *threadIn) validate() *apiError {
	switch {
	case p.Name == nil:
		return formError("name", "BASE_TYPE_REQUIRED", "This field is required")
	case utf8.RuneCountInString(*p.Name) < 1 || utf8.RuneCountInString(*p.Name) > 100:
		return formError("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
	}
	switch p.AutoArchiveDuration {
	case 0:
		p.AutoArchiveDuration = 4320
	case 60, 1440, 4320, 10080:
	default:
		return formError("auto_archive_duration", "BASE_TYPE_CHOICES", "Value must be one of {60, 1440, 4320, 10080}.")
	}
	return nil
}

func errThreadChannelType() *apiError {
	return &apiError{status: http.StatusBadRequest, code: CodeInvalidChannelType, message: "Cannot execute action on this channel type"}
}

// threadFromMessage is POST /channels/{id}/messages/{message_id}/threads:
// a public thread with the message's id.
func threadFromMessage(q *request) (int, any, *apiError) {
	s, b := q.s, q.bot
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	var p threadIn
	if e := q.decode(&p); e != nil {
		return 0, nil, e
	}
	if e := p.validate(); e != nil {
		return 0, nil, e
	}
	if ch.typ != ChannelTypeGuildText {
		return 0, nil, errThreadChannelType()
	}
	if !b.canSendLocked(ch) {
		return 0, nil, errMissingPerms
	}
	m, e := q.message(ch)
	if e != nil {
		return 0, nil, e
	}
	if m.thread != nil {
		return 0, nil, &apiError{status: http.StatusBadRequest, code: CodeThreadAlreadyCreated, message: "A thread has already been created for this message"}
	}
	th := s.threadFromMessageLocked(m, *p.Name, b.user, p.AutoArchiveDuration)
	b.threads = append(b.threads, th.view())
	return http.StatusCreated, s.wireChannelLocked(th, b), nil
}

// threadWithoutMessage is POST /channels/{id}/threads. In API v9 the type
// defaults to a private thread (12); v10 requires it.
func threadWithoutMessage(q *request) (int, any, *apiError) {
	s, b := q.s, q.bot
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	var p threadIn
	if e := q.decode(&p); e != nil {
		return 0, nil, e
	}
	if e := p.validate(); e != nil {
		return 0, nil, e
	}
	typ := ChannelTypePrivateThread
	switch {
	case p.Type != nil:
		typ = *p.Type
	case q.version != "9":
		return 0, nil, formError("type", "BASE_TYPE_REQUIRED", "This field is required")
	}
	if typ != ChannelTypePublicThread && typ != ChannelTypePrivateThread {
		return 0, nil, formError("type", "BASE_TYPE_CHOICES", "Value must be one of {10, 11, 12}.")
	}
	if ch.typ != ChannelTypeGuildText {
		return 0, nil, errThreadChannelType()
	}
	if !b.canSendLocked(ch) {
		return 0, nil, errMissingPerms
	}
	th := s.newThreadLocked(ch, s.newIDLocked(), typ, *p.Name, b.user.ID, p.AutoArchiveDuration)
	b.threads = append(b.threads, th.view())
	s.broadcastLocked()
	return http.StatusCreated, s.wireChannelLocked(th, b), nil
}

func addReaction(q *request) (int, any, *apiError) { return react(q, false) }

func removeReaction(q *request) (int, any, *apiError) { return react(q, true) }

func react(q *request, removed bool) (int, any, *apiError) {
	ch, e := q.channel()
	if e != nil {
		return 0, nil, e
	}
	m, e := q.message(ch)
	if e != nil {
		return 0, nil, e
	}
	emoji, err := url.PathUnescape(q.params["emoji"])
	if err != nil || emoji == "" {
		return 0, nil, errNotFound(10014, "Unknown Emoji")
	}
	if !q.s.unrecorded {
		q.bot.reactions = append(q.bot.reactions, Reaction{ChannelID: ch.id, MessageID: m.id, Emoji: emoji, Removed: removed, At: time.Now()})
	}
	q.s.broadcastLocked()
	return http.StatusNoContent, nil, nil
}
