package discord

import (
	"strings"
	"testing"
	"time"
)

// TestRESTShapes pins the JSON and headers clients parse.
func TestRESTShapes(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	tok := w.bot.Token()

	a := do(t, w.s, "", "GET", "/gateway", "")
	if m := a.json(t); a.Status != 200 || m["url"] != w.s.GatewayURL() {
		t.Fatalf("GET /gateway = %d %s", a.Status, a.Body)
	}
	a = do(t, w.s, tok, "GET", "/gateway/bot", "")
	m := a.json(t)
	ssl, _ := m["session_start_limit"].(map[string]any)
	if a.Status != 200 || m["url"] != w.s.GatewayURL() || m["shards"] != float64(1) || ssl["total"] != float64(1000) ||
		ssl["remaining"] != float64(1000) || ssl["max_concurrency"] != float64(1) {
		t.Fatalf("GET /gateway/bot = %s", a.Body)
	}
	a = do(t, w.s, tok, "GET", "/users/@me", "")
	if m := a.json(t); a.Status != 200 || m["id"] != w.bot.ID() || m["bot"] != true || m["username"] != "switchboard" || m["discriminator"] != "0" {
		t.Fatalf("GET /users/@me = %s", a.Body)
	}
	// Errors, with exactly Discord's bodies.
	wantBody := func(a answer, status int, body string) {
		t.Helper()
		if a.Status != status || string(a.Body) != body {
			t.Fatalf("answer = %d %s, want %d %s", a.Status, a.Body, status, body)
		}
	}
	wantBody(do(t, w.s, "", "GET", "/users/@me", ""), 401, `{"code":0,"message":"401: Unauthorized"}`)
	wantBody(do(t, w.s, "wrong", "GET", "/users/@me", ""), 401, `{"code":0,"message":"401: Unauthorized"}`)
	wantBody(do(t, w.s, tok, "GET", "/nothing/here", ""), 404, `{"code":0,"message":"404: Not Found"}`)
	wantBody(do(t, w.s, tok, "PUT", "/channels/"+w.ch.ID+"/messages", "{}"), 405, `{"code":0,"message":"405: Method Not Allowed"}`)
	wantBody(do(t, w.s, tok, "GET", "/channels/123456789012345678", ""), 404, `{"code":10003,"message":"Unknown Channel"}`)
	wantBody(do(t, w.s, tok, "GET", "/api/v7/users/@me", ""), 400, `{"code":50041,"message":"Invalid API version"}`)
	wantBody(do(t, w.s, tok, "POST", "/channels/"+w.ch.ID+"/messages", `{"content":`), 400, `{"code":50109,"message":"The request body contains invalid JSON."}`)
	wantBody(do(t, w.s, tok, "GET", "/channels/abc", ""), 400,
		`{"code":50035,"errors":{"channel_id":{"_errors":[{"code":"NUMBER_TYPE_COERCE","message":"Value \"abc\" is not snowflake."}]}},"message":"Invalid Form Body"}`)
	wantBody(do(t, w.s, tok, "POST", "/channels/"+w.ch.ID+"/messages", `{"content":"`+strings.Repeat("a", 2001)+`"}`), 400,
		`{"code":50035,"errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 2000 or fewer in length."}]}},"message":"Invalid Form Body"}`)
	wantBody(do(t, w.s, tok, "POST", "/channels/"+w.ch.ID+"/messages", `{}`), 400, `{"code":50006,"message":"Cannot send an empty message"}`)

	// Every answer carries the rate-limit headers.
	for _, c := range []answer{
		do(t, w.s, tok, "GET", "/users/@me", ""),
		do(t, w.s, "", "GET", "/users/@me", ""),
		do(t, w.s, tok, "GET", "/channels/123456789012345678", ""),
		do(t, w.s, tok, "POST", "/channels/"+w.ch.ID+"/typing", ""),
	} {
		for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} {
			if c.Header.Get(h) == "" {
				t.Fatalf("answer %d has no %s: %v", c.Status, h, c.Header)
			}
		}
	}

	// v9 and v10 paths are the same API; both are recorded with their version.
	do(t, w.s, tok, "GET", "/api/v9/users/@me", "")
	calls := w.bot.CallsTo("GET /users/@me")
	if last := calls[len(calls)-1]; last.Version != "9" || last.Path != "/api/v9/users/@me" || last.Status != 200 {
		t.Fatalf("last call = %+v", last)
	}
	// Calls record route templates, bodies and codes.
	all := w.s.Calls()
	var sawTyping bool
	for _, c := range all {
		if c.Route == "POST /channels/{id}/typing" && c.Status == 204 && c.BotID == w.bot.ID() {
			sawTyping = true
		}
		if c.Route == "" && c.Status != 404 && c.Status != 400 && c.Status != 405 {
			t.Fatalf("unrouted call = %+v", c)
		}
	}
	if !sawTyping {
		t.Fatal("typing call not recorded")
	}
	// A user DM channel by REST.
	a = do(t, w.s, tok, "POST", "/users/@me/channels", `{"recipient_id":"`+w.ann.ID+`"}`)
	if m := a.json(t); a.Status != 200 || m["type"] != float64(1) || m["id"] != w.bot.DMChannel(w.ann).ID {
		t.Fatalf("create DM = %s", a.Body)
	}
	a = do(t, w.s, tok, "POST", "/users/@me/channels", `{}`)
	wantError(t, a, 400, CodeInvalidFormBody, "Invalid Form Body")
}

