package webchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// newTestSessions returns a cache over a fresh mailbox, closed when the
// test ends.
func newTestSessions(t *testing.T, historyLimit, maxSessions int) *sessions {
	t.Helper()
	cfg := Config{}
	cfg.setDefaults()
	cfg.HistoryLimit = historyLimit
	cfg.MaxSessions = maxSessions
	mb := openTestMailbox(t, filepath.Join(t.TempDir(), mailboxFile), historyLimit)
	return newSessions(&cfg, mb)
}

// newSessionsFunc returns a cache over a fresh store (newTestSessions).
type newSessionsFunc func(t *testing.T, historyLimit, maxSessions int) *sessions

// bothStores runs test with caches over the file mailbox and over the
// shared store's journals (one replica).
func bothStores(t *testing.T, test func(t *testing.T, newSS newSessionsFunc)) {
	t.Run("file", func(t *testing.T) { test(t, newTestSessions) })
	t.Run("journals", func(t *testing.T) {
		test(t, func(t *testing.T, historyLimit, maxSessions int) *sessions {
			j, _ := newTestJournals(t)
			return newSharedSessions(t, j, historyLimit, maxSessions)
		})
	})
}

// testClient is a client with no socket, for attaching to sessions.
func testClient() *client { return newClient(nil, 100) }

// visit attaches a tab to session id at time at and detaches it again:
// the session is then cached, loaded, with no tab.
func visit(t *testing.T, ss *sessions, id string, at time.Time) {
	t.Helper()
	c := testClient()
	if err := ss.attach(context.Background(), id, "", c, 0, "", at); err != nil {
		t.Fatalf("attach %s: %v", id, err)
	}
	ss.detach(id, c, at)
}

// sendOut is appendOutbound, failing the test on error.
func sendOut(t *testing.T, ss *sessions, id, outID, text string, at time.Time) int64 {
	t.Helper()
	seq, err := ss.appendOutbound(context.Background(), id, outID, fromBot, text, at)
	if err != nil {
		t.Fatalf("appendOutbound: %v", err)
	}
	return seq
}

func TestHistoryLimit(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		tests := []struct {
			name     string
			limit    int
			appends  int
			wantSeqs []int64
		}{
			{name: "under the limit", limit: 5, appends: 3, wantSeqs: []int64{1, 2, 3}},
			{name: "at the limit", limit: 3, appends: 3, wantSeqs: []int64{1, 2, 3}},
			{name: "over the limit keeps the newest", limit: 3, appends: 7, wantSeqs: []int64{5, 6, 7}},
			{name: "limit of one", limit: 1, appends: 4, wantSeqs: []int64{4}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ss := newSS(t, tt.limit, 10)
				now := time.Now()
				visit(t, ss, "s", now) // cached
				for i := 0; i < tt.appends; i++ {
					sendOut(t, ss, "s", "", fmt.Sprint(i), now)
				}
				st, _, err := loadSession(context.Background(), ss.mb, "s")
				if err != nil {
					t.Fatal(err)
				}
				// What a new tab is shown.
				c := testClient()
				if err := ss.attach(context.Background(), "s", "", c, 0, "", now); err != nil {
					t.Fatal(err)
				}
				var replayed []entry
				for _, b := range c.takeQueued()[1:] {
					var f frame
					if err := json.Unmarshal(b, &f); err != nil {
						t.Fatal(err)
					}
					replayed = append(replayed, entry{seq: f.Seq, text: f.Text})
				}
				for name, h := range map[string][]entry{"replay": replayed, "mailbox": st.history} {
					if len(h) != len(tt.wantSeqs) {
						t.Fatalf("%s history has %d entries, want %d", name, len(h), len(tt.wantSeqs))
					}
					for i, want := range tt.wantSeqs {
						if h[i].seq != want || h[i].text != fmt.Sprint(want-1) {
							t.Fatalf("%s history[%d] = seq %d %q, want seq %d", name, i, h[i].seq, h[i].text, want)
						}
					}
				}
			})
		}
	})
}

