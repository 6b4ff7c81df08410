package telegram

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi")
	send := map[string]any{"chat_id": 111, "text": "x"}

	t.Run("429 with retry_after", func(t *testing.T) {
		b.FailNext("sendMessage", TooManyRequests(3))
		resp, err := http.Post(s.URL()+"/bot"+b.Token()+"/sendMessage", "application/json", strings.NewReader(`{"chat_id":111,"text":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := `{"description":"Too Many Requests: retry after 3","error_code":429,"ok":false,"parameters":{"retry_after":3}}`
		if resp.StatusCode != 429 || string(raw) != want {
			t.Fatalf("answer = %d %s, want 429 %s", resp.StatusCode, raw, want)
		}
		if c := b.CallsTo("sendMessage"); !c[len(c)-1].Injected || c[len(c)-1].Status != 429 {
			t.Fatalf("call record = %+v", c[len(c)-1])
		}
	})
	t.Run("faults are used once, in order, per method", func(t *testing.T) {
		b.FailNext("sendMessage", BlockedByUser(), ServerError(502))
		b.FailNext("", ServerError(500))
		wantError(t, call(t, s, b.Token(), "getMe", nil), 500, "Internal Server Error")
		wantError(t, call(t, s, b.Token(), "sendMessage", send), 403, "Forbidden: bot was blocked by the user")
		wantError(t, call(t, s, b.Token(), "sendMessage", send), 502, "Bad Gateway")
		result[Message](t, call(t, s, b.Token(), "sendMessage", send))
	})
	t.Run("slow response", func(t *testing.T) {
		b.FailNext("getMe", Fault{Delay: 300 * time.Millisecond})
		start := time.Now()
		result[map[string]any](t, call(t, s, b.Token(), "getMe", nil))
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("answered after %s, want at least 300ms", d)
		}
	})
	t.Run("client giving up during a delay: not processed", func(t *testing.T) {
		before := len(b.Sent())
		b.FailNext("sendMessage", Fault{Delay: 5 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := tryCall(ctx, s, b.Token(), "sendMessage", send); err == nil {
			t.Fatal("call succeeded despite the client's timeout")
		}
		if err := b.Wait(ctxTimeout(t, 5*time.Second), func() bool {
			c := b.CallsTo("sendMessage")
			return c[len(c)-1].Description != ""
		}); err != nil {
			t.Fatal(err)
		}
		if len(b.Sent()) != before {
			t.Fatal("message sent although the client went away during the delay")
		}
	})
	t.Run("dropped connection: request lost", func(t *testing.T) {
		before := len(b.Sent())
		b.FailNext("sendMessage", Fault{Drop: true})
		if _, err := tryCall(context.Background(), s, b.Token(), "sendMessage", send); err == nil {
			t.Fatal("call succeeded over a dropped connection")
		}
		if len(b.Sent()) != before {
			t.Fatal("dropped request was processed")
		}
	})
	t.Run("dropped after processing: the ambiguous case", func(t *testing.T) {
		before := len(b.Sent())
		b.FailNext("sendMessage", Fault{DropAfterProcessing: true})
		if _, err := tryCall(context.Background(), s, b.Token(), "sendMessage", send); err == nil {
			t.Fatal("call succeeded over a dropped connection")
		}
		if len(b.Sent()) != before+1 {
			t.Fatal("request was not processed before the drop")
		}
	})
}

// TestErrorShapes pins the exact JSON of error answers that clients parse.
func TestErrorShapes(t *testing.T) {
	s, b := startBot(t, Options{})
	resp, err := http.Post(s.URL()+"/bot"+b.Token()+"/sendMessage", "application/json", strings.NewReader(`{"chat_id":1,"text":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(m) != 3 || m["ok"] != false || m["error_code"] != float64(400) || m["description"] != "Bad Request: chat not found" {
		t.Fatalf("error body = %v", m)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type = %q", ct)
	}
}
