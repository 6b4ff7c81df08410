package discord

import (
	"context"
	"slices"
	"strconv"
	"strings"

	"github.com/bwmarrin/discordgo"
)

// backfillLoop runs a backfill after every READY, that is after every new
// gateway session: when Receive opens one (after a restart, or on the
// replica that took the receiving over), and when Discord would not
// resume a dropped one. Discord never sends a missed MESSAGE_CREATE again, so the adapter
// asks for the messages after each channel's checkpoint (GET
// /channels/{id}/messages?after=) and hands them over like live ones;
// the live messages that came meanwhile wait behind them (see live), and
// what both bring is queued once (see take). The core drops what it
// already had by message id: a crash between its commit and the
// checkpoint's write only repeats a delivery.
func (a *Adapter) backfillLoop(ctx context.Context, x *rx) {
	xd := x.Data
	for {
		select {
		case <-ctx.Done():
			return
		case <-xd.readied:
		}
		n := a.backfill(ctx, x)
		// Release what waited, in order; a READY that came meanwhile
		// starts another round first.
		for {
			xd.mu.Lock()
			if len(xd.readied) > 0 || ctx.Err() != nil {
				xd.mu.Unlock()
				break
			}
			held := xd.held
			xd.held = nil
			if len(held) == 0 {
				xd.backfilling = false
				xd.mu.Unlock()
				break
			}
			xd.mu.Unlock()
			for _, m := range held {
				a.take(x, m)
			}
		}
		if n > 0 {
			a.log.Info("backfilled messages sent while the gateway session was down", "messages", n)
		}
	}
}

// backfill queues, channel by channel, the messages after each checkpoint,
// at most backfill_limit per channel, oldest first, and returns how many
// it fetched.
func (a *Adapter) backfill(ctx context.Context, x *rx) int {
	if a.cfg.BackfillLimit == 0 {
		return 0
	}
	d := x.Data.run.Data
	total := 0
	for _, k := range d.cp.Keys() {
		channel, ok := strings.CutPrefix(k, positionPrefix)
		if !ok {
			continue
		}
		after, _ := d.cp.Get(k)
		msgs, err := a.fetchAfter(ctx, d.s, channel, after)
		if err != nil {
			if ctx.Err() != nil {
				return total
			}
			// The channel is gone, or the bot lost access: nothing to
			// answer there. Anything else is tried at the next session.
			a.log.Warn("backfill: could not read the channel's recent messages", "channel", channel, "err", err)
			continue
		}
		total += len(msgs)
		guild, _ := d.cp.Get(guildPrefix + channel)
		for _, m := range msgs {
			if m.GuildID == "" {
				m.GuildID = guild
			}
			// A message missed while down is new to the assistant, even if
			// its author edited it since: it goes as sent now.
			m.EditedTimestamp = nil
			a.take(x, m)
		}
	}
	return total
}

// fetchAfter returns the channel's messages after the id after, oldest
// first, at most backfill_limit, in pages of 100 (Discord's maximum).
func (a *Adapter) fetchAfter(ctx context.Context, s *discordgo.Session, channel, after string) ([]*discordgo.Message, error) {
	var out []*discordgo.Message
	for len(out) < a.cfg.BackfillLimit {
		n := min(100, a.cfg.BackfillLimit-len(out))
		cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
		page, err := s.ChannelMessages(channel, n, "", after, "", discordgo.WithContext(cctx))
		cancel()
		if err != nil {
			return out, err
		}
		if len(page) == 0 {
			break
		}
		// Discord answers newest first.
		slices.SortFunc(page, func(x, y *discordgo.Message) int { return compareIDs(x.ID, y.ID) })
		out = append(out, page...)
		after = page[len(page)-1].ID
		if len(page) < n {
			break
		}
	}
	return out, nil
}

// compareIDs orders snowflakes, which grow with time.
func compareIDs(x, y string) int {
	a, _ := strconv.ParseUint(x, 10, 64)
	b, _ := strconv.ParseUint(y, 10, 64)
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
