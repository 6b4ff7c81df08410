package discord

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// TestRevokeToken: discordgo, its connection closed with 4004, keeps
// reconnecting (RESUME, closed 4004 again, with backoff) until the token
// works again; REST answers 401 meanwhile.
func TestRevokeToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, rec := openSession(t, w.s, w.bot, intentsContent)
	tok := w.bot.Token()
	w.bot.RevokeToken()
	if err := w.bot.Wait(ctxTimeout(t, 10*time.Second), func() bool {
		rs := w.bot.Resumes()
		return len(rs) >= 1 && rs[len(rs)-1].CloseCode == CloseAuthenticationFailed
	}); err != nil {
		t.Fatalf("%v: resumes %+v", err, w.bot.Resumes())
	}
	if _, err := dg.User("@me"); restErr(t, err).Response.StatusCode != 401 {
		t.Fatalf("REST with a revoked token: %v", err)
	}
	if c := w.bot.CallsTo("GET /users/@me"); len(c) != 1 || c[0].Status != 401 {
		t.Fatalf("calls = %+v", c)
	}
	if err := w.bot.SetToken(tok); err != nil {
		t.Fatal(err)
	}
	// The next attempt's RESUME finds no session (4004 ended it): op 9,
	// then IDENTIFY.
	rec.wait(t, "second READY", func([]*discordgo.Event) bool { return len(rec.ofType("READY")) == 2 })
	if err := w.bot.WaitSessions(ctxTimeout(t, 5*time.Second), 1); err != nil {
		t.Fatal(err)
	}
}

// TestLoadMode: StopRecording, Observe and HistoryLimit keep a long
// benchmark's memory flat.
func TestLoadMode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{HistoryLimit: 5})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	var seen atomic.Int32
	w.bot.Observe(func(m SentMessage) { seen.Add(1) })
	w.s.StopRecording()
	var last *discordgo.Message
	for i := range 20 {
		m, err := dg.ChannelMessageSend(w.ch.ID, fmt.Sprint(i))
		if err != nil {
			t.Fatal(err)
		}
		last = m
	}
	if seen.Load() != 20 {
		t.Fatalf("observed %d", seen.Load())
	}
	if len(w.bot.Sent("")) != 0 || len(w.s.Calls()) != 0 {
		t.Fatalf("records kept: %d sent, %d calls", len(w.bot.Sent("")), len(w.s.Calls()))
	}
	h := w.s.Messages(w.ch.ID)
	if len(h) != 5 || h[4].ID != last.ID || h[0].Content != "15" {
		t.Fatalf("history = %d messages, first %q", len(h), h[0].Content)
	}
}
