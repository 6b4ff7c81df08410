package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

// waitTimeout bounds every wait in these tests.
const waitTimeout = 5 * time.Second

// newTestAdapter builds an adapter from raw, with a data directory of its
// own, failing the test on error.
func newTestAdapter(t testing.TB, raw core.RawConfig) *Adapter {
	t.Helper()
	return newTestAdapterIn(t, raw, t.TempDir())
}

// newTestAdapterIn builds an adapter from raw that keeps its mailbox in
// dataDir.
func newTestAdapterIn(t testing.TB, raw core.RawConfig, dataDir string) *Adapter {
	t.Helper()
	inst, _ := messengertest.Instance(t, Kind, raw)
	inst.Name, inst.DataDir = "web", dataDir
	m, err := New(inst)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m.(*Adapter)
}

// testServer is a started adapter behind an httptest server on loopback.
type testServer struct {
	a    *Adapter
	core *messengertest.Core
	srv  *httptest.Server
}

// startServer starts a with a fake core and serves it; cleanup stops both.
func startServer(t testing.TB, a *Adapter) *testServer {
	t.Helper()
	fc := &messengertest.Core{}
	if err := a.Start(context.Background(), fc.Deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	srv := httptest.NewServer(a)
	// Cleanups run last-in first-out: clients dialled later close first,
	// then the adapter stops, then the server.
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return &testServer{a: a, core: fc, srv: srv}
}

// wsURL is the WebSocket URL of the adapter's endpoint.
func (ts *testServer) wsURL() string {
	return "ws" + strings.TrimPrefix(ts.srv.URL, "http") + ts.a.cfg.Path + "ws"
}

// frame is any server frame, decoded.
type frame struct {
	Type     string `json:"type"`
	Session  string `json:"session"`
	LastSeq  int64  `json:"last_seq"`
	Epoch    string `json:"epoch"`
	Seq      int64  `json:"seq"`
	From     string `json:"from"`
	Text     string `json:"text"`
	HTML     string `json:"html"`
	TS       string `json:"ts"`
	ID       string `json:"id"`
	Code     string `json:"code"`
	Error    string `json:"error"`
	Retry    bool   `json:"retry"`
	Operator bool   `json:"operator"`
	Closed   bool   `json:"closed"`
}

// tab is a test WebSocket client: one browser tab.
type tab struct {
	t  *testing.T
	ws *websocket.Conn
}

// dial opens a tab, with an optional Origin header.
func (ts *testServer) dial(t *testing.T, origin string) *tab {
	t.Helper()
	tb, resp, err := ts.tryDial(origin)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial (HTTP %d): %v", status, err)
	}
	tb.t = t
	t.Cleanup(func() { _ = tb.ws.CloseNow() })
	return tb
}

func (ts *testServer) tryDial(origin string) (*tab, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	opts := &websocket.DialOptions{HTTPHeader: http.Header{}}
	if origin != "" {
		opts.HTTPHeader.Set("Origin", origin)
	}
	ws, resp, err := websocket.Dial(ctx, ts.wsURL(), opts)
	if err != nil {
		return nil, resp, err
	}
	ws.SetReadLimit(1 << 20)
	return &tab{ws: ws}, resp, nil
}

// connect dials and says hello; it returns the tab and the welcome.
func (ts *testServer) connect(t *testing.T, session string, lastSeq int64) (*tab, frame) {
	t.Helper()
	tb := ts.dial(t, "")
	tb.send(map[string]any{"type": "hello", "session": session, "last_seq": lastSeq, "name": "Ann"})
	w := tb.expect(typeWelcome)
	return tb, w
}

func (tb *tab) send(v any) {
	tb.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.t.Fatalf("marshal: %v", err)
	}
	tb.sendRaw(b)
}

func (tb *tab) sendRaw(b []byte) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := tb.ws.Write(ctx, websocket.MessageText, b); err != nil {
		tb.t.Fatalf("write: %v", err)
	}
}

// message sends a user message frame.
func (tb *tab) message(id, text string) {
	tb.t.Helper()
	tb.send(map[string]any{"type": "message", "id": id, "text": text})
}

// read returns the next frame, or the read error.
func (tb *tab) read() (frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, b, err := tb.ws.Read(ctx)
	if err != nil {
		return frame{}, err
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return frame{}, err
	}
	return f, nil
}

// next returns the next frame, failing the test on error.
func (tb *tab) next() frame {
	tb.t.Helper()
	f, err := tb.read()
	if err != nil {
		tb.t.Fatalf("read frame: %v", err)
	}
	return f
}

// expect returns the next frame and checks its type.
func (tb *tab) expect(typ string) frame {
	tb.t.Helper()
	f := tb.next()
	if f.Type != typ {
		tb.t.Fatalf("got frame %+v, want type %q", f, typ)
	}
	return f
}

// expectClose reads until the connection ends and checks its close code.
func (tb *tab) expectClose(code websocket.StatusCode) {
	tb.t.Helper()
	for {
		_, err := tb.read()
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != code {
			tb.t.Fatalf("connection ended with %v (status %d), want status %d", err, got, code)
		}
		return
	}
}

// send is a.Send with a short deadline, failing the test on error.
func (ts *testServer) send(t *testing.T, session, text string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := ts.a.Send(ctx, core.Outbound{ChatID: session, Text: text, From: core.SenderBot}); err != nil {
		t.Fatalf("Send: %v", err)
	}
}

// eventually polls cond for up to 10 s.
var eventually = testutil.Eventually

// connsOf returns the number of open connections of a session.
func (a *Adapter) connsOf(id string) int {
	run := a.current()
	if run == nil {
		return 0
	}
	run.sessions.mu.Lock()
	defer run.sessions.mu.Unlock()
	if s, ok := run.sessions.byID[id]; ok {
		return len(s.conns)
	}
	return 0
}

// hasSession reports whether the adapter's cache holds session id.
func (a *Adapter) hasSession(id string) bool {
	run := a.current()
	if run == nil {
		return false
	}
	run.sessions.mu.Lock()
	defer run.sessions.mu.Unlock()
	_, ok := run.sessions.byID[id]
	return ok
}

// stored returns what the running adapter's mailbox holds of session id.
func (a *Adapter) stored(t *testing.T, id string) (storedSession, bool) {
	t.Helper()
	run := a.current()
	if run == nil {
		t.Fatal("adapter not running")
	}
	st, ok, err := loadSession(context.Background(), run.mb, id)
	if err != nil {
		t.Fatalf("load session: %v", err)
	}
	return st, ok
}

var errDown = errors.New("selarti is down")

// takeQueued returns the frames queued to c (a client without a socket,
// whose frames stay queued) and empties its queue.
func (c *client) takeQueued() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := c.queue
	c.queue = nil
	return q
}
