package selarti

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

var flagFields = []string{
	selarti.FieldClose, selarti.FieldGetContact, selarti.FieldInterest,
	selarti.FieldIsBot, selarti.FieldOperator, selarti.FieldSuccess,
}

var stringFields = []string{
	selarti.FieldChannelID, selarti.FieldCompanyID, selarti.FieldContacts,
	selarti.FieldExternalChatID, selarti.FieldManagerID, selarti.FieldMessageID,
	selarti.FieldMessageText, selarti.FieldMessageType, selarti.FieldPanelURL,
	selarti.FieldShareURL, selarti.FieldTaskID, selarti.FieldThreadID,
	selarti.FieldTitle, selarti.FieldWhType,
}

// flagValue reads a flag in the shape the server was configured for and
// fails the test on any other shape.
func flagValue(t *testing.T, p map[string]any, field string, asStrings bool) bool {
	t.Helper()
	v, ok := p[field]
	if !ok {
		t.Fatalf("webhook has no %q: %v", field, p)
	}
	if !asStrings {
		b, ok := v.(bool)
		if !ok {
			t.Fatalf("%s = %#v, want a JSON boolean", field, v)
		}
		return b
	}
	switch v {
	case "yes":
		return true
	case "no":
		return false
	}
	t.Fatalf("%s = %#v, want \"yes\" or \"no\"", field, v)
	return false
}

// flags is a webhook's six flags.
type flags struct{ close, getContact, interest, isBot, operator, success bool }

func readFlags(t *testing.T, p map[string]any, asStrings bool) flags {
	t.Helper()
	return flags{
		close:      flagValue(t, p, selarti.FieldClose, asStrings),
		getContact: flagValue(t, p, selarti.FieldGetContact, asStrings),
		interest:   flagValue(t, p, selarti.FieldInterest, asStrings),
		isBot:      flagValue(t, p, selarti.FieldIsBot, asStrings),
		operator:   flagValue(t, p, selarti.FieldOperator, asStrings),
		success:    flagValue(t, p, selarti.FieldSuccess, asStrings),
	}
}

func TestWebhookFields(t *testing.T) {
	for _, asStrings := range []bool{false, true} {
		t.Run(fmt.Sprintf("BoolsAsStrings=%v", asStrings), func(t *testing.T) {
			rc := newReceiver(t, nil)
			s := startServer(t, Options{WebhookURL: rc.srv.URL, BoolsAsStrings: asStrings})
			c := newClient(t, s, 5*time.Second)
			r := c.mustPost("/wf/send_external_message", c.auth(), map[string]any{
				"task_id": testTask, "chat_id": "webchat:abc", "message": "hello",
				"name": "Ann Lee", "phone": "+15550001111", "username": "ann",
			})
			if r.status != http.StatusOK {
				t.Fatalf("send: %d %v", r.status, r.body)
			}
			if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			got := rc.payloads()
			if len(got) != 2 {
				t.Fatalf("receiver got %d webhooks, want 2: %v", len(got), got)
			}
			root := strings.TrimSuffix(s.URL(), "/api/1.1")
			for i, want := range []struct{ typ, text string }{
				{selarti.TypeUser, "hello"},
				{selarti.TypeBot, Reply("hello")},
			} {
				p := got[i]
				if len(p) != len(flagFields)+len(stringFields) {
					t.Errorf("webhook %d has %d fields, want %d: %v", i, len(p), len(flagFields)+len(stringFields), p)
				}
				for _, f := range stringFields {
					if _, ok := p[f].(string); !ok {
						t.Errorf("webhook %d: %s = %#v, want a string", i, f, p[f])
					}
				}
				if fl := readFlags(t, p, asStrings); fl != (flags{}) {
					t.Errorf("webhook %d: flags %+v, want all false", i, fl)
				}
				checks := map[string]string{
					selarti.FieldMessageType:    want.typ,
					selarti.FieldMessageText:    want.text,
					selarti.FieldExternalChatID: "webchat:abc",
					selarti.FieldTaskID:         testTask,
					selarti.FieldTitle:          "Ann Lee",
					selarti.FieldContacts:       "+15550001111, @ann",
					selarti.FieldWhType:         "new_message",
					selarti.FieldThreadID:       got[0][selarti.FieldThreadID].(string),
					selarti.FieldCompanyID:      got[0][selarti.FieldCompanyID].(string),
				}
				for f, w := range checks {
					if p[f] != w {
						t.Errorf("webhook %d: %s = %q, want %q", i, f, p[f], w)
					}
				}
				for _, f := range []string{selarti.FieldMessageID, selarti.FieldThreadID, selarti.FieldChannelID, selarti.FieldCompanyID, selarti.FieldManagerID} {
					if v, _ := p[f].(string); !bubbleIDPattern.MatchString(v) {
						t.Errorf("webhook %d: %s = %q, want a Bubble id", i, f, v)
					}
				}
				for _, f := range []string{selarti.FieldPanelURL, selarti.FieldShareURL} {
					if v, _ := p[f].(string); !strings.HasPrefix(v, root+"/") || !strings.HasSuffix(v, p[selarti.FieldThreadID].(string)) {
						t.Errorf("webhook %d: %s = %q, want a link to the dialog", i, f, v)
					}
				}
			}
			if got[0][selarti.FieldMessageID] == got[1][selarti.FieldMessageID] {
				t.Error("user and bot webhooks share a message_id")
			}

			// The share link serves the dialog's transcript.
			resp, err := http.Get(got[1][selarti.FieldShareURL].(string))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(page), "user: hello\n") || !strings.Contains(string(page), "bot: "+Reply("hello")) {
				t.Errorf("share page = %q, want the transcript", page)
			}
		})
	}
}

