package telegram

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
	"github.com/switchboard-gw/switchboard/internal/testutil"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// webhookHarness runs an adapter in webhook mode behind a real HTTP server
// on loopback, as the gateway mounts it.
func webhookHarness(t *testing.T, raw core.RawConfig) (*harness, string) {
	t.Helper()
	h := newHarness(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg := core.RawConfig{"mode": "webhook"}
	for k, v := range raw {
		cfg[k] = v
	}
	h.a = h.build(cfg, base)
	srv := &http.Server{Handler: h.a, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h, base + "/telegram/tg/webhook"
}

func post(t *testing.T, url, secret, body string) int {
	t.Helper()
	status, err := faketelegram.PostUpdate(context.Background(), http.DefaultClient, url, secret, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return status
}

func TestWebhookMode(t *testing.T) {
	h, hook := webhookHarness(t, nil)
	update := `{"update_id":5,"message":{"message_id":9,"date":1700000000,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Ann"},"text":"forged"}}`

	if got := post(t, hook, "whatever", update); got != http.StatusServiceUnavailable && got != http.StatusUnauthorized {
		t.Fatalf("before Start: %d", got)
	}
	h.start(h.a)
	calls := h.bot.CallsTo("setWebhook")
	if len(calls) != 1 || len(h.bot.CallsTo("deleteWebhook")) != 0 {
		t.Fatalf("setWebhook calls %+v", h.bot.Calls())
	}
	p := calls[0].Params
	secret := p["secret_token"]
	if p["url"] != hook || p["allowed_updates"] != `["message","my_chat_member"]` || p["max_connections"] != "40" || len(secret) != 64 {
		t.Fatalf("setWebhook params = %v", p)
	}
	if h.bot.WebhookInfo().URL != hook {
		t.Fatalf("webhook info = %+v", h.bot.WebhookInfo())
	}

	t.Run("updates posted by Telegram are delivered", func(t *testing.T) {
		h.bot.SendText(ann, "via webhook")
		eventually(t, "delivery", func() bool { return slices.Equal(h.rec.Texts(), []string{"via webhook"}) })
		eventually(t, "confirmed", func() bool { return h.bot.Pending() == 0 })
		if a := h.bot.WebhookAttempts(); len(a) != 1 || a[0].Status != 200 {
			t.Fatalf("attempts = %+v", a)
		}
	})
	t.Run("wrong or missing secret is refused", func(t *testing.T) {
		for _, s := range []string{"", "wrong", secret + "x", strings.ToUpper(secret)} {
			if got := post(t, hook, s, update); got != http.StatusUnauthorized {
				t.Fatalf("secret %q: status %d, want 401", s, got)
			}
		}
		if slices.Contains(h.rec.CallTexts(), "forged") {
			t.Fatal("a refused request reached the core")
		}
		// These four, and the one before Start.
		if n := h.a.metrics.(*messengertest.Metrics).RejectedCount(rejectWrongSecret); n != 5 {
			t.Fatalf("%d refusals counted, want 5", n)
		}
		if strings.Contains(h.logs.String(), secret) {
			t.Fatal("the secret appears in the logs")
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		if got := post(t, hook, secret, `{"update_id":`); got != http.StatusBadRequest {
			t.Fatalf("malformed: %d", got)
		}
		if got := post(t, hook, secret, `{"update_id":1,"x":"`+strings.Repeat("a", 2<<20)+`"}`); got != http.StatusRequestEntityTooLarge {
			t.Fatalf("too large: %d", got)
		}
		resp, err := http.Get(hook)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET: %d", resp.StatusCode)
		}
		if got := post(t, strings.TrimSuffix(hook, "webhook")+"other", secret, update); got != http.StatusNotFound {
			t.Fatalf("other path: %d", got)
		}
	})
	t.Run("an update the core did not take is posted again", func(t *testing.T) {
		failed := false
		h.rec.FailWith(func(_ context.Context, n int, m core.Inbound) error {
			if m.Text == "retry me" && !failed {
				failed = true
				return errors.New("store is busy")
			}
			return nil
		})
		before := len(h.bot.WebhookAttempts())
		h.bot.SendText(ann, "retry me")
		eventually(t, "delivery", func() bool { return slices.Contains(h.rec.Texts(), "retry me") })
		a := h.bot.WebhookAttempts()[before:]
		if len(a) != 2 || a[0].Status != http.StatusServiceUnavailable || a[1].Status != 200 {
			t.Fatalf("attempts = %+v, want a 503 then a 200", a)
		}
	})
	t.Run("a signed update posted directly is delivered once", func(t *testing.T) {
		if got := post(t, hook, secret, update); got != 200 {
			t.Fatalf("status %d", got)
		}
		if got := post(t, hook, secret, update); got != 200 {
			t.Fatalf("redelivery: status %d", got)
		}
		if n := strings.Count(strings.Join(h.rec.Texts(), "|"), "forged"); n != 1 {
			t.Fatalf("accepted %d times", n)
		}
	})
	t.Run("stopped: 503, and the webhook stays registered", func(t *testing.T) {
		if err := h.a.Stop(ctxTimeout(t)); err != nil {
			t.Fatal(err)
		}
		if got := post(t, hook, secret, update); got != http.StatusServiceUnavailable {
			t.Fatalf("status %d", got)
		}
		if h.bot.WebhookInfo().URL != hook {
			t.Fatal("Stop removed the webhook")
		}
	})
}

// An authenticated webhook request whose body trickles in is cut off
// at the adapter's own read deadline, whatever the server's.
func TestWebhookAuthenticatedBodyHasADeadline(t *testing.T) {
	h, hook := webhookHarness(t, nil)
	h.a.hookReadTimeout = 300 * time.Millisecond
	h.start(h.a)
	secret := h.bot.WebhookSecret()
	u, err := url.Parse(hook)
	if err != nil {
		t.Fatal(err)
	}
	head := "POST " + u.Path + " HTTP/1.1\r\nHost: " + u.Host + "\r\n" + secretHeader + ": " + secret
	res := testutil.Trickle(t, u.Host, head, 100*time.Millisecond, 5*time.Second)
	if !res.Closed || res.After > 3*time.Second {
		t.Fatalf("connection still open after %s (closed %v), want it cut off after about 300ms", res.After, res.Closed)
	}
	if !strings.HasPrefix(res.Reply, "HTTP/1.1 400") {
		t.Fatalf("reply %q, want a 400", res.Reply)
	}
	// The adapter goes on serving.
	h.bot.SendText(ann, "after the trickle")
	eventually(t, "delivery", func() bool { return slices.Contains(h.rec.Texts(), "after the trickle") })
}

func TestSwitchBackToPolling(t *testing.T) {
	h, _ := webhookHarness(t, nil)
	h.start(h.a)
	poller := h.build(nil, "")
	if err := h.a.Stop(ctxTimeout(t)); err != nil {
		t.Fatal(err)
	}
	h.bot.SendText(ann, "after the switch")
	h.start(poller)
	eventually(t, "polled message", func() bool { return slices.Contains(h.rec.Texts(), "after the switch") })
	if h.bot.WebhookInfo().URL != "" || len(h.bot.CallsTo("deleteWebhook")) != 1 {
		t.Fatal("polling mode did not delete the webhook")
	}
}

func TestPollingModeServesNoWebhook(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	req, _ := http.NewRequest(http.MethodPost, "/telegram/tg/webhook", strings.NewReader("{}"))
	w := &statusRecorder{header: http.Header{}}
	h.a.ServeHTTP(w, req)
	if w.status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", w.status)
	}
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int)        { r.status = code }
