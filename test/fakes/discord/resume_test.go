package discord

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/coder/websocket"
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

// discordgo v0.29.0 can close a connection it has just resumed on, by
// itself, with 1000 (wsapi.go). When a connection breaks, listen calls
// Close (which closes the listening channel, sends 1000 and sleeps a
// second, all holding the session's lock) and then reconnect, whose Open
// RESUMEs on a new connection. If the heartbeat goroutine had already
// taken its tick (past "case <-ticker.C") it goes on to write to the old
// connection, fails ("websocket: close sent"), and calls Close and
// reconnect too, without checking that s.wsConn is still its own: its
// Close waits for the lock while listen's Open runs, then closes the *new*
// connection with 1000, which on Discord, as on the fake, ends the
// session. Its reconnect then RESUMEs the ended session, gets
// INVALID_SESSION and IDENTIFYs anew; the heartbeat goroutine that Open
// started may do the same to the next connection, and so on, each round
// a coin toss. Whatever that connection's listen read once its listening
// channel was closed (RESUMED, a MESSAGE_CREATE) is dropped. Discord would
// see the same; the fake behaved. strayCloses counts those closes: a
// client's 1000 that ended a session (session sid, or any with "").
func strayCloses(b *Bot, sid string) int {
	n := 0
	for _, h := range b.Hangups() {
		if !h.ByFake && h.Code == int(websocket.StatusNormalClosure) && h.SessionEnded && (sid == "" || h.SessionID == sid) {
			n++
		}
	}
	return n
}

// waitUntil polls cond (over the recorder and the fake together).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func countIn(evs []*discordgo.Event, id string) int {
	n := 0
	for _, e := range evs {
		if m, ok := e.Struct.(*discordgo.MessageCreate); ok && m.ID == id {
			n++
		}
	}
	return n
}

// afterResume checks what follows a resume of session sid whose events
// should read want, with msgs (the message posted after RESUMED last)
// each received once. It returns false if discordgo's stray close (see
// strayCloses) ended the resumed session first: afterStrayClose checks
// that case.
func afterResume(t *testing.T, w world, rec *recorder, sid, want string, msgs ...*Message) bool {
	t.Helper()
	evs, ids := rec.all(), w.bot.Identifies()
	if strayCloses(w.bot, sid) > 0 {
		return false // evs, ids may have come after it
	}
	for _, m := range msgs {
		if n := countIn(evs, m.ID); n != 1 {
			t.Fatalf("message %q received %d times; events %s", m.Content, n, eventTypes(evs))
		}
	}
	var prev int64
	for i, e := range evs {
		if e.Sequence != prev+1 {
			t.Fatalf("event %d (%s) has s=%d after %d", i, e.Type, e.Sequence, prev)
		}
		prev = e.Sequence
	}
	if types := eventTypes(evs); types != want {
		t.Fatalf("events = %q, want %q", types, want)
	}
	if len(ids) != 1 {
		t.Fatalf("identifies = %+v; resumes %+v (resumed, not re-identified)", ids, w.bot.Resumes())
	}
	return true
}

