package webchat

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/internal/sqlitedb"
)

func TestHello(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	known := newSessionID()
	tests := []struct {
		name    string
		session string
		want    string // "" means a fresh id
	}{
		{name: "no session", session: ""},
		{name: "malformed session", session: "not-a-session"},
		{name: "too long session", session: known + "x"},
		{name: "bad characters", session: strings.Repeat("+", sessionIDLen)},
		{name: "well-formed unknown session is kept", session: known, want: known},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, w := ts.connect(t, tt.session, 0)
			if !validSessionID(w.Session) || len(w.Session) != 22 {
				t.Fatalf("welcome session %q is not a 22-char base64url id", w.Session)
			}
			if tt.want != "" && w.Session != tt.want {
				t.Fatalf("session = %q, want %q", w.Session, tt.want)
			}
			if tt.want == "" {
				if w.Session == tt.session || seen[w.Session] {
					t.Fatalf("session %q is not fresh", w.Session)
				}
				seen[w.Session] = true
			}
			if w.LastSeq != 0 || w.Epoch == "" {
				t.Fatalf("welcome = %+v, want last_seq 0 and an epoch", w)
			}
		})
	}
}

func TestHelloRequiredFirst(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb := ts.dial(t, "")
	tb.message("m1", "hi")
	if f := tb.expect(typeError); f.Code != codeHelloFirst {
		t.Fatalf("error code = %q, want %q", f.Code, codeHelloFirst)
	}
	tb.expectClose(websocket.StatusPolicyViolation)
	if got := ts.core.Answered(); len(got) != 0 {
		t.Fatalf("delivered %v before hello", got)
	}
}

func TestMessageDeliveredAckedAndBroadcast(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tab1, w := ts.connect(t, "", 0)
	tab2, _ := ts.connect(t, w.Session, 0)

	tab1.message("c-1", "  Hello there \n")

	want := core.Inbound{ChatID: w.Session, ID: inboundID(w.Session, "c-1"), Text: "Hello there", User: core.User{Name: "Ann"}}
	// The ack is queued only after deliver returned, so by the time tab1
	// reads it, deliver has run.
	m := tab1.expect(typeMessage)
	ack := tab1.expect(typeAck)
	got := ts.core.Answered()
	if len(got) != 1 {
		t.Fatalf("delivered %d messages, want 1: %+v", len(got), got)
	}
	in := got[0]
	if in.ReceivedAt.IsZero() {
		t.Errorf("ReceivedAt is zero")
	}
	in.ReceivedAt = time.Time{}
	if in != want {
		t.Fatalf("delivered %+v, want %+v", in, want)
	}
	if m.From != fromUser || m.Text != "Hello there" || m.ID != "c-1" || m.Seq != 1 {
		t.Fatalf("sender's copy = %+v, want user message c-1 with seq 1", m)
	}
	if _, err := time.Parse(time.RFC3339, m.TS); err != nil {
		t.Fatalf("ts %q is not RFC 3339: %v", m.TS, err)
	}
	if ack.ID != "c-1" || ack.Seq != 1 {
		t.Fatalf("ack = %+v, want id c-1 seq 1", ack)
	}
	if m2 := tab2.expect(typeMessage); m2.From != fromUser || m2.Text != "Hello there" || m2.Seq != 1 {
		t.Fatalf("other tab got %+v, want the user's message", m2)
	}
	// The other tab gets no ack: its next frame is the next live entry.
	ts.send(t, w.Session, "reply")
	if f := tab2.expect(typeMessage); f.Text != "reply" {
		t.Fatalf("other tab's next frame = %+v, want the reply", f)
	}
}