func TestOutboundDedupedByID(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		ss := newSS(t, 10, 10)
		now := time.Now()
		first := sendOut(t, ss, "s", "selarti-1", "hi", now)
		again := sendOut(t, ss, "s", "selarti-1", "hi", now)
		other := sendOut(t, ss, "s", "selarti-2", "hi", now)
		noID := sendOut(t, ss, "s", "", "hi", now)
		noID2 := sendOut(t, ss, "s", "", "hi", now)
		if first != 1 || again != 1 || other != 2 || noID != 3 || noID2 != 4 {
			t.Fatalf("seqs = %d %d %d %d %d, want 1 1 2 3 4", first, again, other, noID, noID2)
		}
	})
}

func TestSendToUncachedSessionLeavesNoCacheEntry(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		ss := newSS(t, 10, 10)
		sendOut(t, ss, "s", "", "hi", time.Now())
		if n := len(ss.byID); n != 0 || ss.len() != 0 {
			t.Fatalf("%d sessions cached after a Send to a session nobody has open, want 0", n)
		}
		if _, ok, _ := loadSession(context.Background(), ss.mb, "s"); !ok {
			t.Fatal("the mailbox does not hold the session")
		}
	})
}

func TestMaxSessionsEvictsLeastRecentlyActive(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		t0 := time.Now()
		tests := []struct {
			name        string
			connected   []string // sessions with an open tab
			wantEvicted string
		}{
			{name: "oldest idle session goes", wantEvicted: "a"},
			{name: "sessions with open tabs are spared", connected: []string{"a"}, wantEvicted: "b"},
			{name: "all connected: the oldest goes anyway", connected: []string{"a", "b", "c"}, wantEvicted: "a"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ss := newSS(t, 10, 3)
				for i, id := range []string{"a", "b", "c"} {
					at := t0.Add(time.Duration(i) * time.Second)
					visit(t, ss, id, at)
					sendOut(t, ss, id, "", "x", at)
				}
				clients := map[string]*client{}
				for _, id := range tt.connected {
					clients[id] = testClient()
					// At t0, so that the tab does not make it the newest.
					if err := ss.attach(context.Background(), id, "", clients[id], 0, "", t0); err != nil {
						t.Fatal(err)
					}
				}
				visit(t, ss, "d", t0.Add(time.Minute))
				if n := len(ss.byID); n != 3 || ss.len() != 3 {
					t.Fatalf("%d sessions (%d loaded), want 3", n, ss.len())
				}
				for _, id := range []string{"a", "b", "c", "d"} {
					_, held := ss.byID[id]
					if held == (id == tt.wantEvicted) {
						t.Fatalf("session %s held = %v; want only %s evicted", id, held, tt.wantEvicted)
					}
				}
				if c, ok := clients[tt.wantEvicted]; ok {
					select {
					case <-c.done:
					default:
						t.Fatal("the evicted session's tab was not closed")
					}
				}
				// Eviction is from memory only.
				if st, ok, err := loadSession(context.Background(), ss.mb, tt.wantEvicted); err != nil || !ok || st.lastSeq != 1 {
					t.Fatalf("mailbox copy of the evicted session = %+v, %v, %v; want it kept with last_seq 1", st, ok, err)
				}
			})
		}
	})
}

func TestExpire(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		t0 := time.Now()
		ctx := context.Background()
		ss := newSS(t, 10, 100)
		sendOut(t, ss, "old", "", "x", t0)
		sendOut(t, ss, "old-connected", "", "x", t0)
		if err := ss.attach(ctx, "old-connected", "", testClient(), 0, "", t0); err != nil {
			t.Fatal(err)
		}
		sendOut(t, ss, "old-cached", "", "x", t0)
		visit(t, ss, "old-cached", t0) // cached, with nothing newer than t0
		sendOut(t, ss, "fresh", "", "x", t0.Add(time.Hour))

		cutoff := t0.Add(30 * time.Minute)
		n, err := ss.expire(ctx, cutoff, t0.Add(time.Hour))
		if err != nil || n != 2 {
			t.Fatalf("expire = %d, %v; want 2 deleted", n, err)
		}
		for id, want := range map[string]bool{"old": false, "old-cached": false, "old-connected": true, "fresh": true} {
			if _, ok, _ := loadSession(ctx, ss.mb, id); ok != want {
				t.Errorf("mailbox holds %s = %v, want %v", id, ok, want)
			}
		}
		if _, cached := ss.byID["old-cached"]; cached {
			t.Error("an expired session is still cached")
		}
		// The connected session was marked active: the next round leaves it.
		if n, err := ss.expire(ctx, cutoff, t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("second expire = %d, %v; want 0", n, err)
		}
		// An expired session starts again with a new epoch and seq 1.
		if seq := sendOut(t, ss, "old", "", "again", t0.Add(time.Hour)); seq != 1 {
			t.Fatalf("seq after expiry = %d, want 1", seq)
		}
	})
}

