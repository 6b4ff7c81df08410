package telegram

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	ta "github.com/mymmrac/telego/telegoapi"

	"github.com/switchboard-gw/switchboard/core"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// startedWithChat is a running harness whose bot knows ann's chat.
func startedWithChat(t *testing.T, raw core.RawConfig) *harness {
	h := newHarness(t, raw)
	h.start(h.a)
	h.bot.SendText(ann, "hi")
	eventually(t, "first message", func() bool { return len(h.rec.Texts()) == 1 })
	return h
}

func TestSendFormats(t *testing.T) {
	h := startedWithChat(t, nil)
	md := "**Price:** 5 < 6 & `a<b`\n\n```go\nx := \"<y>\"\n```\n\n[shop](https://shop.example.com/?a=1&b=2)"
	if err := h.a.Send(ctxTimeout(t), out("m1", md)); err != nil {
		t.Fatal(err)
	}
	m := h.bot.SentTo(42)[0]
	want := "<b>Price:</b> 5 &lt; 6 &amp; <code>a&lt;b</code>\n\n<pre><code class=\"language-go\">x := \"&lt;y&gt;\"</code></pre>\n\n<a href=\"https://shop.example.com/?a=1&amp;b=2\">shop</a>"
	if m.Text != want || m.ParseMode != "HTML" {
		t.Fatalf("sent %q (%s)\nwant %q", m.Text, m.ParseMode, want)
	}
	if !strings.Contains(m.Plain, `x := "<y>"`) || m.LinkPreviewDisabled {
		t.Fatalf("plain = %q, preview disabled %v", m.Plain, m.LinkPreviewDisabled)
	}
	var types []string
	for _, e := range m.Entities {
		types = append(types, e.Type)
	}
	if got := strings.Join(types, ","); got != "bold,code,pre,text_link" {
		t.Fatalf("entities %s", got)
	}
}

func TestSendOptions(t *testing.T) {
	h := startedWithChat(t, core.RawConfig{"operator_prefix": "👤 Operator: ", "link_preview": false, "parse_mode": "plain"})
	if err := h.a.Send(ctxTimeout(t), core.Outbound{ChatID: "42", ID: "o1", Text: "**Anna** here", From: core.SenderOperator}); err != nil {
		t.Fatal(err)
	}
	if err := h.a.Send(ctxTimeout(t), out("b1", "**bot** here")); err != nil {
		t.Fatal(err)
	}
	got := h.bot.SentTo(42)
	if got[0].Text != "👤 Operator: Anna here" || got[0].ParseMode != "" || !got[0].LinkPreviewDisabled {
		t.Fatalf("operator message = %+v", got[0])
	}
	if got[1].Text != "bot here" {
		t.Fatalf("bot message = %q", got[1].Text)
	}
}

func TestSendLongMessage(t *testing.T) {
	h := startedWithChat(t, nil)
	sentence := "Our lamp is bright & cheap, <really>. "
	md := strings.Repeat(sentence, 6000/len(sentence)+1)[:6000]
	if err := h.a.Send(ctxTimeout(t), out("long", md)); err != nil {
		t.Fatal(err)
	}
	got := h.bot.SentTo(42)
	if len(got) != 2 {
		t.Fatalf("%d messages, want 2", len(got))
	}
	for i, m := range got {
		if m.ParseMode != "HTML" || len([]rune(m.Plain)) > 4096 || len(m.Plain) < 1900 {
			t.Fatalf("part %d: %d characters, mode %q", i, len([]rune(m.Plain)), m.ParseMode)
		}
	}
	if joined := got[0].Plain + " " + got[1].Plain; joined != strings.TrimSpace(md) {
		t.Fatal("the two messages do not add up to the text")
	}
}

