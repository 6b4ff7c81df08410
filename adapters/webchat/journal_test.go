package webchat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// newTestJournals returns two handles on one instance's journals in a
// fresh Memory store, as two replicas sharing a store have them.
func newTestJournals(t testing.TB) (core.Journals, core.Journals) {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { _ = st.Close() })
	return st.Journals("web"), st.Journals("web")
}

// load reads session id with its history (tests; see mailbox.load).
func (m *journalMailbox) load(ctx context.Context, id string) (st storedSession, ok bool, err error) {
	st.sessionMeta, ok, err = m.meta(ctx, id)
	if err != nil || !ok {
		return st, ok, err
	}
	st.history, err = m.history(ctx, id, 0)
	return st, err == nil, err
}

func TestJournalMailboxRoundTrip(t *testing.T) {
	ctx := context.Background()
	j, _ := newTestJournals(t)
	mb := newJournalMailbox(j, 10)
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	want := []entry{
		{from: fromUser, id: "c1", text: "hello <b>", ts: t0},
		{from: fromBot, id: "sel-1", text: "**hi**", ts: t0.Add(time.Second)},
		{from: fromOperator, text: "no id", ts: t0.Add(2 * time.Second)},
		{event: true, operator: true, ts: t0.Add(3 * time.Second)},
		{event: true, closed: true, ts: t0.Add(4 * time.Second)},
	}
	for i, e := range want {
		res, err := mb.append(ctx, appendReq{session: "s", e: e, newEpoch: "ep1", name: "Ann"})
		if err != nil || res.seq != int64(i+1) || res.epoch != "ep1" || res.dup || res.missing || !res.synced {
			t.Fatalf("append %d = %+v, %v", i, res, err)
		}
	}
	st, ok, err := mb.load(ctx, "s")
	if err != nil || !ok || st.epoch != "ep1" || st.lastSeq != 5 || st.usersKnown || !st.lastActive.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("session = %+v, %v, %v", st.sessionMeta, ok, err)
	}
	for i, e := range st.history {
		w := want[i]
		w.seq = int64(i + 1)
		if e.seq != w.seq || e.event != w.event || e.from != w.from || e.id != w.id || e.text != w.text ||
			e.operator != w.operator || e.closed != w.closed || !e.ts.Equal(w.ts) {
			t.Fatalf("entry %d = %+v, want %+v", i, e, w)
		}
	}
	if h, _, _ := j.Head(ctx, "s"); h.Name != "Ann" {
		t.Fatalf("name %q, want Ann", h.Name)
	}
	if seq, ok, err := mb.userSeq(ctx, "s", "c1"); err != nil || !ok || seq != 1 {
		t.Fatalf("userSeq(c1) = %d, %v, %v", seq, ok, err)
	}
	// A client id is not a Selarti id: the keys have their kind.
	if _, ok, _ := mb.userSeq(ctx, "s", "sel-1"); ok {
		t.Fatal("userSeq found Selarti's id")
	}
}

func TestJournalMailboxDedupes(t *testing.T) {
	ctx := context.Background()
	j, j2 := newTestJournals(t)
	a, b := newJournalMailbox(j, 10), newJournalMailbox(j2, 10)
	now := time.Now()
	longID := strings.Repeat("x", 300)
	for i, tt := range []struct {
		mb    *journalMailbox
		e     entry
		seq   int64
		dup   bool
		label string
	}{
		{a, entry{from: fromUser, id: "c1", text: "q", ts: now}, 1, false, "user c1"},
		{b, entry{from: fromUser, id: "c1", text: "q", ts: now}, 1, true, "user c1 re-sent to the other replica"},
		{a, entry{from: fromBot, id: "c1", text: "r", ts: now}, 2, false, "a Selarti id equal to a client id"},
		{b, entry{from: fromOperator, id: "c1", text: "r", ts: now}, 2, true, "the same Selarti id again"},
		{a, entry{from: fromBot, id: longID, text: "r", ts: now}, 3, false, "a Selarti id too long for a key"},
		{b, entry{from: fromBot, id: longID, text: "r", ts: now}, 3, true, "the long id again"},
		{a, entry{from: fromBot, id: longID[:299], text: "r", ts: now}, 4, false, "another long id"},
		{a, entry{from: fromBot, text: "no id", ts: now}, 5, false, "no id"},
		{b, entry{from: fromBot, text: "no id", ts: now}, 6, false, "no id again"},
	} {
		res, err := tt.mb.append(ctx, appendReq{session: "s", e: tt.e, newEpoch: "e1"})
		if err != nil || res.seq != tt.seq || res.dup != tt.dup {
			t.Fatalf("%d (%s): %+v, %v; want seq %d, dup %v", i, tt.label, res, err, tt.seq, tt.dup)
		}
	}
}

func TestJournalMailboxLimitsAndMissing(t *testing.T) {
	ctx := context.Background()
	j, _ := newTestJournals(t)
	mb := newJournalMailbox(j, 3)
	now := time.Now()
	if res, err := mb.append(ctx, appendReq{session: "s", e: entry{event: true, ts: now}}); err != nil || !res.missing {
		t.Fatalf("event for a missing session = %+v, %v; want missing", res, err)
	}
	if _, ok, err := mb.meta(ctx, "s"); ok || err != nil {
		t.Fatalf("meta = %v, %v; want none", ok, err)
	}
	for range 5 {
		if _, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromBot, text: "x", ts: now}, newEpoch: "e1"}); err != nil {
			t.Fatal(err)
		}
	}
	if h, err := mb.history(ctx, "s", 0); err != nil || len(h) != 3 || h[0].seq != 3 {
		t.Fatalf("history = %+v, %v; want the newest 3 of 5", h, err)
	}
	// The existing session, whatever epoch create is given.
	if ep, last, err := mb.create(ctx, "s", "other", "", now); err != nil || ep != "e1" || last != 5 {
		t.Fatalf("create of an existing session = %s, %d, %v", ep, last, err)
	}
	_, err := mb.append(ctx, appendReq{session: "s", e: entry{from: fromBot, text: strings.Repeat("x", 1<<20), ts: now}})
	if !core.IsPermanent(err) || !errors.Is(err, core.ErrJournalLimit) {
		t.Fatalf("an entry too large for the store = %v, want a permanent error", err)
	}
	if err := mb.close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mb.meta(ctx, "s"); !errors.Is(err, errMailboxClosed) {
		t.Fatalf("meta after close = %v", err)
	}
}
