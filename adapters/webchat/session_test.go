package webchat

import (
	"fmt"
	"testing"
	"time"
)

func newTestSessions(historyLimit, maxSessions int) *sessions {
	cfg := Config{}
	cfg.setDefaults()
	cfg.HistoryLimit = historyLimit
	cfg.MaxSessions = maxSessions
	return newSessions(&cfg)
}

// testClient is a client with no socket, for attaching to sessions.
func testClient() *client { return newClient(nil, 100) }

func TestHistoryLimit(t *testing.T) {
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
			ss := newTestSessions(tt.limit, 10)
			now := time.Now()
			for i := 0; i < tt.appends; i++ {
				ss.appendOutbound("s", "", fromBot, fmt.Sprint(i), now)
			}
			h := ss.byID["s"].history
			if len(h) != len(tt.wantSeqs) {
				t.Fatalf("history has %d entries, want %d", len(h), len(tt.wantSeqs))
			}
			for i, want := range tt.wantSeqs {
				if h[i].seq != want || h[i].text != fmt.Sprint(want-1) {
					t.Fatalf("history[%d] = seq %d %q, want seq %d", i, h[i].seq, h[i].text, want)
				}
			}
		})
	}
}

func TestOutboundDedupedByID(t *testing.T) {
	ss := newTestSessions(10, 10)
	now := time.Now()
	first := ss.appendOutbound("s", "selarti-1", fromBot, "hi", now)
	again := ss.appendOutbound("s", "selarti-1", fromBot, "hi", now)
	other := ss.appendOutbound("s", "selarti-2", fromBot, "hi", now)
	noID := ss.appendOutbound("s", "", fromBot, "hi", now)
	noID2 := ss.appendOutbound("s", "", fromBot, "hi", now)
	if first != 1 || again != 1 || other != 2 || noID != 3 || noID2 != 4 {
		t.Fatalf("seqs = %d %d %d %d %d, want 1 1 2 3 4", first, again, other, noID, noID2)
	}
}

func TestMaxSessionsEvictsLeastRecentlyActive(t *testing.T) {
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
			ss := newTestSessions(10, 3)
			for i, id := range []string{"a", "b", "c"} {
				ss.appendOutbound(id, "", fromBot, "x", t0.Add(time.Duration(i)*time.Second))
			}
			clients := map[string]*client{}
			for _, id := range tt.connected {
				clients[id] = testClient()
				if err := ss.attach(id, clients[id], 0, "", t0); err != nil {
					t.Fatal(err)
				}
			}
			ss.appendOutbound("d", "", fromBot, "x", t0.Add(time.Minute))
			if n := ss.len(); n != 3 {
				t.Fatalf("%d sessions, want 3", n)
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
		})
	}
}

func TestPurgeIdle(t *testing.T) {
	t0 := time.Now()
	ss := newTestSessions(10, 100)
	ss.appendOutbound("old", "", fromBot, "x", t0)
	ss.appendOutbound("old-connected", "", fromBot, "x", t0)
	if err := ss.attach("old-connected", testClient(), 0, "", t0); err != nil {
		t.Fatal(err)
	}
	ss.appendOutbound("fresh", "", fromBot, "x", t0.Add(time.Hour))

	if n := ss.purgeIdle(t0.Add(30 * time.Minute)); n != 1 {
		t.Fatalf("purged %d sessions, want 1", n)
	}
	for id, want := range map[string]bool{"old": false, "old-connected": true, "fresh": true} {
		if _, held := ss.byID[id]; held != want {
			t.Errorf("session %s held = %v, want %v", id, held, want)
		}
	}
}

func TestPurgeIdleAfterDetach(t *testing.T) {
	t0 := time.Now()
	ss := newTestSessions(10, 100)
	c := testClient()
	if err := ss.attach("s", c, 0, "", t0); err != nil {
		t.Fatal(err)
	}
	ss.detach("s", c, t0.Add(time.Hour))
	if n := ss.purgeIdle(t0.Add(30 * time.Minute)); n != 0 {
		t.Fatalf("purged %d; a tab closed at t0+1h makes the session active then", n)
	}
	if n := ss.purgeIdle(t0.Add(2 * time.Hour)); n != 1 {
		t.Fatalf("purged %d, want 1", n)
	}
}

func TestAttachReplaysUnderLock(t *testing.T) {
	ss := newTestSessions(10, 10)
	now := time.Now()
	for i := 0; i < 4; i++ {
		ss.appendOutbound("s", "", fromBot, fmt.Sprint(i), now)
	}
	c := testClient()
	if err := ss.attach("s", c, 2, "", now); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"type":"welcome","session":"s","last_seq":4,"epoch":"` + ss.byID["s"].epoch + `"}`,
	}
	for i := 3; i <= 4; i++ {
		want = append(want, fmt.Sprintf(`{"type":"message","seq":%d,"from":"bot","text":"%d","ts":"%s"}`, i, i-1, formatTS(now)))
	}
	for i, w := range want {
		select {
		case got := <-c.out:
			if string(got) != w {
				t.Fatalf("frame %d = %s, want %s", i, got, w)
			}
		default:
			t.Fatalf("frame %d missing", i)
		}
	}
	if len(c.out) != 0 {
		t.Fatalf("%d extra frames queued", len(c.out))
	}
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
