package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/switchboard-gw/switchboard/internal/browsertest"

	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
)

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
	ctx := browsertest.New(t)

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
	ctx := browsertest.New(t)
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

// waitFor polls the JavaScript expression (a boolean) until it is true,
// for up to d.
func waitFor(ctx context.Context, t *testing.T, expr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		if v {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('messages').innerText`))
	t.Fatalf("page never made %s true; messages:\n%s", expr, state)
}

// clickJS clicks the first element that matches the CSS selector.
func clickJS(ctx context.Context, t *testing.T, selector string) {
	t.Helper()
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const n = document.querySelector(%q); if (n) n.click(); return !!n; })()`, selector)))
	if err != nil || !ok {
		t.Fatalf("click %s: %v (found: %v)", selector, err, ok)
	}
}

// evalString evaluates a JavaScript expression that yields a string.
func evalString(ctx context.Context, t *testing.T, expr string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// receivedTexts returns the texts Selarti received, in order.
func receivedTexts(e *env) []string {
	var out []string
	for _, r := range e.sim.Received() {
		out = append(out, r.Text)
	}
	return out
}

// TestBrowserWebchatNotDeliveredThenRetry: with Selarti down, a message
// becomes a dead letter; the page says so (after saying why it is late),
// stops the typing dots, and keeps saying so after a reload. Once
// Selarti is back, Retry delivers it, once, and the reply comes.
func TestBrowserWebchatNotDeliveredThenRetry(t *testing.T) {
	e := newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{{Name: "web", Kind: "webchat", TaskID: "t"}},
		cfgEdit: func(c *engine.Config) {
			c.Delivery.MaxAttempts = 3
			c.Selarti.RetryBudget = 100 * time.Millisecond
		},
	})
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
	); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, `document.getElementById('status').textContent === ''`, 10*time.Second)
	// Every state the bubble goes through, as the user saw it.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		window.__states = [];
		new MutationObserver(() => {
			document.querySelectorAll('#messages .msg-user .msg-state').forEach(s => {
				if (s.textContent && window.__states[window.__states.length - 1] !== s.textContent) window.__states.push(s.textContent);
			});
		}).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
		return true;
	})()`)); err != nil {
		t.Fatal(err)
	}
	e.sim.SetDown(true)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("input"), "are you there?"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	const undelivered = `(() => { const m = document.querySelector('#messages .msg-user.undelivered'); return !!m && m.querySelector('.msg-state').textContent === 'Not delivered: the assistant is unreachable' && !!m.querySelector('button.msg-retry') && document.getElementById('typing').hidden; })()`
	waitFor(ctx, t, undelivered, 20*time.Second)
	if states := evalString(ctx, t, `window.__states.join(' | ')`); !strings.Contains(states, "Not delivered yet: the assistant is unreachable, retrying…") {
		t.Errorf("the bubble went through %q: want the delayed state with its reason before the failure", states)
	}
	if n := e.deadLetters(store.ToSelarti); n != 1 {
		t.Fatalf("%d dead letters, want 1", n)
	}

	// A reload shows it still.
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, undelivered, 10*time.Second)

	e.sim.SetDown(false)
	clickJS(ctx, t, `#messages .msg-user .msg-retry`)
	waitFor(ctx, t, `document.querySelectorAll('#messages .msg-bot').length > 0 && !document.querySelector('#messages .msg-user.undelivered, #messages .msg-user.resending')`, 20*time.Second)
	if got := receivedTexts(e); len(got) != 1 || got[0] != "are you there?" {
		t.Fatalf("selarti received %q, want the message once", got)
	}
	if n := e.deadLetters(store.ToSelarti); n != 0 {
		t.Fatalf("%d dead letters after the retry, want 0", n)
	}
	if n := evalString(ctx, t, `String(document.querySelectorAll('#messages .msg-user').length)`); n != "1" {
		t.Fatalf("%s user bubbles after the retry, want 1", n)
	}
}

