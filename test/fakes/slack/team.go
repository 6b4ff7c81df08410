package slack

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
)

// The bot events an app can subscribe to that the fake produces.
const (
	EventMessageChannels = "message.channels" // messages in public channels the bot is in
	EventMessageGroups   = "message.groups"   // messages in private channels the bot is in
	EventMessageIM       = "message.im"       // messages in the bot's direct messages
	EventAppMention      = "app_mention"      // messages that mention the bot, outside DMs
)

// AllEvents is the default subscription: every event the fake produces.
var AllEvents = []string{EventMessageChannels, EventMessageGroups, EventMessageIM, EventAppMention}

// TeamOptions configures a workspace and its installation of the app.
// Every field is optional; the credentials default to well-formed values
// unique on the server.
type TeamOptions struct {
	Name   string // workspace name; default "Test Workspace"
	Domain string // default derived from Name, e.g. "test-workspace"

	AppID   string // "A…"
	BotName string // the bot user's name; default "switchboard"

	// BotToken must start with "xoxb-", AppToken with "xapp-". Use
	// TestBotToken and TestAppToken to know them before the server runs.
	BotToken          string
	AppToken          string
	SigningSecret     string
	VerificationToken string // the deprecated token in event payloads

	// Events are the bot events the app subscribes to; default AllEvents.
	Events []string
}

// TestBotToken returns a well-formed bot token derived from n.
func TestBotToken(n int) string {
	return fmt.Sprintf("xoxb-%d-%d-%s", 1000000000+n, 2000000000+n, fakeSecret("bot", n)[:24])
}

// TestAppToken returns a well-formed app-level token derived from n.
func TestAppToken(n int) string {
	return fmt.Sprintf("xapp-1-A%09d-%d-%s", n, 3000000000+n, fakeSecret("app", n))
}

// TestSigningSecret returns a signing secret derived from n.
func TestSigningSecret(n int) string { return fakeSecret("signing", n)[:32] }

func fakeSecret(kind string, n int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "fake slack %s %d", kind, n))
	return hex.EncodeToString(sum[:])
}

var (
	botTokenRE = regexp.MustCompile(`^xoxb-[0-9]+-[0-9]+-[A-Za-z0-9]+$`)
	appTokenRE = regexp.MustCompile(`^xapp-[0-9]+-[A-Z0-9]+-[0-9]+-[a-f0-9]+$`)
)

// TokenKind is the kind of a token a Web API call carried.
type TokenKind string

const (
	TokenNone    TokenKind = "none"    // no token
	TokenBot     TokenKind = "bot"     // a bot token (xoxb-) of a team
	TokenApp     TokenKind = "app"     // an app-level token (xapp-) of a team
	TokenUnknown TokenKind = "unknown" // a token no team has
)

type tokenRef struct {
	team *Team
	kind TokenKind
}

// User is a workspace member, as users.info describes it.
type User struct {
	ID          string // "U…"
	Name        string // the username (users.info "name")
	RealName    string
	DisplayName string // may be empty, as it often is in Slack
	IsBot       bool
	BotID       string // for bot users
	Deleted     bool
	TZ          string // default "Europe/Amsterdam"
}

// Mention returns the way Slack writes a mention of u in message text,
// "<@U…>".
func (u User) Mention() string { return "<@" + u.ID + ">" }

// Channel is a conversation: a public or private channel, or the direct
// message (IM) between the bot and a user.
type Channel struct {
	ID        string // "C…" for channels, "D…" for IMs
	Name      string // empty for IMs
	IsIM      bool
	IsPrivate bool
	User      string // the other member of an IM
	Archived  bool
	BotMember bool // the bot is a member (always true for IMs)
	Created   int64
	Creator   string
}

// Ref returns the way Slack writes a link to a channel in message text,
// "<#C…|name>".
func (c Channel) Ref() string { return "<#" + c.ID + "|" + c.Name + ">" }

// channelType is the channel_type of message events in c.
func (c Channel) channelType() string {
	switch {
	case c.IsIM:
		return "im"
	case c.IsPrivate:
		return "group"
	}
	return "channel"
}

// subscription is the event a message in c needs the app to subscribe to.
func (c Channel) subscription() string {
	switch {
	case c.IsIM:
		return EventMessageIM
	case c.IsPrivate:
		return EventMessageGroups
	}
	return EventMessageChannels
}

