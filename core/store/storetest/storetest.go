// Package storetest is the conformance suite for store.Store: every
// implementation runs it from its own tests, so that the router can rely
// on the contract written in the store.Store doc comment whatever the
// store is.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

// lease is the lease the suite takes unless a test is about leases: long
// enough never to run out during a test.
const lease = time.Minute

// Run runs the suite. open must return a new, empty store each time it is
// called; it is called once per subtest, from parallel subtests. Run
// closes the stores it opened.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, st store.Store)
	}{
		{"EnqueueSetsFields", testEnqueueSetsFields},
		{"EnqueueRejectsBadMessages", testEnqueueRejects},
		{"PayloadIsCopied", testPayloadIsCopied},
		{"Dedupe", testDedupe},
		{"ClaimOnlyHeads", testClaimOnlyHeads},
		{"ClaimLimitOldestFirst", testClaimLimit},
		{"ClaimDueLongestFirst", testClaimDueLongestFirst},
		{"ClaimArguments", testClaimArguments},
		{"DirectionsAreSeparate", testDirections},
		{"RetryHoldsBackChat", testRetryHoldsBack},
		{"RetryDueAtOnce", testRetryDue},
		{"DeferCountsNoAttempt", testDefer},
		{"DeliveredSince", testDeliveredSince},
		{"EnqueueWithFutureNextAt", testFutureNextAt},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseExpiryBehindReplay", testLeaseExpiryBehindReplay},
		{"KillDeadLettersReplay", testKillReplay},
		{"ReplayBeforeLeasedHead", testReplayBeforeLeased},
		{"Drop", testDrop},
		{"FindByKey", testFindByKey},
		{"NotFound", testNotFound},
		{"Stats", testStats},
		{"EnqueueClaim", testEnqueueClaim},
		{"ChatKnown", testChatKnown},
		{"DialogFlags", testDialogFlags},
		{"Prune", testPrune},
		{"CancelledContext", testCancelled},
		{"Concurrent", testConcurrent},
		{"ConcurrentDedupe", testConcurrentDedupe},
		{"ConcurrentFailuresAreIsolated", testConcurrentFailures},
		{"Closed", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.run(t, st)
		})
	}
}

// msg describes a message to enqueue; the zero value is a ToUser message.
type msg struct {
	dir     store.Direction
	chat    string
	key     string
	created time.Time
	next    time.Time
}

// enqueue enqueues one message that must not be a duplicate.
func enqueue(t *testing.T, st store.Store, d msg) store.Message {
	t.Helper()
	m, dup := tryEnqueue(t, st, d)
	if dup {
		t.Fatalf("Enqueue(%s %q key %q): dup, want a new message", m.Dir, m.Chat, m.DedupeKey)
	}
	return m
}

// tryEnqueue enqueues one message and reports whether it was a duplicate.
func tryEnqueue(t *testing.T, st store.Store, d msg) (store.Message, bool) {
	t.Helper()
	if d.dir == "" {
		d.dir = store.ToUser
	}
	if d.chat == "" {
		d.chat = "chat"
	}
	m := store.Message{
		Dir: d.dir, Chat: d.chat, DedupeKey: d.key, CreatedAt: d.created, NextAt: d.next,
		Payload: []byte("payload of " + d.chat),
	}
	dup, err := st.Enqueue(context.Background(), &m)
	if err != nil {
		t.Fatalf("Enqueue(%s %q): %v", d.dir, d.chat, err)
	}
	return m, dup
}

// claim claims up to limit ToUser messages at now.
func claim(t *testing.T, st store.Store, now time.Time, limit int) []store.Message {
	t.Helper()
	return claimDir(t, st, store.ToUser, now, limit)
}

func claimDir(t *testing.T, st store.Store, dir store.Direction, now time.Time, limit int) []store.Message {
	t.Helper()
	got, err := st.Claim(context.Background(), dir, now, lease, limit)
	if err != nil {
		t.Fatalf("Claim(%s): %v", dir, err)
	}
	return got
}

// wantIDs checks the ids of got, in order.
func wantIDs(t *testing.T, what string, got []store.Message, want ...store.Message) {
	t.Helper()
	g := make([]int64, len(got))
	for i, m := range got {
		g[i] = m.ID
	}
	w := make([]int64, len(want))
	for i, m := range want {
		w[i] = m.ID
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("%s: got ids %v, want %v", what, g, w)
	}
}

func get(t *testing.T, st store.Store, id int64) store.Message {
	t.Helper()
	m, err := st.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%d): %v", id, err)
	}
	return m
}

// chatInfo returns what st knows of chat.
func chatInfo(t *testing.T, st store.Store, chat string) store.ChatInfo {
	t.Helper()
	c, err := st.Chat(context.Background(), chat)
	if err != nil {
		t.Fatalf("Chat(%q): %v", chat, err)
	}
	return c
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func stats(t *testing.T, st store.Store, dir store.Direction) store.Stats {
	t.Helper()
	s, err := st.Stats(context.Background(), dir)
	if err != nil {
		t.Fatalf("Stats(%s): %v", dir, err)
	}
	return s
}

func testEnqueueSetsFields(t *testing.T, st store.Store) {
	ctx := context.Background()
	before := time.Now()
	m1 := store.Message{Dir: store.ToUser, Chat: "tg:1", DedupeKey: "k1", Payload: []byte("one")}
	if dup, err := st.Enqueue(ctx, &m1); err != nil || dup {
		t.Fatalf("Enqueue = %v, %v; want false, nil", dup, err)
	}
	after := time.Now()
	if m1.ID <= 0 || m1.State != store.Pending {
		t.Fatalf("after Enqueue: ID %d, State %q; want ID > 0, pending", m1.ID, m1.State)
	}
	if m1.CreatedAt.Before(before) || m1.CreatedAt.After(after) {
		t.Fatalf("CreatedAt = %v, want between %v and %v", m1.CreatedAt, before, after)
	}

	created := time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)
	next := created.Add(time.Hour)
	m2 := store.Message{Dir: store.ToSelarti, Chat: "tg:2", Payload: []byte("two"), CreatedAt: created, NextAt: next}
	must(t, "Enqueue", func() error { _, err := st.Enqueue(ctx, &m2); return err }())
	if m2.ID <= m1.ID {
		t.Fatalf("second ID %d is not above first %d", m2.ID, m1.ID)
	}
	if !m2.CreatedAt.Equal(created) {
		t.Fatalf("CreatedAt = %v, want the given %v", m2.CreatedAt, created)
	}

	for _, want := range []store.Message{m1, m2} {
		got := get(t, st, want.ID)
		if got.ID != want.ID || got.Dir != want.Dir || got.Chat != want.Chat || got.DedupeKey != want.DedupeKey ||
			!bytes.Equal(got.Payload, want.Payload) || got.State != store.Pending || got.Attempts != 0 ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.NextAt.Equal(want.NextAt) || got.LastError != "" {
			t.Errorf("Get(%d) = %+v, want %+v", want.ID, got, want)
		}
	}
	if got := get(t, st, m1.ID); !got.NextAt.IsZero() {
		t.Errorf("zero NextAt came back as %v", got.NextAt)
	}
}

