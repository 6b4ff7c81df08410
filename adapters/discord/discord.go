// Package discord connects Switchboard to Discord bots, with
// github.com/bwmarrin/discordgo as the client. Each instance is one bot
// (one application): a gateway session receives messages (direct
// messages always; in guilds when mentioned, in configured channels, and
// in threads the bot started), and answers go out through the REST API,
// rendered as Discord Markdown and split at 2,000 characters.
//
// Discord's gateway never sends an event again, so the adapter retries
// each message in the process until the core accepts it, keeps a
// checkpoint per channel (in its data directory, or in the store several
// gateway replicas share), and after a restart, a takeover by another
// replica, or a session that could not be resumed fetches what it missed
// (a backfill). The gateway session is the bot's one inbound connection:
// it is opened by Receive, on the replica holding the instance's lease
// (core.ExclusiveReceiver); every replica sends, through REST.
// See README.md for the chat ids and the options.
package discord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/cache"
	"github.com/switchboard-gw/switchboard/kit/inbound"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/typing"
)

// Kind is the adapter kind in the config ("kind: discord").
const Kind = "discord"

func init() {
	// The gateway's protocol version: discordgo dials with ?v=<APIVersion>
	// (its default is 9). Set once, the same for every instance; the REST
	// version comes from api_url (see rewriter).
	discordgo.APIVersion = "10"
	core.Register(Kind, New)
}

// Interface guards.
var (
	_ core.Messenger         = (*Adapter)(nil)
	_ core.HealthChecker     = (*Adapter)(nil)
	_ core.DialogObserver    = (*Adapter)(nil)
	_ core.ExclusiveReceiver = (*Adapter)(nil)
)

// intents are the gateway events the bot asks for: guild and channel
// metadata (threads it owns), guild messages, direct messages, and their
// content. Message Content is a privileged intent: it must be switched on
// in the Developer Portal, or Discord closes the session (4014).
const intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages |
	discordgo.IntentsDirectMessages | discordgo.IntentMessageContent

// Bounds of what the adapter remembers (kit/cache: least recently used
// first out).
const (
	maxRemembered = 100000
	maxProgress   = 10000
	progressTTL   = 24 * time.Hour
	maxNotices    = 32
	noticeTimeout = 30 * time.Second
	// typingEvery renews "typing…", which Discord shows for 10 s.
	typingEvery = 8 * time.Second
	// reconnectMax caps the wait between attempts to reopen the gateway.
	reconnectMax = 2 * time.Minute
	// checkpointEvery is how often the checkpoint is written when it
	// moved; a crash repeats at most that much (deduped by the core).
	checkpointEvery = time.Second
	checkpointFile  = "discord-checkpoint.json"
	// checkpointJournal is the checkpoint's journal in the shared store
	// (Instance.Journals), when replicas share one.
	checkpointJournal = "discord-checkpoint"
)

// Adapter is one Discord bot.
type Adapter struct {
	name     string
	cfg      Config
	log      *slog.Logger
	http     *http.Client
	dataDir  string
	journals core.Journals   // the shared store's, or nil: the checkpoint is a file in dataDir
	answer   map[string]bool // cfg.Channels

	typing    *typing.Indicator[string] // by channel
	notices   *outbound.Notices
	progress  *outbound.Progress
	replies   *cache.Cache[string, string]   // native id → the user's last message, to reply to
	handovers *typing.Handovers              // dialogs handed to a human: no "typing…"
	noPerm    *cache.Cache[string, struct{}] // channels whose missing permission was logged

	runs      lifecycle.Runs[*runData]
	receiving lifecycle.Runs[*rxData] // the Receive running, within a run
}

// run is one Start..Stop run.
type run = lifecycle.Run[*runData]

// rx is one Receive: one gateway session, within a run.
type rx = lifecycle.Run[*rxData]

