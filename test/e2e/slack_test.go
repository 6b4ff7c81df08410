package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/adapters/slack"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/kit/richtext"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// slFake is the fake Slack of an end-to-end test: one workspace with the
// app installed and a channel it is in.
type slFake struct {
	srv     *fakeslack.Server
	team    *fakeslack.Team
	general fakeslack.Channel
}

// slackFakeOptions: Slack's behaviour with shorter waits (an envelope not
// acknowledged within a second is sent again, at once, then after 2 and
// 4 s).
func slackFakeOptions() fakeslack.Options {
	return fakeslack.Options{
		AckTimeout:        time.Second,
		RetryDelays:       []time.Duration{0, 2 * time.Second, 4 * time.Second},
		PingInterval:      time.Second,
		DisconnectGrace:   200 * time.Millisecond,
		EventsRetryDelays: []time.Duration{0, 2 * time.Second, 4 * time.Second},
	}
}

// newSlackEnv starts a fake Slack, then a gateway whose registry also
// holds the slack kind, with one instance "sl" (task "task-sl") on the
// fake in mode ("socket" or "events"); extra is its config beyond the
// secrets and the fake's address. In events mode the fake posts to the
// gateway's request URL.
func newSlackEnv(t *testing.T, mode string, extra map[string]any) (*env, *slFake) {
	t.Helper()
	srv, err := fakeslack.New(slackFakeOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	team, err := srv.AddTeam(fakeslack.TeamOptions{Name: "Shop", BotName: "shop_bot"})
	if err != nil {
		t.Fatal(err)
	}
	f := &slFake{srv: srv, team: team, general: team.AddChannel("general")}
	cfg := map[string]any{"bot_token": team.BotToken(), "app_token": team.AppToken(), "signing_secret": team.SigningSecret(),
		"api_url": srv.URL(), "mode": mode}
	for k, v := range extra {
		cfg[k] = v
	}
	e := newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{{Name: "sl", Kind: slack.Kind, TaskID: "task-sl", Config: cfg}},
		kinds:    []kind{{slack.Kind, slack.New}},
	})
	if mode == slack.ModeEvents {
		team.SetRequestURL(f.requestURL(e))
	}
	return e, f
}

func (f *slFake) requestURL(e *env) string { return e.base + "/slack/sl/events" }

// chat is Selarti's chat id of a native Slack chat.
func (f *slFake) chat(rest ...string) string {
	return "sl:" + f.team.ID() + ":" + strings.Join(rest, ":")
}

func (f *slFake) posted(channel string) []string {
	var out []string
	for _, m := range f.team.Posted(channel) {
		out = append(out, m.Text)
	}
	return out
}

// mrkdwn is what the adapter posts for the assistant's Markdown md.
func mrkdwn(md string) string { return (richtext.SlackMrkdwn{}).Render(richtext.Parse(md)) }

// checkSlackRoundTrip: a direct message reaches Selarti as the DM, with
// the user's real name and handle, and the answer comes back to the DM
// once; a mention in a channel reaches Selarti as the mention's thread,
// and the answer goes to that thread; the app's own messages (Slack
// echoes every answer) and another bot's never reach Selarti.
func checkSlackRoundTrip(t *testing.T, e *env, f *slFake) {
	t.Helper()
	ann := f.team.AddUser("ann", "Ann Lee")
	bob := f.team.AddUser("bob", "Bob Stone")
	im := f.team.IM(ann)
	f.team.UserSaysIM(ann, "hello")
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	got := e.sim.Received()[0]
	if got.ChatID != f.chat(im.ID) || got.TaskID != "task-sl" || got.Text != "hello" || got.Name != "Ann Lee" || got.Username != "ann" {
		t.Fatalf("selarti received %+v", got)
	}
	f.team.OtherBotSays(f.general, "deploy_bot", "<@"+f.team.BotUserID()+"> deploy done, what are your prices?")
	r := f.team.Mention(bob, f.general, "what are your prices?", "")
	if err := f.team.WaitPosted(ctxTimeout(t), f.general.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // room for an echo or a twin wrongly delivered
	var chats []string
	for _, r := range e.sim.Received() {
		chats = append(chats, r.ChatID+"|"+r.Text)
	}
	want := []string{f.chat(im.ID) + "|hello", f.chat(f.general.ID, r.TS) + "|what are your prices?"}
	if !slices.Equal(chats, want) {
		t.Fatalf("selarti received %q, want %q", chats, want)
	}
	if s := f.posted(im.ID); len(s) != 1 || s[0] != mrkdwn(fakeselarti.Reply("hello")) {
		t.Fatalf("the DM got %q, want the greeting once", s)
	}
	reply := f.team.Posted(f.general.ID)
	if len(reply) != 1 || reply[0].ThreadTS != r.TS || reply[0].Text != mrkdwn(fakeselarti.Reply("what are your prices?")) {
		t.Fatalf("the channel got %+v, want the price list in the mention's thread", reply)
	}
	if countWebhooks(e.sim, "user") != 2 {
		t.Fatal("the test did not exercise the user echo")
	}
}

func TestSlackRoundTrip(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeSocket, nil)
	checkSlackRoundTrip(t, e, f)
	if err := f.team.WaitOpen(ctxTimeout(t), 2); err != nil {
		t.Fatalf("%v: %d Socket Mode connections, want the default 2", err, f.team.OpenConnections())
	}
}