func testEnqueueRejects(t *testing.T, st store.Store) {
	tests := []struct {
		name string
		m    store.Message
	}{
		{"unknown direction", store.Message{Dir: "sideways", Chat: "c"}},
		{"empty direction", store.Message{Chat: "c"}},
		{"empty chat", store.Message{Dir: store.ToUser}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := st.Enqueue(context.Background(), &tt.m); err == nil {
				t.Fatalf("Enqueue(%+v) succeeded, want an error", tt.m)
			}
		})
	}
	for _, dir := range store.Directions {
		if s := stats(t, st, dir); s.Pending != 0 {
			t.Fatalf("%s has %d pending after rejected enqueues", dir, s.Pending)
		}
	}
}

func testPayloadIsCopied(t *testing.T, st store.Store) {
	ctx := context.Background()
	buf := []byte("hello")
	m := store.Message{Dir: store.ToUser, Chat: "c", Payload: buf}
	must(t, "Enqueue", func() error { _, err := st.Enqueue(ctx, &m); return err }())
	buf[0] = 'J' // the caller reuses its buffer
	got := get(t, st, m.ID)
	if string(got.Payload) != "hello" {
		t.Fatalf("payload after caller changed its buffer: %q", got.Payload)
	}
	got.Payload[0] = 'Y' // the caller scribbles on what Get returned
	claimed := claim(t, st, time.Now(), 1)
	if len(claimed) != 1 || string(claimed[0].Payload) != "hello" {
		t.Fatalf("claimed %+v, want the payload hello", claimed)
	}
}

func testDedupe(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	// Each case leaves a message with its key in some state, then enqueues
	// the key again.
	tests := []struct {
		name    string
		then    func(t *testing.T, m store.Message)
		wantDup bool
	}{
		{"pending", func(*testing.T, store.Message) {}, true},
		{"leased", func(t *testing.T, m store.Message) {
			// Other chats' heads may be claimed too: they are this
			// case's only concern if they are its own.
			claimDir(t, st, m.Dir, now, 100)
		}, true},
		{"retried", func(t *testing.T, m store.Message) {
			must(t, "Retry", st.Retry(ctx, m.ID, now.Add(time.Hour), "x"))
		}, true},
		{"delivered", func(t *testing.T, m store.Message) { must(t, "Delivered", st.Delivered(ctx, m.ID)) }, true},
		{"dead", func(t *testing.T, m store.Message) { must(t, "Kill", st.Kill(ctx, m.ID, "x")) }, true},
		{"dropped", func(t *testing.T, m store.Message) {
			must(t, "Kill", st.Kill(ctx, m.ID, "x"))
			must(t, "Drop", st.Drop(ctx, m.ID))
		}, false},
		{"delivered and pruned", func(t *testing.T, m store.Message) {
			must(t, "Delivered", st.Delivered(ctx, m.ID))
			if _, err := st.Prune(ctx, m.CreatedAt.Add(time.Nanosecond), m.CreatedAt.Add(time.Nanosecond)); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "key-" + tt.name
			first := enqueue(t, st, msg{chat: "chat-" + tt.name, key: key, created: now.Add(-time.Hour)})
			tt.then(t, first)
			// Another chat: the key is unique per direction, not per chat.
			again, dup := tryEnqueue(t, st, msg{chat: "other-" + tt.name, key: key})
			if dup != tt.wantDup {
				t.Fatalf("enqueue of the same key again: dup = %v, want %v", dup, tt.wantDup)
			}
			if dup {
				// Nothing was written: the only message with the key is first.
				if m := get(t, st, first.ID); m.DedupeKey != key {
					t.Fatalf("first message lost its key: %+v", m)
				}
				return
			}
			if again.ID <= first.ID {
				t.Fatalf("new message id %d, want above %d", again.ID, first.ID)
			}
		})
	}

	t.Run("other direction", func(t *testing.T) {
		enqueue(t, st, msg{dir: store.ToUser, chat: "x", key: "shared"})
		if _, dup := tryEnqueue(t, st, msg{dir: store.ToSelarti, chat: "x", key: "shared"}); dup {
			t.Fatal("same key in the other direction is a duplicate")
		}
		if _, dup := tryEnqueue(t, st, msg{dir: store.ToSelarti, chat: "y", key: "shared"}); !dup {
			t.Fatal("same key in the same direction is not a duplicate")
		}
	})
	t.Run("empty key", func(t *testing.T) {
		enqueue(t, st, msg{chat: "e"})
		if _, dup := tryEnqueue(t, st, msg{chat: "e"}); dup {
			t.Fatal("an empty key deduped")
		}
	})
}

func testClaimOnlyHeads(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	b1 := enqueue(t, st, msg{chat: "b"})
	a2 := enqueue(t, st, msg{chat: "a"})
	c1 := enqueue(t, st, msg{chat: "c"})
	b2 := enqueue(t, st, msg{chat: "b"})
	c2 := enqueue(t, st, msg{chat: "c"})

	got := claim(t, st, now, 10)
	wantIDs(t, "first claim", got, a1, b1, c1)
	for _, m := range got {
		if m.State != store.Pending || string(m.Payload) != "payload of "+m.Chat {
			t.Fatalf("claimed %+v: want a pending message with its payload", m)
		}
	}
	wantIDs(t, "claim while every head is leased", claim(t, st, now, 10))

	must(t, "Delivered", st.Delivered(ctx, b1.ID))
	wantIDs(t, "claim after b1 delivered", claim(t, st, now, 10), b2)
	must(t, "Delivered", st.Delivered(ctx, c1.ID))
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	wantIDs(t, "claim after a1 and c1 delivered", claim(t, st, now, 10), a2, c2)
	if m := get(t, st, a1.ID); m.State != store.Delivered {
		t.Fatalf("a1 state %q, want delivered", m.State)
	}
}

func testClaimLimit(t *testing.T, st store.Store) {
	now := time.Now()
	var ms []store.Message
	for i := range 5 {
		ms = append(ms, enqueue(t, st, msg{chat: fmt.Sprintf("c%d", i)}))
	}
	wantIDs(t, "claim 2", claim(t, st, now, 2), ms[0], ms[1])
	wantIDs(t, "claim 2 more", claim(t, st, now, 2), ms[2], ms[3])
	wantIDs(t, "claim the rest", claim(t, st, now, 2), ms[4])
}

// testClaimDueLongestFirst checks which heads a limited Claim takes: those
// due the longest, not simply the lowest ids (see Store.Claim).
func testClaimDueLongestFirst(t *testing.T, st store.Store) {
	ctx := context.Background()
	base := time.Now()
	a := enqueue(t, st, msg{chat: "a", created: base})
	wantIDs(t, "claim a", claim(t, st, base, 1), a)
	must(t, "Retry", st.Retry(ctx, a.ID, base.Add(2*time.Minute), "x")) // due since base+2m
	b := enqueue(t, st, msg{chat: "b", created: base.Add(time.Minute)}) // due since base+1m
	c := enqueue(t, st, msg{chat: "c", created: base.Add(3 * time.Minute)})
	at := base.Add(5 * time.Minute)
	wantIDs(t, "first of three due", claim(t, st, at, 1), b)
	wantIDs(t, "second of three due", claim(t, st, at, 1), a)
	wantIDs(t, "third of three due", claim(t, st, at, 1), c)
}

