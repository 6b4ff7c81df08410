package slack

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// gateway is a request URL that checks requests as an app must: with
// slack-go's SecretsVerifier, then parsing the event with slack-go.
type gateway struct {
	t      *testing.T
	secret string
	token  string
	srv    *httptest.Server

	mu sync.Mutex
	// answer decides the status of the nth request (0-based) and may
	// sleep; nil answers 200.
	answer func(n int, w http.ResponseWriter) int
	seen   []gatewayRequest
}

type gatewayRequest struct {
	header    http.Header
	body      []byte
	verifyErr error
	event     slackevents.EventsAPIEvent
	parseErr  error
}

func newGateway(t *testing.T, team *Team) *gateway {
	g := &gateway{t: t, secret: team.SigningSecret(), token: team.VerificationToken()}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := gatewayRequest{header: r.Header.Clone(), body: body}
	sv, err := slackapi.NewSecretsVerifier(r.Header, g.secret)
	if err == nil {
		_, _ = sv.Write(body)
		err = sv.Ensure()
	}
	req.verifyErr = err
	if err == nil {
		req.event, req.parseErr = slackevents.ParseEvent(body,
			slackevents.OptionVerifyToken(&slackevents.TokenComparator{VerificationToken: g.token}))
	}
	g.mu.Lock()
	n := len(g.seen)
	g.seen = append(g.seen, req)
	answer := g.answer
	g.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, err.Error(), http.StatusUnauthorized)
	case req.event.Type == slackevents.URLVerification:
		var ch slackevents.ChallengeResponse
		_ = json.Unmarshal(body, &ch)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ch.Challenge))
	case answer != nil:
		w.WriteHeader(answer(n, w))
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (g *gateway) requests() []gatewayRequest {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]gatewayRequest(nil), g.seen...)
}

func (g *gateway) setAnswer(f func(n int, w http.ResponseWriter) int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.answer = f
}