// Team is one workspace with the app installed. All methods are safe for
// concurrent use; state lives under the server's lock.
type Team struct {
	s    *Server
	opts TeamOptions // resolved
	id   string
	bot  User
	subs map[string]bool

	botRevoked, appRevoked bool

	users    map[string]*User
	channels map[string]*Channel
	ims      map[string]string // user id → IM channel id
	messages map[string][]*storedMessage
	files    map[string]*storedFile // by file id

	requestURL string // Events API mode when set

	// Socket Mode.
	conns     []*sockConn // open, in order of opening
	opening   int         // connections accepted, not yet sent hello
	rr        int         // round-robin position over conns
	queue     []*pendingEvent
	events    map[string]*pendingEvent // by event_id
	envelopes map[string]*envelopeState
	wake      chan struct{} // closed and replaced when queue or conns change

	// Records.
	posted    []PostedMessage
	raised    []RaisedEvent
	delivered []Envelope
	acks      []Ack
	connRecs  []Connection
	posts     []EventPost
	onPosted  func(PostedMessage) // Observe
}

// storedMessage is a message in a channel's history.
type storedMessage struct {
	ts, threadTS, user, text string
	botID                    string
	ev                       map[string]any // the message as events carry it
	// metadata is what chat.postMessage's metadata parameter carried;
	// history shows it only when asked (include_all_metadata).
	metadata map[string]any
}

type storedFile struct {
	file    File
	content []byte
}

// AddTeam creates a workspace with the app installed in it: its bot user,
// bot token, app-level token and signing secret.
func (s *Server) AddTeam(opts TeamOptions) (*Team, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("add fake slack team: server closed")
	}
	n := len(s.teams) + 1
	if opts.Name == "" {
		opts.Name = "Test Workspace"
		if n > 1 {
			opts.Name = fmt.Sprintf("Test Workspace %d", n)
		}
	}
	if opts.Domain == "" {
		opts.Domain = strings.Trim(regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(strings.ToLower(opts.Name), "-"), "-")
	}
	if opts.AppID == "" {
		opts.AppID = s.nextIDLocked("A")
	}
	if opts.BotName == "" {
		opts.BotName = "switchboard"
	}
	if opts.BotToken == "" {
		opts.BotToken = TestBotToken(int(s.seq) + 100)
	}
	if opts.AppToken == "" {
		opts.AppToken = TestAppToken(int(s.seq) + 100)
	}
	if opts.SigningSecret == "" {
		opts.SigningSecret = TestSigningSecret(int(s.seq) + 100)
	}
	if opts.VerificationToken == "" {
		opts.VerificationToken = fakeSecret("verification", int(s.seq))[:24]
	}
	if opts.Events == nil {
		opts.Events = AllEvents
	}
	if !botTokenRE.MatchString(opts.BotToken) {
		return nil, errors.New("add fake slack team: bot token must look like xoxb-<digits>-<digits>-<letters and digits>")
	}
	if !appTokenRE.MatchString(opts.AppToken) {
		return nil, errors.New("add fake slack team: app token must look like xapp-<digit>-<app id>-<digits>-<hex>")
	}
	for _, tok := range []string{opts.BotToken, opts.AppToken} {
		if _, dup := s.tokens[tok]; dup {
			return nil, errors.New("add fake slack team: token already in use")
		}
	}
	t := &Team{
		s:         s,
		opts:      opts,
		id:        s.nextIDLocked("T"),
		subs:      make(map[string]bool),
		users:     make(map[string]*User),
		channels:  make(map[string]*Channel),
		ims:       make(map[string]string),
		messages:  make(map[string][]*storedMessage),
		files:     make(map[string]*storedFile),
		events:    make(map[string]*pendingEvent),
		envelopes: make(map[string]*envelopeState),
		wake:      make(chan struct{}),
	}
	opts.Events = slices.Clone(opts.Events)
	for _, e := range opts.Events {
		t.subs[e] = true
	}
	t.bot = User{ID: s.nextIDLocked("U"), Name: opts.BotName, RealName: opts.BotName, IsBot: true, BotID: s.nextIDLocked("B")}
	t.users[t.bot.ID] = &t.bot
	s.tokens[opts.BotToken] = tokenRef{team: t, kind: TokenBot}
	s.tokens[opts.AppToken] = tokenRef{team: t, kind: TokenApp}
	s.teams = append(s.teams, t)
	s.workers.Go(t.deliverLoop)
	return t, nil
}

// ID returns the workspace id, "T…".
func (t *Team) ID() string { return t.id }

// Name returns the workspace name.
func (t *Team) Name() string { return t.opts.Name }

// Domain returns the workspace's subdomain.
func (t *Team) Domain() string { return t.opts.Domain }

// AppID returns the app's id, "A…".
func (t *Team) AppID() string { return t.opts.AppID }

// BotToken returns the bot token, "xoxb-…".
func (t *Team) BotToken() string { return t.opts.BotToken }

// AppToken returns the app-level token, "xapp-…".
func (t *Team) AppToken() string { return t.opts.AppToken }

// SigningSecret returns the app's signing secret.
func (t *Team) SigningSecret() string { return t.opts.SigningSecret }

// VerificationToken returns the deprecated verification token that event
// payloads carry in their "token" field.
func (t *Team) VerificationToken() string { return t.opts.VerificationToken }

