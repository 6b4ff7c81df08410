package selarti

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The operator console stands in for Selarti's panel, where a business's
// operators read the dialogs and answer as humans: the demo's operator
// can take a dialog over and reply, and the reply leaves as the same
// "operator" webhook Selarti posts. Its text is English, as the rest of
// the simulator's panel is: it is the business's tool, not the visitor's.
//
// It has no login, so it answers only requests from loopback, addressed
// to a loopback host (no DNS rebinding), and takes changes only as JSON
// from its own page (no cross-site form can send that).
const operatorPrefix = "/operator/"

//go:embed console/index.html console/console.js
var consoleFiles embed.FS

// DialogView is one dialog as the operator console shows it.
type DialogView struct {
	Thread   string     `json:"thread"`
	Title    string     `json:"title"`
	Task     string     `json:"task"`
	Operator bool       `json:"operator"` // Selarti's operator flag
	Human    bool       `json:"human"`    // taken over in the console: the assistant is silent
	Closed   bool       `json:"closed"`
	Lines    []LineView `json:"lines"`
}

// LineView is one message of a dialog's transcript.
type LineView struct {
	At   time.Time `json:"at"`
	From string    `json:"from"` // user, bot or operator
	Text string    `json:"text"`
}

// Dialogs returns every dialog with its transcript, the one written to
// last first. Chat ids are left out: a webchat chat id is its visitor's
// session secret.
func (s *Server) Dialogs() []DialogView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]DialogView, 0, len(s.threads))
	for _, d := range s.threads {
		v := DialogView{Thread: d.threadID, Title: d.title, Task: d.key.task, Operator: d.operator, Human: d.human, Closed: d.closed}
		for _, l := range d.transcript {
			v.Lines = append(v.Lines, LineView{At: l.at, From: l.kind, Text: l.text})
		}
		out = append(out, v)
	}
	last := func(v DialogView) time.Time {
		if len(v.Lines) == 0 {
			return time.Time{}
		}
		return v.Lines[len(v.Lines)-1].At
	}
	slices.SortFunc(out, func(a, b DialogView) int {
		if c := last(b).Compare(last(a)); c != 0 {
			return c
		}
		return strings.Compare(a.Thread, b.Thread)
	})
	return out
}

// TakeOver hands the dialog of thread to a human operator: the assistant
// stops answering in it, and the operator flag is set (it reaches the
// gateway with the dialog's next webhook, as Selarti sends no webhook of
// its own for a change of flags).
func (s *Server) TakeOver(thread string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.threads[thread]
	if d == nil {
		return fmt.Errorf("take over dialog %q: %w", thread, ErrNoDialog)
	}
	d.human, d.operator = true, true
	return nil
}

// OperatorReply makes a human operator write text into the dialog of
// thread, taking it over first; it waits until the "operator" webhook is
// delivered, like InjectOperator.
func (s *Server) OperatorReply(ctx context.Context, thread, text string) error {
	err := s.operatorWrites(ctx, text, func() *dialog {
		d := s.threads[thread]
		if d != nil {
			d.human = true
		}
		return d
	})
	if err != nil {
		return fmt.Errorf("operator reply in dialog %q: %w", thread, err)
	}
	return nil
}

// serveOperator serves the console page, its script and its JSON API.
func (s *Server) serveOperator(w *recorder, r *http.Request) {
	if !loopbackRequest(r) {
		http.Error(w, "the operator console answers on loopback only", http.StatusForbidden)
		return
	}
	switch rest := strings.TrimPrefix(r.URL.Path, operatorPrefix); {
	case rest == "" || rest == "console.js":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ctype := "console/index.html", "text/html; charset=utf-8"
		if rest != "" {
			name, ctype = "console/console.js", "text/javascript; charset=utf-8"
		}
		b, err := consoleFiles.ReadFile(name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		_, _ = w.Write(b)
	case rest == "api/dialogs" && r.Method == http.MethodGet:
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, s.Dialogs())
	case (rest == "api/takeover" || rest == "api/reply") && r.Method == http.MethodPost:
		s.operatorAction(w, r, rest)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// operatorAction takes over a dialog or replies in it, from the console.
func (s *Server) operatorAction(w *recorder, r *http.Request, action string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "send JSON", http.StatusUnsupportedMediaType)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
		http.Error(w, "cross-origin request refused", http.StatusForbidden)
		return
	}
	var req struct {
		Thread string `json:"thread"`
		Text   string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	var err error
	if action == "api/takeover" {
		err = s.TakeOver(req.Thread)
	} else {
		ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
		defer cancel()
		err = s.OperatorReply(ctx, req.Thread, req.Text)
	}
	switch {
	case errors.Is(err, ErrNoDialog):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadGateway)
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	}
}

// loopbackRequest reports whether r came from loopback and names a
// loopback host ("localhost" or a loopback IP).
func loopbackRequest(r *http.Request) bool {
	isLoop := func(hostport string) bool {
		host, _, err := net.SplitHostPort(hostport)
		if err != nil {
			host = hostport
		}
		if host == "localhost" {
			return true
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return isLoop(r.RemoteAddr) && isLoop(r.Host)
}

// ConsoleURL is the operator console's address.
func (s *Server) ConsoleURL() string { return s.root + operatorPrefix }
