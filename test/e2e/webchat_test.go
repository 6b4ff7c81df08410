package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

func webchatAdapter(name string, config map[string]any) engine.AdapterConfig {
	if config == nil {
		config = map[string]any{}
	}
	return engine.AdapterConfig{Name: name, Kind: webchat.Kind, TaskID: "task-" + name, Config: config}
}

// wsFrame is any webchat server frame, decoded.
type wsFrame struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	Seq     int64  `json:"seq"`
	From    string `json:"from"`
	Text    string `json:"text"`
	ID      string `json:"id"`
	Code    string `json:"code"`
	Error   string `json:"error"`
}

// wsTab is one browser tab on the gateway's webchat, speaking the
// protocol by hand.
type wsTab struct {
	t       *testing.T
	conn    *websocket.Conn
	session string
}

// openTab connects to the webchat at path and says hello with session
// ("" for a new one).
func openTab(t *testing.T, e *env, path, session string) *wsTab {
	t.Helper()
	ctx := ctxTimeout(t)
	conn, _, err := websocket.Dial(ctx, "ws://"+e.addr+path+"ws", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {e.base}}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	tab := &wsTab{t: t, conn: conn}
	tab.write(map[string]any{"type": "hello", "session": session})
	w := tab.next()
	if w.Type != "welcome" || w.Session == "" {
		t.Fatalf("first frame %+v, want a welcome", w)
	}
	tab.session = w.Session
	return tab
}

func (tab *wsTab) write(v any) {
	tab.t.Helper()
	if err := wsjson.Write(ctxTimeout(tab.t), tab.conn, v); err != nil {
		tab.t.Fatal(err)
	}
}

func (tab *wsTab) next() wsFrame {
	tab.t.Helper()
	var f wsFrame
	if err := wsjson.Read(ctxTimeout(tab.t), tab.conn, &f); err != nil {
		tab.t.Fatalf("read frame: %v", err)
	}
	return f
}

// say sends a message and returns the frame that answers it: its ack or
// its error.
func (tab *wsTab) say(id, text string) wsFrame {
	tab.t.Helper()
	tab.write(map[string]any{"type": "message", "id": id, "text": text})
	for {
		f := tab.next()
		if (f.Type == "ack" || f.Type == "error") && f.ID == id {
			return f
		}
	}
}

// waitFor reads frames until one matches.
func (tab *wsTab) waitFor(what string, match func(wsFrame) bool) wsFrame {
	tab.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if f := tab.next(); match(f) {
			return f
		}
	}
	tab.t.Fatalf("no %s within 10s", what)
	return wsFrame{}
}

// TestWebchatSameClientIDTwoSessions: client message ids are unique only
// within a session (the protocol lets a page count 1, 2, 3). Session B's
// message "1", sent after session A's "1", is delivered to Selarti, its
// chat becomes known, and Selarti's reply reaches B.
func TestWebchatSameClientIDTwoSessions(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{webchatAdapter("web", nil)}})
	a := openTab(t, e, "/chat/", "")
	if f := a.say("1", "hello"); f.Type != "ack" {
		t.Fatalf("A: %+v, want an ack", f)
	}
	a.waitFor("A's reply", func(f wsFrame) bool { return f.From == "bot" })

	b := openTab(t, e, "/chat/", "")
	if f := b.say("1", "price"); f.Type != "ack" {
		t.Fatalf("B: %+v, want an ack", f)
	}
	if f := b.waitFor("B's reply", func(f wsFrame) bool { return f.From == "bot" }); f.Text != fakeselarti.Reply("price") {
		t.Fatalf("B got %q, want the reply to its own message", f.Text)
	}
	if got := e.sim.ReceivedFor("web:" + b.session); len(got) != 1 || got[0].Text != "price" {
		t.Fatalf("Selarti received %+v for B's chat, want B's message", got)
	}
	// An operator can write to B later: the chat is known.
	if err := e.sim.InjectOperator(ctxTimeout(t), "web:"+b.session, "Anna here"); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the operator's message", func(f wsFrame) bool { return f.From == "operator" && strings.Contains(f.Text, "Anna") })
}

