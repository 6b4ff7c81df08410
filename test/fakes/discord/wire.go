package discord

import (
	"bytes"
	"encoding/json"
	"time"
)

// marshal is json.Marshal without HTML escaping: Discord sends "<@id>",
// not "\u003c@id\u003e".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// The JSON shapes of Discord's objects, as far as the fake fills them.
// Fields Discord sends as null are pointers without omitempty.

type wireUser struct {
	ID                   string      `json:"id"`
	Username             string      `json:"username"`
	GlobalName           *string     `json:"global_name"`
	Avatar               *string     `json:"avatar"`
	Discriminator        string      `json:"discriminator"`
	PublicFlags          int         `json:"public_flags"`
	Flags                int         `json:"flags"`
	Bot                  bool        `json:"bot,omitempty"`
	Banner               *string     `json:"banner"`
	AccentColor          *int        `json:"accent_color"`
	AvatarDecorationData any         `json:"avatar_decoration_data"`
	Member               *wireMember `json:"member,omitempty"` // in a guild message's mentions
}

// wireMe is GET /users/@me and READY's user.
type wireMe struct {
	wireUser
	Verified   bool    `json:"verified"`
	MFAEnabled bool    `json:"mfa_enabled"`
	Email      *string `json:"email"`
	Locale     string  `json:"locale"`
}

type wireMember struct {
	User                       *wireUser `json:"user,omitempty"`
	Nick                       *string   `json:"nick"`
	Avatar                     *string   `json:"avatar"`
	Banner                     *string   `json:"banner"`
	Roles                      []string  `json:"roles"`
	JoinedAt                   string    `json:"joined_at"`
	PremiumSince               *string   `json:"premium_since"`
	Deaf                       bool      `json:"deaf"`
	Mute                       bool      `json:"mute"`
	Flags                      int       `json:"flags"`
	Pending                    bool      `json:"pending"`
	CommunicationDisabledUntil *string   `json:"communication_disabled_until"`
}

type wireAttachment struct {
	ID          string `json:"id"`
	Filename    string `json:"filename"`
	Size        int    `json:"size"`
	URL         string `json:"url"`
	ProxyURL    string `json:"proxy_url"`
	ContentType string `json:"content_type,omitempty"`
	Width       *int   `json:"width,omitempty"`
	Height      *int   `json:"height,omitempty"`
}

type wireMessage struct {
	ID                string            `json:"id"`
	Type              int               `json:"type"`
	ChannelID         string            `json:"channel_id"`
	GuildID           string            `json:"guild_id,omitempty"`
	Author            wireUser          `json:"author"`
	Member            *wireMember       `json:"member,omitempty"`
	Content           string            `json:"content"`
	Timestamp         string            `json:"timestamp"`
	EditedTimestamp   *string           `json:"edited_timestamp"`
	TTS               bool              `json:"tts"`
	MentionEveryone   bool              `json:"mention_everyone"`
	Mentions          []wireUser        `json:"mentions"`
	MentionRoles      []string          `json:"mention_roles"`
	Attachments       []wireAttachment  `json:"attachments"`
	Embeds            []json.RawMessage `json:"embeds"`
	Components        []json.RawMessage `json:"components"`
	Pinned            bool              `json:"pinned"`
	Flags             int               `json:"flags"`
	Nonce             string            `json:"nonce,omitempty"`
	MessageReference  *MessageReference `json:"message_reference,omitempty"`
	ReferencedMessage *wireMessage      `json:"referenced_message,omitempty"`
	Thread            *wireChannel      `json:"thread,omitempty"`
	Position          *int              `json:"position,omitempty"`
}

type wireThreadMetadata struct {
	Archived            bool   `json:"archived"`
	AutoArchiveDuration int    `json:"auto_archive_duration"`
	ArchiveTimestamp    string `json:"archive_timestamp"`
	Locked              bool   `json:"locked"`
	CreateTimestamp     string `json:"create_timestamp"`
	Invitable           *bool  `json:"invitable,omitempty"`
}

type wireThreadMember struct {
	ID            string `json:"id"`
	UserID        string `json:"user_id"`
	JoinTimestamp string `json:"join_timestamp"`
	Flags         int    `json:"flags"`
}