func testClaimArguments(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := enqueue(t, st, msg{})
	tests := []struct {
		name    string
		dir     store.Direction
		lease   time.Duration
		limit   int
		wantErr bool
	}{
		{"zero lease", store.ToUser, 0, 1, true},
		{"negative lease", store.ToUser, -time.Second, 1, true},
		{"unknown direction", "sideways", time.Minute, 1, true},
		{"zero limit", store.ToUser, time.Minute, 0, false},
		{"negative limit", store.ToUser, time.Minute, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := st.Claim(ctx, tt.dir, time.Now(), tt.lease, tt.limit)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Claim error = %v, want error: %v", err, tt.wantErr)
			}
			if len(got) != 0 {
				t.Fatalf("Claim returned %d messages, want none", len(got))
			}
		})
	}
	wantIDs(t, "claim after the bad calls", claim(t, st, time.Now(), 1), m)
}

func testDirections(t *testing.T, st store.Store) {
	now := time.Now()
	toUser := enqueue(t, st, msg{dir: store.ToUser, chat: "x"})
	toSelarti := enqueue(t, st, msg{dir: store.ToSelarti, chat: "x"})
	// The ToUser head of chat x is leased; its ToSelarti queue is another.
	wantIDs(t, "claim to_user", claimDir(t, st, store.ToUser, now, 10), toUser)
	wantIDs(t, "claim to_selarti", claimDir(t, st, store.ToSelarti, now, 10), toSelarti)
	wantIDs(t, "claim to_user again", claimDir(t, st, store.ToUser, now, 10))
}

func testRetryHoldsBack(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	b1 := enqueue(t, st, msg{chat: "b"})
	wantIDs(t, "first claim", claim(t, st, now, 10), a1, b1)

	next := now.Add(time.Hour)
	must(t, "Retry", st.Retry(ctx, a1.ID, next, "boom"))
	got := get(t, st, a1.ID)
	if got.State != store.Pending || got.Attempts != 1 || got.LastError != "boom" || !got.NextAt.Equal(next) {
		t.Fatalf("after Retry: %+v; want pending, 1 attempt, boom, NextAt %v", got, next)
	}
	must(t, "Delivered", st.Delivered(ctx, b1.ID))
	if m := get(t, st, b1.ID); m.State != store.Delivered || m.Attempts != 1 {
		t.Fatalf("delivered at the first attempt: %+v, want 1 attempt", m)
	}
	// a2 is due, but a1 comes first and is not.
	wantIDs(t, "claim before a1 is due", claim(t, st, now, 10))
	wantIDs(t, "claim a minute before a1 is due", claim(t, st, next.Add(-time.Minute), 10))
	retried := claim(t, st, next, 10)
	wantIDs(t, "claim when a1 is due", retried, a1)
	if retried[0].Attempts != 1 || retried[0].LastError != "boom" {
		t.Fatalf("claimed %+v, want it with its attempt and error", retried[0])
	}
	must(t, "Retry", st.Retry(ctx, a1.ID, next.Add(time.Minute), "again"))
	if m := get(t, st, a1.ID); m.Attempts != 2 || m.LastError != "again" {
		t.Fatalf("after a second Retry: %+v", m)
	}
	wantIDs(t, "claim after a1 due again", claim(t, st, next.Add(time.Minute), 10), a1)
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	if m := get(t, st, a1.ID); m.State != store.Delivered || m.Attempts != 3 || m.LastError != "again" {
		t.Fatalf("delivered after two failed attempts: %+v, want 3 attempts and the last error kept", m)
	}
	wantIDs(t, "claim after a1 delivered", claim(t, st, next.Add(time.Minute), 10), a2)
}

func testRetryDue(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	wantIDs(t, "claim", claim(t, st, now, 1), a1)
	must(t, "Retry", st.Retry(ctx, a1.ID, now.Add(-time.Second), "flaky"))
	wantIDs(t, "claim after a retry due in the past", claim(t, st, now, 1), a1)
}

// testDefer: Defer holds a chat back like Retry, but counts no attempt,
// sets InDoubt, keeps the last error unless given a note, and a later
// Retry (an answered failure) clears InDoubt.
func testDefer(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	wantIDs(t, "claim", claim(t, st, now, 10), a1)
	must(t, "Retry", st.Retry(ctx, a1.ID, now, "boom"))
	wantIDs(t, "claim after the retry", claim(t, st, now, 10), a1)

	next := now.Add(time.Minute)
	must(t, "Defer", st.Defer(ctx, a1.ID, next, true, "outcome unknown"))
	got := get(t, st, a1.ID)
	if got.State != store.Pending || got.Attempts != 1 || !got.InDoubt || got.LastError != "outcome unknown" || !got.NextAt.Equal(next) {
		t.Fatalf("after Defer: %+v; want pending, still 1 attempt, in doubt, the note, NextAt %v", got, next)
	}
	wantIDs(t, "claim before the deferred head is due", claim(t, st, now, 10))
	again := claim(t, st, next, 10)
	wantIDs(t, "claim when it is due", again, a1)
	if !again[0].InDoubt {
		t.Fatalf("claimed %+v, want it in doubt", again[0])
	}
	must(t, "Defer without a note", st.Defer(ctx, a1.ID, next, true, ""))
	if got := get(t, st, a1.ID); got.LastError != "outcome unknown" || got.Attempts != 1 {
		t.Fatalf("after a Defer without a note: %+v; want the last error kept", got)
	}
	wantIDs(t, "claim", claim(t, st, next, 10), a1)
	must(t, "Retry", st.Retry(ctx, a1.ID, next, "answered 503"))
	if got := get(t, st, a1.ID); got.InDoubt || got.Attempts != 2 {
		t.Fatalf("after Retry: %+v; want 2 attempts, no longer in doubt", got)
	}
	wantIDs(t, "claim", claim(t, st, next, 10), a1)
	must(t, "Defer not in doubt", st.Defer(ctx, a1.ID, next, false, "instance not running"))
	if got := get(t, st, a1.ID); got.InDoubt || got.Attempts != 2 {
		t.Fatalf("after Defer(inDoubt false): %+v", got)
	}
	wantIDs(t, "claim", claim(t, st, next, 10), a1)
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	wantIDs(t, "claim after a1 delivered", claim(t, st, next, 10), a2)
}

