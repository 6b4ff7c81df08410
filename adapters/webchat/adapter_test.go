package webchat

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

func TestRegistered(t *testing.T) {
	if !slices.Contains(core.DefaultRegistry().Kinds(), Kind) {
		t.Fatalf("kind %q not registered: %v", Kind, core.DefaultRegistry().Kinds())
	}
}

func TestSendErrors(t *testing.T) {
	id := newSessionID()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		started bool
		ctx     context.Context
		msg     core.Outbound
		want    error
		perm    bool
	}{
		{name: "before Start", msg: core.Outbound{ChatID: id, Text: "hi"}, want: core.ErrNotConnected},
		{name: "malformed id", started: true, msg: core.Outbound{ChatID: "nope", Text: "hi"}, want: core.ErrUnknownChat, perm: true},
		{name: "cancelled ctx", started: true, ctx: cancelled, msg: core.Outbound{ChatID: id, Text: "hi"}, want: context.Canceled},
		{name: "empty text", started: true, msg: core.Outbound{ChatID: id, Text: " "}, perm: true},
		{name: "ok, unknown well-formed id", started: true, msg: core.Outbound{ChatID: id, Text: "hi"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newTestAdapter(t, nil)
			if tt.started {
				startServer(t, a)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			err := a.Send(ctx, tt.msg)
			switch {
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("Send = %v, want %v", err, tt.want)
			case tt.perm != core.IsPermanent(err):
				t.Fatalf("Send = %v, permanent = %v, want %v", err, core.IsPermanent(err), tt.perm)
			case tt.want == nil && !tt.perm && err != nil:
				t.Fatalf("Send = %v, want nil", err)
			}
			if err == nil {
				if st, ok := a.stored(t, tt.msg.ChatID); !ok || st.lastSeq != 1 {
					t.Fatal("Send returned nil but stored nothing")
				}
			}
		})
	}
}

