// Package slack connects Switchboard to a Slack app, with
// github.com/slack-go/slack as the client. Each instance is one app
// installed in one workspace: it answers direct messages to the app and
// mentions of it in channels (in the mention's thread by default), and
// sends the assistant's answers with chat.postMessage, rendered as
// mrkdwn, split at 4,000 characters and paced per channel.
//
// Events arrive over Socket Mode (WebSockets the gateway opens, several
// at once) or over the Events API (signed HTTP requests to the gateway's
// listener). Slack wants every event acknowledged within three seconds
// and sends it again (three times, with the same event id) when it was
// not, so the adapter acknowledges an event only once the core has
// committed it, hands it over within that deadline, and relies on the
// core's dedupe for Slack's retries; on the last retry it acknowledges
// and retries in the process. See README.md for the chat ids and the
// options.
package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/cache"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/logthrottle"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
)

// Kind is the adapter kind in the config ("kind: slack").
const Kind = "slack"

func init() { core.Register(Kind, New) }

// Interface guards.
var (
	_ core.Messenger     = (*Adapter)(nil)
	_ core.HTTPService   = (*Adapter)(nil)
	_ core.HealthChecker = (*Adapter)(nil)
)

// Bounds of what the adapter remembers (kit/cache: least recently used
// first out).
const (
	maxProgress = 10000
	progressTTL = 24 * time.Hour
	maxNotices  = 32
	// noticeTimeout bounds sending one of the adapter's own replies.
	noticeTimeout = 30 * time.Second
	// maxNames and namesTTL bound the user and channel names kept for
	// mentions and senders: a renamed user shows the new name within
	// the hour.
	maxNames = 10000
	namesTTL = time.Hour
	// maxSettled and settledTTL bound the event ids remembered as
	// accepted by the core, so that a retry of one (an acknowledgement
	// that was lost or late) is acknowledged at once. Slack's last retry
	// comes about five minutes after the event.
	maxSettled = 10000
	settledTTL = 15 * time.Minute
	// maxChannelLimiters bounds the per-channel send limiters kept.
	maxChannelLimiters = 10000
	// downFor is how long the instance may have no Socket Mode
	// connection before CheckHealth fails.
	downFor = 30 * time.Second
)

// identity is the app's bot in its workspace, as auth.test tells.
type identity struct {
	team     string // T…
	teamName string
	userID   string // the bot user, U…
	botID    string // B…, the bot_id of the app's own messages
	botName  string
}

// Adapter is one Slack app in one workspace.
type Adapter struct {
	name       string
	cfg        Config
	log        *slog.Logger
	http       *http.Client
	api        *slack.Client // the Web API, with the bot token
	prefix     string        // HTTP prefix: /slack/<name>/
	requestURL string        // where Slack posts events, in events mode

	limits   *ratelimit.Limiter[string] // by channel
	notices  *outbound.Notices
	progress *outbound.Progress
	users    *cache.Cache[string, person] // user id → who they are
	channels *cache.Cache[string, string] // channel id → name
	settled  *cache.Cache[string, struct{}]
	logged   *cache.Cache[string, struct{}] // hints logged once (a channel the app is not in, another workspace)
	// warn throttles the warnings for refused events requests: anyone
	// can send those. metrics counts them all.
	warn    *logthrottle.Throttle
	metrics core.Metrics

	runs lifecycle.Runs[*runData]
}

// run is one Start..Stop run.
type run = lifecycle.Run[*runData]

// New builds a slack instance from its config. It does no I/O.
func New(inst core.Instance) (core.Messenger, error) {
	var cfg Config
	cfg.setDefaults()
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(inst.PublicURL); err != nil {
		return nil, err
	}
	hc := inst.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	a := &Adapter{
		name:     inst.Name,
		cfg:      cfg,
		log:      inst.Logger,
		http:     hc,
		prefix:   "/slack/" + inst.Name + "/",
		notices:  outbound.NewNotices(maxNotices),
		progress: outbound.NewProgress(maxProgress, progressTTL),
		users:    cache.New[string, person](maxNames, namesTTL),
		channels: cache.New[string, string](maxNames, namesTTL),
		settled:  cache.New[string, struct{}](maxSettled, settledTTL),
		logged:   cache.New[string, struct{}](maxNames, time.Hour),
		metrics:  core.MetricsOf(inst),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.warn = logthrottle.New(a.log, 0, 0)
	if cfg.Mode == ModeEvents {
		a.requestURL = strings.TrimRight(inst.PublicURL, "/") + a.prefix + "events"
	}
	a.api = a.newClient(false)
	a.limits = ratelimit.New(ratelimit.Options[string]{
		Keys:   maxChannelLimiters,
		PerKey: func(string) (rate.Limit, int) { return rate.Limit(cfg.ChannelRateLimit), cfg.ChannelBurst },
	})
	return a, nil
}

// newClient makes a slack-go Web API client on api_url, through the
// instance's HTTP client (each request is also bounded by its context),
// with slack-go's retries off (the outbox retries, with its backoff and
// dead letters) and its logging sent to the instance's debug log. With
// app, it also carries the app-level token, for apps.connections.open.
func (a *Adapter) newClient(app bool) *slack.Client {
	opts := []slack.Option{
		slack.OptionAPIURL(a.cfg.APIURL),
		slack.OptionHTTPClient(a.http),
		slack.OptionLog(debugLog{a.log}),
	}
	if app {
		opts = append(opts, slack.OptionAppLevelToken(a.cfg.AppToken.Reveal()))
	}
	return slack.New(a.cfg.BotToken.Reveal(), opts...)
}

// Start checks the bot token (auth.test, which also tells the workspace
// and the bot's ids), then in socket mode opens the Socket Mode
// connections and returns once the first is up; in events mode the
// gateway's listener already serves the request URL. A token Slack
// refuses is a permanent error; anything else is retried by the core.
func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	if deliver == nil {
		return errors.New("start slack: nil deliver func")
	}
	if a.runs.Current() != nil {
		return fmt.Errorf("start slack: %w", lifecycle.ErrStarted)
	}
	me, err := a.authTest(ctx)
	if err != nil {
		if isAuthRefused(err) {
			return core.Permanent(fmt.Errorf("check bot token: Slack refused it (%w); fix config.bot_token (OAuth & Permissions → Bot User OAuth Token), or reinstall the app", err))
		}
		return fmt.Errorf("check bot token: %w", err)
	}
	d := newRunData(deliver, me)
	if a.cfg.Mode == ModeSocket {
		for i := range a.cfg.Connections {
			d.conns = append(d.conns, a.newConn(i))
		}
	}
	r, err := a.runs.Begin(d)
	if err != nil {
		return fmt.Errorf("start slack: %w", err)
	}
	if a.cfg.Mode == ModeSocket {
		if err := a.openSockets(ctx, r); err != nil {
			_, _ = a.runs.End(context.Background(), nil)
			return err
		}
		a.log.Info("started", "mode", a.cfg.Mode, "team", me.team, "workspace", me.teamName, "bot", me.botName, "bot_user", me.userID,
			"connections", a.cfg.Connections, "reply_in_thread", a.cfg.ReplyInThread)
		return nil
	}
	a.log.Info("started", "mode", a.cfg.Mode, "team", me.team, "workspace", me.teamName, "bot", me.botName, "bot_user", me.userID,
		"request_url", a.requestURL, "reply_in_thread", a.cfg.ReplyInThread)
	return nil
}