func TestDialogFlags(t *testing.T) {
	// One dialog, step by step. The user's webhook shows the state before
	// the assistant's conclusions (except that writing reopens a closed
	// dialog); the bot's webhook shows it after.
	steps := []struct {
		text         string
		user, bot    flags
		wantContacts string
	}{
		{text: "how much does the lamp cost?", user: flags{}, bot: flags{interest: true}},
		{text: "call me: +7 900 123 45 67", user: flags{interest: true}, bot: flags{interest: true, getContact: true, success: true}, wantContacts: "+79001234567"},
		{text: "can I talk to a human?", user: flags{interest: true, getContact: true, success: true}, bot: flags{interest: true, getContact: true, success: true, operator: true}, wantContacts: "+79001234567"},
		{text: "bye", user: flags{interest: true, getContact: true, success: true, operator: true}, bot: flags{interest: true, getContact: true, success: true, operator: true, close: true}, wantContacts: "+79001234567"},
		{text: "hello again", user: flags{interest: true, getContact: true, success: true, operator: true}, bot: flags{interest: true, getContact: true, success: true, operator: true}, wantContacts: "+79001234567"},
	}
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL, BoolsAsStrings: true})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth()
	for i, st := range steps {
		t.Run(st.text, func(t *testing.T) {
			c.send(bearer, "c1", st.text)
			if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
				t.Fatal(err)
			}
			got := rc.payloads()
			if len(got) != 2*(i+1) {
				t.Fatalf("receiver has %d webhooks, want %d", len(got), 2*(i+1))
			}
			user, bot := got[2*i], got[2*i+1]
			if fl := readFlags(t, user, true); fl != st.user {
				t.Errorf("user webhook flags %+v, want %+v", fl, st.user)
			}
			if fl := readFlags(t, bot, true); fl != st.bot {
				t.Errorf("bot webhook flags %+v, want %+v", fl, st.bot)
			}
			if bot[selarti.FieldContacts] != st.wantContacts {
				t.Errorf("contacts = %q, want %q", bot[selarti.FieldContacts], st.wantContacts)
			}
			if bot[selarti.FieldMessageText] != Reply(st.text) {
				t.Errorf("bot text = %q, want %q", bot[selarti.FieldMessageText], Reply(st.text))
			}
		})
	}
}

