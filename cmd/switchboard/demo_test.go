package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/switchboard-gw/switchboard/internal/testutil"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// TestDemoChatRoundTrip runs `switchboard demo` as a user would (on a free
// port), chats with it over the webchat WebSocket, and stops it.
func TestDemoChatRoundTrip(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &testutil.SyncBuffer{}
	cmd := newRootCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"demo", "--port", "0", "--think", "0s", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	urlRE := regexp.MustCompile(`Open the chat:\s+(http://\S+)/chat/`)
	var base string
	deadline := time.Now().Add(20 * time.Second)
	for base == "" {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
			break
		}
		select {
		case err := <-done:
			t.Fatalf("demo exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no URL:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	resp, err := http.Get(base + "/chat/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /chat/ = %d", resp.StatusCode)
	}

	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	conn, _, err := websocket.Dial(wctx, strings.Replace(base, "http://", "ws://", 1)+"/chat/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {base}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(wsjson.Write(wctx, conn, map[string]any{"type": "hello"}))
	must(wsjson.Write(wctx, conn, map[string]any{"type": "message", "id": "m-1", "text": "hello"}))
	want := fakeselarti.Reply("hello")
	for {
		var frame map[string]any
		if err := wsjson.Read(wctx, conn, &frame); err != nil {
			t.Fatalf("waiting for the bot reply: %v", err)
		}
		if frame["type"] == "error" {
			b, _ := json.Marshal(frame)
			t.Fatalf("error frame: %s", b)
		}
		if frame["type"] == "message" && frame["from"] == "bot" {
			if frame["text"] != want {
				t.Fatalf("bot said %q, want %q", frame["text"], want)
			}
			break
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("demo did not stop on cancel")
	}
}

// demoURLs are the addresses the demo's banner prints.
type demoURLs struct{ chat, site, console string }

var (
	chatRE    = regexp.MustCompile(`Open the chat:\s+(http://\S+)/chat/`)
	siteRE    = regexp.MustCompile(`Widget on a site:\s+(http://\S+)/`)
	consoleRE = regexp.MustCompile(`Operator console:\s+(http://\S+)`)
)

// parseBanner finds the URLs in the banner, or reports false.
func parseBanner(s string) (demoURLs, bool) {
	c, si, co := chatRE.FindStringSubmatch(s), siteRE.FindStringSubmatch(s), consoleRE.FindStringSubmatch(s)
	if c == nil || si == nil || co == nil {
		return demoURLs{}, false
	}
	return demoURLs{chat: c[1], site: si[1], console: co[1]}, true
}

// startDemo runs `switchboard demo` on free ports until the test ends,
// and returns its banner's URLs.
func startDemo(t *testing.T) demoURLs {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testutil.SyncBuffer{}
	cmd := newRootCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"demo", "--port", "0", "--think", "0s", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo exit: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("demo did not stop on cancel")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if u, ok := parseBanner(out.String()); ok {
			return u
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("demo exited early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo printed no banner:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	return resp, string(b)
}

// The sample host page is served on another origin, carries the widget's
// script tag, and the chat lets that origin frame it.
func TestDemoHostPageOriginAllowed(t *testing.T) {
	u := startDemo(t)
	if u.site == u.chat {
		t.Fatalf("host page %s on the chat's own origin", u.site)
	}
	_, page := httpGet(t, u.site+"/")
	if want := `<script src="` + u.chat + `/chat/widget.js" async></script>`; !strings.Contains(page, want) {
		t.Fatalf("host page lacks %s:\n%s", want, page)
	}
	for _, lang := range []string{`lang="en"`, `lang="ru"`, `lang="uz"`} {
		if !strings.Contains(page, lang) {
			t.Errorf("host page has no %s text", lang)
		}
	}
	resp, _ := httpGet(t, u.chat+"/chat/")
	csp := resp.Header.Get("Content-Security-Policy")
	m := regexp.MustCompile(`frame-ancestors ([^;]*)`).FindStringSubmatch(csp)
	if m == nil || !strings.Contains(" "+m[1]+" ", " "+u.site+" ") {
		t.Fatalf("chat CSP %q does not let %s frame it", csp, u.site)
	}
	// The widget's WebSocket, from the chat page's iframe, and one from
	// the host page itself are both let in.
	ws := strings.Replace(u.chat, "http://", "ws://", 1) + "/chat/ws"
	conn, _, err := websocket.Dial(context.Background(), ws, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {u.site}}})
	if err != nil {
		t.Fatalf("WebSocket from the host page's origin: %v", err)
	}
	conn.CloseNow()
}

// wsFrame is a webchat server frame.
type wsFrame struct {
	Type     string `json:"type"`
	Session  string `json:"session"`
	From     string `json:"from"`
	Text     string `json:"text"`
	ID       string `json:"id"`
	Operator bool   `json:"operator"`
}

// The operator note comes after the bot's "connecting you", and the
// operator console's answer reaches the visitor as an operator's.
func TestDemoOperatorConsoleReplyReachesTheChat(t *testing.T) {
	u := startDemo(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, strings.Replace(u.chat, "http://", "ws://", 1)+"/chat/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {u.chat}}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	write := func(v any) {
		t.Helper()
		if err := wsjson.Write(ctx, conn, v); err != nil {
			t.Fatal(err)
		}
	}
	// next reads frames up to one that is a message or an event.
	next := func() wsFrame {
		t.Helper()
		for {
			var f wsFrame
			if err := wsjson.Read(ctx, conn, &f); err != nil {
				t.Fatalf("read frame: %v", err)
			}
			if f.Type == "error" {
				t.Fatalf("error frame %+v", f)
			}
			if (f.Type == "message" && f.From != "user") || f.Type == "event" {
				return f
			}
		}
	}
	write(map[string]any{"type": "hello"})
	write(map[string]any{"type": "message", "id": "m-1", "text": "operator"})
	first, second := next(), next()
	if first.Type != "message" || first.From != "bot" || first.Text != fakeselarti.Reply("operator") {
		t.Fatalf("first after \"operator\": %+v, want the bot's %q", first, fakeselarti.Reply("operator"))
	}
	if second.Type != "event" || !second.Operator {
		t.Fatalf("second after \"operator\": %+v, want the operator note", second)
	}

	var dialogs []fakeselarti.DialogView
	_, body := httpGet(t, u.console+"api/dialogs")
	if err := json.Unmarshal([]byte(body), &dialogs); err != nil || len(dialogs) != 1 {
		t.Fatalf("console dialogs = %s (%v), want one", body, err)
	}
	origin := strings.TrimSuffix(u.console, "/operator/")
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u.console+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s = %d", path, resp.StatusCode)
		}
	}
	thread := dialogs[0].Thread
	post("api/takeover", `{"thread":"`+thread+`"}`)
	post("api/reply", `{"thread":"`+thread+`","text":"Hi, I am Olga from the shop."}`)
	if f := next(); f.Type != "message" || f.From != "operator" || f.Text != "Hi, I am Olga from the shop." {
		t.Fatalf("after the console's reply: %+v, want the operator's message", f)
	}
}

// A busy port is reported with the way to pick another, in the words of
// how the demo was started.
func TestDemoBusyPortHint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	run := func() error {
		cmd := newRootCmd()
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs([]string{"demo", "--port", port, "--log-level", "error"})
		return cmd.ExecuteContext(context.Background())
	}
	t.Setenv("MAKELEVEL", "") // restored after the test
	os.Unsetenv("MAKELEVEL")
	if err := run(); err == nil || !strings.Contains(err.Error(), "try --port") {
		t.Errorf("busy port, run directly: %v, want a --port hint", err)
	}
	t.Setenv("MAKELEVEL", "1")
	if err := run(); err == nil || !strings.Contains(err.Error(), "make demo PORT=") || strings.Contains(err.Error(), "--port") {
		t.Errorf("busy port, under make: %v, want a PORT= hint", err)
	}
}