// TestSameClientIDInTwoSessions: client message ids are unique only within
// a session (a page may count 1, 2, 3), so a message of session B that
// reuses an id session A used is delivered, not taken for A's redelivery
// by the core, which drops repeats by Inbound.ID across the instance. The
// Inbound.ID carries no session id: the core logs it.
func TestSameClientIDInTwoSessions(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	a, wa := ts.connect(t, "", 0)
	b, wb := ts.connect(t, "", 0)
	a.message("1", "from A")
	a.expect(typeMessage)
	a.expect(typeAck)
	b.message("1", "from B")
	b.expect(typeMessage)
	if f := b.expect(typeAck); f.ID != "1" {
		t.Fatalf("B got %+v, want the ack of its message 1", f)
	}
	got := ts.core.Accepted()
	if len(got) != 2 || got[0].ChatID != wa.Session || got[1].ChatID != wb.Session || got[1].Text != "from B" {
		t.Fatalf("core accepted %+v, want A's and B's message 1", got)
	}
	if got[0].ID == got[1].ID {
		t.Fatalf("both sessions' message 1 have Inbound.ID %q", got[0].ID)
	}
	for _, m := range got {
		if !strings.HasSuffix(m.ID, "/1") || strings.Contains(m.ID, wa.Session) || strings.Contains(m.ID, wb.Session) {
			t.Fatalf("Inbound.ID %q: want <session digest>/1, without the session id", m.ID)
		}
	}
	// A re-send in B is still the same message.
	b.message("1", "from B")
	b.expect(typeAck)
	if n := len(ts.core.Accepted()); n != 2 {
		t.Fatalf("core accepted %d messages after B's re-send, want 2", n)
	}
}

func TestDeliverErrorIsNotAcked(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	ts.core.FailWith(func(context.Context, int, core.Inbound) error { return errDown })

	tb.message("c-1", "hello")
	f := tb.expect(typeError)
	if f.ID != "c-1" || f.Code != codeDeliverFailed || f.Error != "could not send, retrying" || !f.Retry {
		t.Fatalf("error frame = %+v, want a retryable deliver error for c-1", f)
	}
	// No ack and no broadcast follow: the next frame is a later Send.
	ts.send(t, w.Session, "barrier")
	if f := tb.expect(typeMessage); f.Text != "barrier" || f.Seq != 1 {
		t.Fatalf("next frame = %+v, want the barrier message with seq 1", f)
	}

	// The page re-sends with the same id once the core is back.
	ts.core.FailWith(nil)
	tb.message("c-1", "hello")
	if f := tb.expect(typeMessage); f.ID != "c-1" || f.Seq != 2 {
		t.Fatalf("got %+v, want the user's message with seq 2", f)
	}
	if f := tb.expect(typeAck); f.ID != "c-1" {
		t.Fatalf("got %+v, want ack for c-1", f)
	}
}

func TestResendOfAckedMessageIsAckedAgain(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	tb.message("c-1", "hello")
	tb.expect(typeMessage)
	tb.expect(typeAck)

	// The ack got lost; the page re-sends.
	tb.message("c-1", "hello")
	if f := tb.expect(typeAck); f.ID != "c-1" || f.Seq != 1 {
		t.Fatalf("got %+v, want a second ack for c-1 with seq 1", f)
	}
	if n := len(ts.core.Answered()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
	ts.send(t, w.Session, "barrier")
	if f := tb.expect(typeMessage); f.Text != "barrier" || f.Seq != 2 {
		t.Fatalf("next frame = %+v, want barrier with seq 2 (no second copy of c-1)", f)
	}
}

func TestSendPushesLive(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	tests := []struct {
		name     string
		from     core.Sender
		wantFrom string
	}{
		{name: "bot", from: core.SenderBot, wantFrom: fromBot},
		{name: "operator", from: core.SenderOperator, wantFrom: fromOperator},
		{name: "unset sender shows as bot", from: "", wantFrom: fromBot},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "**hi** " + tt.name
			err := ts.a.Send(context.Background(), core.Outbound{ChatID: w.Session, ID: tt.name, Text: text, From: tt.from})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			f := tb.expect(typeMessage)
			if f.From != tt.wantFrom || f.Text != text || f.Seq != int64(i+1) || f.ID != "" {
				t.Fatalf("frame = %+v, want from %q, text %q, seq %d, no id", f, tt.wantFrom, text, i+1)
			}
			if _, err := time.Parse(time.RFC3339, f.TS); err != nil {
				t.Fatalf("ts %q: %v", f.TS, err)
			}
		})
	}
}

func TestReconnectReplaysMissedMessages(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	ts.send(t, w.Session, "one")
	seen := tb.expect(typeMessage)
	_ = tb.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the tab to detach", func() bool { return ts.a.connsOf(w.Session) == 0 })

	for _, text := range []string{"two", "three", "four"} {
		ts.send(t, w.Session, text)
	}
	tb2, w2 := ts.connect(t, w.Session, seen.Seq)
	if w2.Session != w.Session || w2.LastSeq != 4 || w2.Epoch != w.Epoch {
		t.Fatalf("welcome = %+v, want session %s, last_seq 4, epoch %s", w2, w.Session, w.Epoch)
	}
	for i, want := range []string{"two", "three", "four"} {
		f := tb2.expect(typeMessage)
		if f.Text != want || f.Seq != int64(i+2) {
			t.Fatalf("replay %d = %+v, want %q with seq %d", i, f, want, i+2)
		}
	}
	ts.send(t, w.Session, "five")
	if f := tb2.expect(typeMessage); f.Text != "five" || f.Seq != 5 {
		t.Fatalf("after replay got %+v, want five with seq 5 (nothing replayed twice)", f)
	}
}

