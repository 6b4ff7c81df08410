package e2e

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/adapters/telegram"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// tgFake is the fake Bot API server of a Telegram end-to-end test, with
// its bots (TestToken(1..n)).
type tgFake struct {
	srv  *faketelegram.Server
	bots []*faketelegram.Bot
}

// newTelegramEnv starts a fake Bot API server with bots bots, then a
// gateway (newEnv) whose registry also holds the telegram kind, with the
// instances insts pointed at the fake. before runs once the bots exist,
// before the gateway starts.
func newTelegramEnv(t *testing.T, bots int, insts []engine.AdapterConfig, before func(f *tgFake)) (*env, *tgFake) {
	t.Helper()
	srv, err := faketelegram.New(faketelegram.Options{InsecureWebhooks: true, WebhookRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	f := &tgFake{srv: srv}
	for n := 1; n <= bots; n++ {
		b, err := srv.AddBot(faketelegram.TestToken(n), fmt.Sprintf("shop%d_bot", n))
		if err != nil {
			t.Fatal(err)
		}
		f.bots = append(f.bots, b)
	}
	for _, inst := range insts {
		inst.Config["api_url"] = srv.URL()
	}
	e := newEnv(t, envOptions{
		adapters: insts,
		kinds:    []kind{{telegram.Kind, telegram.New}},
		before: func(*env) {
			if before != nil {
				before(f)
			}
		},
	})
	return e, f
}

// bot returns the fake bot of TestToken(n).
func (f *tgFake) bot(n int) *faketelegram.Bot { return f.bots[n-1] }

// tgInstance is one telegram instance: its bot's token is TestToken(n);
// newTelegramEnv points it at the fake server.
func tgInstance(name, task string, n int, extra map[string]any) engine.AdapterConfig {
	cfg := map[string]any{"token": faketelegram.TestToken(n), "poll_timeout": "1s", "typing_timeout": "0s"}
	for k, v := range extra {
		cfg[k] = v
	}
	return engine.AdapterConfig{Name: name, Kind: telegram.Kind, TaskID: task, Config: cfg}
}

var (
	tgAnn = faketelegram.User{ID: 42, FirstName: "Ann", LastName: "Lee", Username: "ann", LanguageCode: "en"}
	tgBob = faketelegram.User{ID: 43, FirstName: "Bob"}
)

// checkRoundTrip: a private message reaches Selarti with the namespaced
// chat id and the instance's task, and the bot's reply comes back to the
// same Telegram chat, once.
func checkRoundTrip(t *testing.T, e *env, bot *faketelegram.Bot) {
	t.Helper()
	bot.SendText(tgAnn, "hello")
	if err := e.sim.WaitReceived(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	got := e.sim.Received()[0]
	if got.ChatID != "tg:42" || got.TaskID != "task-1" || got.Text != "hello" || got.Name != "Ann Lee" || got.Username != "ann" {
		t.Fatalf("selarti received %+v", got)
	}
	if err := bot.WaitSent(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // room for a wrongly delivered user echo
	sent := bot.Sent()
	if len(sent) != 1 || sent[0].ChatID != 42 || sent[0].Plain != fakeselarti.Reply("hello") || sent[0].ParseMode != "HTML" {
		t.Fatalf("telegram got %+v, want the greeting in chat 42, once", sent)
	}
	if countWebhooks(e.sim, "user") != 1 {
		t.Fatal("the test did not exercise the user echo")
	}

	// Markdown from the assistant arrives formatted.
	bot.SendText(tgAnn, "what are your prices?")
	if err := bot.WaitSent(ctxTimeout(t), 2); err != nil {
		t.Fatal(err)
	}
	m := bot.Sent()[1]
	if !strings.HasPrefix(m.Text, "<b>Our prices</b>\n\n• Smart lamp: <b>$29</b>") ||
		!strings.Contains(m.Text, `<a href="https://shop.example.com/catalogue">shop.example.com</a>`) {
		t.Fatalf("price list sent as %q", m.Text)
	}
}

func TestTelegramPollingRoundTrip(t *testing.T) {
	e, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, nil)}, nil)
	bot := tg.bot(1)
	checkRoundTrip(t, e, bot)
	if calls := bot.CallsTo("setWebhook"); len(calls) != 0 {
		t.Fatal("polling mode set a webhook")
	}
}

func TestTelegramWebhookRoundTrip(t *testing.T) {
	e, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, map[string]any{"mode": "webhook"})}, nil)
	bot := tg.bot(1)
	hook := e.base + "/telegram/tg/webhook"
	if info := bot.WebhookInfo(); info.URL != hook || len(bot.WebhookSecret()) < 32 {
		t.Fatalf("webhook = %+v, want %s with a secret", info, hook)
	}
	checkRoundTrip(t, e, bot)
	for _, a := range bot.WebhookAttempts() {
		if a.Status != http.StatusOK {
			t.Fatalf("webhook attempt %+v", a)
		}
	}
	if len(bot.CallsTo("getUpdates")) != 0 {
		t.Fatal("webhook mode polled")
	}

	t.Run("wrong secret token is rejected", func(t *testing.T) {
		forged := `{"update_id":999999,"message":{"message_id":77,"date":1700000000,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Ann"},"text":"forged order"}}`
		for _, secret := range []string{"", "wrong-secret", bot.WebhookSecret() + "0"} {
			status, err := faketelegram.PostUpdate(context.Background(), http.DefaultClient, hook, secret, []byte(forged))
			if err != nil {
				t.Fatal(err)
			}
			if status != http.StatusUnauthorized {
				t.Fatalf("secret %q: status %d, want 401", secret, status)
			}
		}
		time.Sleep(100 * time.Millisecond)
		for _, r := range e.sim.Received() {
			if r.Text == "forged order" {
				t.Fatal("a forged update reached Selarti")
			}
		}
		if strings.Contains(e.logs.String(), bot.WebhookSecret()) || strings.Contains(e.logs.String(), bot.Token()) {
			t.Fatal("a secret or the token appears in the logs")
		}
	})
}

