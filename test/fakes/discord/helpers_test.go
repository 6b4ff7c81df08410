package discord

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

// startServer starts a fake closed at the end of the test.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.HeartbeatInterval == 0 {
		// discordgo declares a connection dead after 5 intervals without
		// an ACK; 1s keeps that clear of -race on a loaded machine.
		opts.HeartbeatInterval = time.Second
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func addBot(t *testing.T, s *Server, n int, name string) *Bot {
	t.Helper()
	b, err := s.AddBot(TestToken(n), name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// world is a server with one bot in one guild with a channel, and a user.
type world struct {
	s     *Server
	bot   *Bot
	guild *Guild
	ch    Channel
	ann   User
}

func newWorld(t *testing.T, opts Options) world {
	t.Helper()
	s := startServer(t, opts)
	b := addBot(t, s, 1, "switchboard")
	g := s.AddGuild("Shop", b)
	return world{s: s, bot: b, guild: g, ch: g.AddChannel("general"), ann: s.NewUser("ann", "Ann Lee")}
}

// discordTransport is how a client is pointed at the fake: every request
// discordgo makes to https://discord.com/... goes to the fake's origin
// instead, with the path unchanged (discordgo v0.29.0 uses /api/v9/;
// version, when set, rewrites it to /api/v<version>/). The gateway needs
// no rewriting: discordgo dials the URL GET /gateway returned, the fake's.
type discordTransport struct {
	target  *url.URL
	version string
	base    http.RoundTripper
}

func (tr discordTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "discord.com" {
		return tr.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = tr.target.Scheme, tr.target.Host, tr.target.Host
	if tr.version != "" {
		from, to := "/api/v"+discordgo.APIVersion+"/", "/api/v"+tr.version+"/"
		r.URL.Path = strings.Replace(r.URL.Path, from, to, 1)
		if r.URL.RawPath != "" {
			r.URL.RawPath = strings.Replace(r.URL.RawPath, from, to, 1)
		}
	}
	return tr.base.RoundTrip(r)
}

func httpClientFor(s *Server, version string) *http.Client {
	u, _ := url.Parse(s.Origin())
	return &http.Client{Timeout: 20 * time.Second, Transport: discordTransport{target: u, version: version, base: http.DefaultTransport}}
}

// recorder keeps every dispatch a discordgo session handled, in order
// (the session runs with SyncEvents).
type recorder struct {
	mu      sync.Mutex
	events  []*discordgo.Event
	changed chan struct{}
}

func (r *recorder) add(e *discordgo.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) all() []*discordgo.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*discordgo.Event(nil), r.events...)
}

func (r *recorder) ofType(t string) []*discordgo.Event {
	var out []*discordgo.Event
	for _, e := range r.all() {
		if e.Type == t {
			out = append(out, e)
		}
	}
	return out
}

// messages returns the MESSAGE_CREATEs received.
func (r *recorder) messages() []*discordgo.Message {
	var out []*discordgo.Message
	for _, e := range r.ofType("MESSAGE_CREATE") {
		out = append(out, e.Struct.(*discordgo.MessageCreate).Message)
	}
	return out
}

// wait waits until cond holds over the events.
func (r *recorder) wait(t *testing.T, what string, cond func([]*discordgo.Event) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		ch := r.changed
		evs := append([]*discordgo.Event(nil), r.events...)
		r.mu.Unlock()
		if cond(evs) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d events: %s", what, len(evs), eventTypes(evs))
			return
		}
	}
}

func (r *recorder) waitMessage(t *testing.T, content string) *discordgo.Message {
	t.Helper()
	var found *discordgo.Message
	r.wait(t, "MESSAGE_CREATE "+content, func([]*discordgo.Event) bool {
		for _, m := range r.messages() {
			if m.Content == content {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func eventTypes(evs []*discordgo.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Type)
		b.WriteString(" ")
	}
	return b.String()
}

type dgOpt func(*discordgo.Session)

// openSession connects a real discordgo session for the bot, pointed at
// the fake by its http.Client, and closes it at the end of the test
// (before the server closes).
func openSession(t *testing.T, s *Server, b *Bot, intents int, opts ...dgOpt) (*discordgo.Session, *recorder) {
	t.Helper()
	dg, rec := newSession(t, s, b.Token(), intents, opts...)
	if err := dg.Open(); err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = dg.Close() })
	return dg, rec
}

func newSession(t *testing.T, s *Server, token string, intents int, opts ...dgOpt) (*discordgo.Session, *recorder) {
	t.Helper()
	dg, err := discordgo.New("Bot " + token)
	if err != nil {
		t.Fatal(err)
	}
	dg.Client = httpClientFor(s, "")
	dg.Identify.Intents = discordgo.Intent(intents)
	dg.SyncEvents = true
	dg.LogLevel = -1 // discordgo logs through the log package; keep tests quiet
	if os.Getenv("FAKEDISCORD_DEBUG") != "" {
		dg.LogLevel = discordgo.LogInformational
	}
	rec := &recorder{changed: make(chan struct{})}
	dg.AddHandler(func(_ *discordgo.Session, e *discordgo.Event) { rec.add(e) })
	for _, o := range opts {
		o(dg)
	}
	return dg, rec
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// answer is a raw REST answer.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.Body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %s", a.Status, a.Body)
	}
	return m
}

// do sends a raw REST request to the fake (path below /api/v10 unless it
// starts with /api/).
func do(t *testing.T, s *Server, token, method, path, body string) answer {
	t.Helper()
	u := s.URL() + path
	if strings.HasPrefix(path, "/api/") {
		u = s.Origin() + path
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bot "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{Status: resp.StatusCode, Header: resp.Header, Body: raw}
}

// wantError checks Discord's error body {"message","code"}.
func wantError(t *testing.T, a answer, status, code int, message string) map[string]any {
	t.Helper()
	m := a.json(t)
	if a.Status != status || m["code"] != float64(code) || m["message"] != message {
		t.Fatalf("answer = %d %s, want %d code %d %q", a.Status, a.Body, status, code, message)
	}
	return m
}

// restErr returns the *discordgo.RESTError in err, failing otherwise.
func restErr(t *testing.T, err error) *discordgo.RESTError {
	t.Helper()
	re, ok := err.(*discordgo.RESTError)
	if !ok {
		t.Fatalf("error = %T %v, want *discordgo.RESTError", err, err)
	}
	return re
}

const (
	intentsContent   = IntentGuilds | IntentGuildMessages | IntentDirectMessages | IntentMessageContent
	intentsNoContent = IntentGuilds | IntentGuildMessages | IntentDirectMessages
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