// `make demo DATA=dir` passes --data dir; without DATA, no --data.
func TestMakeDemoPassesData(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	dry := func(args ...string) string {
		out, err := exec.Command("make", append([]string{"-n", "-C", "../..", "demo"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("make -n demo: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := dry("DATA=/tmp/keep", "PORT=9123"); !strings.Contains(out, "demo --port 9123 --data /tmp/keep") {
		t.Errorf("make -n demo DATA=/tmp/keep:\n%s", out)
	}
	if out := dry(); strings.Contains(out, "--data") || strings.Contains(out, "go run") {
		t.Errorf("make -n demo:\n%s", out)
	}
}

// demoChildEnv makes the test binary run the demo as main would (see
// TestDemoExitsZeroOnSignal).
const demoChildEnv = "SWITCHBOARD_TEST_DEMO_CHILD" // SWITCHBOARD_TEST_: not taken for a config override

func TestMain(m *testing.M) {
	if os.Getenv(demoChildEnv) == "1" {
		cmd := newRootCmd()
		cmd.SetArgs([]string{"demo", "--port", "0", "--think", "0s", "--log-level", "error"})
		if err := cmd.Execute(); err != nil {
			os.Stderr.WriteString("switchboard: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// Ctrl+C (SIGINT) and SIGTERM end the demo with status 0 after a clean
// shutdown.
func TestDemoExitsZeroOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), demoChildEnv+"=1")
			out := &testutil.SyncBuffer{}
			stderr := &testutil.SyncBuffer{}
			cmd.Stdout, cmd.Stderr = out, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, ok := parseBanner(out.String()); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no banner:\n%s\n%s", out.String(), stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()
			select {
			case err := <-errc:
				if err != nil { // an *exec.ExitError with the status
					t.Fatalf("demo after %s: %v\n%s", sig, err, stderr.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("demo did not stop on %s", sig)
			}
		})
	}
}