func testDeliveredSince(t *testing.T, st store.Store) {
	ctx := context.Background()
	base := time.Now().Add(-time.Hour)
	old := enqueue(t, st, msg{chat: "a", created: base})
	a1 := enqueue(t, st, msg{chat: "a", created: base.Add(time.Minute)})
	a2 := enqueue(t, st, msg{chat: "a", created: base.Add(2 * time.Minute)})
	a3 := enqueue(t, st, msg{chat: "a", created: base.Add(3 * time.Minute)}) // stays pending
	b1 := enqueue(t, st, msg{chat: "b", created: base.Add(time.Minute)})
	u1 := enqueue(t, st, msg{dir: store.ToSelarti, chat: "a", created: base.Add(time.Minute)})
	wantIDs(t, "claim", claim(t, st, time.Now(), 10), old, b1)
	must(t, "Delivered", st.Delivered(ctx, b1.ID))
	for _, m := range []store.Message{old, a1, a2} {
		must(t, "Delivered", st.Delivered(ctx, m.ID))
		wantIDs(t, "claim", claim(t, st, time.Now(), 10), nextOf(m, a1, a2, a3))
	}
	_ = u1
	got, err := st.DeliveredSince(ctx, store.ToUser, "a", base.Add(time.Minute), 10)
	must(t, "DeliveredSince", err)
	wantIDs(t, "delivered since, newest first", got, a2, a1)
	got, err = st.DeliveredSince(ctx, store.ToUser, "a", base, 1)
	must(t, "DeliveredSince", err)
	wantIDs(t, "with a limit", got, a2)
	got, err = st.DeliveredSince(ctx, store.ToSelarti, "a", base, 10)
	must(t, "DeliveredSince", err)
	wantIDs(t, "the other direction (pending)", got)
}

// nextOf returns the message after m in l.
func nextOf(m store.Message, l ...store.Message) store.Message {
	for i, x := range l {
		if x.ID == m.ID && i+1 < len(l) {
			return l[i+1]
		}
	}
	return l[0]
}

func testFutureNextAt(t *testing.T, st store.Store) {
	now := time.Now()
	later := enqueue(t, st, msg{chat: "a", next: now.Add(time.Hour)})
	after := enqueue(t, st, msg{chat: "a"})
	other := enqueue(t, st, msg{chat: "b"})
	wantIDs(t, "claim now", claim(t, st, now, 10), other)
	must(t, "Delivered", st.Delivered(context.Background(), other.ID))
	wantIDs(t, "claim a minute before NextAt", claim(t, st, now.Add(59*time.Minute), 10))
	wantIDs(t, "claim at NextAt", claim(t, st, now.Add(time.Hour), 10), later)
	must(t, "Delivered", st.Delivered(context.Background(), later.ID))
	wantIDs(t, "claim after delivered", claim(t, st, now.Add(time.Hour), 10), after)
}

func testLeaseExpiry(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	got, err := st.Claim(ctx, store.ToUser, now, time.Minute, 10)
	must(t, "Claim", err)
	wantIDs(t, "claim", got, a1)
	if got[0].InDoubt {
		t.Fatalf("first claim %+v: in doubt, want not", got[0])
	}
	wantIDs(t, "claim within the lease", claim(t, st, now.Add(59*time.Second), 10))
	// The worker died: the lease runs out and another worker takes a1,
	// not a2. a1's attempt may have reached the far side: it is in doubt.
	again := claim(t, st, now.Add(61*time.Second), 10)
	wantIDs(t, "claim after the lease", again, a1)
	if again[0].State != store.Pending || again[0].Attempts != 0 || !again[0].InDoubt {
		t.Fatalf("reclaimed %+v, want pending, in doubt, with no attempts counted", again[0])
	}
	if m := get(t, st, a1.ID); !m.InDoubt {
		t.Fatalf("Get after the lease ran out: %+v, want it in doubt", m)
	}
	wantIDs(t, "claim within the new lease", claim(t, st, now.Add(90*time.Second), 10))
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	if err := st.Delivered(ctx, a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Delivered = %v, want ErrNotFound", err)
	}
	// a2 was never leased, a1's lease ended as it should: neither marks a2.
	next := claim(t, st, now.Add(90*time.Second), 10)
	wantIDs(t, "claim after delivered", next, a2)
	if next[0].InDoubt {
		t.Fatalf("claimed %+v after its chat's lease ended: in doubt, want not", next[0])
	}
	// A lease ended by Retry marks nothing either, and a retried message
	// whose next lease runs out is in doubt again.
	must(t, "Retry", st.Retry(ctx, a2.ID, now.Add(90*time.Second), "boom"))
	retried := claim(t, st, now.Add(90*time.Second), 10)
	wantIDs(t, "claim after Retry", retried, a2)
	if retried[0].InDoubt {
		t.Fatalf("claimed %+v after Retry: in doubt, want not", retried[0])
	}
	wantIDs(t, "claim after the retried lease", claim(t, st, now.Add(151*time.Second), 10), a2)
	if m := get(t, st, a2.ID); !m.InDoubt || m.Attempts != 1 {
		t.Fatalf("after its second lease ran out: %+v, want in doubt, 1 attempt", m)
	}
}

// testLeaseExpiryBehindReplay: Replay put a1 back before a2 while a2 was
// leased, and a2's worker died. The chat is claimable once a2's lease runs
// out, with a1 (never attempted) as its head: a2 is the one in doubt.
func testLeaseExpiryBehindReplay(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	wantIDs(t, "claim", claim(t, st, now, 10), a1)
	must(t, "Kill", st.Kill(ctx, a1.ID, "fatal"))
	wantIDs(t, "claim a2", claim(t, st, now, 10), a2)
	must(t, "Replay", st.Replay(ctx, a1.ID))
	wantIDs(t, "claim within a2's lease", claim(t, st, now.Add(59*time.Second), 10))
	got := claim(t, st, now.Add(61*time.Second), 10)
	wantIDs(t, "claim after a2's lease", got, a1)
	if got[0].InDoubt {
		t.Fatalf("claimed %+v: in doubt, but it was not being attempted", got[0])
	}
	if m := get(t, st, a2.ID); !m.InDoubt {
		t.Fatalf("a2 after its lease ran out: %+v, want in doubt", m)
	}
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	got = claim(t, st, now.Add(61*time.Second), 10)
	wantIDs(t, "claim after a1 delivered", got, a2)
	if !got[0].InDoubt {
		t.Fatalf("claimed %+v, want it in doubt", got[0])
	}
}

func testKillReplay(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	a3 := enqueue(t, st, msg{chat: "a"})
	wantIDs(t, "claim", claim(t, st, now, 10), a1)
	must(t, "Retry", st.Retry(ctx, a1.ID, now, "first"))
	wantIDs(t, "claim the retry", claim(t, st, now, 10), a1)
	must(t, "Kill", st.Kill(ctx, a1.ID, "fatal"))

	dead, err := st.DeadLetters(ctx, 10)
	must(t, "DeadLetters", err)
	wantIDs(t, "dead letters", dead, a1)
	if d := dead[0]; d.State != store.Dead || d.LastError != "fatal" || d.Attempts != 2 || string(d.Payload) != "payload of a" {
		t.Fatalf("dead letter %+v: want dead, fatal, 2 attempts, its payload", d)
	}
	if s := stats(t, st, store.ToUser); s.Dead != 1 || s.Pending != 2 {
		t.Fatalf("stats %+v, want 1 dead, 2 pending", s)
	}

	// The chat goes on without a1.
	wantIDs(t, "claim after kill", claim(t, st, now, 10), a2)
	must(t, "Delivered", st.Delivered(ctx, a2.ID))

	must(t, "Replay", st.Replay(ctx, a1.ID))
	if m := get(t, st, a1.ID); m.State != store.Pending || m.Attempts != 0 || !m.NextAt.IsZero() {
		t.Fatalf("after Replay: %+v; want pending, 0 attempts, zero NextAt", m)
	}
	dead, err = st.DeadLetters(ctx, 10)
	must(t, "DeadLetters", err)
	wantIDs(t, "dead letters after replay", dead)
	// Back at its place: before a3.
	wantIDs(t, "claim after replay", claim(t, st, now, 10), a1)
	must(t, "Delivered", st.Delivered(ctx, a1.ID))
	wantIDs(t, "claim after a1 delivered", claim(t, st, now, 10), a3)
}

