// Package webchat is Switchboard's built-in browser chat. The gateway
// serves a small chat page (also embeddable on any site through a widget
// script) and a WebSocket endpoint. Each browser keeps a random, anonymous
// session id in localStorage; that id is the native chat id.
//
// Sessions, with a bounded history that reloaded pages and other tabs
// replay, survive restarts and crashes: they are stored in a SQLite file
// in the instance's data directory (see mailbox.go) when the gateway runs
// alone, and in the journals of the gateway's shared store
// (core.Instance.Journals, see journal.go and replicas.go) when several
// replicas share one, so that a tab connected to any replica sees what
// every replica stored. Memory holds a cache of them. See README.md for
// the protocol and limits.
package webchat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
)

// Kind is the adapter kind in the config ("kind: webchat").
const Kind = "webchat"

func init() { core.Register(Kind, New) }

// Interface guards.
var (
	_ core.Messenger        = (*Adapter)(nil)
	_ core.HTTPService      = (*Adapter)(nil)
	_ core.DialogObserver   = (*Adapter)(nil)
	_ core.PrivateChatIDs   = (*Adapter)(nil)
	_ core.DeliveryObserver = (*Adapter)(nil)
)

// maxJanitorInterval caps how often idle sessions are looked for.
const maxJanitorInterval = time.Minute

// walCheckpointInterval is how often the mailbox's WAL is copied into the
// file and cut to nothing (see mailbox.checkpoint).
const walCheckpointInterval = 10 * time.Minute

// maxExpireRounds bounds the expire rounds of one janitor tick, so that a
// large backlog of idle sessions is worked off over several ticks instead
// of holding the database for long.
const maxExpireRounds = 20

// Adapter is one webchat instance: its page, its WebSocket endpoint and
// its sessions.
type Adapter struct {
	cfg        Config
	log        *slog.Logger
	site       *site
	dataDir    string
	journals   core.Journals // the shared store's, or nil: the file in dataDir
	acceptOpts *websocket.AcceptOptions
	now        func() time.Time
	metrics    core.Metrics

	// Per client address (kit/clientip.Key): messages (ip_rate_limit)
	// and new sessions (ip_session_limit); nil when off. They outlive
	// runs: a restart does not hand out fresh allowances.
	ipMessages *ratelimit.Limiter[string]
	ipSessions *ratelimit.Limiter[string]

	// starting serialises Start and Stop: a Start opens the mailbox
	// before it can tell whether another Start got there first.
	starting sync.Mutex
	runs     lifecycle.Runs[runData]
}

// runData is what one Start..Stop run owns besides its context and its
// counted connections (kit/lifecycle).
type runData struct {
	deliver  core.DeliverFunc
	mb       sessionStore // open from Start to Stop
	sessions *sessions    // the cache of mb, empty at Start
	clients  *clientSet
}

// run is one Start..Stop run.
type run = lifecycle.Run[runData]

// clientSet is a run's open connections, so that Stop can close them.
type clientSet struct {
	mu     sync.Mutex
	closed bool // Stop has taken the set: no more joins
	m      map[*client]struct{}
}

// add registers c, unless the run is ending.
func (cs *clientSet) add(c *client) bool {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return false
	}
	cs.m[c] = struct{}{}
	return true
}

func (cs *clientSet) remove(c *client) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.m, c)
}

// close ends the set and returns its connections.
func (cs *clientSet) close() []*client {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.closed = true
	out := make([]*client, 0, len(cs.m))
	for c := range cs.m {
		out = append(out, c)
	}
	return out
}

