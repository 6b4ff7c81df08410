package discord

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// message is a stored message.
type message struct {
	id              string
	typ             int
	ch              *channel
	author          User
	content         string
	at              time.Time
	edited          time.Time
	mentions        []string // user ids, in order of appearance
	mentionEveryone bool
	attachments     []Attachment
	embeds          []json.RawMessage
	components      []json.RawMessage
	ref             *MessageReference
	flags           int
	tts             bool
	nonce           string
	thread          *channel // started from this message
	position        int      // in a thread; -1 elsewhere
}

func (m *message) view(s *Server) Message {
	v := Message{
		ID:              m.id,
		ChannelID:       m.ch.id,
		Type:            m.typ,
		Author:          m.author,
		Content:         m.content,
		Timestamp:       m.at,
		EditedTimestamp: m.edited,
		MentionEveryone: m.mentionEveryone,
		Attachments:     slices.Clone(m.attachments),
		Embeds:          slices.Clone(m.embeds),
	}
	if m.ch.guild != nil {
		v.GuildID = m.ch.guild.id
	}
	for _, id := range m.mentions {
		v.Mentions = append(v.Mentions, s.users[id])
	}
	if m.ref != nil {
		r := *m.ref
		v.Reference = &r
	}
	if m.thread != nil {
		v.ThreadID = m.thread.id
	}
	return v
}

var mentionRE = regexp.MustCompile(`<@!?([0-9]{15,20})>`)

// contentMentionsLocked returns the known users mentioned in content.
func (s *Server) contentMentionsLocked(content string) []string {
	var ids []string
	for _, sm := range mentionRE.FindAllStringSubmatch(content, -1) {
		if _, known := s.users[sm[1]]; known && !slices.Contains(ids, sm[1]) {
			ids = append(ids, sm[1])
		}
	}
	return ids
}

// messageLocked finds a message of a channel.
func (s *Server) messageLocked(channelID, id string) *message {
	ch := s.channels[channelID]
	if ch == nil {
		return nil
	}
	return ch.byID[id]
}

// storeLocked appends a new message to its channel.
func (s *Server) storeLocked(m *message) {
	ch := m.ch
	m.position = -1
	if ch.isThread() {
		m.position = ch.totalSent
		if m.typ != MessageTypeThreadStarterMessage {
			ch.messageCount++
			ch.totalSent++
			ch.members[m.author.ID] = true
		}
	}
	if ch.guild != nil {
		ch.guild.memberLocked(m.author)
	}
	ch.messages = append(ch.messages, m)
	ch.byID[m.id] = m
	if n := len(ch.messages) - s.opts.HistoryLimit; s.opts.HistoryLimit > 0 && n > 0 {
		for _, old := range ch.messages[:n] {
			delete(ch.byID, old.id)
			for _, a := range old.attachments {
				delete(s.files, a.ID)
			}
		}
		ch.messages = slices.Delete(ch.messages, 0, n)
	}
	s.broadcastLocked()
}

// dispatchMessageLocked sends MESSAGE_CREATE or MESSAGE_UPDATE of m to the
// sessions that may see it, each rendered for its bot and intents.
func (s *Server) dispatchMessageLocked(t string, m *message) {
	payload := func(b *Bot, ss *session) any {
		return s.wireMessageLocked(m, b, ss.intents&IntentMessageContent != 0, true, 0)
	}
	if m.ch.typ == ChannelTypeDM {
		s.dispatchDMLocked(m.ch, IntentDirectMessages, t, payload)
		return
	}
	s.dispatchGuildLocked(m.ch.guild, m.ch, IntentGuildMessages, t, payload)
}

// dispatchDMLocked sends an event of a DM channel to its bot's sessions
// that have intent (and shard 0, where DMs go).
func (s *Server) dispatchDMLocked(ch *channel, intent int, t string, payload func(*Bot, *session) any) {
	b := ch.dmBot
	for _, ss := range b.sortedSessionsLocked() {
		if ss.intents&intent != 0 && ss.shard[0] == 0 {
			s.sendLocked(ss, t, payload(b, ss))
		}
	}
}

// dispatchGuildLocked sends an event of a guild (of channel ch, when not
// nil) to the sessions of the guild's bots that can see ch, have intent
// and have the guild in their shard.
func (s *Server) dispatchGuildLocked(g *Guild, ch *channel, intent int, t string, payload func(*Bot, *session) any) {
	for _, b := range g.bots {
		if ch != nil && !b.canViewLocked(ch) {
			continue
		}
		for _, ss := range b.sortedSessionsLocked() {
			if ss.intents&intent != 0 && ss.inShard(g.id) {
				s.sendLocked(ss, t, payload(b, ss))
			}
		}
	}
}

