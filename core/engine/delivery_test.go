package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
)

// observer is a recorder that also records delivery reports.
type observer struct {
	*recorder
	mu      sync.Mutex
	reports []core.DeliveryEvent
}

func (o *observer) DeliveryChanged(_ context.Context, ev core.DeliveryEvent) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reports = append(o.reports, ev)
	return nil
}

func (o *observer) states() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, ev := range o.reports {
		out = append(out, ev.ID+" "+string(ev.State)+" "+string(ev.Reason))
	}
	return out
}

// observe makes the fixture's instance name observe deliveries.
func observe(f *routerFixture, name string) *observer {
	o := &observer{recorder: f.msgrs[name]}
	f.insts[name].messenger = o
	return o
}

// TestDeliveryReportsAndRetryOnRequest: a message Selarti keeps failing
// is reported delayed (with the reason) at each failed attempt and failed
// once it is a dead letter; a plain redelivery of it stays a duplicate,
// and the user's retry queues it again, after which it is reported
// delivered. A message delivered at once is not reported at all.
func TestDeliveryReportsAndRetryOnRequest(t *testing.T) {
	f := newRouterFixture(t, "web")
	o := observe(f, "web")
	var mu sync.Mutex
	down := true
	f.selarti.fail = func(selarti.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return &selarti.APIError{Op: selarti.OpSend, Status: 503}
		}
		return nil
	}
	f.userSays(t, "web", "s", "m1", "hello")
	want := []string{"m1 delayed unreachable", "m1 delayed unreachable", "m1 failed unreachable"}
	waitFor(t, "reported failed", func() bool { return len(o.states()) == 3 })
	if got := o.states(); !slices.Equal(got, want) {
		t.Fatalf("reports = %q, want %q", got, want)
	}
	if ev := o.reports[0]; ev.ChatID != "s" || ev.Attempts != 1 || ev.RetryAt.IsZero() {
		t.Fatalf("first report = %+v, want native chat s, 1 attempt, a retry time", ev)
	}

	mu.Lock()
	down = false
	mu.Unlock()
	// The network redelivers it: still dead.
	f.userSays(t, "web", "s", "m1", "hello")
	ctx := context.Background()
	if dl, _ := f.store.DeadLetters(ctx, 10); len(dl) != 1 {
		t.Fatalf("dead letters after a redelivery = %d, want 1", len(dl))
	}
	// The user asks to try again.
	deliver := f.router.deliverFunc(f.insts["web"])
	if err := deliver(ctx, core.Inbound{ChatID: "s", ID: "m1", Text: "hello", Retry: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "delivered on retry", func() bool { return len(f.selarti.messages()) == 1 })
	waitFor(t, "reported delivered", func() bool { return len(o.states()) == 4 })
	if got := o.states()[3]; got != "m1 delivered " {
		t.Fatalf("report after the retry = %q, want delivered", got)
	}
	if dl, _ := f.store.DeadLetters(ctx, 10); len(dl) != 0 {
		t.Fatalf("dead letters after the retry = %d, want 0", len(dl))
	}
	// A second retry of a delivered message is a duplicate: sent once.
	if err := deliver(ctx, core.Inbound{ChatID: "s", ID: "m1", Text: "hello", Retry: true}); err != nil {
		t.Fatal(err)
	}
	f.userSays(t, "web", "s", "m2", "at once")
	waitFor(t, "m2 delivered", func() bool { return len(f.selarti.messages()) == 2 })
	if got := f.selarti.messages(); got[0].Text != "hello" || got[1].Text != "at once" {
		t.Fatalf("selarti got %+v", got)
	}
	if n := len(o.states()); n != 4 {
		t.Fatalf("reports = %q: a message delivered at once must not be reported", o.states())
	}
}

func TestDeliveryReason(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want core.DeliveryReason
	}{
		{&selarti.APIError{Op: selarti.OpSend, Status: 429}, core.ReasonThrottled},
		{core.Permanent(errors.New("selarti send: status 400")), core.ReasonRefused},
		{errors.New("dial tcp: connection refused"), core.ReasonUnreachable},
		{nil, ""},
	} {
		if got := deliveryReason(tt.err); got != tt.want {
			t.Errorf("deliveryReason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestUndeliveredNotice: an instance that cannot show delivery states,
// with undelivered_notice set, has the notice sent to the user once per
// dead letter, as a bot message; without it, nothing is sent.
func TestUndeliveredNotice(t *testing.T) {
	f := newRouterFixture(t, "tg", "dc")
	f.insts["tg"].undeliveredNotice = "Sorry, your message did not reach us. Please write again later."
	f.selarti.fail = func(selarti.Message) error { return core.Permanent(errors.New("selarti send: status 400")) }
	f.userSays(t, "tg", "42", "m1", "hello")
	f.userSays(t, "dc", "7", "m1", "hello")
	rec := f.msgrs["tg"]
	waitFor(t, "the notice", func() bool { return len(rec.texts()) == 1 })
	waitFor(t, "both dead", func() bool { dl, _ := f.store.DeadLetters(context.Background(), 10); return len(dl) == 2 })
	rec.mu.Lock()
	got := rec.sent[0]
	rec.mu.Unlock()
	if got.ChatID != "42" || got.From != core.SenderBot || got.Text != f.insts["tg"].undeliveredNotice {
		t.Fatalf("notice = %+v", got)
	}
	if n := len(f.msgrs["dc"].texts()); n != 0 {
		t.Fatalf("the instance without a notice sent %d messages", n)
	}
}
