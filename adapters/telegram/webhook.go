package telegram

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/mymmrac/telego"
)

// secretHeader carries the webhook's secret_token on Telegram's requests.
const secretHeader = "X-Telegram-Bot-Api-Secret-Token"

// maxUpdateBytes bounds a webhook body. An update is a few kilobytes; a
// message's text is at most 4096 characters.
const maxUpdateBytes = 1 << 20

// ServeHTTP serves the webhook at <prefix>webhook. A request is answered
// 200 only once the core has accepted the update (or it can never be
// accepted): any other status makes Telegram post it again later, and the
// core drops what it already has. Requests without the right secret_token
// get 401 and never reach the core.
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
		a.log.Warn("webhook request refused: wrong or missing secret token", "remote", req.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
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
	if err := a.handleUpdate(req.Context(), r, u); err != nil {
		// The core has logged why; Telegram posts the update again.
		a.log.Debug("update not accepted, telegram will post it again", "update_id", u.UpdateID, "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}