// UserSays posts content in a channel as u, like Post. It panics if the
// channel or the user is unknown to the server (a mistake in the test).
func (s *Server) UserSays(channelID string, u User, content string) Message {
	m, err := s.Post(MessageSpec{ChannelID: channelID, Author: u, Content: content})
	if err != nil {
		panic(err)
	}
	return m
}

// UserReplies posts content in reply to message replyTo of the channel.
// It panics like UserSays.
func (s *Server) UserReplies(channelID, replyTo string, u User, content string) Message {
	m, err := s.Post(MessageSpec{ChannelID: channelID, Author: u, Content: content, ReplyTo: replyTo})
	if err != nil {
		panic(err)
	}
	return m
}

// Post creates a message as if its author had posted it in a Discord
// client: it is stored in the channel's history and dispatched as
// MESSAGE_CREATE to the sessions allowed to see it. The author may be a
// user or another bot (its User()). A DM's author must be its user.
func (s *Server) Post(spec MessageSpec) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[spec.ChannelID]
	if ch == nil {
		return Message{}, fmt.Errorf("fake discord: post: unknown channel %q", spec.ChannelID)
	}
	author, known := s.users[spec.Author.ID]
	if !known {
		return Message{}, fmt.Errorf("fake discord: post: unknown author %q (make users with NewUser)", spec.Author.ID)
	}
	if ch.typ == ChannelTypeDM && author.ID != ch.dmUser.ID {
		return Message{}, fmt.Errorf("fake discord: post: only %s writes in this DM (a bot sends through REST)", ch.dmUser.Username)
	}
	if spec.Content == "" && len(spec.Attachments) == 0 && len(spec.Embeds) == 0 {
		return Message{}, errors.New("fake discord: post: a message needs content, attachments or embeds")
	}
	m := &message{id: s.newIDLocked(), typ: MessageTypeDefault, ch: ch, author: author, content: spec.Content, embeds: slices.Clone(spec.Embeds)}
	m.at = SnowflakeTime(m.id)
	m.mentions = s.contentMentionsLocked(spec.Content)
	for _, u := range spec.Mentions {
		if _, ok := s.users[u.ID]; ok && !slices.Contains(m.mentions, u.ID) {
			m.mentions = append(m.mentions, u.ID)
		}
	}
	m.mentionEveryone = ch.guild != nil && (strings.Contains(spec.Content, "@everyone") || strings.Contains(spec.Content, "@here"))
	if spec.ReplyTo != "" {
		rm := ch.byID[spec.ReplyTo]
		if rm == nil {
			return Message{}, fmt.Errorf("fake discord: post: no message %s in channel %s to reply to", spec.ReplyTo, ch.id)
		}
		m.typ = MessageTypeReply
		m.ref = &MessageReference{MessageID: rm.id, ChannelID: ch.id}
		if ch.guild != nil {
			m.ref.GuildID = ch.guild.id
		}
		if !spec.NoReplyPing && rm.author.ID != author.ID && !slices.Contains(m.mentions, rm.author.ID) {
			m.mentions = append(m.mentions, rm.author.ID)
		}
	}
	for _, a := range spec.Attachments {
		m.attachments = append(m.attachments, s.attachLocked(ch, a))
	}
	s.storeLocked(m)
	s.dispatchMessageLocked("MESSAGE_CREATE", m)
	return m.view(s), nil
}

// attachLocked gives an attachment an id, a size and a URL on the fake,
// and keeps its data for download.
func (s *Server) attachLocked(ch *channel, a Attachment) Attachment {
	if a.ID == "" {
		a.ID = s.newIDLocked()
	}
	if a.Filename == "" {
		a.Filename = "file"
	}
	if a.Size == 0 {
		a.Size = len(a.Data)
	}
	if a.URL == "" {
		a.URL = fmt.Sprintf("%s/attachments/%s/%s/%s", s.origin, ch.id, a.ID, a.Filename)
	}
	keep := a
	s.files[a.ID] = &keep
	a.Data = nil
	return a
}

// EditMessage changes a message's content, as its author would in a
// client; MESSAGE_UPDATE (with the whole message) is dispatched.
func (s *Server) EditMessage(channelID, messageID, content string) (Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageLocked(channelID, messageID)
	if m == nil {
		return Message{}, fmt.Errorf("fake discord: edit: no message %s in channel %s", messageID, channelID)
	}
	m.content = content
	m.mentions = s.contentMentionsLocked(content)
	m.edited = time.Now().UTC()
	s.broadcastLocked()
	s.dispatchMessageLocked("MESSAGE_UPDATE", m)
	return m.view(s), nil
}

