package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// startServer starts a fake server closed at the end of the test.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// startBot starts a server with one bot.
func startBot(t *testing.T, opts Options) (*Server, *Bot) {
	t.Helper()
	s := startServer(t, opts)
	b, err := s.AddBot(TestToken(1), "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

// answer is a decoded Bot API answer.
type answer struct {
	Status      int
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// call posts params as JSON to a method of the bot with token.
func call(t *testing.T, s *Server, token, method string, params any) answer {
	t.Helper()
	a, err := tryCall(context.Background(), s, token, method, params)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return a
}

func tryCall(ctx context.Context, s *Server, token, method string, params any) (answer, error) {
	var body io.Reader = http.NoBody
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return answer{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/bot"+token+"/"+method, body)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(req)
}

// callForm posts params form-encoded.
func callForm(t *testing.T, s *Server, token, method string, form url.Values) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL()+"/bot"+token+"/"+method, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	a, err := do(req)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func do(req *http.Request) (answer, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return answer{}, err
	}
	a.Status = resp.StatusCode
	return a, nil
}

// result decodes a successful answer's result.
func result[T any](t *testing.T, a answer) T {
	t.Helper()
	if !a.OK || a.Status != http.StatusOK {
		t.Fatalf("answer = %d %q, want ok", a.Status, a.Description)
	}
	var v T
	if err := json.Unmarshal(a.Result, &v); err != nil {
		t.Fatalf("decode result %s: %v", a.Result, err)
	}
	return v
}

// wantError checks an error answer's status, error_code and description.
func wantError(t *testing.T, a answer, code int, desc string) {
	t.Helper()
	if a.OK || a.Status != code || a.ErrorCode != code || a.Description != desc {
		t.Fatalf("answer = %d ok=%v error_code=%d %q, want %d %q", a.Status, a.OK, a.ErrorCode, a.Description, code, desc)
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var ann = User{ID: 111, FirstName: "Ann", LastName: "Lee", Username: "ann", LanguageCode: "en"}