func TestSlackEventsRoundTrip(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeEvents, nil)
	if _, err := f.team.PostURLVerification(ctxTimeout(t), f.requestURL(e)); err != nil {
		t.Fatal(err)
	}
	checkSlackRoundTrip(t, e, f)
	if len(f.srv.CallsTo("apps.connections.open")) != 0 {
		t.Fatal("events mode opened Socket Mode")
	}
}

// TestSlackEventsBadSignature: requests with a wrong or stale signature
// are refused and never reach Selarti.
func TestSlackEventsBadSignature(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeEvents, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	ev := fakeslack.Event{"type": "message", "channel": im.ID, "channel_type": "im", "user": ann.ID, "text": "order 100 lamps", "ts": "1700000000.000100"}
	for name, p := range map[string]fakeslack.EventPost{
		"wrong secret": f.team.PostBadSignature(ctxTimeout(t), f.requestURL(e), ev),
		"stale":        f.team.PostStale(ctxTimeout(t), f.requestURL(e), ev),
		"unsigned":     f.team.PostRaw(ctxTimeout(t), f.requestURL(e), []byte(`{"type":"event_callback"}`), "", ""),
	} {
		if p.Status != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", name, p.Status)
		}
	}
	f.team.UserSaysIM(ann, "hello")
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Received(); len(got) != 1 || got[0].Text != "hello" {
		t.Fatalf("selarti received %+v, want only the signed message", got)
	}
	if !strings.Contains(e.logs.String(), "events request refused") {
		t.Fatal("the refusals were not logged")
	}
}

// TestSlackEventsRetryHandledOnce: Slack retries an event it thinks was
// not delivered (its own timeout), with the same event_id and
// X-Slack-Retry-Num: Selarti gets it once, and it is answered once.
func TestSlackEventsRetryHandledOnce(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeEvents, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	body, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": f.team.ID(), "api_app_id": f.team.AppID(), "event_id": "Ev0RETRIED", "event_time": time.Now().Unix(),
		"event": map[string]any{"type": "message", "channel": im.ID, "channel_type": "im", "user": ann.ID, "text": "hello", "ts": "1700000000.000100"},
	})
	for retry := range 3 {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, f.requestURL(e), bytes.NewReader(body))
		req.Header.Set(fakeslack.HeaderTimestamp, ts)
		req.Header.Set(fakeslack.HeaderSignature, fakeslack.Sign(f.team.SigningSecret(), ts, body))
		if retry > 0 {
			req.Header.Set(fakeslack.HeaderRetryNum, strconv.Itoa(retry))
			req.Header.Set(fakeslack.HeaderRetryReason, fakeslack.ReasonHTTPTimeout)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("attempt %d answered %d", retry, resp.StatusCode)
		}
	}
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(e.sim.Received()); n != 1 {
		t.Fatalf("selarti received %d copies, want 1", n)
	}
	if n := len(f.posted(im.ID)); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
}

// TestSlackMrkdwn: the assistant's Markdown with bold, italics, a link,
// a list, code and <&> arrives as the mrkdwn Slack shows, and cannot
// mention anyone.
func TestSlackMrkdwn(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeSocket, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	f.team.UserSaysIM(ann, "hello")
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	md := "**Lamp L1** is *bright*: [see it](https://shop.example/l1?a=1&b=2)\n\n- `x < y && y > z`\n- 5 < 6 & <!here> <@U123>\n\n```\nif a < b {\n}\n```"
	if err := e.sim.InjectOperator(ctxTimeout(t), f.chat(im.ID), md); err != nil {
		t.Fatal(err)
	}
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 2); err != nil {
		t.Fatal(err)
	}
	want := "*Lamp L1* is _bright_: <https://shop.example/l1?a=1&amp;b=2|see it>\n\n" +
		"• `x &lt; y &amp;&amp; y &gt; z`\n• 5 &lt; 6 &amp; &lt;!here&gt; &lt;@U123&gt;\n\n" +
		"```if a &lt; b {\n}```"
	if got := f.posted(im.ID)[1]; got != want {
		t.Fatalf("posted\n%q\nwant\n%q", got, want)
	}
}

