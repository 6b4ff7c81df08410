package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
)

func TestAuthTest(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)

	got, err := api.AuthTest()
	if err != nil {
		t.Fatal(err)
	}
	if got.TeamID != team.ID() || got.UserID != team.BotUserID() || got.BotID != team.BotID() ||
		got.Team != "Acme" || got.User != "switchboard" || got.URL != "https://acme.slack.com/" {
		t.Fatalf("auth.test = %+v, want team %s user %s bot %s", got, team.ID(), team.BotUserID(), team.BotID())
	}
	c := s.CallsTo("auth.test")
	if len(c) != 1 || c[0].TokenKind != TokenBot || c[0].TokenVia != "body" || c[0].Team != team.ID() || c[0].Status != 200 ||
		!strings.Contains(c[0].Answer, `"ok":true`) {
		t.Fatalf("call record = %+v", c)
	}
	if _, leaked := c[0].Params["token"]; leaked {
		t.Fatal("the token is kept among the params")
	}

	t.Run("unknown token", func(t *testing.T) {
		_, err := slackapi.New("xoxb-1-2-nope", slackapi.OptionAPIURL(s.URL())).AuthTest()
		if code := slackErr(t, err); code != "invalid_auth" {
			t.Fatalf("error = %q, want invalid_auth", code)
		}
	})
	t.Run("no token", func(t *testing.T) {
		_, err := slackapi.New("", slackapi.OptionAPIURL(s.URL())).AuthTest()
		if code := slackErr(t, err); code != "not_authed" {
			t.Fatalf("error = %q, want not_authed", code)
		}
	})
	t.Run("app token", func(t *testing.T) {
		_, err := slackapi.New(team.AppToken(), slackapi.OptionAPIURL(s.URL())).AuthTest()
		if code := slackErr(t, err); code != "not_allowed_token_type" {
			t.Fatalf("error = %q, want not_allowed_token_type", code)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		_, team2 := startTeam(t, Options{})
		team2.RevokeBotToken()
		_, err := botClient(team2.s, team2).AuthTest()
		if code := slackErr(t, err); code != "token_revoked" {
			t.Fatalf("error = %q, want token_revoked", code)
		}
	})
}

