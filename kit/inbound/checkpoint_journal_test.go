package inbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// replicas returns two handles on one instance's journals in a Memory:
// two gateway replicas sharing one store.
func replicas(t *testing.T) (a, b core.Journals) {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	return st.Journals("dc"), st.Journals("dc")
}

func openJournal(t *testing.T, j core.Journals) *Checkpoint {
	t.Helper()
	c, err := OpenJournalCheckpoint(context.Background(), j, "checkpoint", 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func flush(t *testing.T, c *Checkpoint) {
	t.Helper()
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func get(c *Checkpoint, key string) string {
	v, _ := c.Get(key)
	return v
}

// TestJournalCheckpointSurvivesReopen: what one replica flushed, another
// opens, in the same order; the journal is created by the first flush
// and keeps its newest entries only.
func TestJournalCheckpointSurvivesReopen(t *testing.T) {
	ja, jb := replicas(t)
	ctx := context.Background()
	c := openJournal(t, ja)
	if len(c.Keys()) != 0 {
		t.Fatal("a new checkpoint has positions")
	}
	flush(t, c)
	if _, ok, _ := ja.Head(ctx, "checkpoint"); ok {
		t.Fatal("an unchanged checkpoint created its journal")
	}
	c.Set("chan-1", "1001")
	c.Set("chan-2", "2001")
	c.Set("chan-1", "1002")
	flush(t, c)
	for i := range 10 {
		c.Set("chan-3", strconv.Itoa(3000+i))
		flush(t, c)
	}
	again := openJournal(t, jb)
	if v := get(again, "chan-1"); v != "1002" {
		t.Fatalf("chan-1 = %q after reopen, want 1002", v)
	}
	if v := get(again, "chan-3"); v != "3009" {
		t.Fatalf("chan-3 = %q after reopen, want 3009", v)
	}
	if got := again.Keys(); !slices.Equal(got, []string{"chan-2", "chan-1", "chan-3"}) {
		t.Fatalf("keys = %v, want least recently set first", got)
	}
	entries, err := jb.Entries(ctx, "checkpoint", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != journalKeep {
		t.Fatalf("%d entries kept after 11 flushes, want %d", len(entries), journalKeep)
	}
}

// TestJournalCheckpointNeverMovesBack: a replica that lost its lease
// flushes late, with positions older than the new receiver's: the stored
// positions stay the newer, and the late replica learns them.
func TestJournalCheckpointNeverMovesBack(t *testing.T) {
	ja, jb := replicas(t)
	old := openJournal(t, ja)
	old.Set("c/1", "100")
	flush(t, old)

	cur := openJournal(t, jb) // takes over from 100
	cur.Set("c/1", "250")
	cur.Set("c/2", "900") // a channel the old one never saw
	flush(t, cur)

	old.Set("c/1", "180") // handed over before it stopped, flushed late
	old.Set("c/3", "70")
	flush(t, old)
	if v := get(old, "c/1"); v != "250" {
		t.Fatalf("the late replica's c/1 = %q after its flush, want the newer 250", v)
	}

	back := openJournal(t, ja)
	for k, want := range map[string]string{"c/1": "250", "c/2": "900", "c/3": "70"} {
		if v := get(back, k); v != want {
			t.Fatalf("%s = %q, want %s", k, v, want)
		}
	}
}

// TestJournalCheckpointRefresh: a replica opened at its Start reads in,
// before receiving, what the one receiving meanwhile flushed, keeping its
// own news.
func TestJournalCheckpointRefresh(t *testing.T) {
	ja, jb := replicas(t)
	standby := openJournal(t, ja)
	active := openJournal(t, jb)
	active.Set("c/1", "500")
	active.Set("name", "from-active")
	flush(t, active)
	if _, ok := standby.Get("c/1"); ok {
		t.Fatal("the standby saw a flush before its Refresh")
	}
	standby.Set("c/9", "9")
	if err := standby.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if get(standby, "c/1") != "500" || get(standby, "name") != "from-active" || get(standby, "c/9") != "9" {
		t.Fatalf("after Refresh: %v", standby.listLocked())
	}
	flush(t, standby) // its news are still to be written
	if v := get(openJournal(t, jb), "c/9"); v != "9" {
		t.Fatalf("c/9 = %q: a Refresh lost the replica's unflushed news", v)
	}

	// A value that is not a position: the replica that set it last wins.
	standby.Set("name", "from-standby")
	flush(t, standby)
	if err := active.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v := get(active, "name"); v != "from-standby" {
		t.Fatalf("name = %q, want the newer from-standby", v)
	}
}

// racing is a replica's journals whose Append first runs a hook: the
// other replica's whole flush, between this one's read and its append.
type racing struct {
	core.Journals
	mu     sync.Mutex
	before func()
}

func (r *racing) Append(ctx context.Context, key string, e core.JournalEntry, opts core.AppendOptions) (core.JournalAppended, error) {
	r.mu.Lock()
	hook := r.before
	r.before = nil
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
	return r.Journals.Append(ctx, key, e, opts)
}

// TestJournalCheckpointConcurrentFlushes: two replicas flush at once,
// both reading before either appends (the store has no compare-and-swap);
// neither's positions are lost, even when the other flushes twice
// meanwhile.
func TestJournalCheckpointConcurrentFlushes(t *testing.T) {
	for _, others := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d flushes between", others), func(t *testing.T) {
			ja, jb := replicas(t)
			slow := &racing{Journals: ja}
			late := openJournal(t, slow)
			cur := openJournal(t, jb)
			late.Set("c/late", "10")
			slow.before = func() {
				for i := range others {
					cur.Set("c/cur", strconv.Itoa(20+i))
					flush(t, cur)
				}
			}
			flush(t, late) // reads, then cur flushes, then late appends
			back := openJournal(t, jb)
			if get(back, "c/late") != "10" || get(back, "c/cur") != strconv.Itoa(20+others-1) {
				t.Fatalf("stored %v: a concurrent flush was lost", back.listLocked())
			}
		})
	}
}

// TestJournalCheckpointManyWriters: replicas setting growing positions
// and flushing at once, as fast as they can; in the end every key holds
// the newest position any of them flushed.
func TestJournalCheckpointManyWriters(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	const writers, rounds, keys = journalKeep, 50, 5
	var wg sync.WaitGroup
	for w := range writers {
		c := openJournal(t, st.Journals("dc"))
		wg.Go(func() {
			for i := range rounds {
				c.Set(fmt.Sprintf("c/%d", i%keys), strconv.Itoa(i*writers+w))
				if err := c.Flush(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	back := openJournal(t, st.Journals("dc"))
	for k := range keys {
		newest := ((rounds-1-k)/keys*keys + k) * writers // the last round i with i%keys == k
		if want := strconv.Itoa(newest + writers - 1); get(back, fmt.Sprintf("c/%d", k)) != want {
			t.Fatalf("c/%d = %q, want %s", k, get(back, fmt.Sprintf("c/%d", k)), want)
		}
	}
}

func TestJournalCheckpointCorrupt(t *testing.T) {
	j, _ := replicas(t)
	_, err := j.Append(context.Background(), "checkpoint", core.JournalEntry{Data: []byte("not json")},
		core.AppendOptions{Create: &core.JournalHead{Epoch: journalEpoch}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournalCheckpoint(context.Background(), j, "checkpoint", 0); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("open: err = %v, want ErrCorruptCheckpoint", err)
	}
}

// TestJournalCheckpointStoreFails: a flush the store refuses is tried
// again by the next one.
func TestJournalCheckpointStoreFails(t *testing.T) {
	st := store.NewMemory()
	c := openJournal(t, st.Journals("dc"))
	c.Set("c/1", "5")
	st.Close()
	if err := c.Flush(context.Background()); err == nil {
		t.Fatal("a flush to a closed store succeeded")
	}
	st2 := store.NewMemory()
	t.Cleanup(func() { st2.Close() })
	c.journal.j = st2.Journals("dc")
	flush(t, c)
	if v := get(openJournal(t, st2.Journals("dc")), "c/1"); v != "5" {
		t.Fatalf("c/1 = %q after the retried flush", v)
	}
}

func TestEncodeBounded(t *testing.T) {
	var list [][2]string
	for i := range 20000 {
		list = append(list, [2]string{fmt.Sprintf("t/%020d:%020d", i, i), strconv.Itoa(i)})
	}
	data, kept, err := encodeBounded(list)
	if err != nil || len(data) > maxJournalData || len(kept) == 0 || kept[len(kept)-1] != list[len(list)-1] {
		t.Fatalf("%d bytes, %d keys kept, err %v: want the newest keys within the limit", len(data), len(kept), err)
	}
}

func TestComparePositions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
		ok   bool
	}{
		{"9", "10", -1, true},
		{"1234567890123456789", "1234567890123456788", 1, true},
		{"99999999999999999999999", "100000000000000000000000", -1, true}, // past uint64
		{"007", "7", 0, true},
		{"1700000000.5", "1700000000.49", 1, true},
		{"1700000000.5", "1700000000.50", 0, true},
		{"1700000000", "1700000000.000001", -1, true},
		{"12", "abc", 0, false},
		{"", "1", 0, false},
		{"1.", "1", 0, false},
		{"-1", "1", 0, false},
	} {
		got, ok := comparePositions(tc.a, tc.b)
		if got != tc.want || ok != tc.ok {
			t.Errorf("comparePositions(%q, %q) = %d, %v; want %d, %v", tc.a, tc.b, got, ok, tc.want, tc.ok)
		}
	}
	if mergeValue("250", "180", true) != "250" {
		t.Error("a replica's news moved a position back")
	}
}