// New builds a webchat instance from its config. It does no I/O.
func New(inst core.Instance) (core.Messenger, error) {
	var cfg Config
	cfg.setDefaults()
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	st, err := newSite(&cfg)
	if err != nil {
		return nil, err
	}
	log := inst.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &websocket.AcceptOptions{OriginPatterns: cfg.AllowedOrigins}
	if cfg.allowAnyOrigin() {
		// The operator asked for every origin explicitly ("*"); the
		// library wants that spelled as skipping the check.
		opts = &websocket.AcceptOptions{InsecureSkipVerify: true}
	}
	return &Adapter{
		cfg:        cfg,
		log:        log,
		site:       st,
		dataDir:    inst.DataDir,
		journals:   inst.Journals,
		acceptOpts: opts,
		now:        time.Now,
		metrics:    core.MetricsOf(inst),
		ipMessages: perAddress(cfg.IPRateLimit),
		ipSessions: perAddress(cfg.IPSessionLimit),
	}, nil
}

// maxAddresses bounds the per-address buckets kept, the least recently
// used forgotten first (kit/ratelimit).
const maxAddresses = 65536

// Reasons of refusals, the reason label of
// switchboard_adapter_rejects_total.
const (
	rejectIPRateLimit    = "ip_rate_limit"
	rejectIPSessionLimit = "ip_session_limit"
)

// perAddress is a limiter of perMinute events per minute per client
// address, or nil when perMinute is 0 (off).
func perAddress(perMinute int) *ratelimit.Limiter[string] {
	if perMinute == 0 {
		return nil
	}
	return ratelimit.New(ratelimit.Options[string]{
		Keys:   maxAddresses,
		PerKey: func(string) (rate.Limit, int) { return ratelimit.PerMinute(perMinute) },
	})
}

// allowFrom takes one token from addr's bucket in l, counting a refusal
// under reason. A nil limiter or an unknown address ("") allows all.
func (a *Adapter) allowFrom(l *ratelimit.Limiter[string], addr, reason string) bool {
	if l == nil || addr == "" || l.Allow(addr) {
		return true
	}
	a.metrics.Rejected(reason)
	return false
}

// Start opens the session mailbox (<DataDir>/webchat.db), or uses the
// shared store's journals when the core gives them (Instance.Journals),
// then begins accepting WebSocket connections and passing their messages
// to deliver. It does no network I/O of its own: the page and socket are
// served on the gateway's listener.
func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	if deliver == nil {
		return errors.New("start webchat: nil deliver func")
	}
	if a.journals == nil && a.dataDir == "" {
		// Only a hand-built Instance lacks it; the core always sets it.
		return core.Permanent(errors.New("start webchat: no data directory (core.Instance.DataDir is empty): the session mailbox needs one"))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start webchat: %w", err)
	}
	a.starting.Lock()
	defer a.starting.Unlock()
	if a.runs.Current() != nil {
		return fmt.Errorf("start webchat: %w", lifecycle.ErrStarted)
	}
	mb, where, err := a.openStore(ctx)
	if err != nil {
		return fmt.Errorf("start webchat: %w", err)
	}
	// ctx bounds the start-up only; the run lives until Stop.
	ss := newSessions(&a.cfg, mb)
	r, err := a.runs.Begin(runData{deliver: deliver, mb: mb, sessions: ss, clients: &clientSet{m: make(map[*client]struct{})}})
	if err != nil {
		_ = mb.close()
		return fmt.Errorf("start webchat: %w", err)
	}
	r.Go(func(ctx context.Context) { a.janitor(ctx, ss) })
	if a.journals != nil {
		r.Go(func(ctx context.Context) { a.watchJournals(ctx, a.journals, ss) })
		r.Go(func(ctx context.Context) { ss.pushBehind(ctx, a.now, a.log) })
	}
	a.log.Info("started", append(where, "path", a.cfg.Path, "allowed_origins", a.cfg.AllowedOrigins,
		"history_limit", a.cfg.HistoryLimit, "session_ttl", a.cfg.SessionTTL, "max_sessions", a.cfg.MaxSessions)...)
	return nil
}