// New builds a discord instance from its config. It does no I/O.
func New(inst core.Instance) (core.Messenger, error) {
	var cfg Config
	cfg.setDefaults()
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	transport := http.DefaultTransport
	if inst.HTTP != nil && inst.HTTP.Transport != nil {
		transport = inst.HTTP.Transport
	}
	rw, err := newRewriter(cfg.APIURL, transport)
	if err != nil {
		return nil, fmt.Errorf("config.api_url: %w", err)
	}
	a := &Adapter{
		name:      inst.Name,
		cfg:       cfg,
		log:       inst.Logger,
		http:      &http.Client{Transport: rw}, // each request is bounded by its context
		dataDir:   inst.DataDir,
		journals:  inst.Journals,
		answer:    make(map[string]bool),
		notices:   outbound.NewNotices(maxNotices),
		progress:  outbound.NewProgress(maxProgress, progressTTL),
		replies:   cache.New[string, string](maxRemembered, 0),
		handovers: typing.NewHandovers(maxRemembered),
		noPerm:    cache.New[string, struct{}](maxRemembered, time.Hour),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	for _, id := range cfg.Channels {
		a.answer[id] = true
	}
	a.typing = typing.New(a.sendTyping, typing.Options{Timeout: cfg.TypingTimeout, Every: typingEvery})
	return a, nil
}

// newSession makes a discordgo session: a run's, for REST only (it is
// never opened), or a Receive's, for the gateway. Its REST calls go
// through the instance's client (and so to api_url), it reports 429s
// instead of sleeping on them (the outbox waits, see classifySend), it
// delivers events one at a time in the gateway's order (SyncEvents), and
// it does not reconnect by itself: reconnect does, with backoff and
// jitter, and stops when Receive ends. discordgo's own logging is off; the adapter
// logs what happens from its events.
func (a *Adapter) newSession() (*discordgo.Session, error) {
	s, err := discordgo.New("Bot " + a.cfg.Token.Reveal())
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	s.Client = a.http
	dialer := *websocket.DefaultDialer
	dialer.HandshakeTimeout = a.cfg.RequestTimeout
	s.Dialer = &dialer
	s.Identify.Intents = intents
	s.SyncEvents = true
	s.ShouldReconnectOnError = false
	s.ShouldRetryOnRateLimit = false
	s.MaxRestRetries = 0 // a failed request goes back to the outbox, which retries with backoff
	s.StateEnabled = false
	s.LogLevel = discordgo.LogError - 1
	return s, nil
}

// Start checks the token (GET /users/@me) and opens the checkpoint (in
// the shared store when the gateway has one, else in the data
// directory): what Send needs, which is REST only. It does not receive:
// the core calls Receive on the replica holding the instance's lease. A
// token Discord refuses is a permanent error; anything else is retried by
// the core.
func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	if deliver == nil {
		return errors.New("start discord: nil deliver func")
	}
	if a.runs.Current() != nil {
		return fmt.Errorf("start discord: %w", lifecycle.ErrStarted)
	}
	if a.journals == nil && a.dataDir == "" {
		return core.Permanent(errors.New("start discord: no data directory (core.Instance.DataDir is empty): the checkpoint needs one"))
	}
	s, err := a.newSession()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	me, err := s.User("@me", discordgo.WithContext(cctx))
	cancel()
	if err != nil {
		if isTokenRefused(err) {
			return core.Permanent(fmt.Errorf("check bot token: Discord refused it, fix config.token: %w", err))
		}
		return fmt.Errorf("check bot token: %w", err)
	}
	cp, err := a.openCheckpoint(ctx)
	if err != nil {
		return fmt.Errorf("start discord: %w", err)
	}
	if _, err := a.runs.Begin(newRunData(s, me, cp)); err != nil {
		return fmt.Errorf("start discord: %w", err)
	}
	where := "data directory"
	if a.journals != nil {
		where = "shared store"
	}
	a.log.Info("started", "bot", me.Username, "bot_id", me.ID, "respond_to", a.cfg.RespondTo,
		"channels", len(a.cfg.Channels), "reply_in_thread", a.cfg.ReplyInThread, "checkpoint", where)
	return nil
}

// openCheckpoint opens the checkpoint: in the shared store when replicas
// share one (the one that takes the receiving over goes on from it), else
// in the data directory. One that cannot be read back is replaced by a
// new one, with an error logged: there is nothing to backfill from, but
// the gateway still works.
func (a *Adapter) openCheckpoint(ctx context.Context) (*inbound.Checkpoint, error) {
	open := func(suffix string) (*inbound.Checkpoint, error) {
		if a.journals != nil {
			return inbound.OpenJournalCheckpoint(ctx, a.journals, checkpointJournal+suffix, 0)
		}
		return inbound.OpenCheckpoint(filepath.Join(a.dataDir, checkpointFile+suffix), 0)
	}
	cp, err := open("")
	if errors.Is(err, inbound.ErrCorruptCheckpoint) {
		a.log.Error("checkpoint unreadable, starting without it: messages sent while the gateway was down are not fetched", "err", err)
		cp, err = open(".new")
	}
	return cp, err
}