// afterStrayClose: discordgo ended the session it had resumed (sid) by
// itself. The resume itself went right: the events up to the second READY
// are in sequence and a prefix of want at least as long as must, and
// carry each of msgs at most once (the last one was posted after the
// resume and may be lost over the gateway: it is in the history a backfill
// reads, after the one before it). Every later RESUME got INVALID_SESSION,
// each after a stray close, and every later IDENTIFY after one of those;
// once discordgo settles a new message arrives exactly once, and nothing
// arrives twice.
func afterStrayClose(t *testing.T, w world, rec *recorder, sid, want, must string, msgs ...*Message) {
	t.Helper()
	t.Logf("discordgo closed the connection it resumed on with 1000 (its heartbeat race); hangups %+v", w.bot.Hangups())
	var probe *Message
	for round := 0; probe == nil; round++ {
		if round == 10 {
			t.Fatalf("no message got through after %d rounds; hangups %+v; resumes %+v", round, w.bot.Hangups(), w.bot.Resumes())
		}
		n := strayCloses(w.bot, "")
		if err := w.bot.WaitSessions(ctxTimeout(t, 15*time.Second), 1); err != nil {
			t.Fatal(err)
		}
		p := w.s.UserSays(w.ch.ID, w.ann, fmt.Sprint("probe ", round))
		waitUntil(t, "MESSAGE_CREATE "+p.Content, func() bool { return countID(rec, p.ID) > 0 || strayCloses(w.bot, "") > n })
		if countID(rec, p.ID) > 0 {
			probe = &p
		}
	}
	evs := rec.all()
	first := evs
	for i := 1; i < len(evs); i++ {
		if evs[i].Type == "READY" {
			first = evs[:i]
			break
		}
	}
	types := eventTypes(first)
	if !strings.HasPrefix(want, types) || len(types) < len(must) {
		t.Fatalf("events of the resumed session = %q, want a prefix of %q at least %q", types, want, must)
	}
	for i, e := range first {
		if e.Sequence != int64(i+1) {
			t.Fatalf("event %d (%s) has s=%d", i, e.Type, e.Sequence)
		}
	}
	counts := map[string]int{}
	for _, m := range rec.messages() {
		if counts[m.ID]++; counts[m.ID] > 1 {
			t.Fatalf("message %q received twice; events %s", m.Content, eventTypes(evs))
		}
	}
	last, prev := msgs[len(msgs)-1], ""
	for _, m := range msgs[:len(msgs)-1] {
		if countIn(first, m.ID) != 1 {
			t.Fatalf("message %q, sent before the resume, not received by the resumed session; events %s", m.Content, eventTypes(evs))
		}
		prev = m.ID
	}
	if counts[last.ID] == 0 {
		dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
		hist, err := dg.ChannelMessages(w.ch.ID, 100, "", prev, "")
		if err != nil || !slices.ContainsFunc(hist, func(h *discordgo.Message) bool { return h.ID == last.ID }) {
			t.Fatalf("%q lost over the gateway and not in the history after the one before it (%v)", last.Content, err)
		}
	}
	rs, ids, strays := w.bot.Resumes(), w.bot.Identifies(), strayCloses(w.bot, "")
	for _, r := range rs[1:] {
		if r.Result != "invalid_session" {
			t.Fatalf("a RESUME after the stray close = %+v, want invalid_session; all %+v", r, rs)
		}
	}
	if len(rs)-1 > strays || len(ids)-1 > len(rs)-1 {
		t.Fatalf("%d RESUMEs and %d IDENTIFYs after the first, for %d stray closes; hangups %+v",
			len(rs)-1, len(ids)-1, strays, w.bot.Hangups())
	}
}

// TestResumeAfterDrop: a dropped TCP connection; discordgo reconnects by
// itself, RESUMEs, and gets the message it missed exactly once, before
// RESUMED. (Or discordgo ends the resumed session itself: see
// strayCloses.)
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
			stray := func() bool { return strayCloses(w.bot, sid) > 0 }
			waitUntil(t, "RESUMED", func() bool { return len(rec.ofType("RESUMED")) == 1 || stray() })
			after := w.s.UserSays(w.ch.ID, w.ann, "after")
			waitUntil(t, "MESSAGE_CREATE after", func() bool { return countID(rec, after.ID) > 0 || stray() })
			// Replay, then RESUMED, all in sequence.
			const want = "READY GUILD_CREATE MESSAGE_CREATE MESSAGE_CREATE RESUMED MESSAGE_CREATE "
			if !afterResume(t, w, rec, sid, want, &before, &missed, &after) {
				afterStrayClose(t, w, rec, sid, want, "READY GUILD_CREATE MESSAGE_CREATE MESSAGE_CREATE ", &before, &missed, &after)
			}
		})
	}
}

// TestReconnectOp7: op 7 RECONNECT; discordgo closes with 1012 and
// resumes the same session (or ends it itself: see strayCloses).
func TestReconnectOp7(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	_, rec := openSession(t, w.s, w.bot, intentsContent)
	sid := w.bot.Sessions()[0].ID
	w.s.Reconnect()
	rs := waitResumes(t, w.bot, 1)
	if rs[0].Result != "resumed" || rs[0].SessionID != sid || rs[0].Replayed != 0 {
		t.Fatalf("resume = %+v", rs[0])
	}
	stray := func() bool { return strayCloses(w.bot, sid) > 0 }
	waitUntil(t, "RESUMED", func() bool { return len(rec.ofType("RESUMED")) == 1 || stray() })
	m := w.s.UserSays(w.ch.ID, w.ann, "still there?")
	waitUntil(t, "MESSAGE_CREATE still there?", func() bool { return countID(rec, m.ID) > 0 || stray() })
	const want = "READY GUILD_CREATE RESUMED MESSAGE_CREATE "
	if !afterResume(t, w, rec, sid, want, &m) {
		afterStrayClose(t, w, rec, sid, want, "READY GUILD_CREATE ", &m)
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