func TestPostMessageInThread(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	ann := team.AddUser("ann", "Ann Lee")
	general := team.AddChannel("general")
	parent := team.Say(ann, general, "question", "")

	ch, ts, err := api.PostMessage(general.ID, slackapi.MsgOptionText("answer *one*", false), slackapi.MsgOptionTS(parent.TS),
		slackapi.MsgOptionDisableMarkdown(), slackapi.MsgOptionDisableLinkUnfurl())
	if err != nil {
		t.Fatal(err)
	}
	if ch != general.ID || ts <= parent.TS || !tsRE.MatchString(ts) {
		t.Fatalf("posted to %s at %s, want %s after %s", ch, ts, general.ID, parent.TS)
	}
	_, ts2, err := api.PostMessage(general.ID, slackapi.MsgOptionText("two", false), slackapi.MsgOptionTS(ts))
	if err != nil {
		t.Fatal(err)
	}
	if ts2 <= ts {
		t.Fatalf("second ts %s not after %s", ts2, ts)
	}
	posted := team.Posted(general.ID)
	if len(posted) != 2 {
		t.Fatalf("posted = %+v", posted)
	}
	p := posted[0]
	if p.TS != ts || p.ThreadTS != parent.TS || !p.ThreadParentKnown || p.Text != "answer *one*" || p.Mrkdwn ||
		p.Params["unfurl_links"] != "false" {
		t.Fatalf("first post = %+v", p)
	}
	// A reply's ts names its parent's thread, as in Slack.
	if posted[1].ThreadTS != parent.TS {
		t.Fatalf("reply to a reply has thread_ts %s, want the parent's %s", posted[1].ThreadTS, parent.TS)
	}
	if h := team.History(general.ID); len(h) != 3 || h[1].BotID != team.BotID() || h[1].User != team.BotUserID() {
		t.Fatalf("history = %+v", h)
	}

	t.Run("answer carries the message", func(t *testing.T) {
		resp, err := http.PostForm(s.URL()+"chat.postMessage", map[string][]string{
			"token": {team.BotToken()}, "channel": {general.ID}, "text": {"hi"}, "thread_ts": {parent.TS}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			OK      bool   `json:"ok"`
			Channel string `json:"channel"`
			TS      string `json:"ts"`
			Message struct {
				Type         string `json:"type"`
				Text         string `json:"text"`
				User         string `json:"user"`
				BotID        string `json:"bot_id"`
				TS           string `json:"ts"`
				ThreadTS     string `json:"thread_ts"`
				ParentUserID string `json:"parent_user_id"`
				AppID        string `json:"app_id"`
			} `json:"message"`
		}
		raw, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatal(err)
		}
		m := body.Message
		if !body.OK || body.Channel != general.ID || m.TS != body.TS || m.Text != "hi" || m.User != team.BotUserID() ||
			m.BotID != team.BotID() || m.ThreadTS != parent.TS || m.ParentUserID != ann.ID || m.AppID != team.AppID() {
			t.Fatalf("answer = %s", raw)
		}
	})
	t.Run("unknown thread_ts is accepted", func(t *testing.T) {
		if _, _, err := api.PostMessage(general.ID, slackapi.MsgOptionText("lost", false), slackapi.MsgOptionTS("1.000001")); err != nil {
			t.Fatal(err)
		}
		last := team.Posted(general.ID)
		if p := last[len(last)-1]; p.ThreadParentKnown || p.ThreadTS != "1.000001" {
			t.Fatalf("post = %+v", p)
		}
	})
	t.Run("by name and to a user", func(t *testing.T) {
		if ch, _, err := api.PostMessage("#general", slackapi.MsgOptionText("by name", false)); err != nil || ch != general.ID {
			t.Fatalf("post to #general: %s, %v", ch, err)
		}
		im := team.IM(ann)
		if ch, _, err := api.PostMessage(ann.ID, slackapi.MsgOptionText("dm", false)); err != nil || ch != im.ID {
			t.Fatalf("post to the user %s: %s, %v; want the IM %s", ann.ID, ch, err, im.ID)
		}
	})
}

func TestPostMessageErrors(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	general := team.AddChannel("general")
	outside := team.AddChannelWithoutBot("outside")
	secret := team.AddPrivateChannel("secret")
	old := team.AddChannel("old")
	team.Archive(old.ID)
	team.SetBotMember(secret.ID, false)

	cases := []struct {
		name, channel, text, want string
	}{
		{"unknown channel", "C999", "x", "channel_not_found"},
		{"bot not in the channel", outside.ID, "x", "not_in_channel"},
		{"private channel without the bot", secret.ID, "x", "channel_not_found"},
		{"archived", old.ID, "x", "is_archived"},
		{"no text", general.ID, "", "no_text"},
		{"40001 characters", general.ID, strings.Repeat("é", MaxMessageLength+1), "msg_too_long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := api.PostMessage(c.channel, slackapi.MsgOptionText(c.text, false))
			if code := slackErr(t, err); code != c.want {
				t.Fatalf("error = %q, want %q", code, c.want)
			}
		})
	}
	if n := len(team.Posted("")); n != 0 {
		t.Fatalf("%d messages stored by failed posts", n)
	}
	// 40000 characters (80000 bytes) is the limit, in characters.
	if _, _, err := api.PostMessage(general.ID, slackapi.MsgOptionText(strings.Repeat("é", MaxMessageLength), false)); err != nil {
		t.Fatalf("40000 characters: %v", err)
	}
	t.Run("truncation, as documented", func(t *testing.T) {
		s, team := startTeam(t, Options{TruncateLongMessages: true})
		ch := team.AddChannel("general")
		if _, _, err := botClient(s, team).PostMessage(ch.ID, slackapi.MsgOptionText(strings.Repeat("a", MaxMessageLength+5), false)); err != nil {
			t.Fatal(err)
		}
		p := team.Posted(ch.ID)[0]
		if len(p.Text) != MaxMessageLength || !p.Truncated {
			t.Fatalf("stored %d characters, truncated=%v", len(p.Text), p.Truncated)
		}
	})
}

