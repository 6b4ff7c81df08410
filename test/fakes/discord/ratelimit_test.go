package discord

import (
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/discordgo"
)

const sendRoute = "POST /channels/{id}/messages"

// TestRateLimitRetried: discordgo sleeps retry_after and retries a 429 by
// itself (ShouldRetryOnRateLimit, the default), emitting a RateLimit event;
// the caller sees only the delay.
func TestRateLimitRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	var events atomic.Int32
	dg.AddHandler(func(_ *discordgo.Session, rl *discordgo.RateLimit) {
		if rl.RetryAfter == 300*time.Millisecond && rl.Message == "You are being rate limited." {
			events.Add(1)
		}
	})
	w.bot.FailNext(sendRoute, TooManyRequests(300*time.Millisecond, false))
	start := time.Now()
	if _, err := dg.ChannelMessageSend(w.ch.ID, "eventually"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("answered after %s, want the 300ms retry_after waited", d)
	}
	calls := w.bot.CallsTo(sendRoute)
	if len(calls) != 2 || calls[0].Status != 429 || !calls[0].Injected || calls[1].Status != 200 {
		t.Fatalf("calls = %+v", calls)
	}
	if events.Load() != 1 {
		t.Fatalf("RateLimit events = %d", events.Load())
	}
	if n := len(w.bot.Sent(w.ch.ID)); n != 1 {
		t.Fatalf("sent = %d, want 1 (the 429 did not send)", n)
	}
}

// TestRateLimitNotRetried: with ShouldRetryOnRateLimit false discordgo
// returns a *RateLimitError carrying retry_after.
func TestRateLimitNotRetried(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	dg.ShouldRetryOnRateLimit = false
	w.bot.FailNext(sendRoute, TooManyRequests(1500*time.Millisecond, false))
	_, err := dg.ChannelMessageSend(w.ch.ID, "now")
	var rle *discordgo.RateLimitError
	if !errors.As(err, &rle) || rle.RetryAfter != 1500*time.Millisecond || !strings.HasSuffix(rle.URL, "/api/v9/channels/"+w.ch.ID+"/messages") {
		t.Fatalf("error = %T %v", err, err)
	}
}

// TestRateLimitGlobal: a global 429 shaped as Discord documents it (no
// bucket headers) makes discordgo wait and retry that request only; with
// X-RateLimit-Reset-After added (BucketHeaders), discordgo also takes its
// global lock and holds every other request until it resets.
func TestRateLimitGlobal(t *testing.T) {
	t.Parallel()
	for _, withHeaders := range []bool{false, true} {
		t.Run("bucket_headers="+strconv.FormatBool(withHeaders), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, Options{})
			dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
			f := TooManyRequests(600*time.Millisecond, true)
			f.BucketHeaders = withHeaders
			w.bot.FailNext(sendRoute, f)
			done := make(chan error, 1)
			go func() {
				_, err := dg.ChannelMessageSend(w.ch.ID, "global")
				done <- err
			}()
			if err := w.bot.WaitCalls(ctxTimeout(t, 5*time.Second), sendRoute, 1); err != nil {
				t.Fatal(err)
			}
			if err := w.bot.Wait(ctxTimeout(t, 5*time.Second), func() bool { return w.bot.CallsTo(sendRoute)[0].Status == 429 }); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // discordgo has read the 429's headers
			start := time.Now()
			if _, err := dg.Channel(w.ch.ID); err != nil { // another bucket
				t.Fatal(err)
			}
			other := time.Since(start)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if withHeaders && other < 300*time.Millisecond {
				t.Fatalf("another bucket answered after %s, want it held by the global lock", other)
			}
			if !withHeaders && other > 300*time.Millisecond {
				t.Fatalf("another bucket answered after %s, want at once (no global lock without Reset-After)", other)
			}
			c := w.bot.CallsTo(sendRoute)
			if len(c) != 2 || c[1].Status != 200 {
				t.Fatalf("calls = %+v", c)
			}
		})
	}
}

// TestRateLimitPacing: a real per-route limit (2 per 600ms); discordgo
// reads X-RateLimit-Remaining / Reset-After and waits by itself, so the
// fake never has to answer 429.
func TestRateLimitPacing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{RouteLimit: 2, RouteWindow: 600 * time.Millisecond})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	start := time.Now()
	for i := range 3 {
		if _, err := dg.ChannelMessageSend(w.ch.ID, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("3 sends took %s, want the third held until the window reset", d)
	}
	for _, c := range w.bot.CallsTo(sendRoute) {
		if c.Status != 200 {
			t.Fatalf("call answered %d: discordgo did not pace itself", c.Status)
		}
	}
	// Another channel is another bucket: not held.
	other := w.guild.AddChannel("other")
	start = time.Now()
	if _, err := dg.ChannelMessageSend(other.ID, "x"); err != nil || time.Since(start) > 300*time.Millisecond {
		t.Fatalf("other channel: %v after %s", err, time.Since(start))
	}
}

