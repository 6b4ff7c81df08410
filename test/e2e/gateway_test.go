package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

func testChatAdapter(name, task string) engine.AdapterConfig {
	return engine.AdapterConfig{Name: name, Kind: testChatKind, TaskID: task, Config: map[string]any{"greeting": "hi"}}
}

func texts(out []core.Outbound) []string {
	var s []string
	for _, m := range out {
		s = append(s, string(m.From)+": "+m.Text)
	}
	return s
}

// TestPluginAdapterRoundTrip sends a user message from an adapter kind that
// only this test package registers, through the real Selarti HTTP API of
// the simulator, and gets the bot reply back through the real webhook; the
// user's own message, reported back by the "All messages" webhook, is not.
func TestPluginAdapterRoundTrip(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{testChatAdapter("chat-a", "task-1")}})
	ctx := context.Background()
	chat := e.chats.get("chat-a")
	if err := chat.say(ctx, core.Inbound{ChatID: "u1", ID: "m1", Text: "hello", User: core.User{Name: "Ann Lee", Username: "ann", Phone: "+15550001"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitReceived(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	got := e.sim.Received()[0]
	if got.ChatID != "chat-a:u1" || got.TaskID != "task-1" || got.Text != "hello" || got.Name != "Ann Lee" || got.Username != "ann" || got.Phone != "+15550001" {
		t.Fatalf("selarti received %+v", got)
	}
	eventually(t, "bot reply", func() bool { return len(chat.sent()) == 1 })
	// The simulator posts the user's echo first, then the reply; give a
	// wrongly delivered echo time to show up before checking.
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	want := []string{"bot: " + fakeselarti.Reply("hello")}
	if got := texts(chat.sent()); !slices.Equal(got, want) {
		t.Fatalf("user got %q, want %q", got, want)
	}
	if m := chat.sent()[0]; m.ChatID != "u1" || m.ID == "" {
		t.Fatalf("outbound = %+v, want native chat id u1 and Selarti's message id", m)
	}
	if n := countWebhooks(e.sim, "user"); n != 1 {
		t.Fatalf("simulator posted %d user-echo webhooks, want 1 (the test must exercise loop prevention)", n)
	}
}

func countWebhooks(sim *fakeselarti.Server, typ string) int {
	n := 0
	for _, w := range sim.Webhooks() {
		if w.Payload["message_type"] == typ && w.Status == http.StatusOK {
			n++
		}
	}
	return n
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTwoInstancesSameNativeChat: two instances of one kind, one native
// chat id: each gets only its own replies.
func TestTwoInstancesSameNativeChat(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{
		testChatAdapter("tg-a", "task-a"),
		testChatAdapter("tg-b", "task-b"),
	}})
	ctx := context.Background()
	a, b := e.chats.get("tg-a"), e.chats.get("tg-b")
	if err := a.say(ctx, core.Inbound{ChatID: "42", ID: "1", Text: "question from a"}); err != nil {
		t.Fatal(err)
	}
	if err := b.say(ctx, core.Inbound{ChatID: "42", ID: "1", Text: "question from b"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both replies", func() bool { return len(a.sent()) == 1 && len(b.sent()) == 1 })
	if err := e.sim.WaitIdle(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if got, want := texts(a.sent()), []string{"bot: " + fakeselarti.Reply("question from a")}; !slices.Equal(got, want) {
		t.Errorf("tg-a got %q, want %q", got, want)
	}
	if got, want := texts(b.sent()), []string{"bot: " + fakeselarti.Reply("question from b")}; !slices.Equal(got, want) {
		t.Errorf("tg-b got %q, want %q", got, want)
	}
	byChat := map[string]string{}
	for _, r := range e.sim.Received() {
		byChat[r.ChatID] = r.TaskID
	}
	if byChat["tg-a:42"] != "task-a" || byChat["tg-b:42"] != "task-b" {
		t.Errorf("selarti saw chats/tasks %v, want tg-a:42→task-a and tg-b:42→task-b", byChat)
	}
}

// TestTokenExpiryMidRun: the token expires between two messages; the
// client re-authenticates and the message goes through exactly once.
func TestTokenExpiryMidRun(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{testChatAdapter("chat", "task")}})
	ctx := context.Background()
	chat := e.chats.get("chat")
	if err := chat.say(ctx, core.Inbound{ChatID: "u", ID: "1", Text: "first"}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitReceived(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	authsBefore := e.sim.AuthCount()
	e.sim.ExpireTokens()
	if err := chat.say(ctx, core.Inbound{ChatID: "u", ID: "2", Text: "second"}); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.WaitReceived(ctxTimeout(t), 2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "both replies", func() bool { return len(chat.sent()) == 2 })
	time.Sleep(100 * time.Millisecond)
	var got []string
	for _, r := range e.sim.Received() {
		got = append(got, r.Text)
	}
	if !slices.Equal(got, []string{"first", "second"}) {
		t.Fatalf("selarti received %q, want each message exactly once", got)
	}
	if n := e.sim.AuthCount() - authsBefore; n != 1 {
		t.Fatalf("re-authenticated %d times, want 1", n)
	}
}

// TestOperatorMessageDelivered: an operator writes from Selarti's panel
// long after the user's last message; it reaches the user, marked as from
// an operator.
func TestOperatorMessageDelivered(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{testChatAdapter("chat", "task")}})
	chat := e.chats.get("chat")
	if err := chat.say(context.Background(), core.Inbound{ChatID: "u", ID: "1", Text: "hello"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "bot reply", func() bool { return len(chat.sent()) == 1 })
	if err := e.sim.InjectOperator(ctxTimeout(t), "chat:u", "Hi, this is Anna from sales."); err != nil {
		t.Fatal(err)
	}
	eventually(t, "operator message", func() bool { return len(chat.sent()) == 2 })
	m := chat.sent()[1]
	if m.From != core.SenderOperator || m.Text != "Hi, this is Anna from sales." || !m.Dialog.Operator {
		t.Fatalf("operator message = %+v", m)
	}
}

// TestWebhookRejections: every kind of bad webhook gets its status code and
// a log line, and the gateway keeps serving.
func TestWebhookRejections(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{testChatAdapter("chat", "task")}})
	chat := e.chats.get("chat")
	if err := chat.say(context.Background(), core.Inbound{ChatID: "known", ID: "1", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reply", func() bool { return len(chat.sent()) == 1 })

	valid := func(chatID, msgID string) string {
		return fmt.Sprintf(`{"external_chat_id":%q,"message_id":%q,"message_type":"bot","message_text":"hello"}`, chatID, msgID)
	}
	tests := []struct {
		name   string
		url    string
		header map[string]string
		body   string
		want   int
		reason string
	}{
		{name: "valid", url: e.webhookURL(), body: valid("chat:known", "ok-1"), want: 200},
		{name: "valid, secret in header", url: e.base + engine.WebhookPath, header: map[string]string{engine.WebhookSecretHeader: e.secret}, body: valid("chat:known", "ok-2"), want: 200},
		{name: "wrong secret", url: e.base + engine.WebhookPath + "/" + strings.Repeat("x", 52), body: valid("chat:known", "x1"), want: 401, reason: "wrong_secret"},
		{name: "missing secret", url: e.base + engine.WebhookPath, body: valid("chat:known", "x2"), want: 401, reason: "missing_secret"},
		{name: "secret in query", url: e.base + engine.WebhookPath + "?secret=" + e.secret, body: valid("chat:known", "x3"), want: 400, reason: "secret_in_query"},
		{name: "oversize body", url: e.webhookURL(), body: `{"message_text":"` + strings.Repeat("a", int(e.cfg.Selarti.WebhookMaxBytes)) + `"}`, want: 413, reason: "too_large"},
		{name: "malformed json", url: e.webhookURL(), body: `{"external_chat_id": "chat:known", `, want: 400, reason: "malformed"},
		{name: "not an object", url: e.webhookURL(), body: `[1,2,3]`, want: 400, reason: "malformed"},
		{name: "missing message id", url: e.webhookURL(), body: `{"external_chat_id":"chat:known","message_type":"bot","message_text":"x"}`, want: 400, reason: "malformed"},
		{name: "bad chat id", url: e.webhookURL(), body: valid("no-namespace", "x4"), want: 400, reason: "bad_chat_id"},
		{name: "unknown instance", url: e.webhookURL(), body: valid("nope:known", "x5"), want: 404, reason: "unknown_instance"},
		{name: "unknown chat", url: e.webhookURL(), body: valid("chat:stranger", "x6"), want: 404, reason: "unknown_chat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tt.url, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, tt.want)
			}
			if tt.reason != "" && !strings.Contains(e.logs.String(), `"reason":"`+tt.reason+`"`) {
				t.Fatalf("no log line with reason %q", tt.reason)
			}
		})
	}
	if strings.Contains(e.logs.String(), e.secret) || strings.Contains(e.logs.String(), e.apiKey) {
		t.Fatal("a secret appears in the logs")
	}
	eventually(t, "two valid webhooks delivered", func() bool { return len(chat.sent()) == 3 })
	resp, err := http.Get(e.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`switchboard_webhook_rejects_total{reason="wrong_secret"} 1`,
		`switchboard_webhook_rejects_total{reason="unknown_chat"} 1`,
		`switchboard_messages_total{direction="out",instance="chat",outcome="echo_suppressed"} 1`,
		`switchboard_selarti_request_duration_seconds_count{op="send",outcome="ok"} 1`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestSelartiOutageQueuesInOrder: while Selarti answers 503, messages
// queue and /readyz says so; when it is back, all arrive, in order, once.
func TestSelartiOutageQueuesInOrder(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{testChatAdapter("chat", "task")}})
	chat := e.chats.get("chat")
	e.sim.SetDown(true)
	for i := range 5 {
		if err := chat.say(context.Background(), core.Inbound{ChatID: "u", ID: fmt.Sprint(i), Text: fmt.Sprintf("msg %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "readyz reports the outage", func() bool {
		resp, err := http.Get(e.base + "/readyz")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), `"selarti":"failing"`)
	})
	metrics := scrape(t, e.base)
	for _, want := range []string{
		`switchboard_queue_depth{direction="in"} 5`,
		`switchboard_messages_total{direction="in",instance="chat",outcome="retry"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("during the outage, metrics lack %s", want)
		}
	}
	if !strings.Contains(metrics, `switchboard_queue_oldest_pending_seconds{direction="in"} `) ||
		strings.Contains(metrics, `switchboard_queue_oldest_pending_seconds{direction="in"} 0`+"\n") {
		t.Errorf("during the outage, the oldest pending age is not shown")
	}
	e.sim.SetDown(false)
	if err := e.sim.WaitReceived(ctxTimeout(t), 5); err != nil {
		t.Fatal(err)
	}
	eventually(t, "five replies", func() bool { return len(chat.sent()) == 5 })
	var got []string
	for _, r := range e.sim.Received() {
		got = append(got, r.Text)
	}
	if want := []string{"msg 0", "msg 1", "msg 2", "msg 3", "msg 4"}; !slices.Equal(got, want) {
		t.Fatalf("selarti received %q, want %q", got, want)
	}
	e.waitReady()
	if m := scrape(t, e.base); !strings.Contains(m, `switchboard_queue_depth{direction="in"} 0`) {
		t.Error("after the outage, the inbound queue is not empty")
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