// TestWebchatSessionIDsNeverShown runs a webchat session through the
// gateway along every path that logs its chat, a refused message, a retry,
// a dead letter, a dialog change, an odd webhook field, and through the
// admin API, and checks that the session id, which reads and writes the
// conversation, is shown nowhere in full: only as web:<six characters>….
func TestWebchatSessionIDsNeverShown(t *testing.T) {
	adminToken := strings.Repeat("t", 40)
	e := newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{webchatAdapter("web", map[string]any{"max_message_bytes": 40000})},
		cfgEdit: func(c *engine.Config) {
			c.Admin.Token = core.Secret(adminToken)
			c.Selarti.RetryBudget = time.Millisecond // a failed send goes back to the outbox: "will retry"
		},
	})
	tab := openTab(t, e, "/chat/", "")
	session := tab.session
	short := "web:" + session[:6] + "…"

	// Refused by the core (over its 32 KiB), after the webchat's own checks.
	if f := tab.say("big", strings.Repeat("a", 33<<10)); f.Type != "error" {
		t.Fatalf("oversize message: %+v, want an error", f)
	}
	// Failed once at Selarti, then delivered.
	e.sim.FailNext(1, http.StatusServiceUnavailable, 0)
	if f := tab.say("m1", "hello"); f.Type != "ack" {
		t.Fatalf("m1: %+v", f)
	}
	tab.waitFor("the reply to m1", func(f wsFrame) bool { return f.From == "bot" })
	// Refused for good by Selarti: a dead letter.
	e.sim.FailNext(1, http.StatusBadRequest, 0)
	if f := tab.say("m2", "what is this"); f.Type != "ack" {
		t.Fatalf("m2: %+v", f)
	}
	eventually(t, "a dead letter", func() bool { return e.deadLetters(store.ToSelarti) == 1 })
	// Handed to an operator: the dialog's state changes.
	if f := tab.say("m3", "operator please"); f.Type != "ack" {
		t.Fatalf("m3: %+v", f)
	}
	tab.waitFor("the hand-over note", func(f wsFrame) bool { return f.Type == "event" })
	// A webhook with an odd field for this chat.
	odd := `{"external_chat_id":"web:` + session + `","message_id":"odd-1","message_type":"bot","message_text":"odd","operator":"maybe"}`
	resp, err := http.Post(e.webhookURL(), "application/json", strings.NewReader(odd))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("odd webhook: %d", resp.StatusCode)
	}
	tab.waitFor("the odd webhook's message", func(f wsFrame) bool { return f.Text == "odd" })

	// The admin API: the dead letter, listed and shown by its number.
	status, body := adminGet(t, e.base+"/admin/deadletters", adminToken)
	var dead []engine.MessageView
	if err := json.Unmarshal(body, &dead); status != http.StatusOK || err != nil || len(dead) != 1 {
		t.Fatalf("admin list: %d %s", status, body)
	}
	if dead[0].Chat != short || dead[0].Text != "what is this" {
		t.Fatalf("dead letter = %+v, want chat %s", dead[0], short)
	}
	status, shown := adminGet(t, fmt.Sprintf("%s/admin/deadletters/%d", e.base, dead[0].ID), adminToken)
	if status != http.StatusOK {
		t.Fatalf("admin show: %d %s", status, shown)
	}
	for what, b := range map[string][]byte{"admin list": body, "admin show": shown} {
		if strings.Contains(string(b), session) {
			t.Errorf("%s shows the session id: %s", what, b)
		}
	}

	logs := e.logs.String()
	if testing.Verbose() {
		t.Log(logs)
	}
	for _, msg := range []string{"inbound message rejected", "delivery failed, will retry", "message dead-lettered", "dialog state changed", "odd webhook field"} {
		line := logLine(logs, msg)
		if line == "" {
			t.Errorf("no %q line: the test must cover it", msg)
			continue
		}
		if !strings.Contains(line, session[:6]+"…") {
			t.Errorf("%q line shows no short chat id %s: %s", msg, short, line)
		}
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, session) {
			t.Errorf("a log line shows the session id: %s", line)
		}
	}
}

// logLine returns the first log line (JSON) whose msg is msg.
func logLine(logs, msg string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"`+msg+`"`) {
			return line
		}
	}
	return ""
}
