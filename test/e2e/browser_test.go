package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-gw/switchboard/core/engine"
)

// newBrowser starts headless Chromium for one test. Without Chromium the
// test is skipped locally, but fails in CI (CI=true), where `make test`
// installs it: a browser test that silently does not run proves nothing.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found; `make deps` installs it")
		}
		t.Skip("chromium not found (run `make deps`, or set CHROMIUM)")
	}
	opts := append([]chromedp.ExecAllocatorOption{},
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// The machine has no internet: keep Chromium from trying.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// waitForText polls the page until the JavaScript expression (a string)
// contains want.
func waitForText(ctx context.Context, t *testing.T, expr, want string) string {
	t.Helper()
	var got string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		got = v
		if strings.Contains(got, want) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("page never showed %q; last value of %s: %q", want, expr, got)
	return ""
}

const botTexts = `Array.from(document.querySelectorAll('#messages .msg-bot .msg-text')).map(e => e.textContent).join('\n')`
const userTexts = `Array.from(document.querySelectorAll('#messages .msg-user .msg-text')).map(e => e.textContent).join('\n')`

// TestBrowserWebchatRoundTrip opens the webchat page served by a real
// gateway in headless Chromium, types a message and sees the simulator's
// reply appear: the message crossed Selarti's HTTP API and the reply came
// back through the webhook and the WebSocket. Then a Markdown reply is
// rendered as HTML, and a reload shows the history again.
func TestBrowserWebchatRoundTrip(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{{
		Name: "web", Kind: "webchat", TaskID: "demo-task",
		Config: map[string]any{"title": "Northwind support"},
	}}})
	ctx := newBrowser(t)

	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
	); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "Northwind support") {
		t.Errorf("page title = %q", title)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("input"), "hello"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, userTexts, "hello")
	waitForText(ctx, t, botTexts, "Northwind Gadgets")

	rec := e.sim.Received()
	if len(rec) != 1 || !strings.HasPrefix(rec[0].ChatID, "web:") || rec[0].TaskID != "demo-task" || rec[0].Text != "hello" {
		t.Fatalf("selarti received %+v, want one message from a web: chat", rec)
	}

	// Markdown from the assistant becomes HTML, safely.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("input"), "what is the price?"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, botTexts, "Smart lamp")
	strong, err := chromedp.Run(ctx, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#messages .msg-bot .msg-text strong')).map(e => e.textContent).join('|')`))
	if err != nil {
		t.Fatal(err)
	}
	link, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => { const a = document.querySelector('#messages .msg-bot .msg-text a'); return a ? a.href + ' ' + a.rel : ''; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strong, "Our prices") || !strings.Contains(link, "https://shop.example.com/catalogue") || !strings.Contains(link, "noopener") {
		t.Errorf("markdown not rendered: strong=%q link=%q", strong, link)
	}

	// A reload keeps the session and shows the conversation again.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, botTexts, "Smart lamp")
	waitForText(ctx, t, userTexts, "what is the price?")
	if n := len(e.sim.Received()); n != 2 {
		t.Fatalf("selarti received %d messages, want 2 (a reload must not resend)", n)
	}
}

// TestBrowserOperatorMessagePushed: an operator writes from Selarti's panel
// while the page is open; the page shows it live, labelled.
func TestBrowserOperatorMessagePushed(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{{Name: "web", Kind: "webchat", TaskID: "t"}}})
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
		chromedp.SendKeys(chromedp.ID("input"), "I need a human"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, botTexts, "operator")
	chat := e.sim.Received()[0].ChatID
	if err := e.sim.InjectOperator(ctxTimeout(t), chat, "Hi, Anna here. How can I help?"); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, `Array.from(document.querySelectorAll('#messages .msg-operator .msg-text')).map(e => e.textContent).join('\n')`, "Anna here")

	// An operator's text is Markdown like the assistant's, and raw HTML
	// in it stays text: no element but those the formatting makes.
	hostile := "Our **new** shop: <img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script> [here](javascript:alert(1))"
	if err := e.sim.InjectOperator(ctxTimeout(t), chat, hostile); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, `Array.from(document.querySelectorAll('#messages .msg-operator .msg-text')).map(e => e.textContent).join('\n')`, "<img src=x")
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const last = Array.from(document.querySelectorAll('#messages .msg-operator .msg-text')).pop();
		return Array.from(last.querySelectorAll('*')).map(e => e.tagName).join(',') + '|' + document.title;
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if tags, title, _ := strings.Cut(got, "|"); tags != "STRONG" || strings.Contains(title, "pwned") {
		t.Fatalf("operator bubble elements %q, page title %q: want only the bold's STRONG, and nothing run", tags, title)
	}
}
