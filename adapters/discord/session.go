package discord

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/cenkalti/backoff/v5"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
)

// addHandlers wires the gateway session's events to the Receive. With
// SyncEvents the handlers run one at a time, in the gateway's order, on
// discordgo's reading goroutine: they must not wait for the core (see
// queue).
func (a *Adapter) addHandlers(x *rx) {
	xd, d := x.Data, x.Data.run.Data
	xd.gw.AddHandler(func(_ *discordgo.Session, e *discordgo.Ready) {
		xd.mu.Lock()
		xd.down = time.Time{}
		// A new session: what was sent since the last one is not sent
		// again by Discord. Hold the live messages until the backfill
		// has queued the older ones, so each conversation keeps its
		// order.
		xd.backfilling = true
		xd.mu.Unlock()
		a.log.Info("gateway session ready", "session", shortSession(e.SessionID))
		wake(xd.readied)
	})
	xd.gw.AddHandler(func(*discordgo.Session, *discordgo.Resumed) {
		xd.mu.Lock()
		xd.down = time.Time{}
		xd.mu.Unlock()
		a.log.Info("gateway session resumed")
	})
	xd.gw.AddHandler(func(*discordgo.Session, *discordgo.Disconnect) {
		xd.mu.Lock()
		if xd.down.IsZero() {
			xd.down = time.Now()
		}
		xd.mu.Unlock()
		wake(xd.disconnected)
	})
	// Guilds, channels and threads tell which threads the bot owns, and
	// the names that mentions in messages are shown with.
	xd.gw.AddHandler(func(_ *discordgo.Session, e *discordgo.GuildCreate) {
		if e.Guild == nil {
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, c := range append(slices.Clone(e.Channels), e.Threads...) {
			d.noteChannel(c)
		}
		for _, role := range e.Roles {
			d.names[role.ID] = role.Name
		}
	})
	for _, on := range []any{
		func(_ *discordgo.Session, e *discordgo.ChannelCreate) { d.lockedNote(e.Channel) },
		func(_ *discordgo.Session, e *discordgo.ChannelUpdate) { d.lockedNote(e.Channel) },
		func(_ *discordgo.Session, e *discordgo.ThreadCreate) { d.lockedNote(e.Channel) },
	} {
		xd.gw.AddHandler(on)
	}
	xd.gw.AddHandler(func(_ *discordgo.Session, e *discordgo.MessageCreate) {
		a.live(x, e.Message)
	})
	if a.cfg.AnswerEdits {
		xd.gw.AddHandler(func(_ *discordgo.Session, e *discordgo.MessageUpdate) {
			if e.Message != nil && e.EditedTimestamp != nil && e.Author != nil {
				a.live(x, e.Message)
			}
		})
	}
}

// reconnect reopens the gateway session whenever it drops, until the
// Receive ends, with capped exponential backoff and jitter (discordgo's
// own reconnect never stops and has neither). discordgo keeps the
// session id and sequence over a Close, so the reopen RESUMEs: Discord
// replays what was missed. A session Discord will not resume gets
// INVALID_SESSION and a fresh IDENTIFY, whose READY starts a backfill.
func (a *Adapter) reconnect(ctx context.Context, x *rx) {
	xd := x.Data
	for {
		select {
		case <-ctx.Done():
			return
		case <-xd.disconnected:
		}
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = time.Second
		b.MaxInterval = reconnectMax
		for ctx.Err() == nil {
			err := a.open(ctx, xd.gw)
			if err == nil || errors.Is(err, discordgo.ErrWSAlreadyOpen) {
				break
			}
			if ctx.Err() != nil {
				return
			}
			wait := b.NextBackOff()
			a.log.Warn("gateway session dropped, reconnecting", "wait", wait, "err", err)
			lifecycle.Sleep(ctx, wait)
		}
	}
}

func (d *runData) lockedNote(c *discordgo.Channel) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noteChannel(c)
}

// noteChannel learns c's name and whether the bot owns it (a thread).
// Call with mu held.
func (d *runData) noteChannel(c *discordgo.Channel) {
	if c == nil {
		return
	}
	if c.Name != "" && len(d.names) < maxNames {
		d.names[c.ID] = c.Name
	}
	if c.IsThread() && c.OwnerID == d.me.ID {
		d.own[c.ID] = true
	}
}

// maxNames bounds the channel and role names kept.
const maxNames = 100000

// wake signals c without waiting.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// shortSession shortens a gateway session id for logs: with the token, it
// would let someone resume the session.
func shortSession(id string) string {
	if len(id) > 6 {
		return id[:6] + "…"
	}
	return id
}