// TestBrowserWebchatBurstKeepsOrder: a burst beyond the rate limit, then
// one more message once a token has refilled. The refused message is
// re-sent later, and the one typed after it must not overtake it: Selarti
// and the history (a reload) get them in typed order.
func TestBrowserWebchatBurstKeepsOrder(t *testing.T) {
	const limit = 20 // a token every 3 s
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{{Name: "web", Kind: "webchat", TaskID: "t",
		Config: map[string]any{"rate_limit": limit}}}})
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
	); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, `document.getElementById('status').textContent === ''`, 10*time.Second)
	typeMessage := func(i int) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
			document.getElementById('input').value = 'burst %d';
			document.getElementById('send').click();
			return true;
		})()`, i))); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := 1; i <= limit+1; i++ {
		typeMessage(i)
		want = append(want, fmt.Sprintf("burst %d", i))
	}
	// The last of the burst is refused for now; it says why.
	waitFor(ctx, t, `Array.from(document.querySelectorAll('#messages .msg-user.retrying .msg-state')).some(s => s.textContent.includes('too many messages'))`, 10*time.Second)
	time.Sleep(3500 * time.Millisecond) // a token refills
	typeMessage(limit + 2)
	want = append(want, fmt.Sprintf("burst %d", limit+2))

	deadline := time.Now().Add(40 * time.Second)
	for len(e.sim.Received()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := receivedTexts(e); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("selarti received\n%q\nwant\n%q", got, want)
	}
	if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
		t.Fatal(err)
	}
	waitForText(ctx, t, userTexts, want[len(want)-1])
	if got := evalString(ctx, t, userTexts); got != strings.Join(want, "\n") {
		t.Fatalf("history after a reload:\n%s\nwant the typed order", got)
	}
}

// TestBrowserWebchatLanguages: the lang option picks the page's texts
// (Russian, Uzbek), auto follows the browser (English here), the
// operator's title wins, and the widget speaks the instance's language
// and passes its data-color into the chat, which takes a colour and
// nothing else.
func TestBrowserWebchatLanguages(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{
		{Name: "web", Kind: "webchat", TaskID: "t"},
		{Name: "web-ru", Kind: "webchat", TaskID: "t", Config: map[string]any{"path": "/ru/", "lang": "ru", "allowed_origins": []any{"*"}}},
		{Name: "web-uz", Kind: "webchat", TaskID: "t", Config: map[string]any{"path": "/uz/", "lang": "uz", "title": "Northwind"}},
	}})
	ctx := browsertest.New(t)
	const texts = `[document.documentElement.lang, document.documentElement.dir, document.getElementById('input').placeholder, document.title, document.getElementById('send').getAttribute('aria-label'), document.querySelector('#hint').textContent].join('|')`
	for _, tc := range []struct{ path, want string }{
		{"/chat/", "en|ltr|Type a message…|Chat with us|Send message|Press Enter to send, Shift+Enter for a new line."},
		{"/ru/", "ru|ltr|Введите сообщение…|Напишите нам|Отправить сообщение|Enter — отправить, Shift+Enter — новая строка."},
		{"/uz/", "uz|ltr|Xabar yozing…|Northwind|Xabarni yuborish|Yuborish uchun Enter, yangi qator uchun Shift+Enter bosing."},
	} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+tc.path), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
			t.Fatal(err)
		}
		if got := evalString(ctx, t, texts); got != tc.want {
			t.Errorf("%s: texts %q, want %q", tc.path, got, tc.want)
		}
	}
	// A text the page writes itself: too long a message, in Uzbek.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { document.getElementById('input').value = 'x'.repeat(5000); document.getElementById('send').click(); return true; })()`)); err != nil {
		t.Fatal(err)
	}
	if got := evalString(ctx, t, `document.getElementById('composer-error').textContent`); got != "Bu xabar juda uzun (koʻpi bilan 4000 bayt)." {
		t.Errorf("uz: composer error %q", got)
	}

	// data-color inside the chat; something that is not a colour is not
	// taken.
	const accent = `getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()`
	for q, want := range map[string]string{"%23ff0000": "#ff0000", "red%3Bbackground%3Aurl(x)": "#2563eb", "var(--bg)": "#2563eb", "teal": "teal"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/ru/?embed=1&color="+q), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
			t.Fatal(err)
		}
		if got := evalString(ctx, t, accent); got != want {
			t.Errorf("?color=%s: --accent %q, want %q", q, got, want)
		}
	}

	// The widget on another site: its label in Russian, its colour
	// passed to the frame.
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><h1>Shop</h1><script src="%s/ru/widget.js" data-color="#ff0000" async></script></body></html>`, e.base)
	}))
	t.Cleanup(host.Close)
	if err := chromedp.Do(ctx, chromedp.Navigate(host.URL)); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, `!!document.querySelector('body > button')`, 10*time.Second)
	if got := evalString(ctx, t, `document.querySelector('body > button').getAttribute('aria-label')`); got != "Напишите нам" {
		t.Errorf("widget label %q, want the Russian one", got)
	}
	clickJS(ctx, t, `body > button`)
	waitFor(ctx, t, `!!document.querySelector('iframe')`, 10*time.Second)
	if got := evalString(ctx, t, `document.querySelector('iframe').src + ' ' + document.querySelector('body > button').getAttribute('aria-label')`); !strings.Contains(got, "embed=1&color=%23ff0000") || !strings.HasSuffix(got, " Закрыть чат") {
		t.Errorf("widget frame and button after opening: %q", got)
	}
}

// TestBrowserWebchatOfflineThenSent: a message typed while the gateway is
// away says it waits for the connection, not that it is being sent, and
// goes once the page is connected again.
func TestBrowserWebchatOfflineThenSent(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{{Name: "web", Kind: "webchat", TaskID: "t"}}})
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
	); err != nil {
		t.Fatal(err)
	}
	waitFor(ctx, t, `document.getElementById('status').textContent === ''`, 10*time.Second)
	e.stop()
	waitFor(ctx, t, `document.getElementById('status').textContent === 'Reconnecting…'`, 10*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("input"), "still there?"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	if got := evalString(ctx, t, `document.querySelector('#messages .msg-user.pending .msg-state').textContent`); got != "Offline: it will be sent when the connection is back" {
		t.Errorf("waiting message says %q", got)
	}
	e.start(e.addr)
	waitForText(ctx, t, botTexts, `You said: "still there?"`)
	if got := receivedTexts(e); len(got) != 1 || got[0] != "still there?" {
		t.Fatalf("selarti received %q, want the message once", got)
	}
}

// TestBrowserWebchatRightToLeft: a right-to-left catalogue (a Hebrew one,
// put beside the real ones before the page reads them, with a browser
// that prefers Hebrew) turns the page around: the document's direction
// is rtl, and the user's own message sits on the left, where it sits on
// the right in a left-to-right language. Nothing in the page's layout is
// written for one direction only.
func TestBrowserWebchatRightToLeft(t *testing.T) {
	e := newEnv(t, envOptions{adapters: []engine.AdapterConfig{{Name: "web", Kind: "webchat", TaskID: "t"}}})
	const hebrew = `
