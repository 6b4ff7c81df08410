package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/adapters/telegram"
	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// hardenedEnv is a gateway with the webchat, a Telegram bot in webhook
// mode (against the fake Bot API) and the admin API, with edit applied
// to its config.
func hardenedEnv(t *testing.T, webchatCfg map[string]any, edit func(*engine.Config)) *env {
	t.Helper()
	tg, err := faketelegram.New(faketelegram.Options{InsecureWebhooks: true, WebhookRetry: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if _, err := tg.AddBot(faketelegram.TestToken(1), "shop_bot"); err != nil {
		t.Fatal(err)
	}
	if webchatCfg == nil {
		webchatCfg = map[string]any{}
	}
	return newEnv(t, envOptions{
		adapters: []engine.AdapterConfig{
			{Name: "web", Kind: webchat.Kind, TaskID: "task-1", Config: webchatCfg},
			tgInstance("tg", "task-1", 1, map[string]any{"mode": "webhook", "api_url": tg.URL()}),
			{Name: "reader", Kind: bodyReaderKind, TaskID: "task-1"},
		},
		kinds: []kind{{telegram.Kind, telegram.New}, {bodyReaderKind, newBodyReader}},
		cfgEdit: func(c *engine.Config) {
			c.Admin.Token = core.Secret(strings.Repeat("a", 40))
			if edit != nil {
				edit(c)
			}
		},
	})
}

// bodyReaderKind is an adapter, registered by these tests only, with an
// HTTP route that reads its whole request body and sets no deadline of
// its own: what server.read_timeout is the only bound of.
const bodyReaderKind = "bodyreader"

type bodyReader struct{ prefix string }

func newBodyReader(inst core.Instance) (core.Messenger, error) {
	return &bodyReader{prefix: "/bodyreader/" + inst.Name + "/"}, nil
}

func (b *bodyReader) Start(context.Context, core.DeliverFunc) error { return nil }
func (b *bodyReader) Send(context.Context, core.Outbound) error     { return nil }
func (b *bodyReader) Stop(context.Context) error                    { return nil }
func (b *bodyReader) HTTPPrefix() string                            { return b.prefix }
func (b *bodyReader) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, err := io.ReadAll(r.Body); err != nil {
		http.Error(w, "could not read the body", http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// A request whose body trickles in, one byte every 300 ms, is cut off
// within the read timeout on every route, authenticated or not; routes
// that refuse the request, or do not read bodies, answer at once without
// reading it. Other clients are served meanwhile.
func TestSlowBodiesAreCutOff(t *testing.T) {
	const readTimeout = time.Second
	e := hardenedEnv(t, nil, func(c *engine.Config) {
		c.Server.ReadTimeout = readTimeout
		c.Server.ReadHeaderTimeout = readTimeout
	})
	host := e.addr
	routes := []struct{ name, head string }{
		{"healthz", "GET /healthz HTTP/1.1"},
		{"metrics", "GET /metrics HTTP/1.1"},
		{"chat page", "GET /chat/ HTTP/1.1"},
		{"admin without a token", "GET /admin/deadletters HTTP/1.1"},
		{"admin with the token", "GET /admin/outbox HTTP/1.1\r\nAuthorization: Bearer " + strings.Repeat("a", 40)},
		{"telegram webhook, wrong secret", "POST /telegram/tg/webhook HTTP/1.1\r\nX-Telegram-Bot-Api-Secret-Token: " + strings.Repeat("w", 40)},
		{"selarti webhook, wrong secret", "POST " + engine.WebhookPath + "/" + strings.Repeat("w", 40) + " HTTP/1.1"},
		{"selarti webhook, right secret", "POST " + engine.WebhookPath + "/" + e.secret + " HTTP/1.1\r\nContent-Type: application/json"},
		{"a 404", "POST /no/such/path HTTP/1.1"},
		{"an adapter route that reads the body", "POST /bodyreader/reader/ HTTP/1.1"},
	}
	var wg sync.WaitGroup
	results := make([]testutil.TrickleResult, len(routes))
	for i, r := range routes {
		wg.Go(func() {
			results[i] = testutil.Trickle(t, host, r.head+"\r\nHost: "+host, 300*time.Millisecond, 10*time.Second)
		})
	}
	// Meanwhile another client is served, more than once.
	for range 3 {
		resp, err := http.Get(e.base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("another client: %d", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	for i, r := range routes {
		res := results[i]
		if !res.Closed || res.After > readTimeout+2*time.Second {
			t.Errorf("%s: connection still open after %s (closed %v), want it cut off within the %s read timeout", r.name, res.After.Round(time.Millisecond), res.Closed, readTimeout)
			continue
		}
		if !strings.HasPrefix(res.Reply, "HTTP/1.1 ") {
			t.Errorf("%s: closed without an answer: %q", r.name, res.Reply)
		}
		t.Logf("%s: %s after %s", r.name, firstLine(res.Reply), res.After.Round(time.Millisecond))
	}
}

// With the default read timeout (30 s), requests refused before their
// body is read, and routes that read no body, are still answered and
// closed at once: the gateway does not read what it does not need.
func TestRefusedRequestsDoNotWaitForTheirBody(t *testing.T) {
	e := hardenedEnv(t, nil, nil)
	if e.cfg.Server.ReadTimeout != 30*time.Second {
		t.Fatalf("read timeout %s, want the default", e.cfg.Server.ReadTimeout)
	}
	host := e.addr
	for _, head := range []string{
		"GET /healthz HTTP/1.1",
		"GET /metrics HTTP/1.1", // a response larger than net/http's buffer
		"GET /chat/ HTTP/1.1",
		"GET /admin/deadletters HTTP/1.1",
		"POST /telegram/tg/webhook HTTP/1.1",
		"POST " + engine.WebhookPath + "/" + strings.Repeat("w", 40) + " HTTP/1.1",
		"POST /no/such/path HTTP/1.1",
	} {
		res := testutil.Trickle(t, host, head+"\r\nHost: "+host, 300*time.Millisecond, 10*time.Second)
		if !res.Closed || res.After > 5*time.Second || !strings.HasPrefix(res.Reply, "HTTP/1.1 ") {
			t.Errorf("%s: answered %q, closed %v after %s; want an answer and the connection closed at once", head, firstLine(res.Reply), res.Closed, res.After)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// An upgraded WebSocket is not bound by the read timeout: the chat stays
// open past it and carries messages.
func TestWebSocketOutlivesReadTimeout(t *testing.T) {
	const readTimeout = 500 * time.Millisecond
	e := hardenedEnv(t, nil, func(c *engine.Config) {
		c.Server.ReadTimeout = readTimeout
		c.Server.ReadHeaderTimeout = readTimeout
		c.Server.WriteTimeout = readTimeout
	})
	ws := dialChat(t, e, "127.0.0.1", nil)
	w := hello(t, ws, "")
	time.Sleep(4 * readTimeout)
	writeFrame(t, ws, map[string]any{"type": "message", "id": "m-1", "text": "hello after a while"})
	for {
		f := readFrame(t, ws)
		if f["type"] == "ack" {
			break
		}
		if f["type"] == "error" {
			t.Fatalf("error frame %v", f)
		}
	}
	if err := e.sim.WaitReceived(ctxTimeout(t), 1); err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Received()[0]; got.ChatID != "web:"+w["session"].(string) {
		t.Fatalf("selarti received %+v", got)
	}
}

// Connections over the per-address cap get a 503 and are closed; other
// addresses are served; the metric counts the refusal.
func TestConnectionCapPerAddress(t *testing.T) {
	e := hardenedEnv(t, nil, func(c *engine.Config) { c.Server.MaxConnsPerIP = 3 })
	var held []net.Conn
	for range 3 {
		c := dialTCP(t, "127.0.0.2", e.addr)
		held = append(held, c)
	}
	// A fourth from that address, a WebSocket, is refused.
	if _, resp, err := dialChatErr(e, "127.0.0.2", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("fourth connection: %v (%+v), want a 503", err, resp)
	}
	// Others are served, WebSockets included.
	ws := dialChat(t, e, "127.0.0.3", nil)
	hello(t, ws, "")
	if m := scrape(t, e.base); !strings.Contains(m, `switchboard_http_connections_refused_total{reason="max_conns_per_ip"} 1`) {
		t.Errorf("metrics lack the refusal:\n%s", grepLines(m, "switchboard_http_"))
	}
	// The held connections are real: they still get answers.
	for _, c := range held {
		if line := rawGet(t, c, "/healthz"); line != "HTTP/1.1 200 OK" {
			t.Fatalf("held connection: %q", line)
		}
	}
}

// X-Forwarded-For counts only from a trusted proxy: in the logs, and in
// the webchat's per-address limits, which see the same address.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	e := hardenedEnv(t, map[string]any{"ip_session_limit": 1}, func(c *engine.Config) {
		c.Server.TrustedProxies = []string{"127.0.0.2"}
	})
	wrong := e.base + engine.WebhookPath + "/" + strings.Repeat("w", 40)
	post := func(src, xff string) {
		t.Helper()
		client := clientFrom(src)
		req, _ := http.NewRequest(http.MethodPost, wrong, strings.NewReader("{}"))
		req.Header.Set("X-Forwarded-For", xff)
		req.Header.Set("X-Real-IP", xff)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("127.0.0.1", "203.0.113.1")
	post("127.0.0.2", "203.0.113.2")
	logs := e.logs.String()
	if strings.Contains(logs, "203.0.113.1") || !strings.Contains(logs, `"remote":"127.0.0.1"`) {
		t.Errorf("an untrusted peer's X-Forwarded-For was believed:\n%s", grepLines(logs, "webhook rejected"))
	}
	if !strings.Contains(logs, `"remote":"203.0.113.2"`) {
		t.Errorf("the trusted proxy's X-Forwarded-For was not used:\n%s", grepLines(logs, "webhook rejected"))
	}

	xff := func(a string) http.Header { return http.Header{"X-Forwarded-For": {a}} }
	// Through the proxy, each client address gets its own allowance.
	if f := hello(t, dialChat(t, e, "127.0.0.2", xff("203.0.113.10")), ""); f["type"] != "welcome" {
		t.Fatalf("first client through the proxy: %v", f)
	}
	if f := hello(t, dialChat(t, e, "127.0.0.2", xff("203.0.113.10")), ""); f["code"] != "too_many_sessions" {
		t.Fatalf("same client again: %v, want too_many_sessions", f)
	}
	if f := hello(t, dialChat(t, e, "127.0.0.2", xff("203.0.113.11")), ""); f["type"] != "welcome" {
		t.Fatalf("another client through the proxy: %v", f)
	}
	// Directly, the header changes nothing: both are 127.0.0.3.
	if f := hello(t, dialChat(t, e, "127.0.0.3", xff("203.0.113.20")), ""); f["type"] != "welcome" {
		t.Fatalf("direct client: %v", f)
	}
	if f := hello(t, dialChat(t, e, "127.0.0.3", xff("203.0.113.21")), ""); f["code"] != "too_many_sessions" {
		t.Fatalf("direct client with another forged address: %v, want too_many_sessions", f)
	}
	if m := scrape(t, e.base); !strings.Contains(m, `switchboard_adapter_rejects_total{instance="web",reason="ip_session_limit"} 2`) {
		t.Errorf("metrics lack the refusals:\n%s", grepLines(m, "switchboard_adapter_rejects_total"))
	}
}

// A flood of refused webhooks logs a few lines; the metric counts all.
func TestRejectionLogsAreThrottled(t *testing.T) {
	e := hardenedEnv(t, nil, nil)
	const n = 60
	for i := range n {
		secret := fmt.Sprintf("%040d", i)
		for _, url := range []string{e.base + engine.WebhookPath + "/" + secret, e.base + "/telegram/tg/webhook"} {
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", resp.StatusCode)
			}
		}
	}
	logs := e.logs.String()
	if got := strings.Count(logs, `"msg":"webhook rejected"`); got == 0 || got > 10 {
		t.Errorf("%d Selarti webhook rejections logged for %d, want at most 10", got, n)
	}
	if got := strings.Count(logs, `"msg":"webhook request refused: wrong or missing secret token"`); got == 0 || got > 10 {
		t.Errorf("%d Telegram webhook rejections logged for %d, want at most 10", got, n)
	}
	m := scrape(t, e.base)
	for _, want := range []string{
		fmt.Sprintf(`switchboard_webhook_rejects_total{reason="wrong_secret"} %d`, n),
		fmt.Sprintf(`switchboard_adapter_rejects_total{instance="tg",reason="wrong_secret"} %d`, n),
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// clientFrom is an HTTP client whose connections come from the loopback
// address src.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

func dialTCP(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func rawGet(t *testing.T, c net.Conn, path string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err.Error()
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err.Error()
	}
	return strings.TrimSpace(line)
}

func dialChatErr(e *env, src string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if header == nil {
		header = http.Header{}
	}
	return websocket.Dial(ctx, "ws://"+e.addr+"/chat/ws", &websocket.DialOptions{HTTPClient: clientFrom(src), HTTPHeader: header})
}

func dialChat(t *testing.T, e *env, src string, header http.Header) *websocket.Conn {
	t.Helper()
	ws, _, err := dialChatErr(e, src, header)
	if err != nil {
		t.Fatalf("dial the chat from %s: %v", src, err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws
}

func writeFrame(t *testing.T, ws *websocket.Conn, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write frame: %v", err)
	}
}

func readFrame(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// hello says hello for session and returns the first frame back.
func hello(t *testing.T, ws *websocket.Conn, session string) map[string]any {
	t.Helper()
	writeFrame(t, ws, map[string]any{"type": "hello", "session": session})
	return readFrame(t, ws)
}