// Exclusive reports true: a bot's gateway session is its one inbound
// connection (a second session would get every event again), so with
// several replicas only the one holding the lease opens it.
func (a *Adapter) Exclusive() bool { return true }

// Receive opens the gateway session and hands its messages to deliver
// until ctx ends (the lease was lost, or the instance stops), then closes
// the session, waits for the conversations it began (a message not
// handed over by then is fetched again by the next backfill, on whichever
// replica receives next), flushes the checkpoint and returns nil. First
// it reads in the checkpoint as the replica that received last left it;
// the session's READY starts a backfill from there. A session that
// cannot be opened (a refused token, a refused intent, Discord
// unreachable) is Receive's error: the core calls it again after a
// backoff.
func (a *Adapter) Receive(ctx context.Context, deliver core.DeliverFunc) error {
	if deliver == nil {
		return errors.New("receive discord: nil deliver func")
	}
	r, ok := a.runs.Enter()
	if !ok {
		return fmt.Errorf("receive discord: %w", core.ErrNotConnected)
	}
	defer r.Leave()
	d := r.Data
	if err := d.cp.Refresh(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // asked to end before it began
		}
		return fmt.Errorf("receive discord: %w", err)
	}
	d.loadThreads()
	gw, err := a.newSession()
	if err != nil {
		return err
	}
	x, err := a.receiving.Begin(newRxData(r, gw, deliver))
	if err != nil {
		return fmt.Errorf("receive discord: %w", err)
	}
	// Stop ends the run after Receive returned, by the contract; should it
	// come first, the session ends with the run all the same.
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(r.Context(), cancel)()
	a.addHandlers(x)
	if err := a.open(rctx, gw); err != nil {
		a.endReceive(x)
		switch {
		case rctx.Err() != nil:
			return nil // asked to end while it opened
		case isTokenRefused(err):
			return fmt.Errorf("open gateway: Discord refused the token, fix config.token: %w", err)
		case intentsRefused(err):
			return fmt.Errorf("open gateway: Discord refused the Message Content intent; switch it on in the Developer Portal (Bot → Privileged Gateway Intents): %w", err)
		}
		return fmt.Errorf("open gateway: %w", err)
	}
	x.Go(func(ctx context.Context) { a.reconnect(ctx, x) })
	x.Go(func(ctx context.Context) { a.backfillLoop(ctx, x) })
	x.Go(func(ctx context.Context) {
		d.cp.FlushEvery(ctx, checkpointEvery, func(err error) { a.log.Warn("write checkpoint", "err", err) })
	})
	a.log.Info("receiving: gateway session open")
	<-rctx.Done()
	a.endReceive(x)
	a.log.Info("receiving ended: gateway session closed")
	return nil
}