func TestDialogChangedBeforeStart(t *testing.T) {
	a := newTestAdapter(t, nil)
	err := a.DialogChanged(context.Background(), core.DialogEvent{ChatID: newSessionID(), Current: core.DialogState{Closed: true}})
	if !errors.Is(err, core.ErrNotConnected) {
		t.Fatalf("DialogChanged = %v, want ErrNotConnected", err)
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	fc := &messengertest.Core{}
	a := newTestAdapter(t, nil)

	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	if err := a.Start(ctx, nil); err == nil {
		t.Fatal("Start with nil deliver succeeded")
	}
	if err := a.Stop(ctx); err != nil {
		t.Fatalf("Stop after failed Start: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Start(cancelled, fc.Deliver); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with done ctx = %v, want context.Canceled", err)
	}

	if err := a.Start(ctx, fc.Deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := a.Start(ctx, fc.Deliver); err == nil {
		t.Fatal("second Start succeeded")
	}
	id := newSessionID()
	if err := a.Send(ctx, core.Outbound{ChatID: id, Text: "kept"}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for i := 0; i < 2; i++ {
		stopCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := a.Stop(stopCtx)
		cancel()
		if err != nil {
			t.Fatalf("Stop #%d: %v", i+1, err)
		}
	}
	if err := a.Send(ctx, core.Outbound{ChatID: id, Text: "x"}); !errors.Is(err, core.ErrNotConnected) {
		t.Fatalf("Send after Stop = %v, want ErrNotConnected", err)
	}

	// A later Start carries on with the sessions kept in the mailbox.
	ts := startServer(t, a)
	tb, _ := ts.connect(t, id, 0)
	if f := tb.expect(typeMessage); f.Text != "kept" {
		t.Fatalf("after restart got %+v, want the kept message", f)
	}
}

func TestHTTPPrefix(t *testing.T) {
	a := newTestAdapter(t, core.RawConfig{"path": "/support/chat/"})
	if got := a.HTTPPrefix(); got != "/support/chat/" {
		t.Fatalf("HTTPPrefix = %q", got)
	}
}

func TestStartNeedsDataDir(t *testing.T) {
	m, err := New(core.Instance{Name: "web", Kind: Kind})
	if err != nil {
		t.Fatalf("New without a data directory: %v", err)
	}
	err = m.Start(context.Background(), (&messengertest.Core{}).Deliver)
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("Start = %v, want an error about the data directory", err)
	}
	if err := m.Stop(context.Background()); err != nil {
		t.Fatalf("Stop after failed Start: %v", err)
	}
}

func TestNewDoesNoIO(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not-yet")
	newTestAdapterIn(t, nil, dir)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("New touched the data directory: %v", err)
	}
}

// TestRestartKeepsSessions stops an adapter and starts a new one on the
// same data directory, as a gateway restart does: the browser finds its
// session with the same epoch, gets exactly the replies it missed, and
// neither a redelivered reply nor a re-sent message is stored twice.
func TestRestartKeepsSessions(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	a1 := newTestAdapterIn(t, nil, dir)
	ts1 := startServer(t, a1)
	tb, w := ts1.connect(t, "", 0)
	if err := a1.Send(ctx, core.Outbound{ChatID: w.Session, ID: "sel-1", Text: "welcome", From: core.SenderBot}); err != nil {
		t.Fatal(err)
	}
	tb.expect(typeMessage)
	tb.message("c-1", "question")
	if f := tb.expect(typeMessage); f.Seq != 2 || f.ID != "c-1" {
		t.Fatalf("got %+v, want the user's message with seq 2", f)
	}
	tb.expect(typeAck)
	_ = tb.ws.Close(websocket.StatusNormalClosure, "")
	// Replies that arrive while the browser is away, just before the
	// gateway goes down.
	for i, text := range []string{"answer one", "answer two"} {
		if err := a1.Send(ctx, core.Outbound{ChatID: w.Session, ID: fmt.Sprint("sel-", i+2), Text: text, From: core.SenderBot}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a1.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	a2 := newTestAdapterIn(t, nil, dir)
	ts2 := startServer(t, a2)
	// The core redelivers the last reply: its bookkeeping did not make it
	// before the crash.
	if err := a2.Send(ctx, core.Outbound{ChatID: w.Session, ID: "sel-3", Text: "answer two", From: core.SenderBot}); err != nil {
		t.Fatalf("redelivered Send: %v", err)
	}
	tb2 := ts2.dial(t, "")
	tb2.send(map[string]any{"type": "hello", "session": w.Session, "last_seq": 2, "epoch": w.Epoch})
	if w2 := tb2.expect(typeWelcome); w2.Session != w.Session || w2.Epoch != w.Epoch || w2.LastSeq != 4 {
		t.Fatalf("welcome after restart = %+v, want session %s, epoch %s, last_seq 4", w2, w.Session, w.Epoch)
	}
	for i, want := range []string{"answer one", "answer two"} {
		if f := tb2.expect(typeMessage); f.Text != want || f.Seq != int64(i+3) || f.From != fromBot {
			t.Fatalf("replay %d = %+v, want %q with seq %d", i, f, want, i+3)
		}
	}
	// The page re-sends the message whose ack it lost.
	tb2.message("c-1", "question")
	if f := tb2.expect(typeAck); f.ID != "c-1" || f.Seq != 2 {
		t.Fatalf("got %+v, want the ack of c-1 with its old seq 2", f)
	}
	if n := len(ts2.core.Answered()); n != 0 {
		t.Fatalf("the re-send was delivered %d times after the restart, want 0", n)
	}
	// Nothing was doubled: the next reply gets seq 5.
	ts2.send(t, w.Session, "answer three")
	if f := tb2.expect(typeMessage); f.Text != "answer three" || f.Seq != 5 {
		t.Fatalf("next frame = %+v, want answer three with seq 5", f)
	}
	if st, _ := a2.stored(t, w.Session); st.lastSeq != 5 || len(st.history) != 5 || st.epoch != w.Epoch {
		t.Fatalf("stored session: last_seq %d, %d entries, epoch %s; want 5, 5, %s", st.lastSeq, len(st.history), st.epoch, w.Epoch)
	}
}

func TestStoreErrors(t *testing.T) {
	t.Run("Send returns a transient error", func(t *testing.T) {
		a := newTestAdapter(t, nil)
		startServer(t, a)
		if err := a.current().mb.close(); err != nil {
			t.Fatal(err)
		}
		err := a.Send(context.Background(), core.Outbound{ChatID: newSessionID(), Text: "hi"})
		if err == nil || core.IsPermanent(err) || errors.Is(err, core.ErrUnknownChat) {
			t.Fatalf("Send with a broken mailbox = %v, want a transient error", err)
		}
	})
	t.Run("a user message is not acked", func(t *testing.T) {
		a := newTestAdapter(t, nil)
		ts := startServer(t, a)
		tb, _ := ts.connect(t, "", 0)
		if err := a.current().mb.close(); err != nil {
			t.Fatal(err)
		}
		tb.message("c-1", "hello")
		f := tb.expect(typeError)
		if f.ID != "c-1" || f.Code != codeDeliverFailed || !f.Retry {
			t.Fatalf("got %+v, want a retryable error for c-1", f)
		}
		// The core has it; the page's re-send is deduped there.
		if n := len(ts.core.Answered()); n != 1 {
			t.Fatalf("delivered %d times, want 1", n)
		}
	})
	t.Run("hello closes with try-again-later", func(t *testing.T) {
		a := newTestAdapter(t, nil)
		ts := startServer(t, a)
		if err := a.current().mb.close(); err != nil {
			t.Fatal(err)
		}
		tb := ts.dial(t, "")
		tb.send(map[string]any{"type": "hello"})
		tb.expectClose(websocket.StatusTryAgainLater)
	})
}
