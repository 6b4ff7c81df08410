package slack

import (
	"context"
	"encoding/json"
	"errors"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// tsRE is the shape of a message ts.
var tsRE = regexp.MustCompile(`^[0-9]{10}\.[0-9]{6}$`)

// fastOptions are timings small enough for tests.
func fastOptions() Options {
	return Options{
		AckTimeout:        150 * time.Millisecond,
		RetryDelays:       []time.Duration{0, 0, 0},
		PingInterval:      200 * time.Millisecond,
		DisconnectGrace:   200 * time.Millisecond,
		EventsTimeout:     300 * time.Millisecond,
		EventsRetryDelays: []time.Duration{0, 0, 0},
	}
}

// startServer starts a fake Slack closed at the end of the test.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startTeam starts a server with one team.
func startTeam(t *testing.T, opts Options) (*Server, *Team) {
	t.Helper()
	s := startServer(t, opts)
	team, err := s.AddTeam(TeamOptions{Name: "Acme", BotName: "switchboard"})
	if err != nil {
		t.Fatal(err)
	}
	return s, team
}

// botClient is the real slack-go Web API client, with the bot token and
// the app-level token, pointed at the fake.
func botClient(s *Server, team *Team, opts ...slackapi.Option) *slackapi.Client {
	return slackapi.New(team.BotToken(), append([]slackapi.Option{
		slackapi.OptionAPIURL(s.URL()),
		slackapi.OptionAppLevelToken(team.AppToken()),
	}, opts...)...)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// slackErr returns the Slack error code of a slack-go error.
func slackErr(t *testing.T, err error) string {
	t.Helper()
	var se slackapi.SlackErrorResponse
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a Slack error answer", err, err)
	}
	return se.Err
}

// smClient runs slack-go's real socketmode client against the fake and
// collects what it sees.
type smClient struct {
	t      *testing.T
	sm     *socketmode.Client
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	events []socketmode.Event
	reqs   []socketmode.Request // events_api requests, as received
	wake   chan struct{}
}

// runSocketMode starts a socketmode client; ack decides which events_api
// requests it acknowledges (nil: all). It stops at the end of the test.
func runSocketMode(t *testing.T, s *Server, team *Team, ack func(socketmode.Request) bool) *smClient {
	t.Helper()
	api := botClient(s, team)
	sm := socketmode.New(api, socketmode.OptionPingInterval(2*time.Second))
	ctx, cancel := context.WithCancel(context.Background())
	c := &smClient{t: t, sm: sm, cancel: cancel, done: make(chan error, 1), wake: make(chan struct{})}
	go func() { c.done <- sm.RunContext(ctx) }()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case ev := <-sm.Events:
				// Recorded before the ack: a test that waits for the fake
				// to see the ack then finds the request here.
				c.mu.Lock()
				c.events = append(c.events, ev)
				if ev.Type == socketmode.EventTypeEventsAPI && ev.Request != nil {
					c.reqs = append(c.reqs, *ev.Request)
				}
				close(c.wake)
				c.wake = make(chan struct{})
				c.mu.Unlock()
				if ev.Type == socketmode.EventTypeEventsAPI && ev.Request != nil {
					if ack == nil || ack(*ev.Request) {
						if err := sm.Ack(*ev.Request); err != nil {
							t.Errorf("ack: %v", err)
						}
					}
				}
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *smClient) stop() {
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.t.Error("socketmode client did not stop")
	}
}

// waitFor waits until cond holds over the events seen so far.
func (c *smClient) waitFor(what string, d time.Duration, cond func(evs []socketmode.Event, reqs []socketmode.Request) bool) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		c.mu.Lock()
		evs, reqs, wake := slices.Clone(c.events), slices.Clone(c.reqs), c.wake
		c.mu.Unlock()
		if cond(evs, reqs) {
			return
		}
		select {
		case <-wake:
		case <-deadline:
			c.t.Fatalf("timed out waiting for %s; saw %d events", what, len(c.Events()))
		}
	}
}

func (c *smClient) Events() []socketmode.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]socketmode.Event(nil), c.events...)
}

func (c *smClient) Requests() []socketmode.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]socketmode.Request(nil), c.reqs...)
}

func (c *smClient) count(typ socketmode.EventType) int {
	n := 0
	for _, ev := range c.Events() {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// requestsOf returns the events_api requests that carried eventID.
func (c *smClient) requestsOf(eventID string) []socketmode.Request {
	var out []socketmode.Request
	for _, r := range c.Requests() {
		if eventIDOf(r) == eventID {
			out = append(out, r)
		}
	}
	return out
}

// inner returns the parsed inner events of the events_api requests seen.
func (c *smClient) inner() []slackevents.EventsAPIInnerEvent {
	var out []slackevents.EventsAPIInnerEvent
	for _, ev := range c.Events() {
		if api, ok := ev.Data.(slackevents.EventsAPIEvent); ok {
			out = append(out, api.InnerEvent)
		}
	}
	return out
}

func eventIDOf(r socketmode.Request) string {
	var outer struct {
		EventID string `json:"event_id"`
	}
	_ = json.Unmarshal(r.Payload, &outer)
	return outer.EventID
}

// TestNoTestingImport: the package is importable by demos and the gateway
// harness, so its non-test files must not import "testing".
func TestNoTestingImport(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range parsed.Imports {
			if imp.Path.Value == `"testing"` {
				t.Errorf("%s imports testing", f)
			}
		}
	}
}
