package discord

import (
	"fmt"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// countID counts the MESSAGE_CREATEs of one message id.
func countID(rec *recorder, id string) int {
	n := 0
	for _, m := range rec.messages() {
		if m.ID == id {
			n++
		}
	}
	return n
}

// disconnected waits until the fake has no connected session of b.
func disconnected(t *testing.T, b *Bot) {
	t.Helper()
	if err := b.WaitSessions(ctxTimeout(t, 10*time.Second), 0); err != nil {
		t.Fatal(err)
	}
}

func waitResumes(t *testing.T, b *Bot, n int) []Resume {
	t.Helper()
	if err := b.WaitResumes(ctxTimeout(t, 15*time.Second), n); err != nil {
		t.Fatalf("%v; resumes %+v", err, b.Resumes())
	}
	return b.Resumes()
}

// TestResumeAfterDrop: a dropped TCP connection; discordgo reconnects by
// itself, RESUMEs, and gets the message it missed exactly once, before
// RESUMED.
func TestResumeAfterDrop(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"drop", "close 4000"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, Options{})
			_, rec := openSession(t, w.s, w.bot, intentsContent)
			before := w.s.UserSays(w.ch.ID, w.ann, "before")
			rec.waitMessage(t, "before")
			sid := w.bot.Sessions()[0].ID

			if how == "drop" {
				w.s.DropSockets()
			} else {
				w.s.CloseSockets(CloseUnknownError)
			}
			disconnected(t, w.bot)
			if rs := w.bot.ResumableSessions(); len(rs) != 1 || rs[0].ID != sid {
				t.Fatalf("resumable sessions = %+v", rs)
			}
			missed := w.s.UserSays(w.ch.ID, w.ann, "while you were away")

			rs := waitResumes(t, w.bot, 1)
			if rs[0].Result != "resumed" || rs[0].SessionID != sid || rs[0].Replayed != 1 {
				t.Fatalf("resume = %+v", rs[0])
			}
			rec.wait(t, "RESUMED", func([]*discordgo.Event) bool { return len(rec.ofType("RESUMED")) == 1 })
			after := w.s.UserSays(w.ch.ID, w.ann, "after")
			rec.waitMessage(t, "after")
			for _, id := range []string{before.ID, missed.ID, after.ID} {
				if n := countID(rec, id); n != 1 {
					t.Fatalf("message %s received %d times; events %s", id, n, eventTypes(rec.all()))
				}
			}
			// Replay, then RESUMED, all in sequence.
			evs := rec.all()
			var prev int64
			for i, e := range evs {
				if e.Sequence != prev+1 {
					t.Fatalf("event %d (%s) has s=%d after %d", i, e.Type, e.Sequence, prev)
				}
				prev = e.Sequence
			}
			types := eventTypes(evs)
			if want := "READY GUILD_CREATE MESSAGE_CREATE MESSAGE_CREATE RESUMED MESSAGE_CREATE "; types != want {
				t.Fatalf("events = %q, want %q", types, want)
			}
			if n := len(w.bot.Identifies()); n != 1 {
				t.Fatalf("identifies = %d, want 1 (resumed, not re-identified)", n)
			}
		})
	}
}

// TestReconnectOp7: op 7 RECONNECT; discordgo closes with 1012 and
// resumes the same session.
func TestReconnectOp7(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	_, rec := openSession(t, w.s, w.bot, intentsContent)
	sid := w.bot.Sessions()[0].ID
	w.s.Reconnect()
	rs := waitResumes(t, w.bot, 1)
	if rs[0].Result != "resumed" || rs[0].SessionID != sid {
		t.Fatalf("resume = %+v", rs[0])
	}
	w.s.UserSays(w.ch.ID, w.ann, "still there?")
	rec.waitMessage(t, "still there?")
	if n := len(w.bot.Identifies()); n != 1 {
		t.Fatalf("identifies = %+v; resumes %+v", w.bot.Identifies(), w.bot.Resumes())
	}
}