func TestExpireAfterDetach(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		t0 := time.Now()
		ctx := context.Background()
		ss := newSS(t, 10, 100)
		c := testClient()
		if err := ss.attach(ctx, "s", "", c, 0, "", t0); err != nil {
			t.Fatal(err)
		}
		ss.detach("s", c, t0.Add(time.Hour))
		if n, err := ss.expire(ctx, t0.Add(30*time.Minute), t0.Add(time.Hour)); err != nil || n != 0 {
			t.Fatalf("expire = %d, %v; a tab closed at t0+1h makes the session active then", n, err)
		}
		if n, err := ss.expire(ctx, t0.Add(2*time.Hour), t0.Add(2*time.Hour)); err != nil || n != 1 {
			t.Fatalf("expire = %d, %v; want 1", n, err)
		}
	})
}

func TestAttachReplaysUnderLock(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		ss := newSS(t, 10, 10)
		now := time.Now()
		for i := 0; i < 4; i++ {
			sendOut(t, ss, "s", "", fmt.Sprint(i), now)
		}
		c := testClient()
		if err := ss.attach(context.Background(), "s", "", c, 2, "", now); err != nil {
			t.Fatal(err)
		}
		want := []string{
			`{"type":"welcome","session":"s","last_seq":4,"epoch":"` + ss.byID["s"].epoch + `"}`,
		}
		for i := 3; i <= 4; i++ {
			want = append(want, fmt.Sprintf(`{"type":"message","seq":%d,"from":"bot","text":"%d","html":"%d","ts":"%s"}`, i, i-1, i-1, formatTS(now)))
		}
		got := c.takeQueued()
		for i, w := range want {
			if i >= len(got) {
				t.Fatalf("frame %d missing", i)
			}
			if string(got[i]) != w {
				t.Fatalf("frame %d = %s, want %s", i, got[i], w)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d extra frames queued", len(got)-len(want))
		}
	})
}

// TestConcurrentUseAcrossEvictions sends to, opens and expires sessions
// from many goroutines through a cache too small for them, and checks
// that every session's seqs in the mailbox run 1, 2, 3... with nothing
// lost or doubled.
func TestConcurrentUseAcrossEvictions(t *testing.T) {
	bothStores(t, func(t *testing.T, newSS newSessionsFunc) {
		const ids, workers, perWorker = 6, 8, 40
		ss := newSS(t, 1000, 2)
		ctx := context.Background()
		now := time.Now()
		// Idle sessions for the concurrent expire calls to delete.
		for i := 0; i < 20; i++ {
			sendOut(t, ss, fmt.Sprint("old", i), "", "x", now.Add(-2*time.Hour))
		}
		var wg sync.WaitGroup
		var sent [ids]atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					id := fmt.Sprint("s", (w+i)%ids)
					switch i % 4 {
					case 0:
						c := testClient()
						if err := ss.attach(ctx, id, "", c, 0, "", now); err != nil && !errors.Is(err, errTooManyConns) {
							t.Errorf("attach: %v", err)
							return
						}
						ss.detach(id, c, now)
					case 1:
						// Deletes the old sessions; the counted ones are fresh.
						if _, err := ss.expire(ctx, now.Add(-time.Hour), now); err != nil {
							t.Errorf("expire: %v", err)
							return
						}
					}
					if _, err := ss.appendOutbound(ctx, id, fmt.Sprintf("w%d-%d", w, i), fromBot, "x", now); err != nil {
						t.Errorf("appendOutbound: %v", err)
						return
					}
					sent[(w+i)%ids].Add(1)
				}
			}()
		}
		wg.Wait()
		for i := range ids {
			st, ok, err := loadSession(ctx, ss.mb, fmt.Sprint("s", i))
			if err != nil || !ok {
				t.Fatalf("load s%d: %v, %v", i, ok, err)
			}
			if st.lastSeq != sent[i].Load() || len(st.history) != int(st.lastSeq) {
				t.Fatalf("s%d: last_seq %d, %d entries; want %d", i, st.lastSeq, len(st.history), sent[i].Load())
			}
			for j, e := range st.history {
				if e.seq != int64(j+1) {
					t.Fatalf("s%d: entry %d has seq %d", i, j, e.seq)
				}
			}
		}
		if n := len(ss.byID); n > 2 || ss.len() != n {
			t.Fatalf("%d sessions cached (%d loaded) once idle, want at most max_sessions (2), all loaded", n, ss.len())
		}
	})
}

func TestSessionIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		id := newSessionID()
		if !validSessionID(id) {
			t.Fatalf("newSessionID() = %q is not valid", id)
		}
		if seen[id] {
			t.Fatalf("newSessionID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "abc", "AAAAAAAAAAAAAAAAAAAAA=", "AAAAAAAAAAAAAAAAAAAAA/", "AAAAAAAAAAAAAAAAAAAAAAA"} {
		if validSessionID(bad) {
			t.Errorf("validSessionID(%q) = true", bad)
		}
	}
}

func TestCleanName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Ann  ", "Ann"},
		{"A\x00n\nn", "Ann"},
		{string(make([]rune, 0)), ""},
		{fmt.Sprintf("%070d", 0), fmt.Sprintf("%064d", 0)},
	}
	for _, tt := range tests {
		if got := cleanName(tt.in); got != tt.want {
			t.Errorf("cleanName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestUnsyncedUserMessagesAreBounded(t *testing.T) {
	withBootID(t, "boot-a")
	ctx := context.Background()
	ss := newTestSessions(t, 100, 10)
	now := time.Now()
	c := testClient()
	if err := ss.attach(ctx, "s", "", c, 0, "", now); err != nil {
		t.Fatal(err)
	}
	unsynced := func() int {
		ss.mu.Lock()
		defer ss.mu.Unlock()
		return ss.byID["s"].unsynced.count(ss.mb)
	}
	user := func(id string) {
		t.Helper()
		if err := ss.appendUser(ctx, "s", id, "text", "", c, now); err != nil {
			t.Fatal(err)
		}
	}
	for i := range maxUnsynced {
		user(fmt.Sprint("u", i))
		if n := unsynced(); n != i+1 {
			t.Fatalf("after %d user messages, %d unsynced; want %d", i+1, n, i+1)
		}
	}
	// The bound is reached: this one is synced, and syncs the others.
	user("u-synced")
	if n := unsynced(); n != 0 {
		t.Fatalf("%d unsynced after the bound was reached, want 0", n)
	}
	user("u-next")
	if n := unsynced(); n != 1 {
		t.Fatalf("%d unsynced, want 1", n)
	}
	// A reply is synced, and syncs what came before it.
	sendOut(t, ss, "s", "reply-1", "reply", now)
	if n := unsynced(); n != 0 {
		t.Fatalf("%d unsynced after a reply, want 0", n)
	}
	// A synced write of another session syncs them too.
	user("u-again")
	sendOut(t, ss, "other", "reply-2", "reply", now)
	if n := unsynced(); n != 0 {
		t.Fatalf("%d unsynced after another session's synced write, want 0", n)
	}
}

func TestEvictionKeepsUnsyncedCount(t *testing.T) {
	withBootID(t, "boot-a")
	ctx := context.Background()
	ss := newTestSessions(t, 100, 1)
	now := time.Now()
	c := testClient()
	if err := ss.attach(ctx, "a", "", c, 0, "", now); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ss.appendUser(ctx, "a", fmt.Sprint("u", i), "text", "", c, now); err != nil {
			t.Fatal(err)
		}
	}
	ss.detach("a", c, now)
	visit(t, ss, "b", now) // pushes a out of memory
	if _, cached := ss.byID["a"]; cached {
		t.Fatal("a is still cached")
	}
	if u := ss.unsynced["a"]; u.count(ss.mb) != 3 {
		t.Fatalf("unsynced entries kept for the evicted session = %+v, want 3", u)
	}
	// Loaded again, it carries on counting from there.
	c2 := testClient()
	if err := ss.attach(ctx, "a", "", c2, 0, "", now); err != nil {
		t.Fatal(err)
	}
	ss.mu.Lock()
	n := ss.byID["a"].unsynced.count(ss.mb)
	_, kept := ss.unsynced["a"]
	ss.mu.Unlock()
	if n != 3 || kept {
		t.Fatalf("reloaded session has %d unsynced (still in the evicted set: %v), want 3 and moved", n, kept)
	}
}

func TestIdleSessionsAreBounded(t *testing.T) {
	ctx := context.Background()
	ss := newTestSessions(t, 10, 100)
	ss.maxIdle = 2
	t0 := time.Now()
	tabs := map[string]*client{}
	for i, id := range []string{"c1", "c2", "c3"} {
		tabs[id] = testClient()
		if err := ss.attach(ctx, id, "", tabs[id], 0, "", t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	for i, id := range []string{"i1", "i2", "i3"} {
		visit(t, ss, id, t0.Add(time.Duration(10+i)*time.Second))
	}
	// Sessions with tabs all stay; of the others, the most recent two.
	for id, want := range map[string]bool{"c1": true, "c2": true, "c3": true, "i1": false, "i2": true, "i3": true} {
		if _, ok := ss.byID[id]; ok != want {
			t.Errorf("session %s cached = %v, want %v", id, ok, want)
		}
	}
	if ss.idle.Len() != 2 || ss.active.Len() != 3 || ss.len() != 5 {
		t.Fatalf("idle %d, active %d, loaded %d; want 2, 3, 5", ss.idle.Len(), ss.active.Len(), ss.len())
	}
	// A tab that closes makes its session idle: the oldest idle one goes.
	ss.detach("c1", tabs["c1"], t0.Add(time.Minute))
	if _, ok := ss.byID["i2"]; ok {
		t.Fatal("i2 still cached after c1 became idle")
	}
	if _, ok := ss.byID["c1"]; !ok {
		t.Fatal("c1, the most recently active idle session, was dropped")
	}
}

// TestActivityOfEvictedSessionIsKept checks that a visit counts towards
// session_ttl even when the session leaves memory before the janitor
// looks at it.
func TestActivityOfEvictedSessionIsKept(t *testing.T) {
	ctx := context.Background()
	ss := newTestSessions(t, 10, 100)
	ss.maxIdle = 1
	t0 := time.Now().Add(-time.Hour)
	sendOut(t, ss, "a", "", "x", t0) // stored as active at t0
	visit(t, ss, "a", t0.Add(30*time.Minute))
	visit(t, ss, "b", t0.Add(31*time.Minute)) // pushes a out
	if _, cached := ss.byID["a"]; cached {
		t.Fatal("a is still cached")
	}
	if got := ss.touches["a"]; !got.Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("kept activity of a = %v, want its visit", got)
	}
	// Idle since its message, but not since its visit.
	if n, err := ss.expire(ctx, t0.Add(10*time.Minute), t0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("expire = %d, %v; want nothing deleted", n, err)
	}
	if err := ss.flushTouches(ctx, false); err != nil {
		t.Fatal(err)
	}
	st, ok, err := ss.mb.meta(ctx, "a")
	if err != nil || !ok || !st.lastActive.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("stored activity of a = %v (%v, %v), want its visit", st.lastActive, ok, err)
	}
	if len(ss.touches) != 0 {
		t.Fatalf("%d activities still waiting after the flush", len(ss.touches))
	}
}

// TestUserMessageLookupInMemory checks that a session in memory tells a
// new user message from a re-sent one without reading the mailbox (whose
// reads fail here once its read connections are closed), and still finds
// a re-sent one, also after it was loaded again.
func TestUserMessageLookupInMemory(t *testing.T) {
	ctx := context.Background()
	ss := newTestSessions(t, 3, 10)
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		c := testClient()
		if err := ss.attach(ctx, id, "", c, 0, "", now); err != nil {
			t.Fatal(err)
		}
		if err := ss.appendUser(ctx, id, "c1", "text", "", c, now); err != nil {
			t.Fatal(err)
		}
		ss.detach(id, c, now)
	}
	// a is loaded again from the mailbox; b stays as it was.
	ss.mu.Lock()
	ss.remove(ss.byID["a"])
	ss.mu.Unlock()
	visit(t, ss, "a", now)
	// b's c1 leaves the history window (history_limit 3).
	for i := range 3 {
		sendOut(t, ss, "b", fmt.Sprint("r", i), "reply", now)
	}
	for _, id := range []string{"a", "b"} {
		if seq, ok, err := ss.userMessageSeq(ctx, id, "c1"); err != nil || ok != (id == "a") || (ok && seq != 1) {
			t.Fatalf("session %s: re-sent c1 = %d, %v, %v; want found (seq 1) only while in the history", id, seq, ok, err)
		}
	}
	if err := ss.mb.(*mailbox).rdb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, ok, err := ss.userMessageSeq(ctx, id, "c2"); err != nil || ok {
			t.Fatalf("session %s: new message c2 = %v, %v; want not found, without a read", id, ok, err)
		}
	}
	if _, _, err := ss.userMessageSeq(ctx, "a", "c1"); err == nil {
		t.Fatal("a re-sent id was looked up without reading the mailbox")
	}
}