// openStore opens where the sessions live, and returns it with the log
// attributes that say which it is: the shared store's journals when the
// core gives them (several replicas share that store), else the file in
// the data directory.
func (a *Adapter) openStore(ctx context.Context) (sessionStore, []any, error) {
	if a.journals != nil {
		return newJournalMailbox(a.journals, a.cfg.HistoryLimit), []any{"sessions", "shared store"}, nil
	}
	// The core creates the directory, but does not insist when its own
	// store is in memory.
	if err := os.MkdirAll(a.dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create data directory: %w", err)
	}
	mb, err := openMailbox(ctx, filepath.Join(a.dataDir, mailboxFile), a.cfg.HistoryLimit)
	if err != nil {
		return nil, nil, err
	}
	return mb, []any{"sessions", "file", "mailbox", mb.path, "unsynced_user_messages", mb.lazy}, nil
}

// Stop closes every connection with a going-away status (pages reconnect
// with backoff), stops the janitor (and the watch of the shared store)
// and waits for all of it, or until ctx is done, then closes the
// mailbox. Sessions stay in the mailbox or the shared store, so a later
// Start, in this process or the next, or another replica, carries on.
func (a *Adapter) Stop(ctx context.Context) error {
	a.starting.Lock()
	defer a.starting.Unlock()
	var clients []*client
	r, err := a.runs.End(ctx, func(r *run) {
		clients = r.Data.clients.close()
		for _, c := range clients {
			c.kill(websocket.StatusGoingAway, "server shutting down")
		}
	})
	if r == nil {
		return nil
	}
	if err != nil {
		// Browsers that do not answer the close handshake: drop them.
		for _, c := range clients {
			_ = c.ws.CloseNow()
		}
		err = fmt.Errorf("stop webchat: %w", err)
	}
	// The activity of the sessions in memory (hellos, tabs closed) is
	// only there; the next run expires sessions by what is written.
	a.flushTouches(ctx, r.Data.sessions, true)
	// Calls still in flight finish first; later ones fail as not
	// written (Send's message is retried by the core, a user's message
	// is re-sent by its page).
	if cerr := r.Data.mb.close(); cerr != nil && err == nil {
		err = fmt.Errorf("stop webchat: %w", cerr)
	}
	if err == nil {
		a.log.Info("stopped")
	}
	return err
}

// Send stores msg in its session's history (creating the session if the
// id is well-formed but unknown) and pushes it to the session's open tabs.
// It returns nil once the message is committed to the mailbox: a browser
// that is offline gets it on its next connection, even after a restart or
// a crash, as long as the session lives (up to session_ttl idle). A
// second Send with the same Outbound.ID (a redelivery) is not stored
// twice. A mailbox error is returned as is, which the core retries. Send
// never waits for a browser.
func (a *Adapter) Send(ctx context.Context, msg core.Outbound) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validSessionID(msg.ChatID) {
		return fmt.Errorf("send message to chat %q: %w", shortID(msg.ChatID), core.ErrUnknownChat)
	}
	run := a.current()
	if run == nil {
		return fmt.Errorf("send message to chat %s: %w", shortID(msg.ChatID), core.ErrNotConnected)
	}
	if strings.TrimSpace(msg.Text) == "" {
		return core.Permanent(fmt.Errorf("send message to chat %s: empty text", shortID(msg.ChatID)))
	}
	from := fromBot
	if msg.From == core.SenderOperator {
		from = fromOperator
	}
	seq, err := run.sessions.appendOutbound(ctx, msg.ChatID, msg.ID, from, msg.Text, a.now())
	if err != nil {
		return fmt.Errorf("send message to chat %s: %w", shortID(msg.ChatID), err)
	}
	if a.log.Enabled(ctx, slog.LevelDebug) {
		a.log.Debug("message stored", "session", shortID(msg.ChatID), "seq", seq, "from", from)
	}
	return nil
}

