package logthrottle

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a fake time with timers that fire when it is advanced.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func (ft *fakeTimer) Stop() bool { was := !ft.stopped; ft.stopped = true; return was }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) AfterFunc(d time.Duration, f func()) stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	ft := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, ft)
	return ft
}

// advance moves time on and runs the timers that are due.
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, ft := range c.timers {
		if !ft.at.After(c.now) {
			due = append(due, ft)
		} else {
			rest = append(rest, ft)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	for _, ft := range due {
		if !ft.stopped {
			ft.f()
		}
	}
}

func newTest(burst int, interval time.Duration) (*Throttle, *clock, *bytes.Buffer) {
	var buf bytes.Buffer
	th := New(slog.New(slog.NewJSONHandler(&buf, nil)), burst, interval)
	c := &clock{now: time.Unix(1e9, 0)}
	th.now, th.afterFunc = c.Now, c.AfterFunc
	return th, c, &buf
}

type line struct {
	Msg        string `json:"msg"`
	Level      string `json:"level"`
	Reason     string `json:"reason"`
	Suppressed int    `json:"suppressed"`
	Line       string `json:"line"`
	N          int    `json:"n"`
}

func lines(t *testing.T, buf *bytes.Buffer) []line {
	t.Helper()
	var out []line
	for _, s := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if s == "" {
			continue
		}
		var l line
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			t.Fatalf("log line %q: %v", s, err)
		}
		out = append(out, l)
	}
	buf.Reset()
	return out
}

func TestThrottle(t *testing.T) {
	th, c, buf := newTest(3, time.Minute)
	for i := range 100 {
		th.Warn("wrong_secret", "webhook rejected", "n", i)
	}
	th.Warn("missing_secret", "webhook rejected", "n", 0)
	got := lines(t, buf)
	if len(got) != 4 {
		t.Fatalf("%d lines in the first interval, want 3 of one reason and 1 of the other: %+v", len(got), got)
	}
	for i, l := range got[:3] {
		if l.Reason != "wrong_secret" || l.N != i || l.Msg != "webhook rejected" || l.Level != "WARN" {
			t.Errorf("line %d = %+v", i, l)
		}
	}
	if got[3].Reason != "missing_secret" {
		t.Errorf("the other reason was throttled with the first: %+v", got[3])
	}

	// The interval ends: one summary, for the reason that had suppressions.
	c.advance(time.Minute)
	got = lines(t, buf)
	if len(got) != 1 {
		t.Fatalf("at the end of the interval: %+v, want one summary", got)
	}
	if s := got[0]; s.Msg != "similar log lines suppressed" || s.Reason != "wrong_secret" || s.Suppressed != 97 || s.Line != "webhook rejected" || s.Level != "WARN" {
		t.Errorf("summary = %+v", s)
	}

	// A new interval starts afresh.
	th.Warn("wrong_secret", "webhook rejected", "n", 100)
	if got := lines(t, buf); len(got) != 1 || got[0].N != 100 {
		t.Errorf("in the next interval: %+v", got)
	}
	c.advance(time.Hour)
	if got := lines(t, buf); len(got) != 0 {
		t.Errorf("a summary without suppressions: %+v", got)
	}
}

// An event that arrives after the interval ended but before its timer ran
// writes the summary itself, once.
func TestThrottleSummaryBeforeTimer(t *testing.T) {
	th, c, buf := newTest(1, time.Minute)
	th.Warn("r", "refused")
	th.Warn("r", "refused")
	th.Warn("r", "refused")
	lines(t, buf)
	c.mu.Lock()
	c.now = c.now.Add(2 * time.Minute) // time passes, the timer has not run
	c.mu.Unlock()
	th.Warn("r", "refused")
	got := lines(t, buf)
	if len(got) != 2 || got[0].Suppressed != 2 || got[1].Msg != "refused" {
		t.Fatalf("got %+v, want the summary of 2 then the new line", got)
	}
	c.advance(0)
	c.advance(time.Hour)
	if got := lines(t, buf); len(got) != 0 {
		t.Errorf("summary written twice: %+v", got)
	}
}

func TestThrottleConcurrent(t *testing.T) {
	var buf syncBuf
	th := New(slog.New(slog.NewJSONHandler(&buf, nil)), 5, time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				th.Warn("r", "refused")
			}
		})
	}
	wg.Wait()
	if n := strings.Count(buf.String(), `"msg":"refused"`); n != 5 {
		t.Errorf("%d lines logged, want 5", n)
	}
}

func TestThrottleDisabledLevelCountsNothing(t *testing.T) {
	var buf bytes.Buffer
	th := New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelError})), 1, time.Minute)
	for range 10 {
		th.Warn("r", "refused")
	}
	th.mu.Lock()
	n := len(th.windows)
	th.mu.Unlock()
	if buf.Len() != 0 || n != 0 {
		t.Errorf("a level that is off was logged or counted: %q, %d windows", buf.String(), n)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
