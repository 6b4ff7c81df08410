package webchat

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// newSharedSessions returns a session cache on j, as one replica has it.
func newSharedSessions(t *testing.T, j core.Journals, historyLimit, maxSessions int) *sessions {
	t.Helper()
	cfg := Config{}
	cfg.setDefaults()
	cfg.HistoryLimit = historyLimit
	cfg.MaxSessions = maxSessions
	return newSessions(&cfg, newJournalMailbox(j, historyLimit))
}

// queuedSeqs decodes the frames queued to c and returns their seqs.
func queuedSeqs(t *testing.T, c *client) []int64 {
	t.Helper()
	var seqs []int64
	for _, b := range c.takeQueued() {
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type != typeWelcome {
			seqs = append(seqs, f.Seq)
		}
	}
	return seqs
}

// TestSharedAppendAfterOtherReplica: an append on a replica whose cache
// is behind (another replica appended, its notice not handled yet) gets
// the store's seq, and the tabs get the entries in between first.
func TestSharedAppendAfterOtherReplica(t *testing.T) {
	ctx := context.Background()
	ja, jb := newTestJournals(t)
	ssA, ssB := newSharedSessions(t, ja, 10, 100), newSharedSessions(t, jb, 10, 100)
	now := time.Now()
	c := testClient()
	if err := ssA.attach(ctx, "s", "", c, 0, "", now); err != nil {
		t.Fatal(err)
	}
	sendOut(t, ssB, "s", "b1", "from B", now)
	sendOut(t, ssB, "s", "b2", "from B", now)
	if seq := sendOut(t, ssA, "s", "a1", "from A", now); seq != 3 {
		t.Fatalf("A's append got seq %d, want the store's 3", seq)
	}
	if got := queuedSeqs(t, c); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("the tab on A was shown seqs %v, want [1 2 3]", got)
	}
	select {
	case <-c.done:
		t.Fatal("the tab was closed: it should have been caught up")
	default:
	}
}

// TestSharedExpiry: a session with a tab open on replica A never looks
// idle to replica B's janitor, which sees only the store; once it is
// idle everywhere, B expires it, and A, which still holds it in memory,
// gives it a new epoch at the next hello.
func TestSharedExpiry(t *testing.T) {
	ctx := context.Background()
	ja, jb := newTestJournals(t)
	ssA, ssB := newSharedSessions(t, ja, 10, 100), newSharedSessions(t, jb, 10, 100)
	const ttl = 30 * time.Minute
	t0 := time.Now()
	c := testClient()
	if err := ssA.attach(ctx, "s", "", c, 0, "", t0); err != nil {
		t.Fatal(err)
	}
	epoch := ssA.byID["s"].epoch
	// A's janitor ticks every 3 minutes (ttl/10); B's looks at +40m.
	for at := t0.Add(3 * time.Minute); at.Before(t0.Add(40 * time.Minute)); at = at.Add(3 * time.Minute) {
		if err := ssA.shareActivity(ctx, at, at.Add(-ttl/2)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := ssB.expire(ctx, t0.Add(40*time.Minute-ttl), t0.Add(40*time.Minute)); err != nil || n != 0 {
		t.Fatalf("B's expire = %d, %v; the session has a tab open on A", n, err)
	}
	ssA.detach("s", c, t0.Add(41*time.Minute))
	if err := ssA.shareActivity(ctx, t0.Add(42*time.Minute), t0.Add(42*time.Minute-ttl/2)); err != nil {
		t.Fatal(err)
	}
	if n, err := ssB.expire(ctx, t0.Add(60*time.Minute-ttl), t0.Add(60*time.Minute)); err != nil || n != 0 {
		t.Fatalf("B's expire = %d, %v; the tab on A closed at +41m, within the ttl", n, err)
	}
	if n, err := ssB.expire(ctx, t0.Add(80*time.Minute-ttl), t0.Add(80*time.Minute)); err != nil || n != 1 {
		t.Fatalf("B's expire = %d, %v; want the session expired", n, err)
	}
	c2 := testClient()
	if err := ssA.attach(ctx, "s", "", c2, 0, epoch, t0.Add(81*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var w frame
	if err := json.Unmarshal(c2.takeQueued()[0], &w); err != nil || w.Type != typeWelcome || w.Epoch == epoch || w.LastSeq != 0 {
		t.Fatalf("welcome on A after B expired the session = %+v, %v; want a new epoch and last seq 0", w, err)
	}
}

// TestSharedSessionRecreatedElsewhere: another replica expired a session
// this one shows on a tab, and created it again (a new epoch, seqs from
// 1). The notice of its entries must not show them as the old epoch's:
// the tab is closed, and reconnects to the new incarnation.
func TestSharedSessionRecreatedElsewhere(t *testing.T) {
	ctx := context.Background()
	ja, jb := newTestJournals(t)
	ssA, ssB := newSharedSessions(t, ja, 10, 100), newSharedSessions(t, jb, 10, 100)
	now := time.Now()
	c := testClient()
	if err := ssA.attach(ctx, "s", "", c, 0, "", now); err != nil {
		t.Fatal(err)
	}
	sendOut(t, ssA, "s", "a1", "old", now)
	c.takeQueued()
	if err := jb.Delete(ctx, []string{"s"}, now.Add(time.Hour)); err != nil { // B's janitor
		t.Fatal(err)
	}
	for i := range 3 {
		sendOut(t, ssB, "s", fmt.Sprint("b", i), "new", now)
	}
	if err := ssA.catchUp(ctx, "s", 3, now); err != nil { // B's notice
		t.Fatal(err)
	}
	if got := queuedSeqs(t, c); len(got) != 0 {
		t.Fatalf("the tab was shown seqs %v of another incarnation", got)
	}
	select {
	case <-c.done:
	default:
		t.Fatal("the tab of the expired incarnation is still open")
	}
}
