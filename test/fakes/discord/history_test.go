package discord

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

func ids(ms []*discordgo.Message) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Content)
	}
	return strings.Join(out, ",")
}

// TestHistory: GET /channels/{id}/messages as Discord orders it (newest
// first), with limit, after, before and around: what a backfill after a
// restart reads.
func TestHistory(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	var all []Message
	for i := 1; i <= 8; i++ {
		all = append(all, w.s.UserSays(w.ch.ID, w.ann, fmt.Sprint("m", i)))
	}
	for i := 1; i < len(all); i++ {
		if !idLess(all[i-1].ID, all[i].ID) {
			t.Fatalf("ids not increasing: %s then %s", all[i-1].ID, all[i].ID)
		}
	}
	cases := []struct {
		name                  string
		limit                 int
		before, after, around string
		want                  string
	}{
		{"latest", 0, "", "", "", "m8,m7,m6,m5,m4,m3,m2,m1"},
		{"limit", 3, "", "", "", "m8,m7,m6"},
		// after: the messages right after the id, still newest first.
		{"after", 3, "", all[2].ID, "", "m6,m5,m4"},
		{"after all", 0, "", all[2].ID, "", "m8,m7,m6,m5,m4"},
		{"after last", 0, "", all[7].ID, "", ""},
		{"after a time", 0, "", SnowflakeAt(all[0].Timestamp.Add(-time.Millisecond)), "", "m8,m7,m6,m5,m4,m3,m2,m1"},
		{"after now", 0, "", SnowflakeAt(time.Now().Add(time.Second)), "", ""},
		{"before", 2, all[5].ID, "", "", "m5,m4"},
		{"around", 3, "", "", all[3].ID, "m5,m4,m3"},
	}
	for _, c := range cases {
		got, err := dg.ChannelMessages(w.ch.ID, c.limit, c.before, c.after, c.around)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ids(got) != c.want {
			t.Errorf("%s = %q, want %q", c.name, ids(got), c.want)
		}
	}
	_, err := dg.ChannelMessages(w.ch.ID, 101, "", "", "")
	if re := restErr(t, err); re.Message.Code != CodeInvalidFormBody || !strings.Contains(string(re.ResponseBody), "NUMBER_TYPE_MAX") {
		t.Fatalf("limit 101: %v", err)
	}
	// Without MESSAGE_CONTENT enabled for the app, REST hides others' content too.
	w.bot.DisallowIntents(IntentMessageContent)
	got, err := dg.ChannelMessages(w.ch.ID, 1, "", "", "")
	if err != nil || len(got) != 1 || got[0].Content != "" || got[0].ID != all[7].ID {
		t.Fatalf("history without the intent = %+v, %v", got, err)
	}
	if one, err := dg.ChannelMessage(w.ch.ID, all[0].ID); err != nil || one.ID != all[0].ID {
		t.Fatalf("GET message = %+v, %v", one, err)
	}
}