// TestSessionInUseIsNeverDropped: a session whose lock is held (a Send or
// a replay in progress) stays in memory however full the cache gets, and
// counts again once released.
func TestSessionInUseIsNeverDropped(t *testing.T) {
	ctx := context.Background()
	ss := newTestSessions(t, 10, 1)
	now := time.Now()
	visit(t, ss, "a", now)
	a, err := ss.acquire(ctx, "a", now)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"b", "c"} {
		visit(t, ss, id, now.Add(time.Duration(i+1)*time.Second))
	}
	ss.mu.Lock()
	held := ss.byID["a"]
	ss.mu.Unlock()
	if held != a || !a.loaded {
		t.Fatal("the session in use was dropped from memory")
	}
	ss.release(a)
	if n := ss.len(); n != 1 {
		t.Fatalf("%d sessions loaded after the release, want the bound of 1", n)
	}
	if _, ok := ss.byID["a"]; !ok {
		t.Fatal("the session just used was dropped instead of the older one")
	}
}

// TestReplyFramesCarryRenderedHTML: a reply's frame carries its Markdown
// rendered by the kit's safe renderer beside the text as written; the
// user's own message is never rendered.
func TestReplyFramesCarryRenderedHTML(t *testing.T) {
	var bot, user frame
	if err := json.Unmarshal((&entry{from: fromBot, text: "**hi** <b>x</b> [a](https://e.com)"}).frame(), &bot); err != nil {
		t.Fatal(err)
	}
	want := `<strong>hi</strong> &lt;b&gt;x&lt;/b&gt; <a href="https://e.com" rel="noopener noreferrer nofollow" target="_blank">a</a>`
	if bot.HTML != want || bot.Text != "**hi** <b>x</b> [a](https://e.com)" {
		t.Fatalf("bot frame html %q text %q, want html %q and the text as written", bot.HTML, bot.Text, want)
	}
	if err := json.Unmarshal((&entry{from: fromUser, id: "c1", text: "**hi**"}).frame(), &user); err != nil {
		t.Fatal(err)
	}
	if user.HTML != "" {
		t.Fatalf("user frame html %q: the user's own text is shown as typed", user.HTML)
	}
}
