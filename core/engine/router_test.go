package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/internal/testutil"
)

// recorder is a Messenger that records what it is sent, and can fail.
type recorder struct {
	mu     sync.Mutex
	sent   []core.Outbound
	events []core.DialogEvent
	order  []string // "msg:<text>" and "note:operator=<bool>,closed=<bool>", as they came
	fail   func(core.Outbound) error
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1000)} }

func (r *recorder) Start(context.Context, core.DeliverFunc) error { return nil }
func (r *recorder) Stop(context.Context) error                    { return nil }
func (r *recorder) Send(_ context.Context, m core.Outbound) error {
	r.mu.Lock()
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		if err := fail(m); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.sent = append(r.sent, m)
	r.order = append(r.order, "msg:"+m.Text)
	r.mu.Unlock()
	r.notify <- struct{}{}
	return nil
}
func (r *recorder) DialogChanged(_ context.Context, ev core.DialogEvent) error {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.order = append(r.order, fmt.Sprintf("note:operator=%v,closed=%v", ev.Current.Operator, ev.Current.Closed))
	r.mu.Unlock()
	r.notify <- struct{}{}
	return nil
}

func (r *recorder) texts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.sent {
		out = append(out, m.ChatID+"|"+m.Text)
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testutil.Eventually

type stubSelarti struct {
	mu   sync.Mutex
	got  []selarti.Message
	fail func(selarti.Message) error
}

func (s *stubSelarti) Send(_ context.Context, m selarti.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		if err := s.fail(m); err != nil {
			return err
		}
	}
	s.got = append(s.got, m)
	return nil
}

func (s *stubSelarti) messages() []selarti.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// countingStore counts the calls the fast paths are meant to spare.
type countingStore struct {
	store.Store
	claimed     atomic.Int64 // messages returned by Claim
	fastClaimed atomic.Int64 // messages leased by EnqueueClaim
	chatReads   atomic.Int64 // calls of Chat
}

func (s *countingStore) Claim(ctx context.Context, dir store.Direction, now time.Time, lease time.Duration, limit int) ([]store.Message, error) {
	msgs, err := s.Store.Claim(ctx, dir, now, lease, limit)
	s.claimed.Add(int64(len(msgs)))
	return msgs, err
}

func (s *countingStore) EnqueueClaim(ctx context.Context, m *store.Message, now time.Time, lease time.Duration) (bool, bool, error) {
	dup, claimed, err := s.Store.EnqueueClaim(ctx, m, now, lease)
	if claimed {
		s.fastClaimed.Add(1)
	}
	return dup, claimed, err
}

func (s *countingStore) Chat(ctx context.Context, chat string) (store.ChatInfo, error) {
	s.chatReads.Add(1)
	return s.Store.Chat(ctx, chat)
}

type routerFixture struct {
	router  *Router
	store   store.Store
	counts  *countingStore
	selarti *stubSelarti
	msgrs   map[string]*recorder
	insts   map[string]*instance
}

// newRouterFixture runs a Router with its dispatchers over a memory store,
// with one recorder instance per name.
func newRouterFixture(t *testing.T, names ...string) *routerFixture {
	t.Helper()
	return newRouterFixtureOn(t, store.NewMemory(), nil, names...)
}

