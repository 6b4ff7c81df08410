package discord_test

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/bwmarrin/discordgo"

	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
)

// toFake sends discordgo's requests for https://discord.com/... to the
// fake, path unchanged. This is all the pointing a client needs: the
// gateway URL comes from GET /gateway, which the fake answers with its own
// ws:// URL, and attachment URLs are the fake's too.
type toFake struct{ fake *url.URL }

func (t toFake) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == "discord.com" {
		req = req.Clone(req.Context())
		req.URL.Scheme, req.URL.Host, req.Host = t.fake.Scheme, t.fake.Host, t.fake.Host
	}
	return http.DefaultTransport.RoundTrip(req)
}

func Example() {
	s, err := fakediscord.New(fakediscord.Options{HeartbeatInterval: time.Second})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	bot, _ := s.AddBot(fakediscord.TestToken(1), "helper")
	general := s.AddGuild("Shop", bot).AddChannel("general")
	ann := s.NewUser("ann", "Ann Lee")

	dg, _ := discordgo.New("Bot " + bot.Token())
	fake, _ := url.Parse(s.Origin())
	dg.Client = &http.Client{Timeout: 20 * time.Second, Transport: toFake{fake}}
	dg.Identify.Intents = discordgo.IntentsGuilds | discordgo.IntentsGuildMessages | discordgo.IntentMessageContent
	got := make(chan string, 1)
	dg.AddHandler(func(_ *discordgo.Session, m *discordgo.MessageCreate) {
		if !m.Author.Bot {
			got <- m.Author.GlobalName + ": " + m.Content
		}
	})
	if err := dg.Open(); err != nil {
		panic(err)
	}
	defer dg.Close()

	s.UserSays(general.ID, ann, "hello")
	select {
	case m := <-got:
		fmt.Println(m)
	case <-time.After(5 * time.Second):
		fmt.Println("no message")
	}
	if _, err := dg.ChannelMessageSend(general.ID, "Hi Ann!"); err != nil {
		panic(err)
	}
	fmt.Println(bot.Sent(general.ID)[0].Content)
	// Output:
	// Ann Lee: hello
	// Hi Ann!
}
