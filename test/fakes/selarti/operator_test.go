package selarti

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
)

// The console's reply leaves as Selarti's "operator" webhook, in the
// dialog's order, and once taken over the assistant falls silent.
func TestOperatorConsoleTakeOverAndReply(t *testing.T) {
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL})
	c := newClient(t, s, 5*time.Second)
	token := c.auth()
	c.send(token, "c1", "hello")
	eventually(t, 5*time.Second, "the bot's reply", func() bool { return len(rc.payloads()) == 2 })

	var dialogs []DialogView
	getJSON(t, s.ConsoleURL()+"api/dialogs", &dialogs)
	if len(dialogs) != 1 || len(dialogs[0].Lines) != 2 || dialogs[0].Human {
		t.Fatalf("dialogs = %+v, want one of two lines, not taken over", dialogs)
	}
	if b, _ := json.Marshal(dialogs); strings.Contains(string(b), "c1") {
		t.Errorf("the console shows the chat id (a session secret on webchat): %s", b)
	}
	thread := dialogs[0].Thread
	consolePost(t, s, "api/takeover", `{"thread":"`+thread+`"}`, http.StatusOK)
	c.send(token, "c1", "are you there?")
	consolePost(t, s, "api/reply", `{"thread":"`+thread+`","text":"Hi, I am Olga."}`, http.StatusOK)
	got := rc.payloads()
	if len(got) != 4 {
		t.Fatalf("webhooks = %d, want 4 (the assistant silent after the take-over)", len(got))
	}
	if got[2][selarti.FieldMessageType] != selarti.TypeUser {
		t.Errorf("third webhook = %v, want the user's", got[2])
	}
	op := got[3]
	if op[selarti.FieldMessageType] != selarti.TypeOperator || op[selarti.FieldMessageText] != "Hi, I am Olga." ||
		op[selarti.FieldOperator] != true || op[selarti.FieldExternalChatID] != "c1" {
		t.Errorf("operator webhook = %v", op)
	}
	consolePost(t, s, "api/reply", `{"thread":"nope","text":"x"}`, http.StatusNotFound)
}

// A cross-site page cannot drive the console: a form cannot send JSON, and
// a foreign Origin is refused; nor can a rebound DNS name reach it.
func TestOperatorConsoleRefusesOtherSites(t *testing.T) {
	rc := newReceiver(t, nil)
	s := startServer(t, Options{WebhookURL: rc.srv.URL})
	c := newClient(t, s, 5*time.Second)
	c.send(c.auth(), "c1", "hello")
	thread := s.Dialogs()[0].Thread
	body := `{"thread":"` + thread + `"}`

	req, _ := http.NewRequest(http.MethodPost, s.ConsoleURL()+"api/takeover", strings.NewReader("thread="+thread))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	wantStatus(t, req, http.StatusUnsupportedMediaType)

	req, _ = http.NewRequest(http.MethodPost, s.ConsoleURL()+"api/takeover", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "http://evil.example")
	wantStatus(t, req, http.StatusForbidden)

	req, _ = http.NewRequest(http.MethodGet, s.ConsoleURL(), nil)
	req.Host = "evil.example"
	wantStatus(t, req, http.StatusForbidden)

	if s.Dialogs()[0].Human {
		t.Fatal("a refused request took the dialog over")
	}
	req, _ = http.NewRequest(http.MethodGet, s.ConsoleURL(), nil)
	resp := wantStatus(t, req, http.StatusOK)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("console CSP = %q", csp)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func consolePost(t *testing.T, s *Server, path, body string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.ConsoleURL()+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", strings.TrimSuffix(s.root, "/"))
	wantStatus(t, req, want)
}

func wantStatus(t *testing.T, req *http.Request, want int) *http.Response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	return resp
}