// Bot returns the app's bot user; its BotID is the bot_id of the app's
// messages.
func (t *Team) Bot() User { return t.bot }

// BotUserID returns the bot user's id, "U…" (auth.test's user_id).
func (t *Team) BotUserID() string { return t.bot.ID }

// BotID returns the bot's id, "B…" (auth.test's bot_id, and the bot_id of
// the app's own messages).
func (t *Team) BotID() string { return t.bot.BotID }

// Subscribed reports whether the app subscribes to a bot event.
func (t *Team) Subscribed(event string) bool {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return t.subs[event]
}

// AddUser adds a member of the workspace. Its DisplayName is empty, as it
// is for many Slack users; use AddUserWith to set one.
func (t *Team) AddUser(name, realName string) User {
	return t.AddUserWith(User{Name: name, RealName: realName})
}

// AddUserWith adds a member with the given profile; an empty ID is
// assigned.
func (t *Team) AddUserWith(u User) User {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if u.ID == "" {
		u.ID = t.s.nextIDLocked("U")
	}
	if u.IsBot && u.BotID == "" {
		u.BotID = t.s.nextIDLocked("B")
	}
	t.users[u.ID] = &u
	return u
}

// User returns a member by id.
func (t *Team) User(id string) (User, bool) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	u, ok := t.users[id]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// AddChannel adds a public channel with the bot as a member.
func (t *Team) AddChannel(name string) Channel {
	return t.addChannel(Channel{Name: name, BotMember: true})
}

// AddPrivateChannel adds a private channel with the bot as a member; its
// messages have channel_type "group".
func (t *Team) AddPrivateChannel(name string) Channel {
	return t.addChannel(Channel{Name: name, IsPrivate: true, BotMember: true})
}

// AddChannelWithoutBot adds a public channel the bot is not in: posting
// there fails with not_in_channel, and its messages produce no events.
func (t *Team) AddChannelWithoutBot(name string) Channel {
	return t.addChannel(Channel{Name: name})
}

func (t *Team) addChannel(c Channel) Channel {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	c.ID = t.s.nextIDLocked("C")
	c.Name = strings.TrimPrefix(c.Name, "#")
	c.Created = time.Now().Unix()
	c.Creator = t.bot.ID
	t.channels[c.ID] = &c
	return c
}

// IM returns the direct message channel between the bot and a user,
// "D…", creating it on first use.
func (t *Team) IM(u User) Channel {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	return *t.imLocked(u.ID)
}

func (t *Team) imLocked(userID string) *Channel {
	if id, ok := t.ims[userID]; ok {
		return t.channels[id]
	}
	c := &Channel{ID: t.s.nextIDLocked("D"), IsIM: true, User: userID, BotMember: true, Created: time.Now().Unix()}
	t.channels[c.ID] = c
	t.ims[userID] = c.ID
	return c
}

// Channel returns a conversation's current state by id.
func (t *Team) Channel(id string) (Channel, bool) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	c, ok := t.channels[id]
	if !ok {
		return Channel{}, false
	}
	return *c, true
}

// Archive archives a channel: posting there fails with is_archived.
func (t *Team) Archive(channelID string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if c := t.channels[channelID]; c != nil {
		c.Archived = true
	}
}

// SetBotMember adds the bot to a channel or removes it.
func (t *Team) SetBotMember(channelID string, member bool) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if c := t.channels[channelID]; c != nil && !c.IsIM {
		c.BotMember = member
	}
}

// RevokeBotToken revokes the bot token: calls with it answer
// token_revoked from now on.
func (t *Team) RevokeBotToken() {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.botRevoked = true
}

// RevokeAppToken revokes the app-level token: apps.connections.open
// answers token_revoked from now on.
func (t *Team) RevokeAppToken() {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.appRevoked = true
}

// SetRequestURL switches the app to the Events API over HTTP: events
// raised from now on are posted, signed, to url (and retried as Slack
// does) instead of being sent over Socket Mode. An empty url switches back
// to Socket Mode.
func (t *Team) SetRequestURL(url string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.requestURL = url
}

// Teams returns the server's teams, oldest first.
func (s *Server) Teams() []*Team {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.teams)
}

// resolveChannelLocked finds the conversation chat.postMessage's channel
// argument names: an id, a "#name" or name, or a user id (the bot's DM
// with that user, as Slack does).
func (t *Team) resolveChannelLocked(arg string) *Channel {
	if c, ok := t.channels[arg]; ok {
		return c
	}
	if u, ok := t.users[arg]; ok && !u.IsBot {
		return t.imLocked(u.ID)
	}
	name := strings.TrimPrefix(arg, "#")
	for _, id := range slices.Sorted(maps.Keys(t.channels)) {
		if c := t.channels[id]; !c.IsIM && c.Name == name {
			return c
		}
	}
	return nil
}
