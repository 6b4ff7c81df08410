package discord

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/bwmarrin/discordgo"
)

// TestSend: the bot's messages through discordgo: stored, recorded,
// answered with the message, and echoed as MESSAGE_CREATE to the bot's
// own session as Discord does.
func TestSend(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, rec := openSession(t, w.s, w.bot, intentsNoContent)
	q := w.s.UserSays(w.ch.ID, w.ann, "where is my parcel?")

	m, err := dg.ChannelMessageSend(w.ch.ID, "Let me check.")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID == "" || m.Content != "Let me check." || m.Author.ID != w.bot.ID() || !m.Author.Bot || m.ChannelID != w.ch.ID {
		t.Fatalf("answer = %+v", m)
	}
	r, err := dg.ChannelMessageSendComplex(w.ch.ID, &discordgo.MessageSend{
		Content:         "It ships today, " + w.ann.Mention(),
		Reference:       &discordgo.MessageReference{MessageID: q.ID, ChannelID: w.ch.ID},
		AllowedMentions: &discordgo.MessageAllowedMentions{Parse: []discordgo.AllowedMentionType{}, RepliedUser: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != discordgo.MessageTypeReply || r.MessageReference == nil || r.MessageReference.MessageID != q.ID ||
		r.ReferencedMessage == nil || r.ReferencedMessage.ID != q.ID || len(r.Mentions) != 0 {
		t.Fatalf("reply = type %d ref %+v referenced %+v mentions %v", r.Type, r.MessageReference, r.ReferencedMessage, r.Mentions)
	}
	// A reply that pings (no allowed_mentions): the replied user is mentioned.
	p, err := dg.ChannelMessageSendReply(w.ch.ID, "pinging you", (&discordgo.Message{ID: q.ID, ChannelID: w.ch.ID, GuildID: w.guild.ID()}).Reference())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Mentions) != 1 || p.Mentions[0].ID != w.ann.ID {
		t.Fatalf("pinging reply mentions = %+v", p.Mentions)
	}

	sent := w.bot.Sent(w.ch.ID)
	if len(sent) != 3 || sent[0].Content != "Let me check." || sent[0].Reference != nil || sent[0].AllowedMentions != nil {
		t.Fatalf("sent = %+v", sent)
	}
	if sent[1].Reference == nil || sent[1].Reference.MessageID != q.ID || sent[1].AllowedMentions == nil ||
		len(sent[1].AllowedMentions.Parse) != 0 || sent[1].AllowedMentions.RepliedUser {
		t.Fatalf("sent reply = ref %+v allowed %+v", sent[1].Reference, sent[1].AllowedMentions)
	}
	if fie := sent[2].Reference.FailIfNotExists; fie == nil || !*fie {
		t.Fatalf("discordgo's Reference() fail_if_not_exists = %v", fie)
	}
	if len(w.bot.Sent("")) != 3 || len(w.bot.Sent("1")) != 0 {
		t.Fatal("Sent filters by channel")
	}

	// The echo: the bot sees its own messages, with content although it
	// lacks MESSAGE_CONTENT; the user's message it sees without.
	rec.waitMessage(t, "pinging you")
	echo := rec.messages()
	if len(echo) != 4 || echo[0].ID != q.ID || echo[0].Content != "" || echo[1].ID != m.ID || echo[1].Content != "Let me check." || !echo[1].Author.Bot {
		t.Fatalf("MESSAGE_CREATEs = %q (ids %v)", ids(echo), idList(echo))
	}
	if echo[2].ReferencedMessage == nil || echo[2].ReferencedMessage.Content != "" {
		t.Fatalf("referenced message in the echo = %+v, want it without content (not the bot's, no mention)", echo[2].ReferencedMessage)
	}
	hist := w.s.Messages(w.ch.ID)
	if len(hist) != 4 || hist[1].ID != m.ID || hist[1].Author.ID != w.bot.ID() {
		t.Fatalf("history = %+v", hist)
	}
}

// TestSendErrors: Discord's errors for sends, as discordgo reports them.
func TestSendErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	locked := w.guild.AddChannel("announcements")
	w.bot.MarkNoPermission(locked.ID)
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)

	_, err := dg.ChannelMessageSend(w.ch.ID, strings.Repeat("é", 2001))
	re := restErr(t, err)
	if re.Response.StatusCode != 400 || re.Message.Code != CodeInvalidFormBody || re.Message.Message != "Invalid Form Body" ||
		!strings.Contains(string(re.ResponseBody), `"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}`) {
		t.Fatalf("2001 characters: %v", err)
	}
	if _, err := dg.ChannelMessageSend(w.ch.ID, strings.Repeat("é", 2000)); err != nil {
		t.Fatalf("2000 characters (4000 bytes): %v", err)
	}
	_, err = dg.ChannelMessageSend(locked.ID, "hi")
	if re := restErr(t, err); re.Response.StatusCode != 403 || re.Message.Code != discordgo.ErrCodeMissingPermissions || re.Message.Message != "Missing Permissions" {
		t.Fatalf("no permission: %v", err)
	}
	if err := dg.ChannelTyping(locked.ID); restErr(t, err).Message.Code != CodeMissingPermissions {
		t.Fatalf("typing without permission: %v", err)
	}
	_, err = dg.ChannelMessageSend("111111111111111111", "hi")
	if re := restErr(t, err); re.Response.StatusCode != 404 || re.Message.Code != discordgo.ErrCodeUnknownChannel || re.Message.Message != "Unknown Channel" {
		t.Fatalf("unknown channel: %v", err)
	}
	_, err = dg.ChannelMessageSend(w.ch.ID, "")
	if re := restErr(t, err); re.Response.StatusCode != 400 || re.Message.Code != CodeEmptyMessage {
		t.Fatalf("empty message: %v", err)
	}
	_, err = dg.ChannelMessageSendReply(w.ch.ID, "re", &discordgo.MessageReference{MessageID: "222222222222222222"})
	if re := restErr(t, err); re.Message.Code != CodeInvalidFormBody || !strings.Contains(string(re.ResponseBody), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE") {
		t.Fatalf("reply to an unknown message: %v", err)
	}
	no := false
	m, err := dg.ChannelMessageSendReply(w.ch.ID, "soft", &discordgo.MessageReference{MessageID: "222222222222222222", FailIfNotExists: &no})
	if err != nil || m.Type != discordgo.MessageTypeDefault || m.MessageReference != nil {
		t.Fatalf("soft reply to an unknown message = %+v, %v; want a plain message", m, err)
	}
	hidden := w.guild.AddChannel("staff")
	w.bot.MarkNoAccess(hidden.ID)
	if _, err := dg.ChannelMessages(hidden.ID, 10, "", "", ""); restErr(t, err).Message.Code != CodeMissingAccess {
		t.Fatalf("hidden channel: %v", err)
	}
	dm := w.bot.DMChannel(w.ann)
	w.bot.CloseDMs(w.ann)
	if _, err := dg.ChannelMessageSend(dm.ID, "hi"); restErr(t, err).Message.Code != discordgo.ErrCodeCannotSendMessagesToThisUser {
		t.Fatalf("closed DMs: %v", err)
	}
	// The failures are recorded as calls, not as sent messages.
	if n := len(w.bot.Sent("")); n != 2 {
		t.Fatalf("sent = %d, want the 2 that succeeded", n)
	}
	var codes []int
	for _, c := range w.bot.CallsTo("POST /channels/{id}/messages") {
		codes = append(codes, c.Code)
	}
	want := []int{50035, 0, 50013, 10003, 50006, 50035, 0, 50007}
	if len(codes) != len(want) {
		t.Fatalf("codes = %v, want %v", codes, want)
	}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes = %v, want %v", codes, want)
		}
	}
}