func TestSendErrors(t *testing.T) {
	tests := []struct {
		name      string
		fault     faketelegram.Fault
		check     func(t *testing.T, err error)
		wantCalls int
	}{
		{name: "429 waits retry_after", fault: faketelegram.TooManyRequests(3), check: func(t *testing.T, err error) {
			if wait, ok := core.RetryAfter(err); !ok || wait != 3*time.Second || core.IsPermanent(err) {
				t.Fatalf("error %v: want RetryAfterError of 3s", err)
			}
		}},
		{name: "403 blocked is permanent", fault: faketelegram.BlockedByUser(), check: func(t *testing.T, err error) {
			if !core.IsPermanent(err) || !errors.Is(err, errBlocked) || !strings.Contains(err.Error(), "blocked by the user") {
				t.Fatalf("error %v: want permanent errBlocked", err)
			}
		}},
		{name: "chat not found is an unknown chat", fault: faketelegram.Fault{Status: 400, Description: "Bad Request: chat not found"}, check: func(t *testing.T, err error) {
			if !errors.Is(err, core.ErrUnknownChat) {
				t.Fatalf("error %v: want ErrUnknownChat", err)
			}
		}},
		{name: "other 400 is permanent", fault: faketelegram.Fault{Status: 400, Description: "Bad Request: message is too long"}, check: func(t *testing.T, err error) {
			if !core.IsPermanent(err) {
				t.Fatalf("error %v: want permanent", err)
			}
		}},
		{name: "5xx is transient", fault: faketelegram.ServerError(502), check: transient},
		{name: "401 is transient (the token, not the message)", fault: faketelegram.Fault{Status: 401, Description: "Unauthorized"}, check: transient},
		{name: "lost request is transient", fault: faketelegram.Fault{Drop: true}, check: transient},
		{name: "lost answer is transient too (a duplicate beats a loss)", fault: faketelegram.Fault{DropAfterProcessing: true}, check: transient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startedWithChat(t, nil)
			h.bot.FailNext("sendMessage", tt.fault)
			err := h.a.Send(ctxTimeout(t), out("m1", "hello"))
			tt.check(t, err)
			if strings.Contains(err.Error(), testToken) {
				t.Fatal("the error shows the token")
			}
			if n := len(h.bot.CallsTo("sendMessage")); n != 1 {
				t.Fatalf("%d calls, want exactly 1 (no retry inside Send)", n)
			}
		})
	}
}

func transient(t *testing.T, err error) {
	t.Helper()
	if err == nil || core.IsPermanent(err) {
		t.Fatalf("error %v: want transient", err)
	}
	if _, ok := core.RetryAfter(err); ok {
		t.Fatalf("error %v: want no retry-after", err)
	}
}

// TestAmbiguousSendIsLogged: a request that went out and got no answer
// may have been carried out; that is said in the logs. (A refused
// connection is not ambiguous: see TestCallerHidesToken.)
func TestAmbiguousSendIsLogged(t *testing.T) {
	h := startedWithChat(t, nil)
	h.bot.FailNext("sendMessage", faketelegram.Fault{DropAfterProcessing: true})
	err := h.a.Send(ctxTimeout(t), out("m1", "hello"))
	if !isAmbiguous(err) || !strings.Contains(h.logs.String(), "send outcome unknown") {
		t.Fatalf("error %v: want it ambiguous and logged", err)
	}
	if n := len(h.bot.SentTo(42)); n != 1 {
		t.Fatalf("%d sent: the fake should have delivered it before the drop", n)
	}
}

func TestBlockedChatFailsFast(t *testing.T) {
	h := startedWithChat(t, nil)
	h.bot.FailNext("sendMessage", faketelegram.BlockedByUser())
	if err := h.a.Send(ctxTimeout(t), out("m1", "hello")); !core.IsPermanent(err) {
		t.Fatal(err)
	}
	if err := h.a.Send(ctxTimeout(t), out("m2", "still there?")); !core.IsPermanent(err) || !errors.Is(err, errBlocked) {
		t.Fatalf("second send = %v, want permanent errBlocked", err)
	}
	if n := len(h.bot.CallsTo("sendMessage")); n != 1 {
		t.Fatalf("%d sendMessage calls, want 1: the second must not reach Telegram", n)
	}
	// The user writes again: they unblocked the bot.
	h.bot.SendText(ann, "sorry, back")
	eventually(t, "message", func() bool { return len(h.rec.Texts()) == 2 })
	if err := h.a.Send(ctxTimeout(t), out("m3", "welcome back")); err != nil {
		t.Fatal(err)
	}
}