// DialogChanged stores a note in a session's history, and shows it on its
// open tabs, when the dialog is handed to a human operator (or back) or
// closed. Other flags are not the user's business. A session the mailbox
// does not hold is ignored.
func (a *Adapter) DialogChanged(ctx context.Context, ev core.DialogEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validSessionID(ev.ChatID) {
		return fmt.Errorf("show dialog change in chat %q: %w", shortID(ev.ChatID), core.ErrUnknownChat)
	}
	run := a.current()
	if run == nil {
		return fmt.Errorf("show dialog change in chat %s: %w", shortID(ev.ChatID), core.ErrNotConnected)
	}
	if ev.Previous.Operator == ev.Current.Operator && ev.Previous.Closed == ev.Current.Closed {
		return nil
	}
	if _, err := run.sessions.appendEvent(ctx, ev.ChatID, ev.Current.Operator, ev.Current.Closed, a.now()); err != nil {
		return fmt.Errorf("show dialog change in chat %s: %w", shortID(ev.ChatID), err)
	}
	return nil
}

// PrivateChatIDs reports that session ids, the native chat ids, are
// secrets: a session id reads the session's history and writes as its
// visitor. The core shows them shortened, as this adapter's own logs do.
func (a *Adapter) PrivateChatIDs() bool { return true }

// HTTPPrefix returns the configured path; the page, widget script, assets
// and WebSocket are all under it.
func (a *Adapter) HTTPPrefix() string { return a.cfg.Path }

// LandingPath is the chat page (core.LandingPage): the gateway's GET /
// leads to it.
func (a *Adapter) LandingPath() string { return a.cfg.Path }

// current returns what the run in progress holds, or nil before Start
// and after Stop.
func (a *Adapter) current() *runData {
	if r := a.runs.Current(); r != nil {
		return &r.Data
	}
	return nil
}

// janitor deletes idle sessions, from the mailbox and the cache, every so
// often until ctx is done. Before that, it writes the last activity of
// the sessions dropped from memory, which it also does whenever many are
// waiting.
func (a *Adapter) janitor(ctx context.Context, ss *sessions) {
	t := time.NewTicker(min(a.cfg.SessionTTL/10, maxJanitorInterval))
	defer t.Stop()
	ckpt := time.NewTicker(walCheckpointInterval)
	defer ckpt.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ckpt.C:
			if err := ss.mb.checkpoint(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("checkpoint mailbox", "err", err)
			}
		case <-ss.flush:
			a.flushTouches(ctx, ss, false)
		case <-t.C:
			a.flushTouches(ctx, ss, false)
			if ss.shared {
				// Before any replica's janitor looks for idle sessions
				// by what the store has.
				now := a.now()
				if err := ss.shareActivity(ctx, now, now.Add(-a.cfg.SessionTTL/2)); err != nil && ctx.Err() == nil {
					a.log.Warn("record session activity", "err", err)
				}
			}
			ss.mu.Lock()
			ss.pruneUnsynced()
			ss.mu.Unlock()
			a.expireIdle(ctx, ss)
		}
	}
}

// flushTouches writes the last activity that the mailbox does not have
// yet (see sessions.flushTouches), logging a failure.
func (a *Adapter) flushTouches(ctx context.Context, ss *sessions, all bool) {
	if err := ss.flushTouches(ctx, all); err != nil && ctx.Err() == nil {
		a.log.Warn("record session activity", "err", err)
	}
}

// expireIdle runs expire rounds until a round finds less than a full
// batch, or maxExpireRounds have run.
func (a *Adapter) expireIdle(ctx context.Context, ss *sessions) {
	total := 0
	for range maxExpireRounds {
		now := a.now()
		n, err := ss.expire(ctx, now.Add(-a.cfg.SessionTTL), now)
		total += n
		if err != nil {
			if ctx.Err() == nil {
				a.log.Warn("expire idle sessions", "err", err)
			}
			break
		}
		if n < expireBatch {
			break
		}
	}
	if total > 0 {
		a.log.Debug("idle sessions deleted", "count", total, "cached", ss.len())
	}
}