Object.defineProperty(navigator, 'languages', {get: () => ['he-IL', 'he']});
Object.defineProperty(window, 'switchboardWebchatTexts', {configurable: true, get() { return undefined; },
  set(v) { v.he = {name: 'עברית', dir: 'rtl', strings: Object.assign({}, v.en.strings, {placeholder: 'הקלידו הודעה…'})};
    Object.defineProperty(window, 'switchboardWebchatTexts', {value: v, writable: true, configurable: true}); }});`
	// side is where the user's message sits in the message list.
	const side = `(() => { const m = document.querySelector('#messages .msg-user'), l = document.getElementById('messages');
	  if (!m) return ''; const r = m.getBoundingClientRect(), c = l.getBoundingClientRect();
	  return document.documentElement.dir + ' ' + (r.left + r.right < c.left + c.right ? 'left' : 'right'); })()`
	for _, tc := range []struct {
		name, init, want, placeholder string
	}{
		{"ltr", "", "ltr right", "Type a message…"},
		{"rtl", hebrew, "rtl left", "הקלידו הודעה…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := browsertest.New(t)
			if tc.init != "" {
				addScript := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
					_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: tc.init})
					return chromedp.Void{}, err
				}
				if err := chromedp.Do(ctx, addScript); err != nil {
					t.Fatal(err)
				}
			}
			if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/chat/"), chromedp.WaitVisible(chromedp.ID("input"))); err != nil {
				t.Fatal(err)
			}
			if got := evalString(ctx, t, `document.getElementById('input').placeholder`); got != tc.placeholder {
				t.Fatalf("placeholder %q, want %q: the catalogue was not picked", got, tc.placeholder)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { document.getElementById('input').value = 'shalom'; document.getElementById('send').click(); return true; })()`)); err != nil {
				t.Fatal(err)
			}
			waitFor(ctx, t, `!!document.querySelector('#messages .msg-user')`, 10*time.Second)
			if got := evalString(ctx, t, side); got != tc.want {
				t.Fatalf("direction and side of the user's message: %q, want %q", got, tc.want)
			}
		})
	}
}