func TestReplayAfterSessionReset(t *testing.T) {
	// A browser that saw seq 50 of a session the gateway no longer has
	// (it restarted) gets everything the new incarnation holds.
	tests := []struct {
		name    string
		lastSeq int64
		epoch   string
	}{
		{name: "seq beyond the server's", lastSeq: 50},
		{name: "epoch of another incarnation", lastSeq: 1, epoch: "oldepoch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, newTestAdapter(t, nil))
			id := newSessionID()
			ts.send(t, id, "held while away")
			ts.send(t, id, "second")
			tb := ts.dial(t, "")
			tb.send(map[string]any{"type": "hello", "session": id, "last_seq": tt.lastSeq, "epoch": tt.epoch})
			if w := tb.expect(typeWelcome); w.LastSeq != 2 {
				t.Fatalf("welcome = %+v, want last_seq 2", w)
			}
			if f := tb.expect(typeMessage); f.Text != "held while away" || f.Seq != 1 {
				t.Fatalf("got %+v, want the first held message", f)
			}
		})
	}
}

func TestSessionsAreIsolated(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	a, wa := ts.connect(t, "", 0)
	b, wb := ts.connect(t, "", 0)
	if wa.Session == wb.Session {
		t.Fatal("two tabs without a session got the same id")
	}
	ts.send(t, wa.Session, "for a")
	a.message("a-1", "from a")
	ts.send(t, wb.Session, "for b")

	if f := b.expect(typeMessage); f.Text != "for b" || f.Seq != 1 {
		t.Fatalf("b got %+v, want only its own message", f)
	}
	if f := a.expect(typeMessage); f.Text != "for a" {
		t.Fatalf("a got %+v", f)
	}
	a.expect(typeMessage)
	a.expect(typeAck)
	if got := ts.core.Answered(); len(got) != 1 || got[0].ChatID != wa.Session {
		t.Fatalf("delivered %+v, want one message from a's session", got)
	}
}

func TestClientErrors(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"max_message_bytes": 10}))
	tests := []struct {
		name     string
		raw      string
		wantCode string
		wantID   string
	}{
		{name: "malformed JSON", raw: `{"type":`, wantCode: codeBadJSON},
		{name: "not an object", raw: `[1,2]`, wantCode: codeBadJSON},
		{name: "wrong field type", raw: `{"type":"message","id":5,"text":"x"}`, wantCode: codeBadJSON},
		{name: "unknown type", raw: `{"type":"typing"}`, wantCode: codeUnknownType},
		{name: "second hello", raw: `{"type":"hello"}`, wantCode: codeUnknownType},
		{name: "empty text", raw: `{"type":"message","id":"e1","text":""}`, wantCode: codeEmpty, wantID: "e1"},
		{name: "blank text", raw: `{"type":"message","id":"e2","text":" \n\t "}`, wantCode: codeEmpty, wantID: "e2"},
		{name: "oversize text", raw: `{"type":"message","id":"e3","text":"12345678901"}`, wantCode: codeTooLong, wantID: "e3"},
		{name: "oversize in bytes", raw: `{"type":"message","id":"e4","text":"ééééééé"}`, wantCode: codeTooLong, wantID: "e4"},
		{name: "empty id", raw: `{"type":"message","id":"","text":"hi"}`, wantCode: codeBadID},
		{name: "long id", raw: `{"type":"message","id":"` + strings.Repeat("x", 65) + `","text":"hi"}`, wantCode: codeBadID},
		{name: "id with space", raw: `{"type":"message","id":"a b","text":"hi"}`, wantCode: codeBadID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb, _ := ts.connect(t, "", 0)
			tb.sendRaw([]byte(tt.raw))
			f := tb.expect(typeError)
			if f.Code != tt.wantCode || f.ID != tt.wantID || f.Error == "" || f.Retry {
				t.Fatalf("error frame = %+v, want code %q, id %q, a reason, no retry", f, tt.wantCode, tt.wantID)
			}
			// The connection stays up and usable.
			tb.message("ok-1", "fine")
			tb.expect(typeMessage)
			if f := tb.expect(typeAck); f.ID != "ok-1" {
				t.Fatalf("got %+v, want ack", f)
			}
		})
	}
	if n := len(ts.core.Answered()); n != len(tests) {
		t.Fatalf("delivered %d messages, want only the %d valid ones", n, len(tests))
	}
}