// newRouterFixtureOn is newRouterFixture over shared (a replica of
// several on one store), with setup run on the Router before its
// dispatchers start.
func newRouterFixtureOn(t *testing.T, shared store.Store, setup func(*Router), names ...string) *routerFixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := &countingStore{Store: shared}
	f := &routerFixture{store: st, counts: st, selarti: &stubSelarti{}, msgrs: map[string]*recorder{}, insts: map[string]*instance{}}
	for _, n := range names {
		rec := newRecorder()
		inst := &instance{name: n, kind: "test", taskID: "task-" + n, enabled: true, messenger: rec, log: log}
		inst.setState(StateRunning, nil)
		f.msgrs[n], f.insts[n] = rec, inst
	}
	m := newMetrics(func() store.Store { return st })
	r := newRouter(log, st, f.selarti, m, f.insts)
	policy := retryPolicy{initial: 5 * time.Millisecond, max: 20 * time.Millisecond, maxAttempts: 3, maxAge: time.Hour, attemptTimeout: time.Second}
	r.toSelarti = newDispatcher(store.ToSelarti, st, r.sendToSelarti, policy, 4, log, m)
	r.toUser = newDispatcher(store.ToUser, st, r.sendToUser, policy, 4, log, m)
	r.toUser.onResult = r.afterDelivery     // a dialog change after the message that carried it
	r.toSelarti.onResult = r.reportDelivery // as the gateway wires it
	if setup != nil {
		setup(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, d := range []*dispatcher{r.toSelarti, r.toUser} {
		wg.Add(1)
		go func() { defer wg.Done(); d.run(ctx, ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.runEvents(ctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); r.runDeliveries(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "dispatchers running", func() bool {
		for _, d := range []*dispatcher{r.toSelarti, r.toUser} {
			d.mu.Lock()
			running := d.running
			d.mu.Unlock()
			if !running {
				return false
			}
		}
		return true
	})
	f.router = r
	return f
}

// userSays delivers an inbound message as the adapter would.
func (f *routerFixture) userSays(t *testing.T, instance, native, id, text string) {
	t.Helper()
	if err := f.router.deliverFunc(f.insts[instance])(context.Background(), core.Inbound{ChatID: native, ID: id, Text: text}); err != nil {
		t.Fatalf("deliver: %v", err)
	}
}

func webhook(chat, id, typ, text string) selarti.Webhook {
	return selarti.Webhook{ExternalChatID: chat, MessageID: id, MessageType: typ, MessageText: text}
}

func TestRouterInboundReachesSelartiWithNamespacedChat(t *testing.T) {
	f := newRouterFixture(t, "tg-sales")
	f.userSays(t, "tg-sales", "123456789", "u1", "hello")
	waitFor(t, "selarti send", func() bool { return len(f.selarti.messages()) == 1 })
	got := f.selarti.messages()[0]
	if got.ChatID != "tg-sales:123456789" || got.TaskID != "task-tg-sales" || got.Text != "hello" {
		t.Fatalf("selarti got %+v", got)
	}
}

func TestRouterInboundDuplicateDropped(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s1", "m1", "once")
	f.userSays(t, "web", "s1", "m1", "once")
	f.userSays(t, "web", "s1", "m2", "twice")
	waitFor(t, "two sends", func() bool { return len(f.selarti.messages()) == 2 })
	time.Sleep(50 * time.Millisecond)
	if n := len(f.selarti.messages()); n != 2 {
		t.Fatalf("selarti got %d messages, want 2 (one duplicate dropped)", n)
	}
}

func TestRouterRejectsBadInbound(t *testing.T) {
	f := newRouterFixture(t, "web")
	deliver := f.router.deliverFunc(f.insts["web"])
	for _, in := range []core.Inbound{
		{ChatID: "", Text: "x"},
		{ChatID: "s", Text: "   "},
		{ChatID: "s", Text: string(make([]byte, core.MaxInboundTextBytes+1))},
		{ChatID: "s", Text: "\xff\xfe"},
	} {
		if err := deliver(context.Background(), in); err == nil || !core.IsPermanent(err) {
			t.Errorf("deliver(%.20q) = %v, want a permanent error", in.Text, err)
		}
	}
}

func TestRouterUserEchoNeverDelivered(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s1", "m1", "hi")
	ctx := context.Background()
	for _, wh := range []selarti.Webhook{
		webhook("web:s1", "w1", selarti.TypeUser, "hi"),
		webhook("web:s1", "w2", selarti.TypeBot, "hello from bot"),
		webhook("web:s1", "w3", selarti.TypeOperator, "hello from a human"),
	} {
		if err := f.router.HandleWebhook(ctx, wh); err != nil {
			t.Fatalf("HandleWebhook(%s): %v", wh.MessageID, err)
		}
	}
	rec := f.msgrs["web"]
	waitFor(t, "two deliveries", func() bool { return len(rec.texts()) == 2 })
	time.Sleep(50 * time.Millisecond)
	want := []string{"s1|hello from bot", "s1|hello from a human"}
	if got := rec.texts(); !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v (the user's own message must not be echoed)", got, want)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.sent[0].From != core.SenderBot || rec.sent[1].From != core.SenderOperator || rec.sent[1].ID != "w3" {
		t.Fatalf("senders/ids wrong: %+v", rec.sent)
	}
}

func TestRouterSameNativeIDOnTwoInstances(t *testing.T) {
	f := newRouterFixture(t, "tg-a", "tg-b")
	f.userSays(t, "tg-a", "42", "1", "from a")
	f.userSays(t, "tg-b", "42", "1", "from b") // same native id and message id, other instance
	waitFor(t, "two selarti sends", func() bool { return len(f.selarti.messages()) == 2 })
	ctx := context.Background()
	if err := f.router.HandleWebhook(ctx, webhook("tg-a:42", "x1", selarti.TypeBot, "reply to a")); err != nil {
		t.Fatal(err)
	}
	if err := f.router.HandleWebhook(ctx, webhook("tg-b:42", "x2", selarti.TypeBot, "reply to b")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replies", func() bool { return len(f.msgrs["tg-a"].texts()) == 1 && len(f.msgrs["tg-b"].texts()) == 1 })
	time.Sleep(30 * time.Millisecond)
	if got := f.msgrs["tg-a"].texts(); !slices.Equal(got, []string{"42|reply to a"}) {
		t.Errorf("tg-a got %v", got)
	}
	if got := f.msgrs["tg-b"].texts(); !slices.Equal(got, []string{"42|reply to b"}) {
		t.Errorf("tg-b got %v", got)
	}
}

func TestRouterWebhookRoutingErrors(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "known", "m1", "hi")
	tests := []struct {
		name string
		chat string
		want error
	}{
		{name: "malformed chat id", chat: "no-colon", want: errBadChatID},
		{name: "unknown instance", chat: "nope:known", want: ErrUnknownInstance},
		{name: "unknown chat", chat: "web:never-wrote", want: core.ErrUnknownChat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.router.HandleWebhook(context.Background(), webhook(tt.chat, "id-"+tt.name, selarti.TypeBot, "x"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("HandleWebhook(%q) = %v, want %v", tt.chat, err, tt.want)
			}
		})
	}
}

func TestRouterWebhookDuplicateDeliveredOnce(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s", "m1", "hi")
	for range 3 {
		if err := f.router.HandleWebhook(context.Background(), webhook("web:s", "same-id", selarti.TypeBot, "once")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "delivery", func() bool { return len(f.msgrs["web"].texts()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := len(f.msgrs["web"].texts()); n != 1 {
		t.Fatalf("delivered %d times, want once", n)
	}
}

func TestRouterDialogEventsOnChangeOnly(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.userSays(t, "web", "s", "m1", "operator please")
	ctx := context.Background()
	op := webhook("web:s", "a", selarti.TypeBot, "connecting")
	op.Operator = true
	if err := f.router.HandleWebhook(ctx, op); err != nil {
		t.Fatal(err)
	}
	op2 := webhook("web:s", "b", selarti.TypeOperator, "hi, I am Anna")
	op2.Operator = true
	if err := f.router.HandleWebhook(ctx, op2); err != nil {
		t.Fatal(err)
	}
	closed := webhook("web:s", "c", selarti.TypeUser, "bye")
	closed.Operator, closed.Close = true, true
	if err := f.router.HandleWebhook(ctx, closed); err != nil {
		t.Fatal(err)
	}
	rec := f.msgrs["web"]
	waitFor(t, "events", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.events) == 2 })
	time.Sleep(30 * time.Millisecond) // a third, wrong event would show up now
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 2 {
		t.Fatalf("events = %+v, want 2 (operator on, then closed)", rec.events)
	}
	if !rec.events[0].Current.Operator || rec.events[0].Previous.Operator {
		t.Errorf("first event = %+v, want operator off→on", rec.events[0])
	}
	if !rec.events[1].Current.Closed || rec.events[1].ChatID != "s" {
		t.Errorf("second event = %+v, want closed", rec.events[1])
	}
}

func TestRouterPermanentFailureDeadLettersWithoutBlockingOthers(t *testing.T) {
	f := newRouterFixture(t, "web")
	rec := f.msgrs["web"]
	rec.fail = func(m core.Outbound) error {
		if m.ChatID == "poison" {
			return core.Permanent(errors.New("bot was blocked by the user"))
		}
		return nil
	}
	f.userSays(t, "web", "poison", "p1", "hi")
	f.userSays(t, "web", "fine", "f1", "hi")
	ctx := context.Background()
	_ = f.router.HandleWebhook(ctx, webhook("web:poison", "p-reply", selarti.TypeBot, "x"))
	_ = f.router.HandleWebhook(ctx, webhook("web:fine", "f-reply", selarti.TypeBot, "y"))
	waitFor(t, "healthy chat delivered", func() bool { return slices.Contains(rec.texts(), "fine|y") })
	waitFor(t, "dead letter", func() bool {
		dl, _ := f.store.DeadLetters(ctx, 10)
		return len(dl) == 1 && dl[0].Chat == "web:poison"
	})
	dl, _ := f.store.DeadLetters(ctx, 10)
	if dl[0].LastError == "" || dl[0].Attempts != 1 {
		t.Fatalf("dead letter = %+v, want its error and one attempt (permanent: no retry)", dl[0])
	}
}

func TestRouterTransientFailureRetriesInOrder(t *testing.T) {
	f := newRouterFixture(t, "web")
	rec := f.msgrs["web"]
	var mu sync.Mutex
	failures := 0
	var maybeSent []bool // of each attempt, in order
	rec.fail = func(m core.Outbound) error {
		mu.Lock()
		defer mu.Unlock()
		maybeSent = append(maybeSent, m.MaybeSent)
		if m.Text == "first" && failures < 2 {
			failures++
			return errors.New("network down")
		}
		return nil
	}
	f.userSays(t, "web", "s", "m", "hi")
	ctx := context.Background()
	for i, text := range []string{"first", "second", "third"} {
		if err := f.router.HandleWebhook(ctx, webhook("web:s", string(rune('a'+i)), selarti.TypeBot, text)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all delivered", func() bool { return len(rec.texts()) == 3 })
	if got, want := rec.texts(), []string{"s|first", "s|second", "s|third"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	// An attempt after a failure says the message may have gone out (a
	// network without idempotency keys looks before sending again); a
	// first attempt does not.
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{false, true, true, false, false}; !slices.Equal(maybeSent, want) {
		t.Fatalf("Outbound.MaybeSent of the attempts = %v, want %v", maybeSent, want)
	}
}

func TestRouterGivesUpAfterMaxAttempts(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.selarti.fail = func(selarti.Message) error { return errors.New("selarti 503") }
	f.userSays(t, "web", "s", "m1", "hi")
	ctx := context.Background()
	waitFor(t, "dead letter after 3 attempts", func() bool {
		dl, _ := f.store.DeadLetters(ctx, 10)
		return len(dl) == 1
	})
	dl, _ := f.store.DeadLetters(ctx, 10)
	if dl[0].Attempts != 3 || dl[0].Dir != store.ToSelarti {
		t.Fatalf("dead letter = %+v, want 3 attempts toward selarti", dl[0])
	}
}

func TestRouterIdleChatsTakeTheFastPath(t *testing.T) {
	f := newRouterFixture(t, "web")
	for i := range 10 {
		f.userSays(t, "web", fmt.Sprintf("chat-%d", i), fmt.Sprint(i), "hi")
		waitFor(t, "selarti send", func() bool { return len(f.selarti.messages()) == i+1 })
	}
	// Each message found its chat idle and a worker free: leased as it was
	// queued, and never claimed by the dispatcher's loop.
	if fast, claimed := f.counts.fastClaimed.Load(), f.counts.claimed.Load(); fast != 10 || claimed != 0 {
		t.Fatalf("fast path %d, claimed by the loop %d; want 10, 0", fast, claimed)
	}
}

func TestRouterBurstInOneChatKeepsOrder(t *testing.T) {
	f := newRouterFixture(t, "web")
	f.selarti.fail = func(selarti.Message) error { time.Sleep(time.Millisecond); return nil }
	const n = 30
	for i := range n {
		f.userSays(t, "web", "s", fmt.Sprint(i), fmt.Sprintf("message %02d", i))
	}
	waitFor(t, "all sent", func() bool { return len(f.selarti.messages()) == n })
	for i, m := range f.selarti.messages() {
		if want := fmt.Sprintf("message %02d", i); m.Text != want {
			t.Fatalf("send %d was %q, want %q: order broken", i, m.Text, want)
		}
	}
	// The first found the chat idle; those queued behind it went through
	// the loop.
	if fast, claimed := f.counts.fastClaimed.Load(), f.counts.claimed.Load(); fast < 1 || claimed < 1 || fast+claimed != n {
		t.Fatalf("fast path %d, claimed by the loop %d; want both used, %d in all", fast, claimed, n)
	}
}

func TestRouterWebhooksReadTheChatOnce(t *testing.T) {
	f := newRouterFixture(t, "web")
	clock := time.Now()
	f.router.chats.entries.SetClock(func() time.Time { return clock })
	f.userSays(t, "web", "s", "m1", "hi")
	ctx := context.Background()
	send := func(id, typ string, operator bool) error {
		wh := webhook("web:s", id, typ, "text "+id)
		wh.Operator = operator
		return f.router.HandleWebhook(ctx, wh)
	}
	for i, typ := range []string{selarti.TypeUser, selarti.TypeBot, selarti.TypeUser, selarti.TypeBot} {
		if err := send(fmt.Sprint(i), typ, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.counts.chatReads.Load(); n != 1 {
		t.Fatalf("4 webhooks read the chat %d times, want 1", n)
	}
	// A change of flags is written through: the next webhook compares
	// with it without a read, and reports no second change.
	if err := send("op1", selarti.TypeBot, true); err != nil {
		t.Fatal(err)
	}
	if err := send("op2", selarti.TypeOperator, true); err != nil {
		t.Fatal(err)
	}
	if info, _ := f.store.Chat(ctx, "web:s"); info.Flags != dialogFlags(core.DialogState{Operator: true}) {
		t.Fatalf("stored flags %#x, want the operator's", info.Flags)
	}
	rec := f.msgrs["web"]
	waitFor(t, "one event", func() bool { rec.mu.Lock(); defer rec.mu.Unlock(); return len(rec.events) == 1 })
	if n := f.counts.chatReads.Load(); n != 2 { // 1 + the store.Chat just above
		t.Fatalf("chat read %d times, want 2", n)
	}

	// Past the time to live the store is asked again, so a chat it has
	// forgotten (Prune) is unknown again.
	if _, err := f.store.Prune(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := send("cached", selarti.TypeBot, true); err != nil {
		t.Fatalf("webhook within the time to live: %v", err)
	}
	clock = clock.Add(chatCacheTTL)
	if err := send("expired", selarti.TypeBot, true); !errors.Is(err, core.ErrUnknownChat) {
		t.Fatalf("webhook for a pruned chat past the time to live = %v, want ErrUnknownChat", err)
	}
}