// endReceive ends a Receive's run: its conversations and loops stop, the
// session is closed, and once they are all done the checkpoint is written
// with what they handed over last.
func (a *Adapter) endReceive(x *rx) {
	_, _ = a.receiving.End(context.Background(), func(x *rx) {
		// Close sends a close frame (1000: Discord ends the session, and
		// the next Receive, here or on another replica, identifies
		// afresh and backfills) and waits a second for Discord.
		_ = x.Data.gw.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.RequestTimeout)
	defer cancel()
	if err := x.Data.run.Data.cp.Flush(ctx); err != nil {
		a.log.Warn("write checkpoint", "err", err)
	}
}

// open opens the gateway session, bounded by ctx (discordgo's Open takes
// none: it is given until ctx ends, then the session is closed).
func (a *Adapter) open(ctx context.Context, s *discordgo.Session) error {
	done := make(chan error, 1)
	go func() { done <- s.Open() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		go func() {
			if <-done == nil {
				_ = s.Close()
			}
		}()
		return ctx.Err()
	}
}

// Stop waits for the typing indicators and the adapter's own replies, or
// until ctx is done. The core calls it after Receive returned, which
// closed the gateway session; one still open is closed.
func (a *Adapter) Stop(ctx context.Context) error {
	r, err := a.runs.End(ctx, nil)
	if err == nil && r != nil {
		err = a.typing.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("stop discord: %w", err)
	}
	if r != nil {
		a.log.Info("stopped")
	}
	return nil
}

// CheckHealth fails while this replica receives and its gateway session
// is down (a standby replica has none, and needs none to send), and asks
// Discord who the bot is (GET /users/@me), which fails when Discord is
// unreachable or the token was revoked. Before Start (`switchboard check
// --online`) it asks only that, with a session made for the purpose.
func (a *Adapter) CheckHealth(ctx context.Context) error {
	var s *discordgo.Session
	if r := a.runs.Current(); r != nil {
		if x := a.receiving.Current(); x != nil {
			if since, down := x.Data.downSince(); down {
				return fmt.Errorf("gateway session down since %s", since.Format(time.RFC3339))
			}
		}
		s = r.Data.s
	} else {
		// REST only: a session that is never opened holds no connection.
		var err error
		if s, err = a.newSession(); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	if _, err := s.User("@me", discordgo.WithContext(cctx)); err != nil {
		return fmt.Errorf("get bot user: %w", err)
	}
	return nil
}

// DialogChanged follows Selarti's hand-over to a human: while a human has
// the dialog, "typing…" is not shown (a human may take minutes), and it
// stops at once.
func (a *Adapter) DialogChanged(_ context.Context, ev core.DialogEvent) error {
	stop := a.handovers.Note(ev.ChatID, ev.Current)
	if stop {
		if t, err := parseTarget(ev.ChatID); err == nil {
			a.typing.Stop(t.channel)
		}
	}
	return nil
}

// runData is what one Start..Stop run holds besides its context: what
// Send needs, and what outlives a Receive.
type runData struct {
	s  *discordgo.Session // REST only: Send, typing, threads, backfills; never opened
	me *discordgo.User
	cp *inbound.Checkpoint

	mu      sync.Mutex
	threads map[string]string // "channel:user" → the thread the bot started for it
	own     map[string]bool   // threads the bot started
	names   map[string]string // channel and role ids → names, for mentions
}

func newRunData(s *discordgo.Session, me *discordgo.User, cp *inbound.Checkpoint) *runData {
	d := &runData{
		s: s, me: me, cp: cp,
		threads: map[string]string{},
		own:     map[string]bool{},
		names:   map[string]string{},
	}
	d.loadThreads()
	return d
}

// loadThreads learns the threads the bot started from the checkpoint
// (another replica may have started some since the last look).
func (d *runData) loadThreads() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range d.cp.Keys() {
		if key, ok := threadKey(k); ok {
			thread, _ := d.cp.Get(k)
			d.threads[key] = thread
			d.own[thread] = true
		}
	}
}

// name returns the name of a channel or role id, "" if unknown.
func (d *runData) name(id string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.names[id]
}

// rxData is what one Receive holds besides its context: the gateway
// session and the messages it is handing over.
type rxData struct {
	run     *run
	gw      *discordgo.Session // the gateway session
	deliver core.DeliverFunc
	marks   inbound.Watermark

	disconnected chan struct{} // a Disconnect event: reconnect wakes up
	readied      chan struct{} // a READY (a new session): backfill wakes up

	mu          sync.Mutex
	down        time.Time // when the session dropped; zero while it is up
	backfilling bool      // live messages wait in held meanwhile
	held        []*discordgo.Message
	lastQueued  map[string]uint64        // channel → newest message id queued
	convs       map[string]*conversation // by conversation key
}

func newRxData(r *run, gw *discordgo.Session, deliver core.DeliverFunc) *rxData {
	return &rxData{
		run: r, gw: gw, deliver: deliver,
		disconnected: make(chan struct{}, 1),
		readied:      make(chan struct{}, 1),
		lastQueued:   map[string]uint64{},
		convs:        map[string]*conversation{},
	}
}

// downSince reports whether the session is down, and since when.
func (x *rxData) downSince() (time.Time, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.down, !x.down.IsZero()
}
