package webchat

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

func TestRegistered(t *testing.T) {
	if !slices.Contains(core.Kinds(), Kind) {
		t.Fatalf("kind %q not registered: %v", Kind, core.Kinds())
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
			if err == nil && !a.hasSession(tt.msg.ChatID) {
				t.Fatal("Send returned nil but stored nothing")
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
	fc := &fakeCore{}
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
	if err := a.Start(cancelled, fc.deliver); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start with done ctx = %v, want context.Canceled", err)
	}

	if err := a.Start(ctx, fc.deliver); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := a.Start(ctx, fc.deliver); err == nil {
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

	// A later Start carries on with the sessions kept in memory.
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
