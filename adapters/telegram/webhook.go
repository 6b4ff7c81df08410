package telegram

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/mymmrac/telego"

	"github.com/switchboard-gw/switchboard/kit/clientip"
)

// secretHeader carries the webhook's secret_token on Telegram's requests.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// maxUpdateBytes bounds a webhook body. An update is a few kilobytes; a
// message's text is at most 4096 characters.
const maxUpdateBytes = 1 << 20

// webhookReadTimeout bounds reading an update once the request is
// authenticated (the gateway's server.read_timeout bounds the headers and
// every request that is not): Telegram sends a few kilobytes at once.
const webhookReadTimeout = 10 * time.Second

// Reasons of refused webhook requests, the reason label of
// switchboard_adapter_rejects_total.
const rejectWrongSecret = "wrong_secret"

// ServeHTTP serves the webhook at <prefix>webhook. A request is answered
// 200 only once the core has accepted the update (or it can never be
// accepted): any other status makes Telegram post it again later, and the
// core drops what it already has. Requests without the right secret_token
// get 401, without their body being read, and never reach the core.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if a.cfg.Mode != ModeWebhook || req.URL.Path != a.prefix+"webhook" {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Constant-time comparison (of hashes, so not even the length leaks).
	if !a.hookSecret.Equal(req.Header.Get(secretHeader)) {
		a.metrics.Rejected(rejectWrongSecret)
		a.warn.Warn(rejectWrongSecret, "webhook request refused: wrong or missing secret token", "remote", clientip.String(clientip.From(req)))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	// Authenticated: the body gets its own deadline. An error means the
	// writer cannot set one (a test's recorder); the server's holds then.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.hookReadTimeout))
	r, ok := a.runs.Enter()
	if !ok {
		// Not started (or stopping): Telegram retries later.
		http.Error(w, "not running", http.StatusServiceUnavailable)
		return
	}
	defer r.Leave()

	var u telego.Update
	if err := json.NewDecoder(http.MaxBytesReader(w, req.Body, maxUpdateBytes)).Decode(&u); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "update too large", http.StatusRequestEntityTooLarge)
			return
		}
		a.log.Warn("webhook request refused: malformed update", "err", err)
		http.Error(w, "malformed update", http.StatusBadRequest)
		return
	}
	if err := a.handleUpdate(req.Context(), r, r.Data.deliver, u); err != nil {
		// The core has logged why; Telegram posts the update again.
		a.log.Debug("update not accepted, telegram will post it again", "update_id", u.UpdateID, "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}
