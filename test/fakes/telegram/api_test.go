package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestURLAndTokens(t *testing.T) {
	s := startServer(t, Options{})
	if !regexp.MustCompile(`^http://127\.0\.0\.1:\d+$`).MatchString(s.URL()) {
		t.Errorf("URL() = %q", s.URL())
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{name: "well formed", token: TestToken(1), ok: true},
		{name: "duplicate", token: TestToken(1), ok: false},
		{name: "too short", token: "123:abc", ok: false},
		{name: "no id", token: ":" + strings.Repeat("a", 35), ok: false},
		{name: "bad character", token: "123:" + strings.Repeat("a", 34) + "!", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.AddBot(tt.token, "")
			if (err == nil) != tt.ok {
				t.Fatalf("AddBot(%q) error = %v, want ok=%v", tt.token, err, tt.ok)
			}
		})
	}
}

func TestGetMe(t *testing.T) {
	s, b := startBot(t, Options{})
	me := result[map[string]any](t, call(t, s, b.Token(), "getMe", nil))
	for k, want := range map[string]any{"is_bot": true, "username": "shop_bot", "first_name": "Test Bot", "can_join_groups": true, "can_read_all_group_messages": false} {
		if me[k] != want {
			t.Errorf("getMe %s = %v, want %v", k, me[k], want)
		}
	}
	if id, _ := me["id"].(float64); int64(id) != b.User().ID || id == 0 {
		t.Errorf("getMe id = %v, want %d", me["id"], b.User().ID)
	}
}

func TestRouting(t *testing.T) {
	s, b := startBot(t, Options{})
	t.Run("wrong token is 401", func(t *testing.T) {
		wantError(t, call(t, s, TestToken(99), "getMe", nil), 401, "Unauthorized")
	})
	t.Run("unknown method is 404", func(t *testing.T) {
		wantError(t, call(t, s, b.Token(), "sendTelepathy", nil), 404, "Not Found")
	})
	t.Run("not under /bot is 404", func(t *testing.T) {
		resp, err := http.Get(s.URL() + "/favicon.ico")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
	t.Run("method names are case-insensitive and GET works", func(t *testing.T) {
		resp, err := http.Get(s.URL() + "/bot" + b.Token() + "/GETME")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a answer
		if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || !a.OK {
			t.Fatalf("GET GETME: %v %+v", err, a)
		}
	})
	t.Run("calls are recorded", func(t *testing.T) {
		calls := b.CallsTo("getme")
		if len(calls) != 1 || calls[0].Status != 200 || calls[0].Method != "GETME" {
			t.Fatalf("calls = %+v", calls)
		}
	})
}

// TestParamEncodings: the Bot API takes parameters as a query string,
// urlencoded form, multipart form or JSON; objects in forms are
// JSON-encoded strings.
func TestParamEncodings(t *testing.T) {
	s, b := startBot(t, Options{})
	b.SendText(ann, "hi")
	reply := `{"message_id":1}`

	t.Run("json", func(t *testing.T) {
		m := result[Message](t, call(t, s, b.Token(), "sendMessage", map[string]any{
			"chat_id": ann.ID, "text": "json", "reply_parameters": map[string]any{"message_id": 1}}))
		if m.Text != "json" || m.ReplyToMessage == nil || m.ReplyToMessage.MessageID != 1 {
			t.Fatalf("message = %+v", m)
		}
	})
	t.Run("urlencoded", func(t *testing.T) {
		m := result[Message](t, callForm(t, s, b.Token(), "sendMessage", url.Values{
			"chat_id": {"111"}, "text": {"form"}, "reply_parameters": {reply}}))
		if m.Text != "form" || m.ReplyToMessage == nil {
			t.Fatalf("message = %+v", m)
		}
	})
	t.Run("query", func(t *testing.T) {
		resp, err := http.Get(s.URL() + "/bot" + b.Token() + "/sendMessage?chat_id=111&text=query")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d", resp.StatusCode)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("chat_id", "111")
		_ = mw.WriteField("text", "multipart")
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/bot"+b.Token()+"/sendMessage", &buf)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		a, err := do(req)
		if err != nil {
			t.Fatal(err)
		}
		if m := result[Message](t, a); m.Text != "multipart" {
			t.Fatalf("message = %+v", m)
		}
	})
	t.Run("malformed json", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL()+"/bot"+b.Token()+"/sendMessage", strings.NewReader(`{"chat_id":`))
		req.Header.Set("Content-Type", "application/json")
		a, err := do(req)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != 400 || !strings.HasPrefix(a.Description, "Bad Request: ") {
			t.Fatalf("answer = %+v", a)
		}
	})
	if got := len(b.SentTo(ann.ID)); got != 4 {
		t.Fatalf("sent %d messages, want 4", got)
	}
}

func TestGetFile(t *testing.T) {
	s, b := startBot(t, Options{})
	b.Push(Update{Message: &Message{From: &ann, Photo: []PhotoSize{{Width: 90, Height: 90}, {Width: 800, Height: 600}}, Caption: "look"}})
	ups := result[[]Update](t, call(t, s, b.Token(), "getUpdates", nil))
	if len(ups) != 1 || len(ups[0].Message.Photo) != 2 {
		t.Fatalf("updates = %+v", ups)
	}
	photo := ups[0].Message.Photo[1]
	if photo.FileID == "" || photo.FileUniqueID == "" || photo.FileID == ups[0].Message.Photo[0].FileID {
		t.Fatalf("photo sizes need distinct file ids: %+v", ups[0].Message.Photo)
	}
	f := result[File](t, call(t, s, b.Token(), "getFile", map[string]any{"file_id": photo.FileID}))
	if f.FileID != photo.FileID || !strings.HasPrefix(f.FilePath, "photos/") || f.FileSize == 0 {
		t.Fatalf("file = %+v", f)
	}
	resp, err := http.Get(s.URL() + "/file/bot" + b.Token() + "/" + f.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	content, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || int64(len(content)) != f.FileSize {
		t.Fatalf("download: %d, %d bytes, want %d", resp.StatusCode, len(content), f.FileSize)
	}
	wantError(t, call(t, s, b.Token(), "getFile", map[string]any{"file_id": "nope"}), 400, "Bad Request: invalid file_id")

	added := b.AddFile("menu.pdf", []byte("%PDF"))
	if got := result[File](t, call(t, s, b.Token(), "getFile", map[string]any{"file_id": added.FileID})); got.FileSize != 4 {
		t.Fatalf("added file = %+v", got)
	}
	resp, err = http.Get(s.URL() + "/file/bot" + TestToken(5) + "/" + f.FilePath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("download with a wrong token: %d, want 401", resp.StatusCode)
	}
}

func TestCloseEndsLongPolls(t *testing.T) {
	s, b := startBot(t, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := tryCall(context.Background(), s, b.Token(), "getUpdates", map[string]any{"timeout": 50})
		done <- err
	}()
	if err := b.WaitCalls(ctxTimeout(t, 5*time.Second), "getUpdates", 1); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still running after Close")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %s", d)
	}
	if _, err := s.AddBot(TestToken(3), ""); err == nil {
		t.Fatal("AddBot after Close succeeded")
	}
}