// TestFaultsRaw: injected faults are used once, in order, per route; a
// delay holds the answer; a drop closes the connection.
func TestFaultsRaw(t *testing.T) {
	t.Parallel()
	w := newWorld(t, Options{})
	tok := w.bot.Token()
	w.bot.FailNext("GET /users/@me", ServerError(503), MissingPermissions())
	w.s.FailNext("", ServerError(500))
	wantError(t, do(t, w.s, tok, "GET", "/users/@me", ""), 503, 0, "503: Service Unavailable")
	wantError(t, do(t, w.s, tok, "GET", "/users/@me", ""), 403, 50013, "Missing Permissions")
	wantError(t, do(t, w.s, tok, "GET", "/gateway/bot", ""), 500, 0, "500: Internal Server Error")
	if a := do(t, w.s, tok, "GET", "/users/@me", ""); a.Status != 200 {
		t.Fatalf("after the faults: %d", a.Status)
	}
	w.bot.FailNext("GET /users/@me", Fault{Delay: 200 * time.Millisecond})
	start := time.Now()
	if a := do(t, w.s, tok, "GET", "/users/@me", ""); a.Status != 200 || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("delayed answer %d after %s", a.Status, time.Since(start))
	}
	// (A POST: net/http itself retries a GET whose reused connection was
	// closed before any answer, which would hide the drop.)
	w.bot.FailNext("", Fault{Drop: true})
	dg, _ := newSession(t, w.s, tok, 0)
	if _, err := dg.ChannelMessageSend(w.ch.ID, "lost"); err == nil {
		t.Fatal("dropped request succeeded")
	}
	calls := w.bot.CallsTo(sendRoute)
	if len(calls) != 1 || calls[0].Status != 0 || !calls[0].Injected || len(w.bot.Sent("")) != 0 {
		t.Fatalf("dropped call records = %+v", calls)
	}
}

// TestSnowflakes: ids are increasing and carry their time.
func TestSnowflakes(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{})
	prev := ""
	for range 10000 {
		id := s.NewUser("u", "").ID
		if prev != "" && !idLess(prev, id) {
			t.Fatalf("%s after %s", id, prev)
		}
		prev = id
	}
	if d := time.Since(SnowflakeTime(prev)); d < 0 || d > time.Second {
		t.Fatalf("snowflake time is %s off", d)
	}
	if got := SnowflakeTime(SnowflakeAt(time.UnixMilli(1700000000123))); !got.Equal(time.UnixMilli(1700000000123)) {
		t.Fatalf("SnowflakeAt round trip = %v", got)
	}
}