// TestTypingEditDeleteReactFiles covers the smaller routes.
func TestTypingEditDeleteReactFiles(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, rec := openSession(t, w.s, w.bot, intentsContent)
	if err := dg.ChannelTyping(w.ch.ID); err != nil {
		t.Fatal(err)
	}
	if ty := w.bot.Typing(); len(ty) != 1 || ty[0].ChannelID != w.ch.ID {
		t.Fatalf("typing = %+v", ty)
	}
	m, err := dg.ChannelMessageSend(w.ch.ID, "draft")
	if err != nil {
		t.Fatal(err)
	}
	e, err := dg.ChannelMessageEdit(w.ch.ID, m.ID, "final")
	if err != nil || e.Content != "final" || e.EditedTimestamp == nil {
		t.Fatalf("edit = %+v, %v", e, err)
	}
	rec.wait(t, "MESSAGE_UPDATE", func([]*discordgo.Event) bool { return len(rec.ofType("MESSAGE_UPDATE")) == 1 })
	if up := rec.ofType("MESSAGE_UPDATE")[0].Struct.(*discordgo.MessageUpdate); up.ID != m.ID || up.Content != "final" {
		t.Fatalf("MESSAGE_UPDATE = %+v", up.Message)
	}
	if ed := w.bot.Edits(); len(ed) != 1 || ed[0].Content != "final" {
		t.Fatalf("edits = %+v", ed)
	}
	u := w.s.UserSays(w.ch.ID, w.ann, "not yours")
	if _, err := dg.ChannelMessageEdit(w.ch.ID, u.ID, "x"); restErr(t, err).Message.Code != discordgo.ErrCodeCannotEditFromAnotherUser {
		t.Fatalf("edit another's message: %v", err)
	}
	if err := dg.MessageReactionAdd(w.ch.ID, u.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	if r := w.bot.Reactions(); len(r) != 1 || r[0].Emoji != "👍" || r[0].MessageID != u.ID {
		t.Fatalf("reactions = %+v", r)
	}
	if err := dg.ChannelMessageDelete(w.ch.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.s.Message(w.ch.ID, m.ID); ok {
		t.Fatal("deleted message still stored")
	}
	rec.wait(t, "MESSAGE_DELETE", func([]*discordgo.Event) bool { return len(rec.ofType("MESSAGE_DELETE")) == 1 })
	f, err := dg.ChannelMessageSendComplex(w.ch.ID, &discordgo.MessageSend{Content: "log attached",
		Files: []*discordgo.File{{Name: "log.txt", ContentType: "text/plain", Reader: bytes.NewReader([]byte("line 1\n"))}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Attachments) != 1 || f.Attachments[0].Filename != "log.txt" || f.Attachments[0].Size != 7 {
		t.Fatalf("attachments = %+v", f.Attachments)
	}
	sent := w.bot.Sent(w.ch.ID)
	if last := sent[len(sent)-1]; len(last.Files) != 1 || string(last.Files[0].Data) != "line 1\n" || last.Content != "log attached" {
		t.Fatalf("sent with file = %+v", last)
	}
}

func idList(ms []*discordgo.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// TestEnforceNonce: a message sent again with the same nonce and
// enforce_nonce is the first one, not a second.
func TestEnforceNonce(t *testing.T) {
	w := newWorld(t, Options{})
	s, bot, ch := w.s, w.bot, w.ch
	post := func(nonce string, enforce bool) string {
		t.Helper()
		body := fmt.Sprintf(`{"content":"hi","nonce":%q,"enforce_nonce":%v}`, nonce, enforce)
		req, _ := http.NewRequest("POST", s.URL()+"/channels/"+ch.ID+"/messages", strings.NewReader(body))
		req.Header.Set("Authorization", "Bot "+bot.Token())
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ ID string }
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("post: %s, %v", resp.Status, err)
		}
		return m.ID
	}
	first := post("n-1", true)
	if again := post("n-1", true); again != first {
		t.Fatalf("the same enforced nonce made a second message (%s, %s)", first, again)
	}
	if other := post("n-1", false); other == first {
		t.Fatal("a nonce without enforce_nonce was enforced")
	}
	if n := len(bot.Sent(ch.ID)); n != 2 {
		t.Fatalf("%d messages recorded, want 2", n)
	}
}