// TestThreads: a thread started from a message has the message's id,
// THREAD_CREATE and a THREAD_CREATED system message are dispatched, and
// messages posted to it belong to it.
func TestThreads(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, rec := openSession(t, w.s, w.bot, intentsContent)
	q := w.s.UserSays(w.ch.ID, w.ann, "refund please")

	th, err := dg.MessageThreadStartComplex(w.ch.ID, q.ID, &discordgo.ThreadStart{Name: "Refund for ann", AutoArchiveDuration: 1440})
	if err != nil {
		t.Fatal(err)
	}
	if th.ID != q.ID || th.Type != discordgo.ChannelTypeGuildPublicThread || th.ParentID != w.ch.ID || th.GuildID != w.guild.ID() ||
		th.Name != "Refund for ann" || th.OwnerID != w.bot.ID() || th.ThreadMetadata == nil || th.ThreadMetadata.AutoArchiveDuration != 1440 {
		t.Fatalf("thread = %+v meta %+v", th, th.ThreadMetadata)
	}
	if _, err := dg.MessageThreadStartComplex(w.ch.ID, q.ID, &discordgo.ThreadStart{Name: "again"}); restErr(t, err).Message.Code != CodeThreadAlreadyCreated {
		t.Fatalf("second thread on a message: %v", err)
	}
	if _, err := dg.MessageThreadStartComplex(w.ch.ID, q.ID, &discordgo.ThreadStart{Name: strings.Repeat("x", 101)}); !strings.Contains(fmt.Sprint(err), "BASE_TYPE_BAD_LENGTH") {
		t.Fatalf("long name: %v", err)
	}
	if _, err := dg.ChannelMessageSend(th.ID, "On it, in the thread."); err != nil {
		t.Fatal(err)
	}
	u := w.s.UserSays(th.ID, w.ann, "thanks")
	rec.waitMessage(t, "thanks")

	tc := rec.ofType("THREAD_CREATE")
	if len(tc) != 1 {
		t.Fatalf("THREAD_CREATE events = %d", len(tc))
	}
	if c := tc[0].Struct.(*discordgo.ThreadCreate); c.ID != q.ID || !c.NewlyCreated || c.ParentID != w.ch.ID {
		t.Fatalf("THREAD_CREATE = %+v", c.Channel)
	}
	var sys, inThread *discordgo.Message
	for _, m := range rec.messages() {
		switch {
		case m.Type == discordgo.MessageTypeThreadCreated:
			sys = m
		case m.ID == u.ID:
			inThread = m
		}
	}
	if sys == nil || sys.ChannelID != w.ch.ID || sys.Content != "Refund for ann" || sys.Author.ID != w.bot.ID() ||
		sys.MessageReference == nil || sys.MessageReference.ChannelID != th.ID {
		t.Fatalf("THREAD_CREATED system message = %+v", sys)
	}
	if inThread.ChannelID != th.ID || inThread.GuildID != w.guild.ID() {
		t.Fatalf("thread message = %+v", inThread)
	}
	hist, err := dg.ChannelMessages(th.ID, 10, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 3 || hist[0].Content != "thanks" || hist[2].Type != discordgo.MessageTypeThreadStarterMessage ||
		hist[2].MessageReference == nil || hist[2].MessageReference.MessageID != q.ID {
		t.Fatalf("thread history = %s / types %d", ids(hist), hist[len(hist)-1].Type)
	}
	if got := w.bot.Threads(); len(got) != 1 || got[0].ID != q.ID {
		t.Fatalf("bot threads = %+v", got)
	}
	if got := w.bot.Sent(th.ID); len(got) != 1 {
		t.Fatalf("sent in thread = %+v", got)
	}
	if c, err := dg.Channel(th.ID); err != nil || c.Type != discordgo.ChannelTypeGuildPublicThread || c.MessageCount != 2 {
		t.Fatalf("GET thread = %+v, %v", c, err)
	}
	// The parent message now names its thread.
	if pm, _ := w.s.Message(w.ch.ID, q.ID); pm.ThreadID != th.ID {
		t.Fatalf("parent message thread = %q", pm.ThreadID)
	}

	// A thread without a message: in v9 (discordgo's) it defaults to private.
	pt, err := dg.ThreadStartComplex(w.ch.ID, &discordgo.ThreadStart{Name: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	if pt.Type != discordgo.ChannelTypeGuildPrivateThread || pt.ID == q.ID {
		t.Fatalf("thread without message = %+v", pt)
	}
	// In v10 the type is required.
	v10 := do(t, w.s, w.bot.Token(), "POST", "/channels/"+w.ch.ID+"/threads", `{"name":"x"}`)
	if m := wantError(t, v10, 400, CodeInvalidFormBody, "Invalid Form Body"); !strings.Contains(string(v10.Body), `"type":{"_errors":[{"code":"BASE_TYPE_REQUIRED"`) {
		t.Fatalf("v10 thread without type = %v", m)
	}
	// Threads can't be started in a DM.
	dm := w.bot.DMChannel(w.ann)
	d := w.s.UserSays(dm.ID, w.ann, "hi")
	if _, err := dg.MessageThreadStartComplex(dm.ID, d.ID, &discordgo.ThreadStart{Name: "dm"}); restErr(t, err).Message.Code != CodeInvalidChannelType {
		t.Fatalf("thread in a DM: %v", err)
	}
}
