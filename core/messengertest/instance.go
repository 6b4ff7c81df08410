package messengertest

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// Instance returns the core.Instance the engine would give kind's
// factory, for a test: named "test", with raw as its config block, a
// debug logger writing to logs (shown with the test's output when it
// fails), an HTTP client with a timeout, and a fresh DataDir. Change its
// fields (PublicURL, Name) before calling the factory as the test needs.
func Instance(t testing.TB, kind string, raw core.RawConfig) (core.Instance, *Logs) {
	t.Helper()
	logs := &Logs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s adapter logs:\n%s", kind, logs.String())
		}
	})
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return core.Instance{
		Name:    "test",
		Kind:    kind,
		Config:  raw,
		Logger:  log.With("adapter", kind, "instance", "test"),
		HTTP:    &http.Client{Timeout: 30 * time.Second},
		DataDir: t.TempDir(),
		Metrics: &Metrics{},
	}, logs
}

// Logs collects an adapter's log lines from many goroutines.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was logged so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Contains reports whether s was logged.
func (l *Logs) Contains(s string) bool { return strings.Contains(l.String(), s) }

// Metrics records what an adapter counts through core.Metrics; Instance
// gives every instance one (inst.Metrics.(*messengertest.Metrics)).
type Metrics struct {
	mu       sync.Mutex
	rejected map[string]int
}

// Rejected implements core.Metrics.
func (m *Metrics) Rejected(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rejected == nil {
		m.rejected = make(map[string]int)
	}
	m.rejected[reason]++
}

// RejectedCount returns how many times Rejected(reason) was called.
func (m *Metrics) RejectedCount(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rejected[reason]
}
