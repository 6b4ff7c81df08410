package slack

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/switchboard-gw/switchboard/core"
)

// FuzzInbound: whatever a user writes (and whatever chat id comes back
// from Selarti), the text cleaning and the id parsing never panic, the
// app's own mention never reaches the assistant as a mention, valid UTF-8
// stays valid, nothing is longer than it could be, and a parsed id prints
// back as itself and is a valid native id.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		"<@U0BOT> hi <@U0ANN> <@U0BOT|bot> <#C0SALES> <#C0GEN|general> <!here> <!subteam^S1|@team> <https://a.b/?x=1&amp;y=2|link> <mailto:a@b.c>",
		"<<@U0BOT>>", "<@U0BOT", "<#>", "<!>", "<|>", "<>", "&lt;@U0BOT&gt;", "&amp;lt;", "\x00<@U0BOT>\u200b", " <@U0BOT> ",
		"T01ABC:D02DEF", "T01ABC:C02DEF:1700000000.000100", "T01ABC:C02DEF:uU03GHI", "T:C:u", "::", "",
	} {
		f.Add(s)
	}
	// The app's own user resolves too, so that a mention of it left in
	// the text would show as "@Shop Bot".
	names := stubNames{users: map[string]string{"U0BOT": "Shop Bot", "U0ANN": "Ann Lee"}, channels: testNames.channels}
	f.Fuzz(func(t *testing.T, s string) {
		got := cleanText(s, "U0BOT", names)
		if strings.Contains(got, "Shop Bot") && !strings.Contains(s, "Shop Bot") {
			t.Fatalf("cleanText(%q) = %q names the app: its mention was not removed", s, got)
		}
		// A real mention is always removed. What may survive is only
		// what the user typed as text (escaped by Slack: "&lt;@U0BOT&gt;")
		// or pieces joined around other markup ("<@U0<@U0BOT>BOT>"). Both
		// need a "<" or ">" outside markup, which Slack never sends raw
		// but as "&lt;" and "&gt;": so the property holds for any input
		// whose text between markup has none, once unescaped.
		textOnly := unescape(markupRE.ReplaceAllString(s, " "))
		if strings.Contains(got, "<@U0BOT>") && !strings.ContainsAny(textOnly, "<>") {
			t.Fatalf("cleanText(%q) = %q keeps the app's mention", s, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("cleanText(%q) = %q is not valid UTF-8", s, got)
		}
		// Each piece of markup reads as at most its label, its address
		// and a resolved name: the text cannot blow up.
		if len(got) > 2*len(s)+64*strings.Count(s, "<") {
			t.Fatalf("cleanText(%q) grew to %d bytes", s, len(got))
		}
		if tg, err := parseTarget(s); err == nil {
			if tg.native() != s {
				t.Fatalf("parseTarget(%q) = %+v prints as %q", s, tg, tg.native())
			}
			if err := core.CheckNativeID(tg.native()); err != nil {
				t.Fatalf("parseTarget(%q) accepts an invalid native id: %v", s, err)
			}
		}
	})
}