func testReplayBeforeLeased(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	a1 := enqueue(t, st, msg{chat: "a"})
	a2 := enqueue(t, st, msg{chat: "a"})
	wantIDs(t, "claim", claim(t, st, now, 10), a1)
	must(t, "Kill", st.Kill(ctx, a1.ID, "fatal"))
	wantIDs(t, "claim a2", claim(t, st, now, 10), a2)
	// a1 becomes the chat's head again while a2 is being attempted: the
	// chat must still be attempted one message at a time.
	must(t, "Replay", st.Replay(ctx, a1.ID))
	wantIDs(t, "claim while a2 is leased", claim(t, st, now, 10))
	must(t, "Delivered", st.Delivered(ctx, a2.ID))
	wantIDs(t, "claim after a2 delivered", claim(t, st, now, 10), a1)
}

func testDrop(t *testing.T, st store.Store) {
	ctx := context.Background()
	a1 := enqueue(t, st, msg{chat: "a", key: "k"})
	b1 := enqueue(t, st, msg{chat: "b"})
	must(t, "Kill", st.Kill(ctx, a1.ID, "fatal"))
	must(t, "Kill", st.Kill(ctx, b1.ID, "fatal"))
	must(t, "Drop", st.Drop(ctx, a1.ID))
	if _, err := st.Get(ctx, a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get after Drop = %v, want ErrNotFound", err)
	}
	dead, err := st.DeadLetters(ctx, 10)
	must(t, "DeadLetters", err)
	wantIDs(t, "dead letters after drop", dead, b1)
	if s := stats(t, st, store.ToUser); s.Dead != 1 || s.Pending != 0 {
		t.Fatalf("stats %+v, want 1 dead", s)
	}
	if err := st.Drop(ctx, a1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Drop = %v, want ErrNotFound", err)
	}
}

// testFindByKey: a kept message is found by its direction and key in
// every state, and nothing else is.
func testFindByKey(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	in := enqueue(t, st, msg{dir: store.ToSelarti, chat: "a", key: "k1"})
	out := enqueue(t, st, msg{dir: store.ToUser, chat: "a", key: "k1"})
	enqueue(t, st, msg{dir: store.ToSelarti, chat: "a"}) // no key
	find := func(dir store.Direction, key string) (store.Message, error) {
		t.Helper()
		return st.FindByKey(ctx, dir, key)
	}
	for _, want := range []store.Message{in, out} {
		got, err := find(want.Dir, "k1")
		must(t, "FindByKey", err)
		if got.ID != want.ID || got.State != store.Pending || got.Chat != "a" {
			t.Fatalf("FindByKey(%s, k1) = %+v, want message %d pending", want.Dir, got, want.ID)
		}
	}
	wantIDs(t, "claim", claimDir(t, st, store.ToSelarti, now, 10), in)
	must(t, "Kill", st.Kill(ctx, in.ID, "fatal"))
	if got, err := find(store.ToSelarti, "k1"); err != nil || got.ID != in.ID || got.State != store.Dead || got.LastError != "fatal" {
		t.Fatalf("FindByKey of the dead letter = %+v, %v; want it dead with its error", got, err)
	}
	for _, tt := range []struct {
		dir store.Direction
		key string
	}{{store.ToSelarti, "k2"}, {store.ToSelarti, ""}, {store.ToUser, "K1"}} {
		if _, err := find(tt.dir, tt.key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("FindByKey(%s, %q) = %v, want ErrNotFound", tt.dir, tt.key, err)
		}
	}
	must(t, "Drop", st.Drop(ctx, in.ID))
	if _, err := find(store.ToSelarti, "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("FindByKey after Drop = %v, want ErrNotFound", err)
	}
}

func testNotFound(t *testing.T, st store.Store) {
	ctx := context.Background()
	pending := enqueue(t, st, msg{chat: "p"})
	delivered := enqueue(t, st, msg{chat: "d"})
	must(t, "Delivered", st.Delivered(ctx, delivered.ID))
	dead := enqueue(t, st, msg{chat: "x"})
	must(t, "Kill", st.Kill(ctx, dead.ID, "fatal"))
	const unknown = 1 << 40

	tests := []struct {
		name string
		call func() error
	}{
		{"Get unknown", func() error { _, err := st.Get(ctx, unknown); return err }},
		{"Delivered unknown", func() error { return st.Delivered(ctx, unknown) }},
		{"Retry unknown", func() error { return st.Retry(ctx, unknown, time.Now(), "x") }},
		{"Kill unknown", func() error { return st.Kill(ctx, unknown, "x") }},
		{"Replay unknown", func() error { return st.Replay(ctx, unknown) }},
		{"Drop unknown", func() error { return st.Drop(ctx, unknown) }},
		{"Delivered delivered", func() error { return st.Delivered(ctx, delivered.ID) }},
		{"Delivered dead", func() error { return st.Delivered(ctx, dead.ID) }},
		{"Retry delivered", func() error { return st.Retry(ctx, delivered.ID, time.Now(), "x") }},
		{"Retry dead", func() error { return st.Retry(ctx, dead.ID, time.Now(), "x") }},
		{"Defer unknown", func() error { return st.Defer(ctx, unknown, time.Now(), true, "x") }},
		{"Defer delivered", func() error { return st.Defer(ctx, delivered.ID, time.Now(), true, "x") }},
		{"Defer dead", func() error { return st.Defer(ctx, dead.ID, time.Now(), false, "") }},
		{"Kill delivered", func() error { return st.Kill(ctx, delivered.ID, "x") }},
		{"Kill dead", func() error { return st.Kill(ctx, dead.ID, "x") }},
		{"Replay pending", func() error { return st.Replay(ctx, pending.ID) }},
		{"Replay delivered", func() error { return st.Replay(ctx, delivered.ID) }},
		{"Drop pending", func() error { return st.Drop(ctx, pending.ID) }},
		{"Drop delivered", func() error { return st.Drop(ctx, delivered.ID) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("got %v, want ErrNotFound", err)
			}
		})
	}
	// The failed calls changed nothing.
	for _, want := range []struct {
		m     store.Message
		state store.State
	}{{pending, store.Pending}, {delivered, store.Delivered}, {dead, store.Dead}} {
		if m := get(t, st, want.m.ID); m.State != want.state || (want.state == store.Pending) != (m.Attempts == 0) {
			t.Fatalf("message %d after failed calls: %+v, want %s", m.ID, m, want.state)
		}
	}
}