// TestTelegramFormatting: a 6,000-character answer arrives as two
// well-formed messages, and Markdown with <, &, code blocks and links
// renders as valid HTML.
func TestTelegramFormatting(t *testing.T) {
	e, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, nil)}, nil)
	bot := tg.bot(1)
	bot.SendText(tgAnn, "hello")
	if err := bot.WaitSent(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}

	t.Run("6000 characters become two messages", func(t *testing.T) {
		sentence := "Our *smart lamp* is bright, cheap & easy to set up in any room. "
		long := strings.Repeat(sentence, 6000/len(sentence)+1)[:6000]
		if err := e.sim.InjectOperator(ctxTimeout(t), "tg:42", long); err != nil {
			t.Fatal(err)
		}
		if err := bot.WaitSent(ctxTimeout(t), 3); err != nil {
			t.Fatal(err)
		}
		parts := bot.Sent()[1:]
		if len(parts) != 2 {
			t.Fatalf("%d messages, want 2", len(parts))
		}
		for i, p := range parts {
			if p.ParseMode != "HTML" || len([]rune(p.Plain)) > 4096 {
				t.Fatalf("part %d: mode %q, %d characters", i, p.ParseMode, len([]rune(p.Plain)))
			}
			if _, _, err := faketelegram.ParseHTML(p.Text); err != nil {
				t.Fatalf("part %d is not valid: %v", i, err)
			}
			for _, ent := range p.Entities {
				if ent.Type != "italic" {
					t.Fatalf("part %d has a %s entity", i, ent.Type)
				}
			}
		}
		want := strings.ReplaceAll(strings.TrimSpace(long), "*", "")
		if got := parts[0].Plain + " " + parts[1].Plain; got != want {
			t.Fatal("the two messages do not add up to the answer")
		}
		if !strings.HasSuffix(parts[0].Plain, "room.") {
			t.Fatalf("the cut is not at a sentence end: ...%q", parts[0].Plain[len(parts[0].Plain)-30:])
		}
	})

	t.Run("markdown with <, &, code and links is valid HTML", func(t *testing.T) {
		md := "Use **`a < b && c`** in the *filter* & click [the <shop>](https://shop.example.com/?q=lamp&sort=asc):\n\n" +
			"```html\n<div class=\"x\">&nbsp;</div>\n```\n\n> Tip: 3 > 2"
		n := len(bot.Sent())
		if err := e.sim.InjectOperator(ctxTimeout(t), "tg:42", md); err != nil {
			t.Fatal(err)
		}
		if err := bot.WaitSent(ctxTimeout(t), n+1); err != nil {
			t.Fatal(err)
		}
		m := bot.Sent()[n]
		want := `Use <b><code>a &lt; b &amp;&amp; c</code></b> in the <i>filter</i> &amp; click <a href="https://shop.example.com/?q=lamp&amp;sort=asc">the &lt;shop&gt;</a>:` + "\n\n" +
			`<pre><code class="language-html">&lt;div class="x"&gt;&amp;nbsp;&lt;/div&gt;</code></pre>` + "\n\n" +
			`<blockquote>Tip: 3 &gt; 2</blockquote>`
		if m.Text != want || m.ParseMode != "HTML" {
			t.Fatalf("sent %q\nwant %q", m.Text, want)
		}
		var types []string
		for _, ent := range m.Entities {
			types = append(types, ent.Type)
		}
		if got := strings.Join(types, ","); got != "bold,code,italic,text_link,pre,blockquote" {
			t.Fatalf("entities %s", got)
		}
		if !strings.Contains(m.Plain, `<div class="x">&nbsp;</div>`) || !strings.Contains(m.Plain, "the <shop>") {
			t.Fatalf("the user sees %q", m.Plain)
		}
	})
	for _, c := range bot.CallsTo("sendMessage") {
		if c.Status != http.StatusOK {
			t.Fatalf("a sendMessage was refused: %+v", c)
		}
	}
}