// TestSlackLongReply: a 9,000-character answer with a code block arrives
// as three messages of at most 4,000 characters, the code block whole.
func TestSlackLongReply(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeSocket, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	f.team.UserSaysIM(ann, "hello")
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	code := "```\n" + strings.Repeat("lamp.On() // turns the smart lamp on\n", 40) + "```"
	md := strings.Repeat("Our lamp is bright, cheap and smart. ", 110) + "\n\n" + code + "\n\n" + strings.Repeat("Delivery takes two days. ", 150)
	if err := e.sim.InjectOperator(ctxTimeout(t), f.chat(im.ID), md); err != nil {
		t.Fatal(err)
	}
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 4); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	parts := f.posted(im.ID)[1:]
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	for i, p := range parts {
		if n := len([]rune(p)); n > 4000 || strings.Count(p, "```")%2 != 0 {
			t.Fatalf("part %d: %d characters, %d fences", i, n, strings.Count(p, "```"))
		}
		if strings.Contains(p, "lamp.On()") && strings.Count(p, "lamp.On()") != 40 {
			t.Fatalf("part %d cuts the code block", i)
		}
	}
	if !strings.HasPrefix(parts[0], "Our lamp") || !strings.HasSuffix(parts[2], "two days.") {
		t.Fatal("the parts are out of order")
	}
}

// TestSlackReconnectLosesNothing: Slack refreshes one connection and the
// network drops the sockets while a user writes; slack-go reconnects,
// Slack sends again what was not acknowledged, and every message reaches
// Selarti once, in order, and is answered once.
func TestSlackReconnectLosesNothing(t *testing.T) {
	e, f := newSlackEnv(t, slack.ModeSocket, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	if err := f.team.WaitOpen(ctxTimeout(t), 2); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		switch i {
		case 2:
			f.team.Disconnect(fakeslack.DisconnectRefresh)
		case 5:
			f.team.DropSockets()
		}
		f.team.UserSaysIM(ann, fmt.Sprintf("question %d", i))
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 8); err != nil {
		t.Fatalf("%v; answers %d", err, len(f.posted(im.ID)))
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the fake's ack deadline: a redelivery would show
	var texts []string
	for _, r := range e.sim.Received() {
		texts = append(texts, r.Text)
	}
	if len(texts) != 8 || len(f.posted(im.ID)) != 8 {
		t.Fatalf("selarti got %q and the DM %d answers; want each of 8 once", texts, len(f.posted(im.ID)))
	}
	for i, s := range texts {
		if s != fmt.Sprintf("question %d", i) {
			t.Fatalf("out of order: %q", texts)
		}
	}
	conns := f.team.Connections()
	if len(conns) < 4 {
		t.Fatalf("%d connections opened, want the 2 first and their replacements", len(conns))
	}
	if f.team.Pending() != 0 {
		t.Fatalf("%d events left unacknowledged", f.team.Pending())
	}
}

// TestSlackRetryAfter: a 429 on chat.postMessage is waited out for its
// Retry-After, and the answer goes out once.
func TestSlackRetryAfter(t *testing.T) {
	_, f := newSlackEnv(t, slack.ModeSocket, nil)
	ann := f.team.AddUser("ann", "Ann Lee")
	im := f.team.IM(ann)
	f.srv.RateLimit("chat.postMessage", 1, 1)
	start := time.Now()
	f.team.UserSaysIM(ann, "hello")
	if err := f.team.WaitPosted(ctxTimeout(t), im.ID, 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answered after %s, before the 1s Retry-After", d)
	}
	// The fake records a call's answer once it is written, a moment after
	// the message is posted.
	eventually(t, "the second post answered", func() bool {
		c := f.srv.CallsTo("chat.postMessage")
		return len(c) >= 2 && c[1].Status != 0
	})
	calls := f.srv.CallsTo("chat.postMessage")
	if len(calls) != 2 || calls[0].Status != http.StatusTooManyRequests || calls[1].Status != http.StatusOK {
		t.Fatalf("calls %+v, want a 429 then a 200", calls)
	}
	time.Sleep(200 * time.Millisecond)
	if n := len(f.posted(im.ID)); n != 1 {
		t.Fatalf("%d answers, want 1", n)
	}
}