func testStats(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	for _, dir := range store.Directions {
		if s := stats(t, st, dir); s != (store.Stats{}) {
			t.Fatalf("empty store: Stats(%s) = %+v, want zero", dir, s)
		}
	}
	if _, err := st.Stats(ctx, "sideways"); err == nil {
		t.Fatal("Stats of an unknown direction succeeded")
	}

	// CreatedAt out of id order: the oldest is not the first.
	m1 := enqueue(t, st, msg{chat: "a", created: now.Add(-1 * time.Hour)})
	m2 := enqueue(t, st, msg{chat: "b", created: now.Add(-3 * time.Hour)})
	m3 := enqueue(t, st, msg{chat: "c", created: now.Add(-2 * time.Hour)})
	enqueue(t, st, msg{dir: store.ToSelarti, chat: "a", created: now.Add(-5 * time.Hour)})

	check := func(what string, dir store.Direction, pending, dead int, oldest time.Time) {
		t.Helper()
		s := stats(t, st, dir)
		if s.Pending != pending || s.Dead != dead || !s.OldestPending.Equal(oldest) {
			t.Fatalf("%s: Stats(%s) = %+v, want %d pending, %d dead, oldest %v", what, dir, s, pending, dead, oldest)
		}
	}
	check("enqueued", store.ToUser, 3, 0, now.Add(-3*time.Hour))
	check("enqueued", store.ToSelarti, 1, 0, now.Add(-5*time.Hour))
	claim(t, st, now, 10) // leased messages are still pending
	check("claimed", store.ToUser, 3, 0, now.Add(-3*time.Hour))
	must(t, "Delivered", st.Delivered(ctx, m2.ID))
	check("oldest delivered", store.ToUser, 2, 0, now.Add(-2*time.Hour))
	must(t, "Kill", st.Kill(ctx, m3.ID, "x"))
	check("one killed", store.ToUser, 1, 1, now.Add(-1*time.Hour))
	must(t, "Delivered", st.Delivered(ctx, m1.ID))
	check("none pending", store.ToUser, 0, 1, time.Time{})
	check("other direction unchanged", store.ToSelarti, 1, 0, now.Add(-5*time.Hour))
}

func testChatKnown(t *testing.T, st store.Store) {
	ctx := context.Background()
	enqueue(t, st, msg{dir: store.ToSelarti, chat: "webchat:user"})
	enqueue(t, st, msg{dir: store.ToUser, chat: "webchat:pushed"})
	tests := []struct {
		chat string
		want bool
	}{
		{"webchat:user", true},
		{"webchat:pushed", false}, // Selarti wrote to it; no user did
		{"webchat:never", false},
	}
	for _, tt := range tests {
		t.Run(tt.chat, func(t *testing.T) {
			if got := chatInfo(t, st, tt.chat).Known; got != tt.want {
				t.Fatalf("Chat(%q).Known = %v, want %v", tt.chat, got, tt.want)
			}
		})
	}
	// Flags do not make a chat known.
	must(t, "SetDialogFlags", st.SetDialogFlags(ctx, "webchat:flagged", 1))
	if got := chatInfo(t, st, "webchat:flagged"); got != (store.ChatInfo{Flags: 1}) {
		t.Fatalf("Chat of a chat with flags only = %+v; want unknown, flags 1", got)
	}
}

func testDialogFlags(t *testing.T, st store.Store) {
	ctx := context.Background()
	enqueue(t, st, msg{dir: store.ToSelarti, chat: "known"})
	tests := []struct {
		name  string
		chat  string
		set   bool
		flags uint32
	}{
		{"unknown chat defaults to 0", "nobody", false, 0},
		{"known chat defaults to 0", "known", false, 0},
		{"set on a known chat", "known", true, 0b101},
		{"set on an unknown chat", "other", true, 2},
		{"all bits", "known", true, 0xFFFFFFFF},
		{"back to 0", "known", true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.set {
				must(t, "SetDialogFlags", st.SetDialogFlags(ctx, tt.chat, tt.flags))
			}
			if got := chatInfo(t, st, tt.chat).Flags; got != tt.flags {
				t.Fatalf("Chat(%q).Flags = %#x, want %#x", tt.chat, got, tt.flags)
			}
		})
	}
	if got := chatInfo(t, st, "other").Flags; got != 2 {
		t.Fatalf("flags of another chat changed: %#x", got)
	}
	if !chatInfo(t, st, "known").Known {
		t.Fatal("setting flags made a known chat unknown")
	}
}

func testPrune(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	old := now.Add(-2 * time.Hour)
	cutoff := now.Add(-time.Hour)

	deliveredOld := enqueue(t, st, msg{chat: "d1", key: "k-old", created: old})
	deliveredNew := enqueue(t, st, msg{chat: "d2", key: "k-new", created: now})
	pendingOld := enqueue(t, st, msg{chat: "p", created: old})
	deadOld := enqueue(t, st, msg{chat: "x", created: old})
	userOld := enqueue(t, st, msg{dir: store.ToSelarti, chat: "stale", created: old})
	userNew := enqueue(t, st, msg{dir: store.ToSelarti, chat: "fresh", created: now})
	for _, m := range []store.Message{deliveredOld, deliveredNew, userOld} {
		must(t, "Delivered", st.Delivered(ctx, m.ID))
	}
	must(t, "Kill", st.Kill(ctx, deadOld.ID, "fatal"))
	must(t, "SetDialogFlags", st.SetDialogFlags(ctx, "stale", 3))

	n, err := st.Prune(ctx, cutoff, cutoff)
	must(t, "Prune", err)
	if n != 2 {
		t.Fatalf("Prune deleted %d messages, want 2", n)
	}
	for _, m := range []store.Message{deliveredOld, userOld} {
		if _, err := st.Get(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(%d) after Prune = %v, want ErrNotFound", m.ID, err)
		}
	}
	for _, m := range []store.Message{deliveredNew, pendingOld, deadOld, userNew} {
		get(t, st, m.ID)
	}
	chatTests := []struct {
		chat  string
		known bool
		flags uint32
	}{
		{"stale", false, 3}, // not written from since cutoff; flags set since
		{"fresh", true, 0},
	}
	for _, tt := range chatTests {
		if got := chatInfo(t, st, tt.chat); got != (store.ChatInfo{Known: tt.known, Flags: tt.flags}) {
			t.Fatalf("chat %q after Prune: %+v; want known %v, flags %d", tt.chat, got, tt.known, tt.flags)
		}
	}
	if _, dup := tryEnqueue(t, st, msg{chat: "d1", key: "k-old"}); dup {
		t.Fatal("the key of a pruned message is still a duplicate")
	}
	if _, dup := tryEnqueue(t, st, msg{chat: "d2", key: "k-new"}); !dup {
		t.Fatal("the key of a kept delivered message is no longer a duplicate")
	}
	if n, err := st.Prune(ctx, cutoff, cutoff); err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0, nil", n, err)
	}

	// Everything delivered, every chat and every flag is older than this.
	n, err = st.Prune(ctx, time.Now().Add(time.Hour), time.Now().Add(time.Hour))
	must(t, "Prune", err)
	if n != 1 {
		t.Fatalf("Prune of everything deleted %d messages, want 1 (deliveredNew)", n)
	}
	if flags := chatInfo(t, st, "stale").Flags; flags != 0 {
		t.Fatalf("flags of a pruned chat: %d, want 0", flags)
	}
	if chatInfo(t, st, "fresh").Known {
		t.Fatal("chat fresh still known after a prune past its last message")
	}
	for _, m := range []store.Message{pendingOld, deadOld, userNew} {
		get(t, st, m.ID) // pending and dead are never pruned
	}

	// Chats have their own cutoff: a chat stays known after its messages go.
	kept := enqueue(t, st, msg{dir: store.ToSelarti, chat: "long-lived", created: old})
	must(t, "Delivered", st.Delivered(ctx, kept.ID))
	if n, err := st.Prune(ctx, cutoff, old.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("Prune with an older chat cutoff = %d, %v; want 1 message, nil", n, err)
	}
	if !chatInfo(t, st, "long-lived").Known {
		t.Fatal("a chat was forgotten before its own cutoff")
	}
}

