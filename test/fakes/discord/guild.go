package discord

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Guild is a server (in Discord's sense) on the fake: its channels, its
// threads, the bots in it and the members who posted.
type Guild struct {
	s  *Server
	id string

	// Guarded by s.mu.
	name     string
	joinedAt time.Time
	ownerID  string
	bots     []*Bot
	members  map[string]*member // by user id
	channels []*channel         // text channels and threads, in creation order
}

type member struct {
	user     User
	nick     string
	joinedAt time.Time
}

// channel is a guild text channel, a thread or a DM.
type channel struct {
	id       string
	typ      int
	name     string
	guild    *Guild
	parent   *channel // threads
	ownerID  string   // threads
	dmUser   User     // DMs
	dmBot    *Bot     // DMs
	position int

	messages []*message
	byID     map[string]*message
	// threads
	members      map[string]bool // user ids in the thread
	autoArchive  int
	createdAt    time.Time
	messageCount int
	totalSent    int
}

func (ch *channel) init() {
	ch.byID = make(map[string]*message)
	ch.createdAt = SnowflakeTime(ch.id)
	if ch.members == nil {
		ch.members = make(map[string]bool)
	}
}

func (ch *channel) isThread() bool {
	return ch.typ == ChannelTypePublicThread || ch.typ == ChannelTypePrivateThread
}

// root is the channel whose permissions apply: a thread's parent.
func (ch *channel) root() *channel {
	if ch.parent != nil {
		return ch.parent
	}
	return ch
}

func (ch *channel) lastMessageID() string {
	if n := len(ch.messages); n > 0 {
		return ch.messages[n-1].id
	}
	return ""
}

func (ch *channel) view() Channel {
	v := Channel{ID: ch.id, Type: ch.typ, Name: ch.name, OwnerID: ch.ownerID}
	if ch.guild != nil {
		v.GuildID = ch.guild.id
	}
	if ch.parent != nil {
		v.ParentID = ch.parent.id
	}
	if ch.typ == ChannelTypeDM {
		v.RecipientID = ch.dmUser.ID
		v.BotID = ch.dmBot.user.ID
	}
	return v
}

// AddGuild creates a guild with the given bots in it. Connected sessions
// of those bots receive its GUILD_CREATE, as when a bot is added to a
// server.
func (s *Server) AddGuild(name string, bots ...*Bot) *Guild {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := &Guild{s: s, id: s.newIDLocked(), name: name, members: make(map[string]*member)}
	g.joinedAt = SnowflakeTime(g.id)
	s.guilds = append(s.guilds, g)
	for _, b := range bots {
		g.addBotLocked(b)
	}
	return g
}

// ID returns the guild's id.
func (g *Guild) ID() string { return g.id }

// Name returns the guild's name.
func (g *Guild) Name() string { return g.name }

// AddBot adds a bot to the guild; its connected sessions receive the
// guild's GUILD_CREATE.
func (g *Guild) AddBot(b *Bot) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	g.addBotLocked(b)
}

func (g *Guild) addBotLocked(b *Bot) {
	if slices.Contains(g.bots, b) {
		return
	}
	g.bots = append(g.bots, b)
	g.members[b.user.ID] = &member{user: b.user, joinedAt: time.Now().UTC()}
	for _, ss := range b.sessions {
		if ss.intents&IntentGuilds != 0 && ss.inShard(g.id) {
			g.s.sendLocked(ss, "GUILD_CREATE", g.s.guildCreateLocked(g, b))
		}
	}
	g.s.broadcastLocked()
}

// AddMember makes u a member with a nickname ("" for none). Users who
// post in a guild become members anyway.
func (g *Guild) AddMember(u User, nick string) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	g.memberLocked(u).nick = nick
}

func (g *Guild) memberLocked(u User) *member {
	m := g.members[u.ID]
	if m == nil {
		m = &member{user: u, joinedAt: time.Now().UTC()}
		g.members[u.ID] = m
	}
	return m
}

// AddChannel creates a text channel; connected sessions of the guild's
// bots receive CHANNEL_CREATE.
func (g *Guild) AddChannel(name string) Channel {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	ch := &channel{id: g.s.newIDLocked(), typ: ChannelTypeGuildText, name: name, guild: g}
	ch.init()
	for _, c := range g.channels {
		if c.typ == ChannelTypeGuildText {
			ch.position++
		}
	}
	g.channels = append(g.channels, ch)
	g.s.channels[ch.id] = ch
	g.s.dispatchGuildLocked(g, ch, IntentGuilds, "CHANNEL_CREATE", func(b *Bot, _ *session) any {
		return g.s.wireChannelLocked(ch, b)
	})
	return ch.view()
}

// AddThread creates an active public thread in a text channel, started by
// owner without a starter message; the guild's bots receive THREAD_CREATE.
func (g *Guild) AddThread(parentID, name string, owner User) (Channel, error) {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	parent := g.s.channels[parentID]
	if parent == nil || parent.guild != g || parent.typ != ChannelTypeGuildText {
		return Channel{}, fmt.Errorf("fake discord: %s is not a text channel of guild %s", parentID, g.id)
	}
	if name == "" || utf8.RuneCountInString(name) > 100 {
		return Channel{}, errors.New("fake discord: a thread name has 1 to 100 characters")
	}
	th := g.s.newThreadLocked(parent, g.s.newIDLocked(), ChannelTypePublicThread, name, owner.ID, 4320)
	g.memberLocked(owner)
	return th.view(), nil
}

// Channels returns the guild's text channels and threads.
func (g *Guild) Channels() []Channel {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	out := make([]Channel, 0, len(g.channels))
	for _, ch := range g.channels {
		out = append(out, ch.view())
	}
	return out
}

// newThreadLocked creates a thread and dispatches THREAD_CREATE.
func (s *Server) newThreadLocked(parent *channel, id string, typ int, name, ownerID string, archive int) *channel {
	g := parent.guild
	th := &channel{id: id, typ: typ, name: name, guild: g, parent: parent, ownerID: ownerID, autoArchive: archive}
	th.init()
	th.members[ownerID] = true
	g.channels = append(g.channels, th)
	s.channels[th.id] = th
	s.dispatchGuildLocked(g, th, IntentGuilds, "THREAD_CREATE", func(b *Bot, _ *session) any {
		w := s.wireChannelLocked(th, b)
		w.NewlyCreated = true
		return w
	})
	return th
}

// Channel returns what the fake knows of a channel.
func (s *Server) Channel(id string) (Channel, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[id]
	if ch == nil {
		return Channel{}, false
	}
	return ch.view(), true
}

// canViewLocked reports whether b may see ch.
func (b *Bot) canViewLocked(ch *channel) bool {
	if ch.typ == ChannelTypeDM {
		return ch.dmBot == b
	}
	if ch.guild == nil || !slices.Contains(ch.guild.bots, b) {
		return false
	}
	if b.noAccess[ch.id] || b.noAccess[ch.root().id] {
		return false
	}
	if ch.typ == ChannelTypePrivateThread && !ch.members[b.user.ID] {
		return false
	}
	return true
}

// canSendLocked reports whether b may send in ch (after canViewLocked).
func (b *Bot) canSendLocked(ch *channel) bool {
	return !b.noSend[ch.id] && !b.noSend[ch.root().id]
}