func TestWebhookRetry(t *testing.T) {
	t.Run("same message_id after a 500", func(t *testing.T) {
		rc := newReceiver(t, func(n int, _ map[string]any) int {
			if n == 0 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		s := startServer(t, Options{WebhookURL: rc.srv.URL})
		c := newClient(t, s, 5*time.Second)
		c.send(c.auth(), "c1", "hello")
		if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		got := rc.payloads()
		if len(got) != 3 {
			t.Fatalf("receiver got %d requests, want 3 (failed, retried, reply)", len(got))
		}
		if got[0][selarti.FieldMessageID] != got[1][selarti.FieldMessageID] || got[0][selarti.FieldMessageType] != selarti.TypeUser {
			t.Errorf("retry changed the message: %v then %v", got[0], got[1])
		}
		if got[2][selarti.FieldMessageType] != selarti.TypeBot {
			t.Errorf("third request is %v, want the bot reply", got[2][selarti.FieldMessageType])
		}
		attempts := s.Webhooks()
		wantStatus := []int{500, 200, 200}
		if len(attempts) != len(wantStatus) {
			t.Fatalf("Webhooks() has %d attempts, want 3", len(attempts))
		}
		for i, a := range attempts {
			if a.Status != wantStatus[i] || (a.Err == "") != (a.Status == 200) {
				t.Errorf("attempt %d: status %d err %q, want status %d", i, a.Status, a.Err, wantStatus[i])
			}
			if a.Payload[selarti.FieldMessageID] != got[i][selarti.FieldMessageID] {
				t.Errorf("attempt %d records message_id %v, receiver saw %v", i, a.Payload[selarti.FieldMessageID], got[i][selarti.FieldMessageID])
			}
		}
		// Webhooks returns copies.
		attempts[0].Payload[selarti.FieldMessageText] = "changed"
		if s.Webhooks()[0].Payload[selarti.FieldMessageText] != "hello" {
			t.Error("Webhooks() shares its payload maps with the server")
		}
	})

	t.Run("gives up after five tries and goes on", func(t *testing.T) {
		rc := newReceiver(t, func(_ int, p map[string]any) int {
			if p[selarti.FieldMessageType] == selarti.TypeUser {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		s := startServer(t, Options{WebhookURL: rc.srv.URL})
		c := newClient(t, s, 5*time.Second)
		c.send(c.auth(), "c1", "hello")
		if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		var types []string
		for _, a := range s.Webhooks() {
			types = append(types, fmt.Sprintf("%v:%d", a.Payload[selarti.FieldMessageType], a.Status))
		}
		want := "user:502 user:502 user:502 user:502 user:502 bot:200"
		if strings.Join(types, " ") != want {
			t.Errorf("attempts %v, want %s", types, want)
		}
		gaveUp := s.GaveUp()
		if len(gaveUp) != 1 || gaveUp[0].Payload[selarti.FieldMessageType] != selarti.TypeUser || gaveUp[0].Status != http.StatusBadGateway {
			t.Errorf("GaveUp() = %+v, want the user webhook's last attempt (502)", gaveUp)
		}
	})

	t.Run("network errors are retried and recorded", func(t *testing.T) {
		s := startServer(t, Options{}) // no webhook URL yet
		c := newClient(t, s, 5*time.Second)
		c.send(c.auth(), "c1", "hello")
		eventually(t, 2*time.Second, "a failed attempt", func() bool { return len(s.Webhooks()) > 0 })
		if a := s.Webhooks()[0]; a.Status != 0 || a.Err == "" {
			t.Errorf("attempt without URL: status %d err %q", a.Status, a.Err)
		}
		rc := newReceiver(t, nil)
		s.SetWebhookURL(rc.srv.URL)
		if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		// The late URL may come after the user webhook gave up; the reply
		// must arrive in any case.
		got := rc.payloads()
		if len(got) == 0 || got[len(got)-1][selarti.FieldMessageText] != Reply("hello") {
			t.Errorf("receiver got %v, want the reply last", got)
		}
	})
}

func TestThinkTime(t *testing.T) {
	const think = 200 * time.Millisecond
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL, ThinkTime: think})
	c := newClient(t, s, 5*time.Second)
	c.send(c.auth(), "c1", "hello")
	if err := s.WaitIdle(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.at) != 2 {
		t.Fatalf("got %d webhooks, want 2", len(rc.at))
	}
	if gap := rc.at[1].Sub(rc.at[0]); gap < think {
		t.Errorf("bot reply came %s after the user webhook, want at least %s", gap, think)
	}
}

func TestInjectOperator(t *testing.T) {
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL})
	ctx := ctxTimeout(t, 5*time.Second)

	if err := s.InjectOperator(ctx, "nobody", "hi"); !errors.Is(err, ErrNoDialog) {
		t.Fatalf("InjectOperator on an unknown chat: %v, want ErrNoDialog", err)
	}
	c := newClient(t, s, 5*time.Second)
	c.send(c.auth(), "c1", "hello")
	if err := s.InjectOperator(ctx, "c1", "Hi, I'm Olga from the shop."); err != nil {
		t.Fatalf("InjectOperator: %v", err)
	}
	// InjectOperator returns once its webhook was delivered, after the
	// dialog's earlier ones.
	got := rc.payloads()
	if len(got) != 3 {
		t.Fatalf("receiver got %d webhooks, want 3", len(got))
	}
	op := got[2]
	if op[selarti.FieldMessageType] != selarti.TypeOperator || op[selarti.FieldMessageText] != "Hi, I'm Olga from the shop." {
		t.Errorf("operator webhook = %v", op)
	}
	if op[selarti.FieldOperator] != true || op[selarti.FieldExternalChatID] != "c1" || op[selarti.FieldThreadID] != got[0][selarti.FieldThreadID] {
		t.Errorf("operator webhook = %v, want operator=true in the same dialog", op)
	}
	if err := s.InjectOperator(ctx, "c1", "  "); err == nil {
		t.Error("InjectOperator accepted an empty text")
	}
}

func TestOrderPerDialog(t *testing.T) {
	dialogs, perDialog := 200, 5
	if raceEnabled {
		dialogs = 100
	}
	var mu sync.Mutex
	byChat := map[string][]map[string]any{}
	rc := newReceiver(t, func(_ int, p map[string]any) int {
		chat, _ := p[selarti.FieldExternalChatID].(string)
		mu.Lock()
		byChat[chat] = append(byChat[chat], p)
		mu.Unlock()
		return http.StatusOK
	})
	s := startServer(t, Options{WebhookURL: rc.srv.URL, ThinkTime: time.Millisecond})
	c := newClient(t, s, 10*time.Second)
	bearer := c.auth()

	var wg sync.WaitGroup
	errs := make(chan error, dialogs)
	for d := range dialogs {
		wg.Go(func() {
			for m := range perDialog {
				r, err := c.post("/wf/send_external_message", bearer, map[string]any{
					"task_id": testTask, "chat_id": fmt.Sprintf("chat-%d", d), "message": fmt.Sprintf("dialog %d says %c", d, 'a'+m),
				})
				if err == nil && r.status != http.StatusOK {
					err = fmt.Errorf("status %d", r.status)
				}
				if err != nil {
					errs <- fmt.Errorf("dialog %d message %d: %w", d, m, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := s.WaitIdle(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(byChat) != dialogs {
		t.Fatalf("webhooks for %d dialogs, want %d", len(byChat), dialogs)
	}
	ids := map[any]bool{}
	for d := range dialogs {
		chat := fmt.Sprintf("chat-%d", d)
		got := byChat[chat]
		var want []string
		for m := range perDialog {
			text := fmt.Sprintf("dialog %d says %c", d, 'a'+m)
			want = append(want, "user:"+text, "bot:"+Reply(text))
		}
		var have []string
		for _, p := range got {
			have = append(have, fmt.Sprintf("%v:%v", p[selarti.FieldMessageType], p[selarti.FieldMessageText]))
			ids[p[selarti.FieldMessageID]] = true
		}
		if strings.Join(have, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s webhooks out of order:\n%s\nwant\n%s", chat, strings.Join(have, "\n"), strings.Join(want, "\n"))
		}
	}
	if len(ids) != dialogs*perDialog*2 {
		t.Errorf("%d distinct message ids, want %d", len(ids), dialogs*perDialog*2)
	}
}