// TestRateLimitRaw: the headers and the 429 of a client that does not pace
// itself, and a global limit.
func TestRateLimitRaw(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{RouteLimit: 2, RouteWindow: 5 * time.Second, GlobalLimit: 6})
	path := "/channels/" + w.ch.ID + "/messages"
	a1 := do(t, w.s, w.bot.Token(), "POST", path, `{"content":"1"}`)
	a2 := do(t, w.s, w.bot.Token(), "POST", path, `{"content":"2"}`)
	a3 := do(t, w.s, w.bot.Token(), "POST", path, `{"content":"3"}`)
	if a1.Status != 200 || a1.Header.Get("X-RateLimit-Limit") != "2" || a1.Header.Get("X-RateLimit-Remaining") != "1" ||
		a1.Header.Get("X-RateLimit-Bucket") == "" || a1.Header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("first answer headers = %v", a1.Header)
	}
	if ra, _ := strconv.ParseFloat(a1.Header.Get("X-RateLimit-Reset-After"), 64); ra <= 4 || ra > 5 {
		t.Fatalf("Reset-After = %q", a1.Header.Get("X-RateLimit-Reset-After"))
	}
	if a2.Header.Get("X-RateLimit-Remaining") != "0" || a2.Header.Get("X-RateLimit-Bucket") != a1.Header.Get("X-RateLimit-Bucket") {
		t.Fatalf("second answer headers = %v", a2.Header)
	}
	m := a3.json(t)
	if a3.Status != 429 || m["message"] != "You are being rate limited." || m["global"] != false || a3.Header.Get("X-RateLimit-Scope") != "user" ||
		a3.Header.Get("Retry-After") != "5" || a3.Header.Get("X-RateLimit-Global") != "" {
		t.Fatalf("third answer = %d %s %v", a3.Status, a3.Body, a3.Header)
	}
	if ra, _ := m["retry_after"].(float64); ra <= 4 || ra > 5 {
		t.Fatalf("retry_after = %v", m["retry_after"])
	}
	if n := len(w.s.Messages(w.ch.ID)); n != 2 {
		t.Fatalf("stored %d messages, want 2 (the 429 is not processed)", n)
	}
	// Global: 6 a second in all; 3 made, the 7th fails.
	var last answer
	for range 4 {
		last = do(t, w.s, w.bot.Token(), "GET", "/users/@me", "")
	}
	m = last.json(t)
	if last.Status != 429 || m["global"] != true || last.Header.Get("X-RateLimit-Global") != "true" || last.Header.Get("X-RateLimit-Scope") != "global" ||
		last.Header.Get("X-RateLimit-Bucket") != "" {
		t.Fatalf("global 429 = %d %s %v", last.Status, last.Body, last.Header)
	}
}

// TestServerErrors: discordgo retries a 502 by itself (at once, up to
// MaxRestRetries=3 times); a 500 is returned.
func TestServerErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	dg, _ := newSession(t, w.s, w.bot.Token(), intentsContent)
	w.bot.FailNext(sendRoute, ServerError(502), ServerError(502))
	if _, err := dg.ChannelMessageSend(w.ch.ID, "after two 502s"); err != nil {
		t.Fatal(err)
	}
	if c := w.bot.CallsTo(sendRoute); len(c) != 3 || c[0].Status != 502 || c[1].Status != 502 || c[2].Status != 200 {
		t.Fatalf("calls = %+v", c)
	}
	w.bot.FailNext(sendRoute, ServerError(502), ServerError(502), ServerError(502), ServerError(502))
	if _, err := dg.ChannelMessageSend(w.ch.ID, "x"); err == nil || !strings.Contains(err.Error(), "Exceeded Max retries HTTP 502") {
		t.Fatalf("four 502s: %v", err)
	}
	w.bot.FailNext(sendRoute, ServerError(500))
	_, err := dg.ChannelMessageSend(w.ch.ID, "x")
	if re := restErr(t, err); re.Response.StatusCode != 500 || re.Message.Message != "500: Internal Server Error" {
		t.Fatalf("500: %v", err)
	}
	w.bot.FailNext(sendRoute, MissingPermissions())
	if _, err := dg.ChannelMessageSend(w.ch.ID, "x"); restErr(t, err).Message.Code != CodeMissingPermissions {
		t.Fatalf("injected 403: %v", err)
	}
	if n := len(w.bot.Sent("")); n != 1 {
		t.Fatalf("sent = %d, want 1", n)
	}
}