func TestUsersInfo(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	bob := team.AddUserWith(User{Name: "bob", RealName: "Bob Stone", DisplayName: "bobby"})

	u, err := api.GetUserInfo(bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != bob.ID || u.Name != "bob" || u.RealName != "Bob Stone" || u.Profile.DisplayName != "bobby" ||
		u.Profile.RealName != "Bob Stone" || u.IsBot || u.TeamID != team.ID() {
		t.Fatalf("users.info = %+v", u)
	}
	b, err := api.GetUserInfo(team.BotUserID())
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsBot || b.Profile.BotID != team.BotID() || b.Name != "switchboard" {
		t.Fatalf("bot user = %+v", b)
	}
	_, err = api.GetUserInfo("U404")
	if code := slackErr(t, err); code != "user_not_found" {
		t.Fatalf("error = %q, want user_not_found", code)
	}
}

func TestConversationsInfo(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	ann := team.AddUser("ann", "Ann Lee")
	general := team.AddChannel("general")
	im := team.IM(ann)
	if !strings.HasPrefix(im.ID, "D") || !strings.HasPrefix(general.ID, "C") {
		t.Fatalf("ids %s %s", im.ID, general.ID)
	}

	ch, err := api.GetConversationInfo(&slackapi.GetConversationInfoInput{ChannelID: general.ID})
	if err != nil {
		t.Fatal(err)
	}
	if ch.ID != general.ID || ch.Name != "general" || !ch.IsChannel || ch.IsIM || ch.IsPrivate || !ch.IsMember {
		t.Fatalf("channel = %+v", ch)
	}
	dm, err := api.GetConversationInfo(&slackapi.GetConversationInfoInput{ChannelID: im.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !dm.IsIM || dm.IsChannel || dm.User != ann.ID || dm.Name != "" {
		t.Fatalf("im = %+v", dm)
	}
	_, err = api.GetConversationInfo(&slackapi.GetConversationInfoInput{ChannelID: "C404"})
	if code := slackErr(t, err); code != "channel_not_found" {
		t.Fatalf("error = %q, want channel_not_found", code)
	}
}

func TestRateLimitsAndServerErrors(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	general := team.AddChannel("general")
	send := func() error {
		_, _, err := api.PostMessage(general.ID, slackapi.MsgOptionText("x", false))
		return err
	}

	s.RateLimit("chat.postMessage", 2, 7)
	for i := range 2 {
		var rl *slackapi.RateLimitedError
		if err := send(); !errors.As(err, &rl) || rl.RetryAfter != 7*time.Second {
			t.Fatalf("call %d: error = %v (%T), want *slack.RateLimitedError after 7s", i, err, err)
		}
	}
	if err := send(); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	calls := s.CallsTo("chat.postMessage")
	if len(calls) != 3 || calls[0].Status != 429 || calls[0].Error != "ratelimited" || !calls[0].Injected || calls[2].Status != 200 {
		t.Fatalf("calls = %+v", calls)
	}
	if n := len(team.Posted("")); n != 1 {
		t.Fatalf("%d posts, want only the last", n)
	}

	t.Run("the 429 on the wire", func(t *testing.T) {
		s.FailNext("auth.test", RateLimited(3))
		resp, err := http.PostForm(s.URL()+"auth.test", map[string][]string{"token": {team.BotToken()}})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3" || string(raw) != `{"error":"ratelimited","ok":false}` {
			t.Fatalf("answer = %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
		}
	})
	t.Run("5xx", func(t *testing.T) {
		s.FailNext("chat.postMessage", ServerError(503))
		var sc slackapi.StatusCodeError
		if err := send(); !errors.As(err, &sc) || sc.Code != 503 || !sc.Retryable() {
			t.Fatalf("error = %v (%T), want slack.StatusCodeError 503", err, err)
		}
	})
	t.Run("any method", func(t *testing.T) {
		s.FailNext("", SlackError("internal_error"))
		if _, err := api.AuthTest(); slackErr(t, err) != "internal_error" {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("slack-go's retry honours Retry-After", func(t *testing.T) {
		retrying := botClient(s, team, slackapi.OptionRetry(2))
		s.RateLimit("auth.test", 1, 1)
		start := time.Now()
		if _, err := retrying.AuthTest(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < time.Second {
			t.Fatalf("retried after %s, want at least the 1s of Retry-After", d)
		}
	})
	t.Run("dropped connection", func(t *testing.T) {
		s.FailNext("chat.postMessage", Fault{Drop: true})
		before := len(team.Posted(""))
		if err := send(); err == nil {
			t.Fatal("call succeeded over a dropped connection")
		}
		if len(team.Posted("")) != before {
			t.Fatal("a dropped request was processed")
		}
	})
}

// TestTokenRules: slack-go sends form posts with the token in the body,
// JSON posts (apps.connections.open) with Authorization: Bearer; the fake
// takes both, and ignores a token in a JSON body as Slack does.
func TestTokenRules(t *testing.T) {
	s, team := startTeam(t, Options{})
	post := func(ctype, body, bearer string) string {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"auth.test", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return string(raw)
	}
	if got := post("application/json; charset=utf-8", `{}`, team.BotToken()); !strings.Contains(got, `"ok":true`) {
		t.Fatalf("JSON with a bearer token: %s", got)
	}
	if got := post("application/json", `{"token":"`+team.BotToken()+`"}`, ""); !strings.Contains(got, `"not_authed"`) {
		t.Fatalf("JSON with the token in the body: %s", got)
	}
	if got := post("application/json", `{}`, team.BotToken()); !strings.Contains(got, `"warning":"missing_charset"`) {
		t.Fatalf("JSON without charset: %s", got)
	}
	if got := post("application/x-www-form-urlencoded", "", team.BotToken()); !strings.Contains(got, `"ok":true`) {
		t.Fatalf("form with a bearer token: %s", got)
	}
	if got := post("application/x-www-form-urlencoded", "token="+team.BotToken(), ""); !strings.Contains(got, `"ok":true`) ||
		strings.Contains(got, "warning") {
		t.Fatalf("form with the token in the body: %s", got)
	}
	if got := post("application/x-www-form-urlencoded", "", ""); !strings.Contains(got, `"not_authed"`) {
		t.Fatalf("no token: %s", got)
	}
	resp, err := http.Post(s.URL()+"chat.nope", "application/x-www-form-urlencoded", strings.NewReader("token="+team.BotToken()))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), `"unknown_method"`) {
		t.Fatalf("unknown method: %d %s", resp.StatusCode, raw)
	}
}

func TestAppsConnectionsOpen(t *testing.T) {
	s, team := startTeam(t, Options{})
	var warnings []string
	var mu sync.Mutex
	api := botClient(s, team, slackapi.OptionOnWarning(func(path string, _ any, w *slackapi.Warning) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, path+":"+strings.Join(w.Codes, ","))
	}))
	_, url1, err := api.StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, url2, err := api.StartSocketModeContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	prefix := "ws://" + strings.TrimPrefix(s.Root(), "http://") + "/link/?ticket="
	if !strings.HasPrefix(url1, prefix) || !strings.HasPrefix(url2, prefix) || url1 == url2 {
		t.Fatalf("urls %q %q, want two different %s…", url1, url2, prefix)
	}
	c := s.CallsTo("apps.connections.open")
	if len(c) != 2 || c[0].TokenKind != TokenApp || c[0].TokenVia != "header" {
		t.Fatalf("calls = %+v", c)
	}
	mu.Lock()
	// slack-go posts JSON without a charset, which Slack warns about.
	if len(warnings) != 2 || warnings[0] != "apps.connections.open:missing_charset" {
		t.Fatalf("warnings = %q", warnings)
	}
	mu.Unlock()

	bad := slackapi.New(team.BotToken(), slackapi.OptionAPIURL(s.URL()), slackapi.OptionAppLevelToken("xapp-1-A1-1-abc"))
	if _, _, err := bad.StartSocketModeContext(context.Background()); slackErr(t, err) != "invalid_auth" {
		t.Fatalf("wrong app token: %v", err)
	}
	wrongKind := slackapi.New(team.BotToken(), slackapi.OptionAPIURL(s.URL()), slackapi.OptionAppLevelToken(team.BotToken()))
	if _, _, err := wrongKind.StartSocketModeContext(context.Background()); slackErr(t, err) != "not_allowed_token_type" {
		t.Fatalf("bot token as app token: %v", err)
	}
	team.RevokeAppToken()
	if _, _, err := api.StartSocketModeContext(context.Background()); slackErr(t, err) != "token_revoked" {
		t.Fatalf("revoked app token: %v", err)
	}
}

func TestFileDownload(t *testing.T) {
	s, team := startTeam(t, Options{})
	ann := team.AddUser("ann", "Ann Lee")
	general := team.AddChannel("general")
	_, files := team.ShareFile(ann, general, "see", File{Name: "notes.txt", Mimetype: "text/plain", Content: []byte("hello file")})
	f := files[0]
	if !strings.HasPrefix(f.ID, "F") || !strings.HasPrefix(f.URLPrivate, s.Root()+"/files-pri/") {
		t.Fatalf("file = %+v", f)
	}
	var buf bytes.Buffer
	if err := botClient(s, team).GetFile(f.URLPrivate, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "hello file" {
		t.Fatalf("downloaded %q", buf.String())
	}
	buf.Reset()
	if err := botClient(s, team).GetFile(f.URLPrivateDownload, &buf); err != nil || buf.String() != "hello file" {
		t.Fatalf("url_private_download: %q, %v", buf.String(), err)
	}
	// Without the token, Slack redirects to the sign-in page; slack-go
	// reports it instead of saving the page.
	err := slackapi.New("xoxb-0-0-wrong", slackapi.OptionAPIURL(s.URL())).GetFile(f.URLPrivate, &buf)
	if err == nil || !strings.Contains(err.Error(), "sign-in page") {
		t.Fatalf("download with a wrong token: %v", err)
	}
}

// Observe sees every posted message once, as Posted records it, called
// without the fake's lock (the observer may call the fake); a refused
// post is not seen, and nil stops the calls.
func TestObservePosted(t *testing.T) {
	s, team := startTeam(t, Options{})
	api := botClient(s, team)
	ann := team.AddUser("ann", "Ann Lee")
	im := team.IM(ann)
	seen := make(chan PostedMessage, 4)
	team.Observe(func(m PostedMessage) {
		_ = team.Posted(m.Channel) // deadlocks if called with the lock held
		seen <- m
	})
	if _, _, err := api.PostMessage(im.ID, slackapi.MsgOptionText("hi ann", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessage("C0NOSUCH", slackapi.MsgOptionText("lost", false)); err == nil {
		t.Fatal("a post to an unknown channel was accepted")
	}
	select {
	case m := <-seen:
		if m.Channel != im.ID || m.Text != "hi ann" || m.At.IsZero() || m.TS != team.Posted(im.ID)[0].TS {
			t.Fatalf("observed %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the post was not observed")
	}
	team.Observe(nil)
	if _, _, err := api.PostMessage(im.ID, slackapi.MsgOptionText("unseen", false)); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-seen:
		t.Fatalf("observed %+v", m)
	default:
	}
}