// TestInvalidSession: op 9. discordgo IDENTIFYs again at once, on the same
// socket, whether d is true or false.
func TestInvalidSession(t *testing.T) {
	t.Parallel()
	for _, resumable := range []bool{false, true} {
		t.Run(fmt.Sprint("resumable=", resumable), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, Options{})
			_, rec := openSession(t, w.s, w.bot, intentsContent)
			old := w.bot.Sessions()[0].ID
			w.bot.InvalidateSessions(resumable)
			if err := w.bot.WaitIdentifies(ctxTimeout(t, 10*time.Second), 2); err != nil {
				t.Fatal(err)
			}
			rec.wait(t, "second READY", func([]*discordgo.Event) bool { return len(rec.ofType("READY")) == 2 })
			ss := w.bot.Sessions()
			if len(ss) != 1 || ss[0].ID == old {
				t.Fatalf("sessions = %+v, want one new session", ss)
			}
			if n := len(w.bot.Resumes()); n != 0 {
				t.Fatalf("resumes = %d", n)
			}
			if got := len(w.bot.ResumableSessions()) == 1; got != resumable {
				t.Fatalf("old session still resumable = %v, want %v", got, resumable)
			}
			w.s.UserSays(w.ch.ID, w.ann, "new session works")
			rec.waitMessage(t, "new session works")
		})
	}
}

// TestResumeFails: when the session is gone by the time discordgo
// resumes (expired, ended by a close code, or the replay buffer overran),
// the fake answers INVALID_SESSION and discordgo IDENTIFYs afresh; the
// missed messages are only in the history, for a backfill.
func TestResumeFails(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		opts    Options
		missed  int
		breakIt func(w world)
	}{
		{"expired", Options{}, 1, func(w world) { disconnected(t, w.bot); w.bot.ExpireSessions() }},
		{"close 4004", Options{}, 1, func(w world) { disconnected(t, w.bot) }},
		{"replay buffer overrun", Options{ReplayBuffer: 3}, 5, func(w world) { disconnected(t, w.bot) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, c.opts)
			_, rec := openSession(t, w.s, w.bot, intentsContent)
			last := w.s.UserSays(w.ch.ID, w.ann, "seen")
			rec.waitMessage(t, "seen")
			if c.name == "close 4004" {
				w.s.CloseSockets(CloseAuthenticationFailed)
			} else {
				w.s.DropSockets()
			}
			c.breakIt(w)
			for i := range c.missed {
				w.s.UserSays(w.ch.ID, w.ann, fmt.Sprint("missed ", i))
			}
			rs := waitResumes(t, w.bot, 1)
			if rs[0].Result != "invalid_session" {
				t.Fatalf("resume = %+v", rs[0])
			}
			if err := w.bot.WaitIdentifies(ctxTimeout(t, 10*time.Second), 2); err != nil {
				t.Fatal(err)
			}
			rec.wait(t, "second READY", func([]*discordgo.Event) bool { return len(rec.ofType("READY")) == 2 })
			for _, m := range rec.messages() {
				if m.Content != "seen" {
					t.Fatalf("got %q over the gateway, which the new session never had", m.Content)
				}
			}
			// The backfill: history after the last message seen.
			dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
			hist, err := dg.ChannelMessages(w.ch.ID, 100, "", last.ID, "")
			if err != nil || len(hist) != c.missed {
				t.Fatalf("history after the last seen = %d messages, %v; want %d", len(hist), err, c.missed)
			}
		})
	}
}

// TestZombieConnection: no heartbeat ACKs. discordgo gives up after 5
// intervals and closes with 1000, which (as on Discord) ends the session,
// so its RESUME gets INVALID_SESSION and it IDENTIFYs anew.
func TestZombieConnection(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{HeartbeatInterval: 100 * time.Millisecond})
	_, rec := openSession(t, w.s, w.bot, intentsContent)
	w.s.WithholdHeartbeatACKs(true)
	disconnected(t, w.bot)
	w.s.WithholdHeartbeatACKs(false)
	rs := waitResumes(t, w.bot, 1)
	if rs[0].Result != "invalid_session" {
		t.Fatalf("resume after a zombie = %+v", rs[0])
	}
	if err := w.bot.WaitIdentifies(ctxTimeout(t, 10*time.Second), 2); err != nil {
		t.Fatal(err)
	}
	w.s.UserSays(w.ch.ID, w.ann, "back")
	rec.waitMessage(t, "back")
}