// TestSplitResumes: part 2 of a split message fails; the outbox's retry
// sends part 2 only, not part 1 again.
func TestSplitResumes(t *testing.T) {
	h := startedWithChat(t, nil)
	md := strings.Repeat("Sentence number one is here. ", 300) // ~8700 characters: 3 parts
	h.bot.FailNext("sendMessage", faketelegram.Fault{}, faketelegram.ServerError(502))
	err := h.a.Send(ctxTimeout(t), out("split-1", md))
	if err == nil || core.IsPermanent(err) || !strings.Contains(err.Error(), "part 2 of 3") {
		t.Fatalf("Send = %v, want a transient error naming part 2 of 3", err)
	}
	if err := h.a.Send(ctxTimeout(t), out("split-1", md)); err != nil {
		t.Fatal(err)
	}
	got := h.bot.SentTo(42)
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3 (each part once)", len(got))
	}
	if joined := got[0].Plain + " " + got[1].Plain + " " + got[2].Plain; joined != strings.TrimSpace(md) {
		t.Fatal("the parts do not add up to the text, in order")
	}
	// Progress is not kept once the message is complete: a (wrongful)
	// redelivery of it starts from its first part again.
	if err := h.a.Send(ctxTimeout(t), out("split-1", md)); err != nil || len(h.bot.SentTo(42)) != 6 {
		t.Fatalf("progress kept after the message was complete: %v, %d sent", err, len(h.bot.SentTo(42)))
	}
	// Another message is not affected by that progress.
	if err := h.a.Send(ctxTimeout(t), out("split-2", md)); err != nil || len(h.bot.SentTo(42)) != 9 {
		t.Fatalf("next split message: %v, %d sent", err, len(h.bot.SentTo(42)))
	}
}

// TestParseErrorFallsBackToPlain: should Telegram refuse the HTML, the
// message goes out as plain text instead of dying.
func TestParseErrorFallsBackToPlain(t *testing.T) {
	h := startedWithChat(t, nil)
	h.bot.FailNext("sendMessage", faketelegram.Fault{Status: 400, Description: `Bad Request: can't parse entities: Unsupported start tag "x" at byte offset 3`})
	if err := h.a.Send(ctxTimeout(t), out("m1", "**bold** & <x>")); err != nil {
		t.Fatal(err)
	}
	got := h.bot.SentTo(42)
	if len(got) != 1 || got[0].ParseMode != "" || got[0].Text != "bold & <x>" {
		t.Fatalf("sent %+v, want the plain text", got)
	}
}

func TestSendBadChat(t *testing.T) {
	h := startedWithChat(t, nil)
	for _, id := range []string{"abc", "", "42:x", "1:2"} {
		if err := h.a.Send(ctxTimeout(t), core.Outbound{ChatID: id, ID: "x", Text: "x"}); !errors.Is(err, core.ErrUnknownChat) {
			t.Fatalf("Send to %q = %v, want ErrUnknownChat", id, err)
		}
	}
	if err := h.a.Send(ctxTimeout(t), out("x", " \n ")); !core.IsPermanent(err) {
		t.Fatalf("Send of blank text = %v, want permanent", err)
	}
	if err := h.a.Send(ctxTimeout(t), core.Outbound{ChatID: "777", ID: "y", Text: "x"}); !errors.Is(err, core.ErrUnknownChat) {
		t.Fatalf("Send to a chat Telegram does not know = %v, want ErrUnknownChat", err)
	}
}

