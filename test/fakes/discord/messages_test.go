package discord

import (
	"io"
	"net/http"
	"testing"

	"github.com/bwmarrin/discordgo"
)

// TestMessageContentIntent: who receives a user's message, and with what
// content, per intents: Discord's MESSAGE_CONTENT rule, observed through
// discordgo.
func TestMessageContentIntent(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	full := addBot(t, s, 1, "full")   // MESSAGE_CONTENT
	blind := addBot(t, s, 2, "blind") // no MESSAGE_CONTENT
	deaf := addBot(t, s, 3, "deaf")   // no GUILD_MESSAGES nor DIRECT_MESSAGES
	g := s.AddGuild("Shop", full, blind, deaf)
	ch := g.AddChannel("general")
	ann := s.NewUser("ann", "Ann Lee")

	_, recFull := openSession(t, s, full, intentsContent)
	_, recBlind := openSession(t, s, blind, intentsNoContent)
	_, recDeaf := openSession(t, s, deaf, IntentGuilds)

	plain := s.UserSays(ch.ID, ann, "hello everyone")
	mention := s.UserSays(ch.ID, ann, "hey "+blind.User().Mention()+" help")
	dm := s.UserSays(blind.DMChannel(ann).ID, ann, "a private word")
	last := s.UserSays(ch.ID, ann, "last")

	recFull.waitMessage(t, "last")
	recBlind.wait(t, "4 messages", func([]*discordgo.Event) bool { return len(recBlind.messages()) == 4 })

	got := recFull.messages()
	if len(got) != 3 || got[0].Content != "hello everyone" || got[1].Content != mention.Content || got[2].ID != last.ID {
		t.Fatalf("full bot got %d messages: %+v", len(got), got)
	}
	m := got[0]
	if m.ID != plain.ID || m.ChannelID != ch.ID || m.GuildID != g.ID() || m.Type != discordgo.MessageTypeDefault ||
		m.Author.ID != ann.ID || m.Author.Username != "ann" || m.Author.GlobalName != "Ann Lee" || m.Author.Bot ||
		m.Member == nil || m.Timestamp.IsZero() || !m.Timestamp.Equal(SnowflakeTime(m.ID)) {
		t.Fatalf("MESSAGE_CREATE = %+v author %+v member %+v", m, m.Author, m.Member)
	}
	if got[1].Mentions == nil || len(got[1].Mentions) != 1 || got[1].Mentions[0].ID != blind.ID() {
		t.Fatalf("mentions = %+v", got[1].Mentions)
	}

	// Without MESSAGE_CONTENT: empty content, except when mentioned or in a DM.
	bl := recBlind.messages()
	if bl[0].ID != plain.ID || bl[0].Content != "" {
		t.Fatalf("blind bot got content %q of an unmentioned guild message", bl[0].Content)
	}
	if bl[1].ID != mention.ID || bl[1].Content != mention.Content {
		t.Fatalf("blind bot got %q for a message mentioning it, want the content", bl[1].Content)
	}
	if bl[2].ID != dm.ID || bl[2].Content != "a private word" || bl[2].GuildID != "" || bl[2].Member != nil {
		t.Fatalf("blind bot's DM = %+v", bl[2])
	}
	// The DM went to its bot only.
	for _, m := range got {
		if m.ID == dm.ID {
			t.Fatal("another bot received the DM")
		}
	}
	// No GUILD_MESSAGES: nothing at all. A CHANNEL_CREATE (GUILDS) after
	// the messages shows the bot has read past them.
	g.AddChannel("later")
	recDeaf.wait(t, "CHANNEL_CREATE", func([]*discordgo.Event) bool { return len(recDeaf.ofType("CHANNEL_CREATE")) == 1 })
	if n := len(recDeaf.messages()); n != 0 {
		t.Fatalf("bot without message intents got %d messages", n)
	}
	if gc := recDeaf.ofType("GUILD_CREATE"); len(gc) != 1 {
		t.Fatalf("bot with GUILDS got %d GUILD_CREATE", len(gc))
	}
}

// TestUserMessageShapes: attachments, replies (referenced_message) and
// another bot as author.
func TestUserMessageShapes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	other := addBot(t, w.s, 2, "otherbot")
	w.guild.AddBot(other)
	_, rec := openSession(t, w.s, w.bot, intentsContent)

	first := w.s.UserSays(w.ch.ID, w.ann, "my order is late")
	pic, err := w.s.Post(MessageSpec{ChannelID: w.ch.ID, Author: w.ann, Content: "see",
		Attachments: []Attachment{{Filename: "receipt.png", ContentType: "image/png", Data: []byte("PNGDATA"), Width: 10, Height: 20}}})
	if err != nil {
		t.Fatal(err)
	}
	reply := w.s.UserReplies(w.ch.ID, first.ID, w.ann, "any news?")
	byBot, err := w.s.Post(MessageSpec{ChannelID: w.ch.ID, Author: other.User(), Content: "beep"})
	if err != nil {
		t.Fatal(err)
	}
	rec.waitMessage(t, "beep")
	byID := map[string]*discordgo.Message{}
	for _, m := range rec.messages() {
		byID[m.ID] = m
	}
	a := byID[pic.ID].Attachments
	if len(a) != 1 || a[0].Filename != "receipt.png" || a[0].ContentType != "image/png" || a[0].Size != 7 || a[0].ID == "" || a[0].Width != 10 {
		t.Fatalf("attachments = %+v", a)
	}
	resp, err := http.Get(a[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(data) != "PNGDATA" || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("attachment download = %q %s", data, resp.Header.Get("Content-Type"))
	}
	r := byID[reply.ID]
	if r.Type != discordgo.MessageTypeReply || r.MessageReference == nil || r.MessageReference.MessageID != first.ID ||
		r.ReferencedMessage == nil || r.ReferencedMessage.Content != "my order is late" {
		t.Fatalf("reply = type %d ref %+v referenced %+v", r.Type, r.MessageReference, r.ReferencedMessage)
	}
	if b := byID[byBot.ID]; !b.Author.Bot || b.Author.ID != other.ID() {
		t.Fatalf("bot-authored message author = %+v", b.Author)
	}
}

// TestDMChannel: POST /users/@me/channels creates the DM once and
// reuses it, and it is the one Bot.DMChannel names.
func TestDMChannel(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	c1, err := dg.UserChannelCreate(w.ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := dg.UserChannelCreate(w.ann.ID)
	if err != nil {
		t.Fatal(err)
	}
	if c1.ID != c2.ID || c1.Type != discordgo.ChannelTypeDM || len(c1.Recipients) != 1 || c1.Recipients[0].ID != w.ann.ID {
		t.Fatalf("DM channels = %+v / %+v", c1, c2)
	}
	if want := w.bot.DMChannel(w.ann); want.ID != c1.ID || want.RecipientID != w.ann.ID || want.BotID != w.bot.ID() {
		t.Fatalf("DMChannel = %+v, REST gave %s", want, c1.ID)
	}
	got, err := dg.Channel(c1.ID)
	if err != nil || got.Type != discordgo.ChannelTypeDM {
		t.Fatalf("GET channel = %+v, %v", got, err)
	}
	// Another bot has its own DM with the same user.
	other := addBot(t, w.s, 2, "other")
	if other.DMChannel(w.ann).ID == c1.ID {
		t.Fatal("two bots share a DM channel")
	}
	if _, err := dg.UserChannelCreate("12345678901234567"); restErr(t, err).Message.Code != CodeUnknownUser {
		t.Fatalf("unknown recipient error = %v", err)
	}
}