func TestSignMatchesSlack(t *testing.T) {
	body := []byte(`{"type":"event_callback"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign("s3cr3t", ts, body))
	sv, err := slackapi.NewSecretsVerifier(h, "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = sv.Write(body)
	if err := sv.Ensure(); err != nil {
		t.Fatalf("slack-go rejects the fake's signature: %v", err)
	}
	// Slack's documented example: secret 8f742231b10e8888abcd99yyyzzz85a5,
	// timestamp 1531420618 and the slash command body give this signature.
	const docBody = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	if got := Sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", []byte(docBody)); got != "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503" {
		t.Fatalf("signature of Slack's documented example = %s", got)
	}
}

func TestPostEvent(t *testing.T) {
	_, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	g := newGateway(t, team)
	posts, err := team.PostEvent(context.Background(), g.srv.URL, Event{"type": "message", "user": ann.ID, "text": "hi", "channel": "D1", "channel_type": "im", "ts": "1700000000.000100"})
	if err != nil {
		t.Fatal(err)
	}
	if len(posts) != 1 || posts[0].Status != 200 || posts[0].Failure != "" || posts[0].RetryNum != 0 || posts[0].EventID == "" {
		t.Fatalf("posts = %+v", posts)
	}
	reqs := g.requests()
	if len(reqs) != 1 || reqs[0].verifyErr != nil || reqs[0].parseErr != nil {
		t.Fatalf("gateway saw %+v", reqs)
	}
	r := reqs[0]
	if r.header.Get(HeaderRetryNum) != "" || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers = %v", r.header)
	}
	msg, ok := r.event.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || msg.Text != "hi" || msg.User != ann.ID || r.event.TeamID != team.ID() || r.event.APIAppID != team.AppID() {
		t.Fatalf("event = %+v / %+v", r.event, r.event.InnerEvent.Data)
	}
}

func TestPostEventRetries(t *testing.T) {
	t.Run("500: three retries with http_error, same event", func(t *testing.T) {
		_, team := startTeam(t, fastOptions())
		g := newGateway(t, team)
		g.setAnswer(func(int, http.ResponseWriter) int { return http.StatusInternalServerError })
		posts, err := team.PostEvent(context.Background(), g.srv.URL, Event{"type": "message", "text": "x"})
		if err == nil {
			t.Fatal("no error although every attempt failed")
		}
		reqs := g.requests()
		if len(posts) != 4 || len(reqs) != 4 {
			t.Fatalf("%d attempts, gateway saw %d; want 4", len(posts), len(reqs))
		}
		var firstID string
		for i, r := range reqs {
			var cb slackevents.EventsAPICallbackEvent
			_ = json.Unmarshal(r.body, &cb)
			if i == 0 {
				firstID = cb.EventID
				if r.header.Get(HeaderRetryNum) != "" || r.header.Get(HeaderRetryReason) != "" {
					t.Fatalf("first attempt has retry headers %v", r.header)
				}
				continue
			}
			if r.verifyErr != nil || cb.EventID != firstID || r.header.Get(HeaderRetryNum) != strconv.Itoa(i) ||
				r.header.Get(HeaderRetryReason) != ReasonHTTPError {
				t.Fatalf("attempt %d: event %s (first %s), headers %v, verify %v", i, cb.EventID, firstID, r.header, r.verifyErr)
			}
			if posts[i].RetryNum != i || posts[i].RetryReason != ReasonHTTPError || posts[i].Status != 500 {
				t.Fatalf("record %d = %+v", i, posts[i])
			}
		}
	})
	t.Run("recovers", func(t *testing.T) {
		_, team := startTeam(t, fastOptions())
		g := newGateway(t, team)
		g.setAnswer(func(n int, _ http.ResponseWriter) int {
			if n < 2 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		posts, err := team.PostEvent(context.Background(), g.srv.URL, Event{"type": "message", "text": "x"})
		if err != nil || len(posts) != 3 || posts[2].RetryNum != 2 || posts[2].Failure != "" {
			t.Fatalf("posts = %+v, %v", posts, err)
		}
	})
	t.Run("slow answer: http_timeout", func(t *testing.T) {
		_, team := startTeam(t, fastOptions())
		g := newGateway(t, team)
		g.setAnswer(func(n int, _ http.ResponseWriter) int {
			if n == 0 {
				time.Sleep(2 * team.s.opts.EventsTimeout)
			}
			return http.StatusOK
		})
		posts, err := team.PostEvent(context.Background(), g.srv.URL, Event{"type": "message", "text": "x"})
		if err != nil || len(posts) != 2 || posts[0].Failure != ReasonHTTPTimeout || posts[1].RetryReason != ReasonHTTPTimeout {
			t.Fatalf("posts = %+v, %v", posts, err)
		}
		if r := g.requests(); len(r) != 2 || r[1].header.Get(HeaderRetryReason) != ReasonHTTPTimeout || r[1].header.Get(HeaderRetryNum) != "1" {
			t.Fatalf("gateway saw %+v", r)
		}
	})
	t.Run("X-Slack-No-Retry", func(t *testing.T) {
		_, team := startTeam(t, fastOptions())
		g := newGateway(t, team)
		g.setAnswer(func(_ int, w http.ResponseWriter) int {
			w.Header().Set(HeaderNoRetry, "1")
			return http.StatusInternalServerError
		})
		posts, err := team.PostEvent(context.Background(), g.srv.URL, Event{"type": "message", "text": "x"})
		if err == nil || len(posts) != 1 || !posts[0].NoRetry {
			t.Fatalf("posts = %+v, %v", posts, err)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		_, team := startTeam(t, fastOptions())
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		posts, err := team.PostEvent(context.Background(), url, Event{"type": "message", "text": "x"})
		if err == nil || len(posts) != 4 || posts[1].RetryReason != ReasonConnectionFailed {
			t.Fatalf("posts = %+v, %v", posts, err)
		}
	})
}

func TestForgedRequests(t *testing.T) {
	_, team := startTeam(t, fastOptions())
	g := newGateway(t, team)
	ctx := context.Background()

	p, err := team.PostURLVerification(ctx, g.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != PostURLVerification || p.Status != 200 {
		t.Fatalf("url_verification = %+v", p)
	}

	bad := team.PostBadSignature(ctx, g.srv.URL, Event{"type": "message", "text": "x"})
	stale := team.PostStale(ctx, g.srv.URL, Event{"type": "message", "text": "x"})
	raw := team.PostRaw(ctx, g.srv.URL, []byte(`{}`), "", "")
	reqs := g.requests()
	if len(reqs) != 4 {
		t.Fatalf("gateway saw %d requests", len(reqs))
	}
	if !errors.Is(reqs[1].verifyErr, slackapi.ErrInvalidSignature) || bad.Status != 401 {
		t.Fatalf("bad signature: verifier said %v, answer %d", reqs[1].verifyErr, bad.Status)
	}
	if !errors.Is(reqs[2].verifyErr, slackapi.ErrExpiredTimestamp) || stale.Status != 401 {
		t.Fatalf("stale: verifier said %v, answer %d", reqs[2].verifyErr, stale.Status)
	}
	if !errors.Is(reqs[3].verifyErr, slackapi.ErrMissingHeaders) || raw.Status != 401 {
		t.Fatalf("unsigned: verifier said %v", reqs[3].verifyErr)
	}
	// Forgeries are not retried.
	if n := len(team.EventPosts()); n != 4 {
		t.Fatalf("%d posts recorded, want 4", n)
	}

	t.Run("a URL that does not echo the challenge", func(t *testing.T) {
		wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }))
		defer wrong.Close()
		if _, err := team.PostURLVerification(ctx, wrong.URL); err == nil {
			t.Fatal("accepted an answer without the challenge")
		}
		json := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var ch slackevents.ChallengeResponse
			_ = jsonDecode(r.Body, &ch)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"challenge":"` + ch.Challenge + `"}`))
		}))
		defer json.Close()
		if _, err := team.PostURLVerification(ctx, json.URL); err != nil {
			t.Fatalf("a JSON echo: %v", err)
		}
	})
}

// TestRequestURLMode: with a request URL set, user actions go to it over
// HTTP instead of Socket Mode.
func TestRequestURLMode(t *testing.T) {
	_, team := startTeam(t, fastOptions())
	ann := team.AddUser("ann", "Ann Lee")
	g := newGateway(t, team)
	team.SetRequestURL(g.srv.URL)
	r := team.Mention(ann, team.AddChannel("general"), "hello", "")
	for _, id := range r.EventIDs {
		if err := team.WaitEventPosts(ctxTimeout(t, 5*time.Second), id, 1); err != nil {
			t.Fatal(err)
		}
	}
	if team.Pending() != 0 || len(team.Envelopes()) != 0 {
		t.Fatal("events went to Socket Mode too")
	}
	types := map[string]bool{}
	for _, req := range g.requests() {
		if req.verifyErr != nil || req.parseErr != nil {
			t.Fatalf("gateway: %v %v", req.verifyErr, req.parseErr)
		}
		types[req.event.InnerEvent.Type] = true
	}
	if !types["app_mention"] || !types["message"] {
		t.Fatalf("gateway saw %v", types)
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