type wireChannel struct {
	ID                   string              `json:"id"`
	Type                 int                 `json:"type"`
	GuildID              string              `json:"guild_id,omitempty"`
	Name                 string              `json:"name,omitempty"`
	Position             *int                `json:"position,omitempty"`
	PermissionOverwrites []any               `json:"permission_overwrites,omitempty"`
	ParentID             *string             `json:"parent_id,omitempty"`
	Topic                *string             `json:"topic,omitempty"`
	NSFW                 *bool               `json:"nsfw,omitempty"`
	LastMessageID        *string             `json:"last_message_id"`
	RateLimitPerUser     *int                `json:"rate_limit_per_user,omitempty"`
	Recipients           []wireUser          `json:"recipients,omitempty"`
	OwnerID              string              `json:"owner_id,omitempty"`
	MessageCount         *int                `json:"message_count,omitempty"`
	MemberCount          *int                `json:"member_count,omitempty"`
	TotalMessageSent     *int                `json:"total_message_sent,omitempty"`
	ThreadMetadata       *wireThreadMetadata `json:"thread_metadata,omitempty"`
	Member               *wireThreadMember   `json:"member,omitempty"`
	Flags                int                 `json:"flags"`
	NewlyCreated         bool                `json:"newly_created,omitempty"`
}

// timestamp formats a time as Discord does: ISO 8601 with microseconds
// and +00:00.
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func intPtr(n int) *int { return &n }

func wireUserOf(u User) wireUser {
	return wireUser{ID: u.ID, Username: u.Username, GlobalName: strPtr(u.GlobalName), Discriminator: "0", Bot: u.Bot}
}

func wireMeOf(u User) wireMe {
	return wireMe{wireUser: wireUserOf(u), Verified: true, Locale: "en-US"}
}

func wireMemberOf(m *member, withUser bool) *wireMember {
	w := &wireMember{Nick: strPtr(m.nick), Roles: []string{}, JoinedAt: timestamp(m.joinedAt)}
	if withUser {
		u := wireUserOf(m.user)
		w.User = &u
	}
	return w
}

// wireChannelLocked renders a channel as viewer sees it.
func (s *Server) wireChannelLocked(ch *channel, viewer *Bot) *wireChannel {
	w := &wireChannel{ID: ch.id, Type: ch.typ, LastMessageID: strPtr(ch.lastMessageID())}
	switch ch.typ {
	case ChannelTypeDM:
		w.Recipients = []wireUser{wireUserOf(ch.dmUser)}
	case ChannelTypeGuildText:
		f := false
		w.GuildID = ch.guild.id
		w.Name = ch.name
		w.Position = intPtr(ch.position)
		w.PermissionOverwrites = []any{}
		w.NSFW = &f
		w.RateLimitPerUser = intPtr(0)
	case ChannelTypePublicThread, ChannelTypePrivateThread:
		w.GuildID = ch.guild.id
		w.Name = ch.name
		w.ParentID = &ch.parent.id
		w.OwnerID = ch.ownerID
		w.RateLimitPerUser = intPtr(0)
		w.MessageCount = intPtr(ch.messageCount)
		w.TotalMessageSent = intPtr(ch.totalSent)
		w.MemberCount = intPtr(min(len(ch.members), 50))
		created := timestamp(ch.createdAt)
		w.ThreadMetadata = &wireThreadMetadata{AutoArchiveDuration: ch.autoArchive, ArchiveTimestamp: created, CreateTimestamp: created}
		if ch.typ == ChannelTypePrivateThread {
			t := true
			w.ThreadMetadata.Invitable = &t
		}
		if viewer != nil && ch.members[viewer.user.ID] {
			w.Member = &wireThreadMember{ID: ch.id, UserID: viewer.user.ID, JoinTimestamp: created, Flags: 1}
		}
	}
	return w
}

// guildCreateLocked renders GUILD_CREATE for a bot.
func (s *Server) guildCreateLocked(g *Guild, b *Bot) map[string]any {
	channels := []*wireChannel{}
	threads := []*wireChannel{}
	for _, ch := range g.channels {
		if !b.canViewLocked(ch) {
			continue
		}
		if ch.isThread() {
			threads = append(threads, s.wireChannelLocked(ch, b))
		} else {
			w := s.wireChannelLocked(ch, b)
			w.GuildID = "" // channels in GUILD_CREATE carry no guild_id
			channels = append(channels, w)
		}
	}
	members := []*wireMember{}
	for _, gb := range g.bots {
		members = append(members, wireMemberOf(g.members[gb.user.ID], true))
	}
	owner := g.ownerID
	if owner == "" && len(g.bots) > 0 {
		owner = g.bots[0].user.ID
	}
	return map[string]any{
		"id":                            g.id,
		"name":                          g.name,
		"icon":                          nil,
		"splash":                        nil,
		"discovery_splash":              nil,
		"owner_id":                      owner,
		"afk_channel_id":                nil,
		"afk_timeout":                   300,
		"verification_level":            0,
		"default_message_notifications": 0,
		"explicit_content_filter":       0,
		"roles": []map[string]any{{
			"id": g.id, "name": "@everyone", "color": 0, "hoist": false, "position": 0,
			"permissions": "2248473465835073", "managed": false, "mentionable": false, "flags": 0,
		}},
		"emojis":                     []any{},
		"stickers":                   []any{},
		"features":                   []string{},
		"mfa_level":                  0,
		"application_id":             nil,
		"system_channel_id":          nil,
		"rules_channel_id":           nil,
		"preferred_locale":           "en-US",
		"premium_tier":               0,
		"nsfw_level":                 0,
		"joined_at":                  timestamp(g.joinedAt),
		"large":                      false,
		"unavailable":                false,
		"member_count":               len(g.members),
		"members":                    members,
		"channels":                   channels,
		"threads":                    threads,
		"voice_states":               []any{},
		"presences":                  []any{},
		"stage_instances":            []any{},
		"guild_scheduled_events":     []any{},
		"soundboard_sounds":          []any{},
		"premium_subscription_count": 0,
	}
}