// TestTelegramRetryAfter: a 429 is waited out for retry_after, and the
// message is delivered once.
func TestTelegramRetryAfter(t *testing.T) {
	_, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, nil)}, nil)
	bot := tg.bot(1)
	bot.FailNext("sendMessage", faketelegram.TooManyRequests(1))
	bot.SendText(tgAnn, "hello")
	if err := bot.WaitSent(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	calls := bot.CallsTo("sendMessage")
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("sendMessage calls %+v, want a 429 then a 200", calls)
	}
	if gap := calls[1].At.Sub(calls[0].At); gap < time.Second {
		t.Fatalf("retried after %s, before retry_after (1s) was up", gap)
	}
	time.Sleep(300 * time.Millisecond)
	if sent := bot.Sent(); len(sent) != 1 || sent[0].Plain != fakeselarti.Reply("hello") {
		t.Fatalf("sent %+v, want the reply exactly once", sent)
	}
}

// TestTelegramBlockedUser: a user who blocked the bot costs one refused
// request and a dead letter, not a retry loop; later messages to them do
// not even reach Telegram.
func TestTelegramBlockedUser(t *testing.T) {
	e, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, nil)}, nil)
	bot := tg.bot(1)
	bot.FailNext("sendMessage", faketelegram.BlockedByUser())
	bot.SendText(tgAnn, "hello")
	eventually(t, "the reply dead-lettered", func() bool { return e.deadLetters(store.ToUser) == 1 })
	if err := e.sim.InjectOperator(ctxTimeout(t), "tg:42", "Anna from sales here, can I help?"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the operator message dead-lettered", func() bool { return e.deadLetters(store.ToUser) == 2 })
	time.Sleep(500 * time.Millisecond) // a retry loop would show by now (backoff 20-200ms)
	calls := bot.CallsTo("sendMessage")
	if len(calls) != 1 || calls[0].Status != http.StatusForbidden {
		t.Fatalf("sendMessage calls %+v, want the one 403", calls)
	}
	if !strings.Contains(e.logs.String(), "message dead-lettered") {
		t.Fatal("no dead-letter log line")
	}
}

