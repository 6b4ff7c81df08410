package main

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// toDiscordFake sends discordgo's requests for https://discord.com/... to
// the fake, path unchanged (the fake answers GET /gateway with its own
// WebSocket URL).
type toDiscordFake struct{ fake *url.URL }

func (t toDiscordFake) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "discord.com" {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host, req.Host = t.fake.Scheme, t.fake.Host, t.fake.Host
	}
	return http.DefaultTransport.RoundTrip(req)
}

// The Discord driver against a stand-in target: a discordgo bot on the
// fake that answers each DM by quoting it. Every message sent must come
// back through onReply once, each chat must be its own DM channel with a
// user of its own, and the bot's own messages (dispatched to it too) must
// not count as replies twice.
func TestDiscordDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d := &discordDriver{}
	if err := d.Prepare(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if cfg := d.Adapter("dc", "task", 3); !containsAll(cfg, "kind: discord", d.fake.URL(), d.bot.Token()) {
		t.Errorf("adapter config:\n%s", cfg)
	}

	dg, err := discordgo.New("Bot " + d.bot.Token())
	if err != nil {
		t.Fatal(err)
	}
	fake, _ := url.Parse(d.fake.Origin())
	dg.Client = &http.Client{Timeout: 10 * time.Second, Transport: toDiscordFake{fake}}
	dg.Identify.Intents = discordgo.IntentsDirectMessages
	var mu sync.Mutex
	channels := map[string]string{} // DM channel → its author
	dg.AddHandler(func(s *discordgo.Session, m *discordgo.MessageCreate) {
		if m.Author.Bot {
			return
		}
		mu.Lock()
		channels[m.ChannelID] = m.Author.ID
		mu.Unlock()
		if _, err := s.ChannelMessageSend(m.ChannelID, "you said "+m.Content); err != nil {
			t.Errorf("answer: %v", err)
		}
	})

	const chats, n = 3, 40
	replies := make(chan string, 2*n)
	opened := make(chan error, 1)
	go func() {
		opened <- d.Open(ctx, "http://unused", chats, func(text string, at time.Time) {
			if at.IsZero() {
				t.Error("reply without a time")
			}
			replies <- text
		}, func(code string) { t.Errorf("error %s", code) })
	}()
	// The driver waits for the target's session: it opens after Open
	// began, as the gateway's may.
	time.Sleep(50 * time.Millisecond)
	if err := dg.Open(); err != nil {
		t.Fatal(err)
	}
	defer dg.Close()
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	if d.Conns() != 1 {
		t.Errorf("Conns = %d, want the one gateway session", d.Conns())
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := d.Send(ctx, i%chats, "ignored", "m"+strconv.Itoa(i)); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for range n {
		select {
		case r := <-replies:
			seen[r]++
		case <-ctx.Done():
			t.Fatalf("only %d of %d replies", len(seen), n)
		}
	}
	for i := range n {
		if seen["you said m"+strconv.Itoa(i)] != 1 {
			t.Errorf("reply to m%d seen %d times", i, seen["you said m"+strconv.Itoa(i)])
		}
	}
	select {
	case r := <-replies:
		t.Errorf("extra reply %q", r)
	case <-time.After(100 * time.Millisecond):
	}
	mu.Lock()
	authors := map[string]bool{}
	for _, a := range channels {
		authors[a] = true
	}
	if len(channels) != chats || len(authors) != chats {
		t.Errorf("%d DM channels and %d users seen, want %d of each", len(channels), len(authors), chats)
	}
	mu.Unlock()

	if _, err := d.Send(ctx, chats, "x", "y"); err == nil {
		t.Error("send to a chat out of range: no error")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// containsAll says whether s contains every one of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