// wireMessageLocked renders m as viewer receives it: full, or without
// content, embeds, attachments and components when the viewer lacks the
// MESSAGE_CONTENT intent (hasContentIntent) and none of Discord's
// exceptions applies. gateway adds guild_id and member as MESSAGE_CREATE
// carries them.
func (s *Server) wireMessageLocked(m *message, viewer *Bot, hasContentIntent, gateway bool, depth int) *wireMessage {
	ch := m.ch
	w := &wireMessage{
		ID:           m.id,
		Type:         m.typ,
		ChannelID:    ch.id,
		Author:       wireUserOf(m.author),
		Content:      m.content,
		Timestamp:    timestamp(m.at),
		TTS:          m.tts,
		Mentions:     []wireUser{},
		MentionRoles: []string{},
		Attachments:  []wireAttachment{},
		Embeds:       []json.RawMessage{},
		Components:   []json.RawMessage{},
		Flags:        m.flags,
		Nonce:        m.nonce,
	}
	w.MentionEveryone = m.mentionEveryone
	if !m.edited.IsZero() {
		e := timestamp(m.edited)
		w.EditedTimestamp = &e
	}
	for _, id := range m.mentions {
		u := wireUserOf(s.users[id])
		if gateway && ch.guild != nil {
			if mem := ch.guild.members[id]; mem != nil {
				u.Member = wireMemberOf(mem, false)
			}
		}
		w.Mentions = append(w.Mentions, u)
	}
	for _, a := range m.attachments {
		wa := wireAttachment{ID: a.ID, Filename: a.Filename, Size: a.Size, URL: a.URL, ProxyURL: a.URL, ContentType: a.ContentType}
		if a.Width > 0 {
			wa.Width, wa.Height = intPtr(a.Width), intPtr(a.Height)
		}
		w.Attachments = append(w.Attachments, wa)
	}
	w.Embeds = append(w.Embeds, m.embeds...)
	w.Components = append(w.Components, m.components...)
	if m.ref != nil {
		r := *m.ref
		w.MessageReference = &r
		if m.typ == MessageTypeReply || m.typ == MessageTypeThreadStarterMessage {
			if rm := s.messageLocked(r.ChannelID, r.MessageID); rm != nil && depth == 0 {
				// A plain message object: no guild_id nor member.
				w.ReferencedMessage = s.wireMessageLocked(rm, viewer, hasContentIntent, false, depth+1)
			}
		}
	}
	if m.thread != nil {
		w.Thread = s.wireChannelLocked(m.thread, viewer)
	}
	if ch.isThread() && m.position >= 0 {
		w.Position = intPtr(m.position)
	}
	if gateway && ch.guild != nil {
		w.GuildID = ch.guild.id
		if mem := ch.guild.members[m.author.ID]; mem != nil {
			w.Member = wireMemberOf(mem, false)
		}
	}
	if viewer != nil && !contentVisible(m, viewer, hasContentIntent) {
		w.Content = ""
		w.Embeds = []json.RawMessage{}
		w.Attachments = []wireAttachment{}
		w.Components = []json.RawMessage{}
	}
	return w
}

// contentVisible is Discord's rule for the MESSAGE_CONTENT intent.
func contentVisible(m *message, viewer *Bot, hasContentIntent bool) bool {
	if hasContentIntent || m.ch.typ == ChannelTypeDM || m.author.ID == viewer.user.ID {
		return true
	}
	for _, id := range m.mentions {
		if id == viewer.user.ID {
			return true
		}
	}
	return false
}