func testCancelled(t *testing.T, st store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := store.Message{Dir: store.ToUser, Chat: "c"}
	if _, err := st.Enqueue(ctx, &m); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a cancelled context = %v, want context.Canceled", err)
	}
	if s := stats(t, st, store.ToUser); s.Pending != 0 {
		t.Fatalf("%d pending after a cancelled Enqueue", s.Pending)
	}
}

// testConcurrent runs producers and workers at once on both directions and
// checks that every message is delivered once, that a chat never has two
// messages leased at once, and that each chat's messages go in order.
func testConcurrent(t *testing.T, st store.Store) {
	const (
		producers   = 8
		chatsEach   = 4
		perProducer = 40
		workers     = 8
		total       = producers * perProducer
	)
	ctx := context.Background()

	type chatID struct {
		dir  store.Direction
		chat string
	}
	var (
		mu        sync.Mutex
		inFlight  = map[chatID]int64{} // chat -> message being attempted
		lastSeq   = map[chatID]int{}   // chat -> last delivered sequence
		delivered = map[int64]bool{}   // message id -> delivered
		done      atomic.Int64
		deadline  = time.Now().Add(20 * time.Second)
	)

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			// Each chat has one producer, so its sequence follows id order.
			for i := range perProducer {
				c := i % chatsEach
				dir := store.Directions[c%2]
				m := store.Message{Dir: dir, Chat: fmt.Sprintf("p%d-c%d", p, c), Payload: fmt.Appendf(nil, "%d", i/chatsEach)}
				if _, err := st.Enqueue(ctx, &m); err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() {
			dir := store.Directions[w%2]
			for done.Load() < total {
				if time.Now().After(deadline) {
					t.Errorf("worker %d: %d of %d delivered by the deadline", w, done.Load(), total)
					return
				}
				got, err := st.Claim(ctx, dir, time.Now(), time.Minute, 3)
				if err != nil {
					t.Errorf("Claim: %v", err)
					return
				}
				if len(got) == 0 {
					time.Sleep(time.Millisecond) // poll; the deadline bounds it
					continue
				}
				seqs := make([]int, len(got))
				mu.Lock()
				for i, m := range got {
					key := chatID{m.Dir, m.Chat}
					if _, err := fmt.Sscan(string(m.Payload), &seqs[i]); err != nil {
						t.Errorf("message %d: payload %q: %v", m.ID, m.Payload, err)
					}
					if other, ok := inFlight[key]; ok {
						t.Errorf("chat %v: claimed %d while %d is leased", key, m.ID, other)
					}
					if delivered[m.ID] {
						t.Errorf("message %d claimed after delivery", m.ID)
					}
					if last, ok := lastSeq[key]; (ok && seqs[i] != last+1) || (!ok && seqs[i] != 0) {
						t.Errorf("chat %v: message seq %d after seq %d (seen %v)", key, seqs[i], last, ok)
					}
					inFlight[key] = m.ID
				}
				mu.Unlock()
				for i, m := range got {
					runtime.Gosched() // "attempt" the message: let other workers claim meanwhile
					// Out of the map before Delivered commits: the chat stays
					// leased until then, so no one may claim into it.
					mu.Lock()
					delete(inFlight, chatID{m.Dir, m.Chat})
					lastSeq[chatID{m.Dir, m.Chat}] = seqs[i]
					delivered[m.ID] = true
					mu.Unlock()
					if err := st.Delivered(ctx, m.ID); err != nil {
						t.Errorf("Delivered(%d): %v", m.ID, err)
						return
					}
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(delivered) != total {
		t.Fatalf("%d messages delivered, want %d", len(delivered), total)
	}
	for _, dir := range store.Directions {
		if s := stats(t, st, dir); s.Pending != 0 {
			t.Fatalf("%s: %d still pending", dir, s.Pending)
		}
	}
}

// testConcurrentDedupe races enqueues of one key: exactly one must win.
func testConcurrentDedupe(t *testing.T, st store.Store) {
	const n = 20
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := store.Message{Dir: store.ToSelarti, Chat: fmt.Sprintf("c%d", i), DedupeKey: "same"}
			dup, err := st.Enqueue(context.Background(), &m)
			if err != nil {
				t.Errorf("Enqueue: %v", err)
			}
			if !dup {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of %d enqueues of one key were not duplicates, want 1", wins.Load(), n)
	}
	if s := stats(t, st, store.ToSelarti); s.Pending != 1 {
		t.Fatalf("%d pending, want 1", s.Pending)
	}
}

// testConcurrentFailuresAreIsolated runs failing and succeeding calls at
// once: a store that shares transactions between calls must not let one
// call's failure undo or fail another's.
func testConcurrentFailures(t *testing.T, st store.Store) {
	ctx := context.Background()
	const n = 30
	ms := make([]store.Message, n)
	for i := range ms {
		ms[i] = enqueue(t, st, msg{chat: fmt.Sprintf("c%d", i)})
	}
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			if err := st.Delivered(ctx, m.ID); err != nil {
				t.Errorf("Delivered(%d): %v", m.ID, err)
			}
		})
		wg.Go(func() {
			if err := st.Replay(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Replay of a message that is not dead = %v, want ErrNotFound", err)
			}
		})
		wg.Go(func() {
			unknown := int64(1<<40 + i)
			if err := st.Kill(ctx, unknown, "x"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Kill(%d) = %v, want ErrNotFound", unknown, err)
			}
		})
	}
	wg.Wait()
	for _, m := range ms {
		if got := get(t, st, m.ID); got.State != store.Delivered {
			t.Fatalf("message %d: state %q, want delivered", m.ID, got.State)
		}
	}
	if s := stats(t, st, store.ToUser); s.Pending != 0 || s.Dead != 0 {
		t.Fatalf("stats %+v, want nothing pending or dead", s)
	}
}

func testClosed(t *testing.T, st store.Store) {
	ctx := context.Background()
	m := enqueue(t, st, msg{})
	must(t, "Close", st.Close())

	tests := []struct {
		name string
		call func() error
	}{
		{"Enqueue", func() error {
			_, err := st.Enqueue(ctx, &store.Message{Dir: store.ToUser, Chat: "c"})
			return err
		}},
		{"Claim", func() error { _, err := st.Claim(ctx, store.ToUser, time.Now(), lease, 1); return err }},
		{"Claim zero limit", func() error { _, err := st.Claim(ctx, store.ToUser, time.Now(), lease, 0); return err }},
		{"Delivered", func() error { return st.Delivered(ctx, m.ID) }},
		{"Retry", func() error { return st.Retry(ctx, m.ID, time.Now(), "x") }},
		{"Kill", func() error { return st.Kill(ctx, m.ID, "x") }},
		{"DeadLetters", func() error { _, err := st.DeadLetters(ctx, 1); return err }},
		{"Get", func() error { _, err := st.Get(ctx, m.ID); return err }},
		{"FindByKey", func() error { _, err := st.FindByKey(ctx, store.ToUser, "k"); return err }},
		{"Replay", func() error { return st.Replay(ctx, m.ID) }},
		{"Drop", func() error { return st.Drop(ctx, m.ID) }},
		{"Stats", func() error { _, err := st.Stats(ctx, store.ToUser); return err }},
		{"EnqueueClaim", func() error {
			_, _, err := st.EnqueueClaim(ctx, &store.Message{Dir: store.ToUser, Chat: "c"}, time.Now(), lease)
			return err
		}},
		{"Chat", func() error { _, err := st.Chat(ctx, "c"); return err }},
		{"SetDialogFlags", func() error { return st.SetDialogFlags(ctx, "c", 1) }},
		{"Prune", func() error { _, err := st.Prune(ctx, time.Now(), time.Now()); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, store.ErrClosed) {
				t.Fatalf("%s after Close = %v, want ErrClosed", tt.name, err)
			}
		})
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func testEnqueueClaim(t *testing.T, st store.Store) {
	ctx := context.Background()
	now := time.Now()
	enqueueClaim := func(d msg, lease time.Duration) (store.Message, bool, bool) {
		t.Helper()
		if d.dir == "" {
			d.dir = store.ToUser
		}
		m := store.Message{Dir: d.dir, Chat: d.chat, DedupeKey: d.key, NextAt: d.next, Payload: []byte("p " + d.chat)}
		dup, claimed, err := st.EnqueueClaim(ctx, &m, now, lease)
		must(t, "EnqueueClaim", err)
		return m, dup, claimed
	}

	// An idle chat: the new message is leased at once and Claim skips it.
	first, dup, claimed := enqueueClaim(msg{chat: "idle", key: "k1"}, lease)
	if dup || !claimed || first.ID == 0 || first.State != store.Pending {
		t.Fatalf("EnqueueClaim on an idle chat: %+v dup %v claimed %v; want a new, claimed, pending message", first, dup, claimed)
	}
	wantIDs(t, "Claim while the enqueued head is leased", claim(t, st, now, 10))

	// Its chat is busy now: the next message waits, even from EnqueueClaim.
	second, _, claimed := enqueueClaim(msg{chat: "idle"}, lease)
	if claimed {
		t.Fatal("EnqueueClaim behind a leased head claimed the message")
	}
	must(t, "Delivered", st.Delivered(ctx, first.ID))
	wantIDs(t, "Claim after the first is delivered", claim(t, st, now, 10), second)
	must(t, "Delivered", st.Delivered(ctx, second.ID))

	// A chat with a pending head that is not leased.
	waitingHead := enqueue(t, st, msg{chat: "queued"})
	behind, _, claimed := enqueueClaim(msg{chat: "queued"}, lease)
	if claimed {
		t.Fatal("EnqueueClaim behind a pending head claimed the message")
	}
	wantIDs(t, "Claim of the queued chat", claim(t, st, now, 10), waitingHead)
	must(t, "Delivered", st.Delivered(ctx, waitingHead.ID))

	// Not due yet: never claimed at once.
	later, _, claimed := enqueueClaim(msg{chat: "later", next: now.Add(time.Hour)}, lease)
	if claimed {
		t.Fatal("EnqueueClaim of a message due later claimed it")
	}
	wantIDs(t, "Claim an hour later", claim(t, st, now.Add(2*time.Hour), 10), behind, later)
	for _, m := range []store.Message{behind, later} {
		must(t, "Delivered", st.Delivered(ctx, m.ID))
	}

	// A duplicate is neither written nor claimed.
	if _, dup, claimed := enqueueClaim(msg{chat: "other", key: "k1"}, lease); !dup || claimed {
		t.Fatalf("EnqueueClaim of a duplicate: dup %v claimed %v, want true, false", dup, claimed)
	}

	// Directions are separate: a pending reply does not hold back a
	// user's message of the same chat.
	reply := enqueue(t, st, msg{dir: store.ToUser, chat: "both"})
	user, _, claimed := enqueueClaim(msg{dir: store.ToSelarti, chat: "both"}, lease)
	if !claimed {
		t.Fatal("a pending message of the other direction held back EnqueueClaim")
	}
	if !chatInfo(t, st, "both").Known {
		t.Fatal("EnqueueClaim of a user's message did not make the chat known")
	}
	must(t, "Delivered", st.Delivered(ctx, user.ID))
	wantIDs(t, "Claim of the reply", claim(t, st, now, 10), reply)
	must(t, "Delivered", st.Delivered(ctx, reply.ID))

	// The lease runs out like Claim's: the message is claimable again.
	short, _, claimed := enqueueClaim(msg{chat: "short"}, time.Second)
	if !claimed {
		t.Fatal("EnqueueClaim on an idle chat did not claim")
	}
	wantIDs(t, "Claim before the lease ends", claim(t, st, now.Add(500*time.Millisecond), 10))
	if again := claim(t, st, now.Add(2*time.Second), 10); len(again) != 1 || again[0].ID != short.ID || !again[0].InDoubt {
		t.Fatalf("Claim after the lease ends = %+v, want message %d in doubt", again, short.ID)
	}

	// A failed attempt holds the chat back like any claimed head's.
	failing, _, _ := enqueueClaim(msg{chat: "failing"}, lease)
	must(t, "Retry", st.Retry(ctx, failing.ID, now.Add(time.Minute), "boom"))
	wantIDs(t, "Claim before the retry is due", claim(t, st, now, 10))
	if got := get(t, st, failing.ID); got.Attempts != 1 || got.LastError != "boom" {
		t.Fatalf("after Retry: attempts %d, error %q", got.Attempts, got.LastError)
	}

	for _, bad := range []time.Duration{0, -time.Second} {
		m := store.Message{Dir: store.ToUser, Chat: "bad"}
		if _, _, err := st.EnqueueClaim(ctx, &m, now, bad); err == nil {
			t.Fatalf("EnqueueClaim with lease %v: no error", bad)
		}
	}
	if _, _, err := st.EnqueueClaim(ctx, &store.Message{Dir: "sideways", Chat: "bad"}, now, lease); err == nil {
		t.Fatal("EnqueueClaim with a bad direction: no error")
	}
}
