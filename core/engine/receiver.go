package engine

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/kit/logthrottle"
)

// WebhookPath is where Selarti posts its webhooks. The secret is the last
// path segment: Selarti's integration takes only a URL, no headers.
const WebhookPath = "/webhooks/selarti"

// WebhookSecretHeader carries the secret instead, for a reverse proxy
// that adds it (then the URL given to Selarti is the proxy's).
const WebhookSecretHeader = "X-Switchboard-Webhook-Secret"

// webhookReadTimeout bounds reading one webhook body once its secret
// checked out (or server.read_timeout, if that is shorter), so that even
// an authenticated client that trickles bytes cannot hold a connection
// for long. Selarti sends a few kilobytes at once.
const webhookReadTimeout = 10 * time.Second

// receiver is the Selarti webhook endpoint.
type receiver struct {
	secret      core.Secret
	maxBytes    int64
	readTimeout time.Duration // of an authenticated body
	router      *Router
	metrics     *Metrics
	log         *slog.Logger
	// warn throttles the rejection warnings: anyone can send requests
	// with a wrong secret, as fast as they like. The metric counts them
	// all.
	warn *logthrottle.Throttle
}

// webhookReply is the JSON body of every answer, so Selarti's logs (and an
// operator with curl) see why a webhook was refused.
type webhookReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func (rc *receiver) reject(c echo.Context, status int, reason, msg string, attrs ...any) error {
	rc.metrics.webhookRejected(reason)
	attrs = append([]any{"status", status, "remote", c.RealIP()}, attrs...)
	rc.warn.Log(c.Request().Context(), slog.LevelWarn, reason, "webhook rejected", attrs...)
	return c.JSON(status, webhookReply{Error: msg})
}

// handle authenticates, reads, parses and routes one webhook. It answers
// 200 only once the message is queued durably (or deliberately dropped as
// the user's own echo), so a 2xx is a promise.
func (rc *receiver) handle(c echo.Context) error {
	req := c.Request()
	// Secrets in query strings end up in proxy and access logs; refuse them
	// rather than quietly ignore them, so the mistake is noticed.
	if q := req.URL.Query(); q.Has("secret") || q.Has("token") || q.Has("key") || q.Has("webhook_secret") {
		return rc.reject(c, http.StatusBadRequest, "secret_in_query",
			"secrets are not accepted in the query string; put the secret in the URL path")
	}
	candidate := c.Param("secret")
	if candidate == "" {
		candidate = req.Header.Get(WebhookSecretHeader)
	}
	if candidate == "" {
		return rc.reject(c, http.StatusUnauthorized, "missing_secret", "missing webhook secret")
	}
	if !rc.secret.Equal(candidate) {
		return rc.reject(c, http.StatusUnauthorized, "wrong_secret", "wrong webhook secret")
	}

	_ = http.NewResponseController(c.Response().Writer).SetReadDeadline(time.Now().Add(rc.readTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(c.Response().Writer, req.Body, rc.maxBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return rc.reject(c, http.StatusRequestEntityTooLarge, "too_large", "webhook body too large", "limit", rc.maxBytes)
		}
		return rc.reject(c, http.StatusBadRequest, "read_error", "could not read body", "err", err)
	}
	wh, err := selarti.ParseWebhook(body)
	if err != nil {
		return rc.reject(c, http.StatusBadRequest, "malformed", err.Error(), "bytes", len(body), "err", err)
	}
	err = rc.router.HandleWebhook(req.Context(), wh)
	switch {
	case err == nil:
		return c.JSON(http.StatusOK, webhookReply{OK: true})
	case errors.Is(err, errBadChatID):
		return rc.reject(c, http.StatusBadRequest, "bad_chat_id", err.Error(), "message_id", wh.MessageID)
	case errors.Is(err, ErrUnknownInstance):
		return rc.reject(c, http.StatusNotFound, "unknown_instance", err.Error(), "message_id", wh.MessageID)
	case errors.Is(err, core.ErrUnknownChat):
		return rc.reject(c, http.StatusNotFound, "unknown_chat", err.Error(), "message_id", wh.MessageID)
	default:
		// The store failed: say so with a 503 so that Selarti (if it
		// retries) tries again, rather than lose the message.
		rc.metrics.webhookRejected("unavailable")
		rc.log.Error("webhook not queued", "chat", wh.ExternalChatID, "message_id", wh.MessageID, "err", err)
		return c.JSON(http.StatusServiceUnavailable, webhookReply{Error: "temporarily unavailable"})
	}
}