func TestConcurrentSend(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	users := 5
	for i := range users {
		h.bot.SendText(faketelegram.User{ID: int64(100 + i), FirstName: "U"}, "hi")
	}
	eventually(t, "users known", func() bool { return len(h.rec.Texts()) == users })
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			errs <- h.a.Send(ctxTimeout(t), core.Outbound{ChatID: fmt.Sprint(100 + i%users), ID: fmt.Sprint("c", i), Text: fmt.Sprint("**n** ", i)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.bot.Sent()); n != 50 {
		t.Fatalf("%d sent, want 50", n)
	}
}

// TestRateLimits: one chat gets at most chat_rate_limit messages a second
// after its burst; a group at most group_rate_limit a minute.
func TestRateLimits(t *testing.T) {
	h := startedWithChat(t, core.RawConfig{"chat_rate_limit": 10, "chat_burst": 2})
	start := time.Now()
	for i := range 5 {
		if err := h.a.Send(ctxTimeout(t), out(fmt.Sprint("r", i), "x")); err != nil {
			t.Fatal(err)
		}
	}
	// 2 at once, then 3 at 100ms intervals.
	if d := time.Since(start); d < 250*time.Millisecond || d > 2*time.Second {
		t.Fatalf("5 messages took %s, want about 300ms at 10/s with a burst of 2", d)
	}
	cfg := &Config{GlobalRateLimit: 30, ChatRateLimit: 1, ChatBurst: 3, GroupRateLimit: 20}
	gLimit, gBurst := chatLimit(cfg, -100)
	pLimit, pBurst := chatLimit(cfg, 100)
	if gLimit != 20.0/60 || gBurst != 3 || pLimit != 1 || pBurst != 3 {
		t.Fatalf("group limiter %v/%d, private %v/%d", gLimit, gBurst, pLimit, pBurst)
	}
}

func TestClassifySend(t *testing.T) {
	api := func(code int, desc string, params *ta.ResponseParameters) error {
		return fmt.Errorf("telego: sendMessage: api: %w", &ta.Error{ErrorCode: code, Description: desc, Parameters: params})
	}
	tests := []struct {
		name      string
		err       error
		permanent bool
		unknown   bool
		retry     time.Duration
	}{
		{name: "429", err: api(429, "Too Many Requests: retry after 7", &ta.ResponseParameters{RetryAfter: 7}), retry: 7 * time.Second},
		{name: "429 without parameters", err: api(429, "Too Many Requests", nil), retry: time.Second},
		{name: "403 blocked", err: api(403, "Forbidden: bot was blocked by the user", nil), permanent: true},
		{name: "403 deactivated", err: api(403, "Forbidden: user is deactivated", nil), permanent: true},
		{name: "400 chat not found", err: api(400, "Bad Request: chat not found", nil), unknown: true, permanent: true},
		{name: "400 migrated", err: api(400, "Bad Request: group chat was upgraded to a supergroup chat", &ta.ResponseParameters{MigrateToChatID: -100123}), permanent: true},
		{name: "400 other", err: api(400, "Bad Request: message is too long", nil), permanent: true},
		{name: "401", err: api(401, "Unauthorized", nil)},
		{name: "409", err: api(409, "Conflict", nil)},
		{name: "500", err: api(500, "Internal Server Error", nil)},
		{name: "network", err: &callError{method: "sendMessage", err: errors.New("connection refused")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifySend(tt.err)
			if !errors.Is(got, tt.err) {
				t.Fatal("the original error is not wrapped")
			}
			if core.IsPermanent(got) != tt.permanent || errors.Is(got, core.ErrUnknownChat) != tt.unknown {
				t.Fatalf("classifySend(%v) = %v: permanent %v unknown %v", tt.err, got, core.IsPermanent(got), errors.Is(got, core.ErrUnknownChat))
			}
			if wait, _ := core.RetryAfter(got); wait != tt.retry {
				t.Fatalf("retry after %s, want %s", wait, tt.retry)
			}
		})
	}
}

func TestCallerHidesToken(t *testing.T) {
	c := &apiCaller{client: &http.Client{}, token: testToken}
	_, err := c.Call(ctxTimeout(t), "http://127.0.0.1:1/bot"+testToken+"/getMe", &ta.RequestData{ContentType: "application/json", BodyRaw: []byte("{}")})
	if err == nil || strings.Contains(err.Error(), testToken) || !strings.HasPrefix(err.Error(), "getMe: ") {
		t.Fatalf("error = %v", err)
	}
	if isAmbiguous(err) {
		t.Fatal("a refused connection is not ambiguous")
	}
}
