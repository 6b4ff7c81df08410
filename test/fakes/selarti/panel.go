package selarti

import (
	"fmt"
	"net/http"
	"strings"
)

// The webhook's panel_url and share_url point here, so that a link the
// gateway shows (or logs) during the demo opens something: a plain-text
// transcript of the dialog. The real panel is a Bubble page.
const (
	panelPrefix = "/panel/dialog/"
	sharePrefix = "/share/"
)

// servePanel answers GET panel_url / share_url with the dialog transcript.
func (s *Server) servePanel(w *recorder, r *http.Request) {
	thread := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, panelPrefix), sharePrefix)
	var b strings.Builder
	s.mu.Lock()
	d := s.threads[thread]
	if d != nil {
		w.chat = d.key.chat
		fmt.Fprintf(&b, "Dialog %s (chat %s, task %s)\n\n", d.threadID, d.key.chat, d.key.task)
		for _, l := range d.transcript {
			fmt.Fprintf(&b, "[%s] %s: %s\n", l.at.Format("15:04:05"), l.kind, l.text)
		}
	}
	s.mu.Unlock()
	if d == nil {
		http.Error(w, "dialog not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