// DeleteMessage deletes a message; MESSAGE_DELETE is dispatched.
func (s *Server) DeleteMessage(channelID, messageID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageLocked(channelID, messageID)
	if m == nil {
		return fmt.Errorf("fake discord: delete: no message %s in channel %s", messageID, channelID)
	}
	s.deleteLocked(m)
	return nil
}

func (s *Server) deleteLocked(m *message) {
	ch := m.ch
	delete(ch.byID, m.id)
	ch.messages = slices.DeleteFunc(ch.messages, func(x *message) bool { return x == m })
	if ch.isThread() {
		ch.messageCount--
	}
	d := map[string]any{"id": m.id, "channel_id": ch.id}
	payload := func(*Bot, *session) any { return d }
	if ch.typ == ChannelTypeDM {
		s.dispatchDMLocked(ch, IntentDirectMessages, "MESSAGE_DELETE", payload)
	} else {
		d["guild_id"] = ch.guild.id
		s.dispatchGuildLocked(ch.guild, ch, IntentGuildMessages, "MESSAGE_DELETE", payload)
	}
	s.broadcastLocked()
}

// StartThread starts a public thread from a message, as user u would in a
// client: the thread has the message's id, THREAD_CREATE is dispatched,
// then a THREAD_CREATED system message (type 18) in the channel; the
// thread opens with a THREAD_STARTER_MESSAGE (type 21).
func (s *Server) StartThread(channelID, messageID, name string, u User) (Channel, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channelID]
	if ch == nil || ch.typ != ChannelTypeGuildText {
		return Channel{}, fmt.Errorf("fake discord: start thread: %s is not a guild text channel", channelID)
	}
	m := ch.byID[messageID]
	if m == nil {
		return Channel{}, fmt.Errorf("fake discord: start thread: no message %s in channel %s", messageID, channelID)
	}
	if m.thread != nil {
		return Channel{}, errors.New("fake discord: start thread: a thread has already been created for this message")
	}
	author, ok := s.users[u.ID]
	if !ok {
		return Channel{}, fmt.Errorf("fake discord: start thread: unknown user %q", u.ID)
	}
	return s.threadFromMessageLocked(m, name, author, 4320).view(), nil
}

// threadFromMessageLocked starts a public thread from m, by creator.
func (s *Server) threadFromMessageLocked(m *message, name string, creator User, archive int) *channel {
	ch := m.ch
	th := s.newThreadLocked(ch, m.id, ChannelTypePublicThread, name, creator.ID, archive)
	m.thread = th
	sys := &message{id: s.newIDLocked(), typ: MessageTypeThreadCreated, ch: ch, author: creator, content: name,
		ref: &MessageReference{ChannelID: th.id, GuildID: ch.guild.id}}
	sys.at = SnowflakeTime(sys.id)
	s.storeLocked(sys)
	s.dispatchMessageLocked("MESSAGE_CREATE", sys)
	starter := &message{id: s.newIDLocked(), typ: MessageTypeThreadStarterMessage, ch: th, author: m.author,
		ref: &MessageReference{MessageID: m.id, ChannelID: ch.id, GuildID: ch.guild.id}}
	starter.at = SnowflakeTime(starter.id)
	s.storeLocked(starter)
	return th
}

// UserTyping makes u start typing in a channel: TYPING_START goes to the
// sessions with GUILD_MESSAGE_TYPING (guilds) or DIRECT_MESSAGE_TYPING.
func (s *Server) UserTyping(channelID string, u User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channelID]
	if ch == nil {
		return fmt.Errorf("fake discord: typing: unknown channel %q", channelID)
	}
	d := map[string]any{"channel_id": ch.id, "user_id": u.ID, "timestamp": time.Now().Unix()}
	payload := func(*Bot, *session) any { return d }
	if ch.typ == ChannelTypeDM {
		s.dispatchDMLocked(ch, IntentDirectMessageTyping, "TYPING_START", payload)
		return nil
	}
	d["guild_id"] = ch.guild.id
	d["member"] = wireMemberOf(ch.guild.memberLocked(u), true)
	s.dispatchGuildLocked(ch.guild, ch, IntentGuildMessageTyping, "TYPING_START", payload)
	return nil
}

// Messages returns a channel's history, oldest first, with full content.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[channelID]
	if ch == nil {
		return nil
	}
	out := make([]Message, 0, len(ch.messages))
	for _, m := range ch.messages {
		out = append(out, m.view(s))
	}
	return out
}

// Message returns one stored message.
func (s *Server) Message(channelID, messageID string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messageLocked(channelID, messageID)
	if m == nil {
		return Message{}, false
	}
	return m.view(s), true
}