// authTest asks Slack who the bot token belongs to.
func (a *Adapter) authTest(ctx context.Context) (identity, error) {
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	res, err := a.api.AuthTestContext(cctx)
	if err != nil {
		return identity{}, err
	}
	if res.TeamID == "" || res.UserID == "" {
		return identity{}, errors.New("auth.test answered without a team or user id")
	}
	return identity{team: res.TeamID, teamName: res.Team, userID: res.UserID, botID: res.BotID, botName: res.User}, nil
}

// Stop closes the Socket Mode connections, refuses new Events API
// requests, and waits for the conversations in progress and the
// notices, or until ctx is done. An event handed over but not yet
// acknowledged when Stop cuts it short is sent again by Slack (to the
// next run, or another replica) and dropped by the core if it had been
// committed.
func (a *Adapter) Stop(ctx context.Context) error {
	r, err := a.runs.End(ctx, nil)
	if err != nil {
		return fmt.Errorf("stop slack: %w", err)
	}
	if r != nil {
		a.log.Info("stopped")
	}
	return nil
}

// CheckHealth fails while no Socket Mode connection has been up for a
// while (downFor), and asks Slack who the bot is (auth.test), which fails
// when Slack is unreachable or the token was revoked. Before Start
// (`switchboard check --online`) it asks only that.
func (a *Adapter) CheckHealth(ctx context.Context) error {
	if r := a.runs.Current(); r != nil && a.cfg.Mode == ModeSocket {
		if since, down := r.Data.downSince(); down && time.Since(since) > downFor {
			return fmt.Errorf("no Socket Mode connection since %s", since.Format(time.RFC3339))
		}
	}
	if _, err := a.authTest(ctx); err != nil {
		return fmt.Errorf("auth.test: %w", err)
	}
	return nil
}

// HTTPPrefix is where the instance serves the Events API: the request
// URL is <server.public_url>/slack/<name>/events. In socket mode it
// serves nothing (404).
func (a *Adapter) HTTPPrefix() string { return a.prefix }

// runData is what one run holds besides its context.
type runData struct {
	deliver core.DeliverFunc
	me      identity
	conns   []*sockConn // socket mode; fixed at Begin

	connected chan struct{} // closed once a first connection is up
	fatal     chan error    // a connection Slack refused for good, for Start

	mu    sync.Mutex
	up    map[int]bool // connection index → up
	down  time.Time    // since when no connection is up; zero while one is
	once  bool         // connected was closed
	convs map[string]*conversation
}

func newRunData(deliver core.DeliverFunc, me identity) *runData {
	return &runData{
		deliver:   deliver,
		me:        me,
		connected: make(chan struct{}),
		fatal:     make(chan error, 1),
		up:        map[int]bool{},
		down:      time.Now(),
		convs:     map[string]*conversation{},
	}
}

// setUp records whether connection i is up.
func (d *runData) setUp(i int, up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if up {
		d.up[i] = true
	} else {
		delete(d.up, i)
	}
	switch {
	case len(d.up) > 0:
		d.down = time.Time{}
		if !d.once {
			d.once = true
			close(d.connected)
		}
	case d.down.IsZero():
		d.down = time.Now()
	}
}

// downSince reports whether no connection is up, and since when.
func (d *runData) downSince() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down, !d.down.IsZero()
}

// connectionsUp returns how many connections are up.
func (d *runData) connectionsUp() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.up)
}

// signalFatal tells Start (if it still waits) that Slack refused a
// connection for good.
func (d *runData) signalFatal(err error) {
	select {
	case d.fatal <- err:
	default:
	}
}

// debugLog sends slack-go's own log lines (written only with its debug
// option, which stays off) to the instance's debug log.
type debugLog struct{ l *slog.Logger }

func (d debugLog) Output(_ int, s string) error {
	d.l.Debug("slack-go", "line", strings.TrimSpace(s))
	return nil
}