// TestTelegramRestartNoLoss stops the gateway (as SIGTERM would) while it
// holds updates that are handed to the core but not yet confirmed to
// Telegram, with replies in flight and more updates arriving while it is
// down. (A stop in the middle of handing over a batch is covered by the
// adapter's TestRestartMidBatch.) After the restart every message reaches
// Selarti exactly once, in order per chat, and every user gets every reply.
func TestTelegramRestartNoLoss(t *testing.T) {
	users := []faketelegram.User{tgAnn, tgBob, {ID: 44, FirstName: "Cy"}, {ID: 45, FirstName: "Di"}}
	var firstBatch []int64
	var want []string
	say := func(bot *faketelegram.Bot, round int) []int64 {
		var ids []int64
		for _, u := range users {
			text := fmt.Sprintf("question %d from %s", round, u.FirstName)
			want = append(want, text)
			ids = append(ids, bot.SendText(u, text))
		}
		return ids
	}
	e, tg := newTelegramEnv(t, 1, []engine.AdapterConfig{tgInstance("tg", "task-1", 1, nil)}, func(f *tgFake) {
		// The second getUpdates (the one that would confirm the first
		// batch) hangs until the gateway goes away, so it never
		// confirms anything.
		f.bot(1).FailNext("getUpdates", faketelegram.Fault{}, faketelegram.Fault{Delay: time.Minute})
		for round := range 3 {
			firstBatch = append(firstBatch, say(f.bot(1), round)...)
		}
	})
	bot := tg.bot(1)
	if err := bot.WaitCalls(ctxTimeout(t), "getUpdates", 2); err != nil {
		t.Fatal(err)
	}
	// The first batch is in the core's hands, unconfirmed. Kill.
	e.stop()
	if len(e.sim.Received()) == 0 {
		t.Log("note: nothing reached Selarti before the kill")
	}
	for round := 3; round < 5; round++ {
		say(bot, round)
	}
	e.start(e.addr)

	eventually(t, "every message at Selarti", func() bool { return len(e.sim.Received()) >= len(want) })
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every reply", func() bool { return len(bot.Sent()) >= len(want) })
	time.Sleep(200 * time.Millisecond)

	var got []string
	for _, r := range e.sim.Received() {
		got = append(got, r.Text)
	}
	sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(sortedGot, sortedWant) {
		t.Fatalf("selarti received %d messages %q,\nwant each of %d exactly once", len(got), got, len(want))
	}
	for _, u := range users {
		var seq []string
		for _, r := range e.sim.ReceivedFor(fmt.Sprintf("tg:%d", u.ID)) {
			seq = append(seq, r.Text)
		}
		for i := range seq {
			if seq[i] != fmt.Sprintf("question %d from %s", i, u.FirstName) {
				t.Fatalf("chat %d got %q out of order", u.ID, seq)
			}
		}
		if n := len(bot.SentTo(u.ID)); n != 5 {
			t.Fatalf("user %d got %d replies, want 5", u.ID, n)
		}
	}
	for _, id := range firstBatch {
		if n := bot.Served(id); n != 2 {
			t.Fatalf("update %d served %d times: the test did not exercise redelivery of unconfirmed updates", id, n)
		}
	}
}

// TestTelegramTwoInstances: two bots in one gateway, each with its own
// task; the same Telegram user writes to both, and each conversation stays
// with its bot.
func TestTelegramTwoInstances(t *testing.T) {
	e, tg := newTelegramEnv(t, 2, []engine.AdapterConfig{
		tgInstance("tg-a", "task-a", 1, nil),
		tgInstance("tg-b", "task-b", 2, map[string]any{"mode": "webhook"}),
	}, nil)
	botA, botB := tg.bot(1), tg.bot(2)
	botA.SendText(tgAnn, "question from a")
	botB.SendText(tgAnn, "question from b")
	if err := botA.WaitSent(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := botB.WaitSent(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	byChat := map[string]string{}
	for _, r := range e.sim.Received() {
		byChat[r.ChatID] = r.TaskID + "|" + r.Text
	}
	if byChat["tg-a:42"] != "task-a|question from a" || byChat["tg-b:42"] != "task-b|question from b" || len(byChat) != 2 {
		t.Fatalf("selarti saw %v", byChat)
	}
	if a := botA.Sent(); len(a) != 1 || a[0].Plain != fakeselarti.Reply("question from a") {
		t.Fatalf("bot a sent %+v", a)
	}
	if b := botB.Sent(); len(b) != 1 || b[0].Plain != fakeselarti.Reply("question from b") {
		t.Fatalf("bot b sent %+v", b)
	}
}