func TestBinaryFrameIsAnError(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, _ := ts.connect(t, "", 0)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tb.ws.Write(ctx, websocket.MessageBinary, []byte(`{"type":"message","id":"b","text":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if f := tb.expect(typeError); f.Code != codeBadJSON {
		t.Fatalf("got %+v, want bad_json", f)
	}
}

func TestTooManyProtocolErrorsCloses(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, _ := ts.connect(t, "", 0)
	for i := 0; i <= maxProtocolErrors; i++ {
		tb.sendRaw([]byte("garbage"))
	}
	for i := 0; i <= maxProtocolErrors; i++ {
		tb.expect(typeError)
	}
	tb.expectClose(websocket.StatusPolicyViolation)
}

func TestProtocolErrorCountResetsOnGoodFrame(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, _ := ts.connect(t, "", 0)
	for round := 0; round < 3; round++ {
		for i := 0; i < maxProtocolErrors; i++ {
			tb.sendRaw([]byte("garbage"))
			tb.expect(typeError)
		}
		id := fmt.Sprintf("ok-%d", round)
		tb.message(id, "fine")
		tb.expect(typeMessage)
		if f := tb.expect(typeAck); f.ID != id {
			t.Fatalf("got %+v, want ack %s", f, id)
		}
	}
}

func TestOversizeFrameCloses(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"max_message_bytes": 10}))
	tb, _ := ts.connect(t, "", 0)
	tb.message("big", strings.Repeat("x", 6*10+2048))
	tb.expectClose(websocket.StatusMessageTooBig)
}

func TestRateLimit(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"rate_limit": 2}))
	tb, w := ts.connect(t, "", 0)
	for i := 1; i <= 2; i++ {
		tb.message(fmt.Sprintf("m%d", i), "hi")
		tb.expect(typeMessage)
		tb.expect(typeAck)
	}
	tb.message("m3", "hi")
	f := tb.expect(typeError)
	if f.ID != "m3" || f.Code != codeRateLimited || !f.Retry || !strings.Contains(f.Error, "2 per minute") {
		t.Fatalf("got %+v, want a retryable rate-limit error for m3", f)
	}
	// The limit is per session: another tab of it is limited too...
	tb2, _ := ts.connect(t, w.Session, 2)
	tb2.message("m4", "hi")
	if f := tb2.expect(typeError); f.Code != codeRateLimited {
		t.Fatalf("other tab got %+v, want rate limited", f)
	}
	// ...but other sessions are not.
	tb3, _ := ts.connect(t, "", 0)
	tb3.message("m5", "hi")
	tb3.expect(typeMessage)
	tb3.expect(typeAck)
}

// TestRateLimitRefundedWhenNotAccepted: messages the core refuses (its
// disk is full) cost no rate, so the re-sends that follow when it is
// back are not refused as over the limit.
func TestRateLimitRefundedWhenNotAccepted(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"rate_limit": 2}))
	tb, _ := ts.connect(t, "", 0)
	ts.core.FailWith(func(context.Context, int, core.Inbound) error { return errDown })
	for i := 1; i <= 5; i++ {
		tb.message(fmt.Sprintf("m%d", i), "hi")
		if f := tb.expect(typeError); f.Code != codeDeliverFailed {
			t.Fatalf("m%d while the core fails: %+v, want deliver_failed, not rate_limited", i, f)
		}
	}
	ts.core.FailWith(nil)
	for i := 1; i <= 2; i++ {
		tb.message(fmt.Sprintf("m%d", i), "hi")
		tb.expect(typeMessage)
		if f := tb.expect(typeAck); f.ID != fmt.Sprintf("m%d", i) {
			t.Fatalf("re-send of m%d: %+v, want its ack", i, f)
		}
	}
	// The limit still holds for the messages that went through.
	tb.message("m3", "hi")
	if f := tb.expect(typeError); f.Code != codeRateLimited {
		t.Fatalf("third accepted message: %+v, want rate_limited", f)
	}
}

func TestOriginCheck(t *testing.T) {
	tests := []struct {
		name    string
		allowed []string
		origin  string
		ok      bool
	}{
		{name: "no origin header (not a browser)", origin: "", ok: true},
		{name: "same host", origin: "same", ok: true},
		{name: "foreign origin rejected by default", origin: "http://evil.example", ok: false},
		{name: "allowed origin", allowed: []string{"https://shop.example.com"}, origin: "https://shop.example.com", ok: true},
		{name: "allowed origin, other scheme", allowed: []string{"https://shop.example.com"}, origin: "http://shop.example.com", ok: false},
		{name: "other origin still rejected", allowed: []string{"https://shop.example.com"}, origin: "https://evil.example", ok: false},
		{name: "wildcard host pattern", allowed: []string{"*.example.com"}, origin: "https://www.example.com", ok: true},
		{name: "star allows all", allowed: []string{"*"}, origin: "https://anything.example", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := core.RawConfig{}
			if tt.allowed != nil {
				raw["allowed_origins"] = tt.allowed
			}
			ts := startServer(t, newTestAdapter(t, raw))
			origin := tt.origin
			if origin == "same" {
				origin = ts.srv.URL
			}
			tb, resp, err := ts.tryDial(origin)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial with Origin %q: %v", origin, err)
				}
				_ = tb.ws.CloseNow()
				return
			}
			if err == nil {
				_ = tb.ws.CloseNow()
				t.Fatalf("dial with Origin %q succeeded, want 403", origin)
			}
			if resp == nil || resp.StatusCode != 403 {
				t.Fatalf("dial with Origin %q: %v, want HTTP 403", origin, err)
			}
		})
	}
}

func TestMaxConnsPerSession(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"max_conns_per_session": 2}))
	_, w := ts.connect(t, "", 0)
	ts.connect(t, w.Session, 0)
	tb := ts.dial(t, "")
	tb.send(map[string]any{"type": "hello", "session": w.Session})
	if f := tb.expect(typeError); f.Code != codeTooManyConns {
		t.Fatalf("got %+v, want too_many_connections", f)
	}
	tb.expectClose(websocket.StatusTryAgainLater)
	// Another session is not affected.
	ts.connect(t, "", 0)
}

func TestHistoryLimitOnReplay(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"history_limit": 3}))
	id := newSessionID()
	for i := 1; i <= 5; i++ {
		ts.send(t, id, fmt.Sprint(i))
	}
	tb, w := ts.connect(t, id, 0)
	if w.LastSeq != 5 {
		t.Fatalf("welcome last_seq = %d, want 5", w.LastSeq)
	}
	for _, want := range []int64{3, 4, 5} {
		if f := tb.expect(typeMessage); f.Seq != want || f.Text != fmt.Sprint(want) {
			t.Fatalf("got %+v, want seq %d", f, want)
		}
	}
	ts.send(t, id, "6")
	if f := tb.expect(typeMessage); f.Seq != 6 {
		t.Fatalf("got %+v, want seq 6", f)
	}
}

func TestEvictionClosesTabsOfEvictedSession(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"max_sessions": 1}))
	tb, w := ts.connect(t, "", 0)
	ts.send(t, w.Session, "kept")
	tb.expect(typeMessage)
	// A Send to a session nobody has open does not need the cache...
	other := newSessionID()
	ts.send(t, other, "for nobody yet")
	if !ts.a.hasSession(w.Session) || ts.a.hasSession(other) {
		t.Fatal("a Send to a session without tabs changed the cache")
	}
	// ...but opening it does, and pushes the connected session out.
	ts.connect(t, other, 0)
	tb.expectClose(websocket.StatusGoingAway)
	if ts.a.hasSession(w.Session) {
		t.Fatal("evicted session still cached")
	}
	// Eviction is from memory only: the page reconnects into the same
	// incarnation, with its history.
	tb2, w2 := ts.connect(t, w.Session, 0)
	if w2.Session != w.Session || w2.Epoch != w.Epoch || w2.LastSeq != 1 {
		t.Fatalf("welcome after eviction = %+v, want session %s, epoch %s, last_seq 1", w2, w.Session, w.Epoch)
	}
	if f := tb2.expect(typeMessage); f.Text != "kept" || f.Seq != 1 {
		t.Fatalf("replay after eviction = %+v, want the kept message", f)
	}
}

func TestStopClosesConnectionsGoingAway(t *testing.T) {
	a := newTestAdapter(t, nil)
	ts := startServer(t, a)
	tb, w := ts.connect(t, "", 0)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		done <- a.Stop(ctx)
	}()
	tb.expectClose(websocket.StatusGoingAway)
	if err := <-done; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, resp, err := ts.tryDial(""); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial after Stop: %v, want HTTP 503", err)
	}
	if err := a.Send(context.Background(), core.Outbound{ChatID: w.Session, Text: "x"}); err == nil {
		t.Fatal("Send after Stop succeeded")
	}
}

func TestSlowClientDoesNotBlockSend(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"history_limit": 2}))
	slow, w := ts.connect(t, "", 0) // never reads again
	fast, wf := ts.connect(t, "", 0)
	_ = slow

	big := strings.Repeat("x", 64<<10)
	// Each Send commits 64 KiB to the mailbox, so the total time depends
	// on the disk; what must stay short is every single Send, which a
	// wait for the stuck tab would stretch to writeTimeout or forever.
	var slowest time.Duration
	// Far more than socket buffers and the slow tab's queue hold.
	for i := 0; i < 500 && ts.a.connsOf(w.Session) > 0; i++ {
		start := time.Now()
		ts.send(t, w.Session, big)
		slowest = max(slowest, time.Since(start))
	}
	ts.send(t, wf.Session, "still flowing")
	if f := fast.expect(typeMessage); f.Text != "still flowing" {
		t.Fatalf("fast tab got %+v", f)
	}
	eventually(t, "the slow tab to be dropped", func() bool { return ts.a.connsOf(w.Session) == 0 })
	if slowest > writeTimeout/5 {
		t.Fatalf("a Send took %s with a stuck tab; Send must not wait for browsers", slowest)
	}
}

func TestConcurrentSend(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"history_limit": 1000}))
	const sessions, senders, perSender = 3, 4, 25
	type tabInfo struct {
		tb *tab
		id string
	}
	var tabs []tabInfo
	for i := 0; i < sessions; i++ {
		tb, w := ts.connect(t, "", 0)
		tabs = append(tabs, tabInfo{tb, w.Session})
		// A second tab of the same session.
		tb2, _ := ts.connect(t, w.Session, 0)
		tabs = append(tabs, tabInfo{tb2, w.Session})
	}

	var wg sync.WaitGroup
	for s := 0; s < sessions; s++ {
		id := tabs[2*s].id
		for g := 0; g < senders; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perSender; i++ {
					err := ts.a.Send(context.Background(), core.Outbound{ChatID: id, ID: fmt.Sprintf("%d-%d", g, i), Text: "x", From: core.SenderBot})
					if err != nil {
						t.Errorf("Send: %v", err)
						return
					}
				}
			}()
		}
	}
	// Tabs read concurrently with the senders.
	for _, ti := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for want := int64(1); want <= senders*perSender; want++ {
				f, err := ti.tb.read()
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				if f.Seq != want {
					t.Errorf("seq = %d, want %d (frames must arrive in order, none lost)", f.Seq, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestDialogChangedShowsEvent(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	ctx := context.Background()

	changes := []struct {
		name      string
		prev, cur core.DialogState
		wantEvent bool
	}{
		{name: "handed to operator", cur: core.DialogState{Operator: true}, wantEvent: true},
		{name: "irrelevant flag", prev: core.DialogState{Operator: true}, cur: core.DialogState{Operator: true, Interest: true}},
		{name: "closed", prev: core.DialogState{Operator: true}, cur: core.DialogState{Operator: true, Closed: true}, wantEvent: true},
	}
	var seq int64
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			if err := ts.a.DialogChanged(ctx, core.DialogEvent{ChatID: w.Session, Previous: c.prev, Current: c.cur}); err != nil {
				t.Fatalf("DialogChanged: %v", err)
			}
			ts.send(t, w.Session, "barrier")
			f := tb.next()
			if c.wantEvent {
				seq++
				if f.Type != typeEvent || f.Operator != c.cur.Operator || f.Closed != c.cur.Closed || f.Seq != seq {
					t.Fatalf("got %+v, want event %+v with seq %d", f, c.cur, seq)
				}
				f = tb.next()
			}
			seq++
			if f.Type != typeMessage || f.Text != "barrier" {
				t.Fatalf("got %+v, want the barrier message", f)
			}
		})
	}

	unknown := newSessionID()
	if err := ts.a.DialogChanged(ctx, core.DialogEvent{ChatID: unknown, Current: core.DialogState{Closed: true}}); err != nil {
		t.Fatalf("DialogChanged for unknown session: %v", err)
	}
	if _, ok := ts.a.stored(t, unknown); ok || ts.a.hasSession(unknown) {
		t.Fatal("DialogChanged created a session")
	}
	// The events are stored: a reloaded page shows them in place.
	tb2, _ := ts.connect(t, w.Session, 0)
	if f := tb2.expect(typeEvent); f.Seq != 1 || !f.Operator || f.Closed {
		t.Fatalf("replayed %+v, want the operator event with seq 1", f)
	}
}

func TestSlowDeliveryDoesNotStallTheConnection(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	tb, w := ts.connect(t, "", 0)
	release := make(chan struct{})
	ts.core.FailWith(func(ctx context.Context, _ int, _ core.Inbound) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})

	frames := make(chan frame, 10)
	go func() {
		for {
			f, err := tb.read()
			if err != nil {
				close(frames)
				return
			}
			frames <- f
		}
	}()
	tb.message("slow-1", "hello")
	// While the core sits on the message, replies still flow and the
	// connection still answers pings.
	ts.send(t, w.Session, "meanwhile")
	if f := <-frames; f.Text != "meanwhile" {
		t.Fatalf("got %+v, want the reply sent meanwhile", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tb.ws.Ping(ctx); err != nil {
		t.Fatalf("ping during a slow delivery: %v", err)
	}
	close(release)
	if f := <-frames; f.Type != typeMessage || f.ID != "slow-1" {
		t.Fatalf("got %+v, want the user's message", f)
	}
	if f := <-frames; f.Type != typeAck || f.ID != "slow-1" {
		t.Fatalf("got %+v, want the ack", f)
	}
}

func TestUnansweredPingsDropTheConnection(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"ping_interval": "1s"}))
	_, w := ts.connect(t, "", 0) // never reads again, so never answers pings
	eventually(t, "the silent tab to be dropped", func() bool { return ts.a.connsOf(w.Session) == 0 })
}

// TestSessionReloadedOnHello checks that a session that left memory (its
// tab closed, and other sessions took its place) is loaded again on the
// next hello with its epoch and seqs, and replays exactly what the tab
// missed meanwhile.
func TestSessionReloadedOnHello(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"max_sessions": 1}))
	tb, w := ts.connect(t, "", 0)
	tb.message("c-1", "question")
	tb.expect(typeMessage)
	tb.expect(typeAck)
	ts.send(t, w.Session, "answer")
	if f := tb.expect(typeMessage); f.Seq != 2 {
		t.Fatalf("got %+v, want the answer with seq 2", f)
	}
	_ = tb.ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "the tab to detach", func() bool { return ts.a.connsOf(w.Session) == 0 })
	ts.connect(t, "", 0) // another session takes the only place
	// Once the closed tab's last call has let go of it (release makes
	// room): that can come a moment after the tab is counted out.
	eventually(t, "the idle session to leave memory", func() bool { return !ts.a.hasSession(w.Session) })
	// A reply while it is out of memory goes to the mailbox only.
	ts.send(t, w.Session, "missed")
	if ts.a.hasSession(w.Session) {
		t.Fatal("a Send loaded the session")
	}

	tb2 := ts.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 2, "epoch": w.Epoch})
	if w2 := tb2.expect(typeWelcome); w2.Epoch != w.Epoch || w2.LastSeq != 3 {
		t.Fatalf("welcome = %+v, want epoch %s and last_seq 3", w2, w.Epoch)
	}
	if f := tb2.expect(typeMessage); f.Seq != 3 || f.Text != "missed" {
		t.Fatalf("replay = %+v, want only the missed reply, seq 3", f)
	}
	// Its seqs carry on, and its history still dedupes.
	tb2.message("c-1", "question")
	if f := tb2.expect(typeAck); f.Seq != 1 {
		t.Fatalf("re-sent c-1 acked with %+v, want its old seq 1", f)
	}
	tb2.message("c-2", "another")
	if f := tb2.expect(typeMessage); f.Seq != 4 || f.ID != "c-2" {
		t.Fatalf("got %+v, want c-2 with seq 4", f)
	}
	if f := tb2.expect(typeAck); f.Seq != 4 {
		t.Fatalf("got %+v, want the ack of seq 4", f)
	}
	if n := len(ts.core.Answered()); n != 2 {
		t.Fatalf("%d messages delivered, want 2 (c-1 once, c-2)", n)
	}
}

// TestIdleConnectionsCostOneGoroutineEach checks that a connection with
// nothing to do keeps only its reader: the writer, the frame handler and
// the pings run only while they have work.
func TestIdleConnectionsCostOneGoroutineEach(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	addr := strings.TrimPrefix(ts.srv.URL, "http://")
	before := runtime.NumGoroutine()
	const n = 10
	for i := range n {
		tab, err := dialRaw(addr, ts.a.cfg.Path+"ws")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(tab.close)
		if err := tab.writeText([]byte(`{"type":"hello"}`)); err != nil {
			t.Fatal(err)
		}
		b, err := tab.readData()
		if err != nil {
			t.Fatal(err)
		}
		var w frame
		if err := json.Unmarshal(b, &w); err != nil || w.Type != typeWelcome {
			t.Fatalf("welcome = %s, %v", b, err)
		}
		// Some work for every part of the connection.
		if err := tab.writeText(fmt.Appendf(nil, `{"type":"message","id":"m%d","text":"hi"}`, i)); err != nil {
			t.Fatal(err)
		}
		ts.send(t, w.Session, "reply")
		for range 3 { // the echo, the ack, the reply
			if _, err := tab.readData(); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "one goroutine per idle connection", func() bool { return runtime.NumGoroutine()-before <= n })
}

func TestPingsKeepAnAnsweringTabOpen(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, core.RawConfig{"ping_interval": "1s"}))
	var pings atomic.Int32
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, ts.wsURL(), &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	tb := &tab{t: t, ws: ws}
	tb.send(map[string]any{"type": "hello"})
	w := tb.expect(typeWelcome)
	// Reading answers the pings.
	frames := make(chan frame, 10)
	go func() {
		defer close(frames)
		for {
			f, err := tb.read()
			if err != nil {
				return
			}
			frames <- f
		}
	}()
	eventually(t, "two pings", func() bool { return pings.Load() >= 2 })
	if ts.a.connsOf(w.Session) != 1 {
		t.Fatal("a tab that answers pings was dropped")
	}
	ts.send(t, w.Session, "still here")
	if f := <-frames; f.Text != "still here" {
		t.Fatalf("got %+v, want the reply", f)
	}
}

// TestMachineCrashSkipsLostSeqs checks the one loss an unsynced copy of a
// user's message allows: a machine crash right after its ack loses the
// copy from the history, and the browser has seen its seq. The next start
// skips past it, so that the next reply does not take that seq, which the
// browser would take for one it has shown already.
func TestMachineCrashSkipsLostSeqs(t *testing.T) {
	withBootID(t, "boot-a")
	dir := t.TempDir()
	a1 := newTestAdapterIn(t, nil, dir)
	ts1 := startServer(t, a1)
	tb, w := ts1.connect(t, "", 0)
	ts1.send(t, w.Session, "first")
	tb.expect(typeMessage)
	tb.message("c-1", "question")
	if f := tb.expect(typeMessage); f.Seq != 2 {
		t.Fatalf("got %+v, want the echo with seq 2", f)
	}
	tb.expect(typeAck)
	_ = tb.ws.CloseNow()
	if err := a1.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// What the machine crash leaves: the commit of the copy, never
	// synced, is gone, and so is the clean close.
	db, err := sql.Open(sqlitedb.DriverName, filepath.Join(dir, mailboxFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM history WHERE seq = 2`, `UPDATE sessions SET last_seq = 1`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := os.WriteFile(filepath.Join(dir, mailboxFile+unsyncedSuffix), []byte("boot-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	withBootID(t, "boot-b")
	a2 := newTestAdapterIn(t, nil, dir)
	ts2 := startServer(t, a2)
	ts2.send(t, w.Session, "second")
	tb2 := ts2.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 2, "epoch": w.Epoch})
	w2 := tb2.expect(typeWelcome)
	if w2.Epoch != w.Epoch || w2.LastSeq <= 2 {
		t.Fatalf("welcome after the crash = %+v, want epoch %s and a last_seq past 2", w2, w.Epoch)
	}
	if f := tb2.expect(typeMessage); f.Text != "second" || f.Seq != w2.LastSeq {
		t.Fatalf("replay = %+v, want the reply sent after the crash", f)
	}
}
