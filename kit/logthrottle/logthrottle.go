// Package logthrottle keeps floods of one kind of log line, such as the
// warnings for requests refused without credentials, from growing the
// logs without bound: anyone on the internet can send such requests as
// fast as they like. Per reason, the first Burst lines of each Interval
// are logged; the rest are only counted, and when the interval ends one
// line says how many were suppressed. Metrics should still count every
// event: the throttle is for the logs only.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults: ten lines of each reason a minute.
const (
	DefaultBurst    = 10
	DefaultInterval = time.Minute
)

// maxReasons bounds the windows kept; past it, those that ended are
// forgotten. Reasons are meant to be a small fixed set (never a client's
// address), so this is only a guard.
const maxReasons = 1024

// Throttle logs through a logger, at most Burst lines per reason per
// Interval. It is safe for concurrent use; the zero value is not usable,
// call New.
type Throttle struct {
	log      *slog.Logger
	burst    int
	interval time.Duration

	// Seams for tests.
	now       func() time.Time
	afterFunc func(time.Duration, func()) stopper

	mu      sync.Mutex
	windows map[string]*window
}

type stopper interface{ Stop() bool }

// window is one reason's current interval.
type window struct {
	start      time.Time
	logged     int
	suppressed int
	level      slog.Level
	msg        string // the last suppressed line's message
	timer      stopper
	done       bool // its summary is written (or being written)
}

// New returns a Throttle that logs to log at most burst lines per reason
// per interval (DefaultBurst and DefaultInterval when not positive).
func New(log *slog.Logger, burst int, interval time.Duration) *Throttle {
	if burst <= 0 {
		burst = DefaultBurst
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Throttle{
		log: log, burst: burst, interval: interval,
		now:       time.Now,
		afterFunc: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) },
		windows:   make(map[string]*window),
	}
}

// Warn logs a warning of the given reason, unless the reason has had its
// Burst lines in this interval.
func (t *Throttle) Warn(reason, msg string, attrs ...any) {
	t.Log(context.Background(), slog.LevelWarn, reason, msg, attrs...)
}

// Log logs msg with attrs at level, unless reason has had its Burst lines
// in this interval; then it counts it for the interval's summary line.
// The reason is added to the line as "reason".
func (t *Throttle) Log(ctx context.Context, level slog.Level, reason, msg string, attrs ...any) {
	if !t.log.Enabled(ctx, level) {
		return
	}
	now := t.now()
	t.mu.Lock()
	w := t.windows[reason]
	var ended *window
	if w != nil && !now.Before(w.start.Add(t.interval)) {
		// Its timer has not run yet: summarise it here instead.
		if w.suppressed > 0 && !w.done {
			w.done = true
			w.timer.Stop()
			ended = w
		}
		w = nil
	}
	if w == nil {
		if len(t.windows) >= maxReasons {
			t.sweep(now)
		}
		w = &window{start: now}
		t.windows[reason] = w
	}
	logIt := w.logged < t.burst
	if logIt {
		w.logged++
	} else {
		w.suppressed++
		w.level, w.msg = level, msg
		if w.timer == nil {
			w.timer = t.afterFunc(w.start.Add(t.interval).Sub(now), func() { t.flush(reason, w) })
		}
	}
	t.mu.Unlock()
	if ended != nil {
		t.summary(ctx, reason, ended)
	}
	if logIt {
		t.log.Log(ctx, level, msg, append(attrs[:len(attrs):len(attrs)], slog.String("reason", reason))...)
	}
}

// flush writes the summary of w when its interval has ended, unless Log
// has done it already.
func (t *Throttle) flush(reason string, w *window) {
	t.mu.Lock()
	if w.done {
		t.mu.Unlock()
		return
	}
	w.done = true
	if t.windows[reason] == w {
		delete(t.windows, reason)
	}
	t.mu.Unlock()
	t.summary(context.Background(), reason, w)
}

func (t *Throttle) summary(ctx context.Context, reason string, w *window) {
	t.log.Log(ctx, w.level, "similar log lines suppressed",
		slog.String("reason", reason), slog.Int("suppressed", w.suppressed),
		slog.Duration("interval", t.interval), slog.String("line", w.msg))
}

// sweep forgets the windows that have ended without anything to
// summarise. Call with mu held.
func (t *Throttle) sweep(now time.Time) {
	for r, w := range t.windows {
		if w.suppressed == 0 && !now.Before(w.start.Add(t.interval)) {
			delete(t.windows, r)
		}
	}
}
