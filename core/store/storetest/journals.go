package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// watchDeadline bounds every wait for a Watch notice: a store that polls
// has a few seconds (see core.Journals.Watch), and a loaded CI machine
// some more.
const watchDeadline = 10 * time.Second

// journalT0 is the suite's clock: whole microseconds, which every store
// keeps exactly (PostgreSQL's timestamps do not keep nanoseconds).
var journalT0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

// at is journalT0 plus d.
func at(d time.Duration) time.Time { return journalT0.Add(d) }

// RunJournals checks the core.Journals contract. open returns two handles
// on one instance's journals, as two replicas sharing a store have them,
// with no journal yet: a new instance (or store) each call. It is called
// once per subtest, from parallel subtests; the caller closes what it
// opened (t.Cleanup).
func RunJournals(t *testing.T, open func(t *testing.T) (a, b core.Journals)) {
	tests := []struct {
		name string
		run  func(t *testing.T, a, b core.Journals)
	}{
		{"CreateAndHead", testJournalCreate},
		{"AppendSeqs", testJournalAppendSeqs},
		{"AppendDedupes", testJournalDedupe},
		{"AppendMissing", testJournalMissing},
		{"AppendCreates", testJournalAppendCreates},
		{"Name", testJournalName},
		{"KeepTrims", testJournalKeep},
		{"EntriesAfter", testJournalEntriesAfter},
		{"Find", testJournalFind},
		{"Idle", testJournalIdle},
		{"Touch", testJournalTouch},
		{"Delete", testJournalDelete},
		{"Limits", testJournalLimits},
		{"DataIsCopied", testJournalDataCopied},
		{"ConcurrentAppends", testJournalConcurrentAppends},
		{"ConcurrentCreates", testJournalConcurrentCreates},
		{"ConcurrentDedupe", testJournalConcurrentDedupe},
		{"Watch", testJournalWatch},
		{"WatchSlowFn", testJournalWatchSlowFn},
		{"WatchEndsWithContext", testJournalWatchEnds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := open(t)
			tt.run(t, a, b)
		})
	}
}

// RunJournalsIsolated checks that the journals of two instances of one
// store are separate. open returns handles on two instances' journals,
// both with no journal yet.
func RunJournalsIsolated(t *testing.T, open func(t *testing.T) (web, other core.Journals)) {
	web, other := open(t)
	ctx := context.Background()
	h := mustCreate(t, web, "s", head("e-web", "Ann", at(0)))
	if _, ok, err := other.Head(ctx, "s"); ok || err != nil {
		t.Fatalf("other instance's Head(s) = %v, %v; want none", ok, err)
	}
	if h2 := mustCreate(t, other, "s", head("e-other", "Bob", at(time.Hour))); h2.Epoch != "e-other" || h2.Name != "Bob" {
		t.Fatalf("other instance's Create(s) = %+v, want its own journal", h2)
	}
	for i := range 3 {
		if res := mustAppend(t, web, "s", entry(fmt.Sprint("k", i), at(time.Minute), "web"), core.AppendOptions{}); res.Seq != int64(i+1) || res.Epoch != h.Epoch {
			t.Fatalf("web append %d = %+v, want seq %d in %s", i, res, i+1, h.Epoch)
		}
	}
	if res := mustAppend(t, other, "s", entry("k0", at(2*time.Hour), "other"), core.AppendOptions{}); res.Seq != 1 || res.Dup || res.Epoch != "e-other" {
		t.Fatalf("other instance's append of k0 = %+v, want seq 1, not a duplicate of web's", res)
	}
	wantEntries(t, "other instance's entries", other, "s", 0, []int64{1})
	if es := entries(t, other, "s", 0); string(es[0].Data) != "other" {
		t.Fatalf("other instance's entry = %q, want its own", es[0].Data)
	}
	if _, ok, err := other.Find(ctx, "s", "k2"); ok || err != nil {
		t.Fatalf("other instance finds web's k2: %v, %v", ok, err)
	}
	// Idle sees each instance's own journals.
	mustCreate(t, web, "web-only", head("e", "", at(0)))
	if got := idle(t, other, at(10*time.Hour), 10); !slices.Equal(got, []string{"s"}) {
		t.Fatalf("other instance's Idle = %q, want only its own s", got)
	}
	if err := web.Touch(ctx, map[string]time.Time{"s": at(20 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if h, _ := mustHead(t, other, "s"); !h.LastActive.Equal(at(2 * time.Hour)) {
		t.Fatalf("web's Touch moved the other instance's s to %v", h.LastActive)
	}
	if err := web.Delete(ctx, []string{"s"}, at(100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, ok := mustHead(t, other, "s"); !ok {
		t.Fatal("web's Delete deleted the other instance's s")
	}
	// Notices are the instance's own.
	wOther := startWatch(t, other)
	warmUp(t, other, wOther)
	mustAppend(t, web, "web-only", entry("", at(time.Minute), "x"), core.AppendOptions{})
	mustAppend(t, other, "s", entry("", at(time.Minute), "y"), core.AppendOptions{})
	wOther.waitFor(t, "s", 2)
	if wOther.saw("web-only") {
		t.Fatal("the other instance's Watch was told of web's append")
	}
}

func head(epoch, name string, active time.Time) core.JournalHead {
	return core.JournalHead{Epoch: epoch, Name: name, LastActive: active}
}

func entry(key string, when time.Time, data string) core.JournalEntry {
	return core.JournalEntry{Key: key, At: when, Data: []byte(data)}
}

func mustCreate(t *testing.T, j core.Journals, key string, h core.JournalHead) core.JournalHead {
	t.Helper()
	got, err := j.Create(context.Background(), key, h)
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return got
}

func mustHead(t *testing.T, j core.Journals, key string) (core.JournalHead, bool) {
	t.Helper()
	h, ok, err := j.Head(context.Background(), key)
	if err != nil {
		t.Fatalf("Head(%q): %v", key, err)
	}
	return h, ok
}

func mustAppend(t *testing.T, j core.Journals, key string, e core.JournalEntry, opts core.AppendOptions) core.JournalAppended {
	t.Helper()
	res, err := j.Append(context.Background(), key, e, opts)
	if err != nil {
		t.Fatalf("Append(%q, key %q): %v", key, e.Key, err)
	}
	return res
}

func entries(t *testing.T, j core.Journals, key string, after int64) []core.JournalEntry {
	t.Helper()
	es, err := j.Entries(context.Background(), key, after)
	if err != nil {
		t.Fatalf("Entries(%q, %d): %v", key, after, err)
	}
	return es
}

// wantEntries checks the seqs of journal key's entries after after.
func wantEntries(t *testing.T, what string, j core.Journals, key string, after int64, want []int64) {
	t.Helper()
	es := entries(t, j, key, after)
	got := make([]int64, len(es))
	for i, e := range es {
		got[i] = e.Seq
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: seqs %v, want %v", what, got, want)
	}
}

func idle(t *testing.T, j core.Journals, cutoff time.Time, limit int) []string {
	t.Helper()
	ids, err := j.Idle(context.Background(), cutoff, limit)
	if err != nil {
		t.Fatalf("Idle: %v", err)
	}
	return ids
}

// wantHead checks journal key's head as j reads it.
func wantHead(t *testing.T, what string, j core.Journals, key string, want core.JournalHead) {
	t.Helper()
	h, ok := mustHead(t, j, key)
	if !ok || h.Epoch != want.Epoch || h.Name != want.Name || h.LastSeq != want.LastSeq || !h.LastActive.Equal(want.LastActive) {
		t.Fatalf("%s: Head(%q) = %+v, %v; want %+v", what, key, h, ok, want)
	}
}

func testJournalCreate(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	if h, ok, err := a.Head(ctx, "s"); ok || err != nil || h != (core.JournalHead{}) {
		t.Fatalf("Head of a missing journal = %+v, %v, %v; want none", h, ok, err)
	}
	want := core.JournalHead{Epoch: "e1", Name: "Ann", LastActive: at(0)}
	// A LastSeq given to Create is ignored: a new journal has none.
	if h := mustCreate(t, a, "s", core.JournalHead{Epoch: "e1", Name: "Ann", LastActive: at(0), LastSeq: 7}); h.Epoch != "e1" || h.Name != "Ann" || h.LastSeq != 0 || !h.LastActive.Equal(at(0)) {
		t.Fatalf("Create = %+v, want %+v", h, want)
	}
	wantHead(t, "the other replica", b, "s", want)
	// Creating it again, from either replica, returns it as it is.
	if h := mustCreate(t, b, "s", head("e2", "Bob", at(time.Hour))); h.Epoch != "e1" || h.Name != "Ann" || h.LastSeq != 0 || !h.LastActive.Equal(at(0)) {
		t.Fatalf("Create of an existing journal = %+v, want the existing %+v", h, want)
	}
	mustAppend(t, a, "s", entry("", at(time.Minute), "x"), core.AppendOptions{})
	if h := mustCreate(t, b, "s", head("e3", "Cy", at(time.Hour))); h.Epoch != "e1" || h.LastSeq != 1 || h.Name != "Ann" || !h.LastActive.Equal(at(time.Minute)) {
		t.Fatalf("Create after an append = %+v, want epoch e1, last seq 1, name Ann, active at +1m", h)
	}
	wantHead(t, "after the creates", a, "s", core.JournalHead{Epoch: "e1", Name: "Ann", LastSeq: 1, LastActive: at(time.Minute)})
	// Another key is another journal.
	if _, ok := mustHead(t, a, "t"); ok {
		t.Fatal("Head(t) found a journal nobody created")
	}
}

func testJournalAppendSeqs(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "s", head("e1", "", at(0)))
	for i, j := range []core.Journals{a, b, a} {
		res := mustAppend(t, j, "s", entry(fmt.Sprint("k", i), at(time.Duration(i+1)*time.Minute), fmt.Sprint("data ", i)), core.AppendOptions{})
		if res.Seq != int64(i+1) || res.Epoch != "e1" || res.Dup || res.Missing {
			t.Fatalf("append %d = %+v, want seq %d in e1", i, res, i+1)
		}
	}
	wantHead(t, "after 3 appends", b, "s", core.JournalHead{Epoch: "e1", LastSeq: 3, LastActive: at(3 * time.Minute)})
	for _, j := range []core.Journals{a, b} {
		es := entries(t, j, "s", 0)
		if len(es) != 3 {
			t.Fatalf("%d entries, want 3", len(es))
		}
		for i, e := range es {
			if e.Seq != int64(i+1) || e.Key != fmt.Sprint("k", i) || string(e.Data) != fmt.Sprint("data ", i) || !e.At.Equal(at(time.Duration(i+1)*time.Minute)) {
				t.Fatalf("entry %d = %+v (data %q), want seq %d, key k%d, data %q at +%dm", i, e, e.Data, i+1, i, fmt.Sprint("data ", i), i+1)
			}
		}
	}
	// Entries without a key are never taken for one another.
	for i := range 2 {
		if res := mustAppend(t, b, "s", entry("", at(time.Hour), "same"), core.AppendOptions{}); res.Seq != int64(4+i) || res.Dup {
			t.Fatalf("keyless append %d = %+v, want seq %d", i, res, 4+i)
		}
	}
	// Empty data is data.
	if res := mustAppend(t, a, "s", core.JournalEntry{Key: "empty", At: at(time.Hour)}, core.AppendOptions{}); res.Seq != 6 {
		t.Fatalf("append of empty data = %+v, want seq 6", res)
	}
	if es := entries(t, a, "s", 5); len(es) != 1 || len(es[0].Data) != 0 || es[0].Key != "empty" {
		t.Fatalf("entries after 5 = %+v, want the empty one", es)
	}
}

func testJournalDedupe(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "s", head("e1", "", at(0)))
	mustAppend(t, a, "s", entry("k1", at(time.Minute), "first"), core.AppendOptions{})
	mustAppend(t, a, "s", entry("k2", at(2*time.Minute), "second"), core.AppendOptions{})
	for _, j := range []core.Journals{a, b} {
		res := mustAppend(t, j, "s", entry("k1", at(3*time.Minute), "again"), core.AppendOptions{Name: "Zed", Keep: 1})
		if !res.Dup || res.Seq != 1 || res.Epoch != "e1" || res.Missing {
			t.Fatalf("re-append of k1 = %+v, want a duplicate of seq 1 in e1", res)
		}
	}
	// Nothing was written: no entry, no seq, no name, no trimming.
	wantEntries(t, "after the duplicates", b, "s", 0, []int64{1, 2})
	if es := entries(t, b, "s", 0); string(es[0].Data) != "first" {
		t.Fatalf("k1's data = %q, want the first copy's", es[0].Data)
	}
	h, _ := mustHead(t, a, "s")
	if h.LastSeq != 2 || h.Name != "" {
		t.Fatalf("head after the duplicates = %+v, want last seq 2 and no name", h)
	}
	// The same key in another journal is another entry.
	if res := mustAppend(t, b, "t", entry("k1", at(time.Minute), "t"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e2"}}); res.Dup || res.Seq != 1 {
		t.Fatalf("k1 in another journal = %+v, want a new entry with seq 1", res)
	}
	if res := mustAppend(t, a, "s", entry("k3", at(time.Minute), "third"), core.AppendOptions{}); res.Dup || res.Seq != 3 {
		t.Fatalf("next append = %+v, want seq 3", res)
	}
}

func testJournalMissing(t *testing.T, a, b core.Journals) {
	res := mustAppend(t, a, "s", entry("k", at(0), "x"), core.AppendOptions{Name: "Ann", Keep: 5})
	if !res.Missing || res.Dup || res.Seq != 0 {
		t.Fatalf("append to a missing journal = %+v, want Missing and nothing else", res)
	}
	if _, ok := mustHead(t, b, "s"); ok {
		t.Fatal("an append without Create created the journal")
	}
	if es := entries(t, b, "s", 0); len(es) != 0 {
		t.Fatalf("%d entries in a missing journal", len(es))
	}
	if _, ok, err := b.Find(context.Background(), "s", "k"); ok || err != nil {
		t.Fatalf("Find in a missing journal = %v, %v", ok, err)
	}
	if got := idle(t, b, at(time.Hour), 10); len(got) != 0 {
		t.Fatalf("Idle = %q, want none", got)
	}
}

func testJournalAppendCreates(t *testing.T, a, b core.Journals) {
	res := mustAppend(t, a, "s", entry("k1", at(time.Minute), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e2", Name: "Ann", LastSeq: 9}})
	if res.Seq != 1 || res.Epoch != "e2" || res.Dup || res.Missing {
		t.Fatalf("append with Create to a missing journal = %+v, want seq 1 in e2", res)
	}
	wantHead(t, "created by Append", b, "s", core.JournalHead{Epoch: "e2", Name: "Ann", LastSeq: 1, LastActive: at(time.Minute)})
	// An existing journal keeps its epoch and name.
	res = mustAppend(t, b, "s", entry("k2", at(2*time.Minute), "y"), core.AppendOptions{Create: &core.JournalHead{Epoch: "other", Name: "Bob"}})
	if res.Seq != 2 || res.Epoch != "e2" {
		t.Fatalf("append with Create to an existing journal = %+v, want seq 2 in e2", res)
	}
	wantHead(t, "appended with Create again", a, "s", core.JournalHead{Epoch: "e2", Name: "Ann", LastSeq: 2, LastActive: at(2 * time.Minute)})
	// Create's name and Name together: Name wins.
	res = mustAppend(t, a, "t", entry("", at(time.Minute), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e3", Name: "Ann"}, Name: "Cy"})
	if res.Seq != 1 || res.Epoch != "e3" {
		t.Fatalf("append with Create and Name = %+v", res)
	}
	wantHead(t, "created with a Name", b, "t", core.JournalHead{Epoch: "e3", Name: "Cy", LastSeq: 1, LastActive: at(time.Minute)})
}

func testJournalName(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "s", head("e1", "Ann", at(0)))
	mustAppend(t, a, "s", entry("", at(time.Minute), "x"), core.AppendOptions{})
	wantHead(t, "no Name", b, "s", core.JournalHead{Epoch: "e1", Name: "Ann", LastSeq: 1, LastActive: at(time.Minute)})
	mustAppend(t, b, "s", entry("", at(2*time.Minute), "x"), core.AppendOptions{Name: "Bob"})
	wantHead(t, "Name Bob", a, "s", core.JournalHead{Epoch: "e1", Name: "Bob", LastSeq: 2, LastActive: at(2 * time.Minute)})
	mustAppend(t, a, "s", entry("", at(3*time.Minute), "x"), core.AppendOptions{})
	wantHead(t, "no Name again", b, "s", core.JournalHead{Epoch: "e1", Name: "Bob", LastSeq: 3, LastActive: at(3 * time.Minute)})
}

func testJournalKeep(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	mustCreate(t, a, "s", head("e1", "", at(0)))
	for i := 1; i <= 7; i++ {
		j := []core.Journals{a, b}[i%2]
		if res := mustAppend(t, j, "s", entry(fmt.Sprint("k", i), at(time.Duration(i)*time.Minute), fmt.Sprint(i)), core.AppendOptions{Keep: 3}); res.Seq != int64(i) {
			t.Fatalf("append %d = %+v, want seq %d", i, res, i)
		}
	}
	wantEntries(t, "kept 3 of 7", a, "s", 0, []int64{5, 6, 7})
	if es := entries(t, b, "s", 0); string(es[0].Data) != "5" || es[0].Key != "k5" {
		t.Fatalf("oldest kept entry = %+v, want k5", es[0])
	}
	wantHead(t, "trimmed", b, "s", core.JournalHead{Epoch: "e1", LastSeq: 7, LastActive: at(7 * time.Minute)})
	// A trimmed entry is gone: its key is found no more, and may come
	// again as a new entry.
	if _, ok, err := a.Find(ctx, "s", "k1"); ok || err != nil {
		t.Fatalf("Find of a trimmed key = %v, %v; want not found", ok, err)
	}
	if res := mustAppend(t, a, "s", entry("k1", at(8*time.Minute), "k1 again"), core.AppendOptions{Keep: 3}); res.Dup || res.Seq != 8 {
		t.Fatalf("append of a trimmed key = %+v, want a new entry with seq 8", res)
	}
	// Seqs carry on after trimming: never given twice.
	if res := mustAppend(t, b, "s", entry("", at(9*time.Minute), "x"), core.AppendOptions{Keep: 1}); res.Seq != 9 {
		t.Fatalf("append with Keep 1 = %+v, want seq 9", res)
	}
	wantEntries(t, "kept 1", a, "s", 0, []int64{9})
	// Keep <= 0 keeps all there is, and brings nothing back.
	for i, keep := range []int{0, -1} {
		if res := mustAppend(t, a, "s", entry("", at(10*time.Minute), "x"), core.AppendOptions{Keep: keep}); res.Seq != int64(10+i) {
			t.Fatalf("append with Keep %d = %+v, want seq %d", keep, res, 10+i)
		}
	}
	wantEntries(t, "Keep <= 0 after Keep 1", b, "s", 0, []int64{9, 10, 11})
	// A journal whose entries were all trimmed still counts on.
	if res := mustAppend(t, b, "s", entry("", at(11*time.Minute), "x"), core.AppendOptions{Keep: 1}); res.Seq != 12 {
		t.Fatalf("append = %+v, want seq 12", res)
	}
	wantHead(t, "at the end", a, "s", core.JournalHead{Epoch: "e1", LastSeq: 12, LastActive: at(11 * time.Minute)})
}

func testJournalEntriesAfter(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "s", head("e1", "", at(0)))
	if es := entries(t, b, "s", 0); len(es) != 0 {
		t.Fatalf("a new journal has %d entries", len(es))
	}
	for i := range 5 {
		mustAppend(t, a, "s", entry("", at(time.Duration(i)*time.Minute), fmt.Sprint(i+1)), core.AppendOptions{})
	}
	for after, want := range map[int64][]int64{
		-1: {1, 2, 3, 4, 5}, 0: {1, 2, 3, 4, 5}, 2: {3, 4, 5}, 4: {5}, 5: nil, 99: nil,
	} {
		wantEntries(t, fmt.Sprint("entries after ", after), b, "s", after, want)
	}
	for _, e := range entries(t, b, "s", 3) {
		if string(e.Data) != fmt.Sprint(e.Seq) {
			t.Fatalf("entry %d holds %q", e.Seq, e.Data)
		}
	}
	if es := entries(t, b, "missing", 0); len(es) != 0 {
		t.Fatalf("a missing journal has %d entries", len(es))
	}
}

func testJournalFind(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	mustCreate(t, a, "s", head("e1", "", at(0)))
	mustAppend(t, a, "s", entry("", at(0), "x"), core.AppendOptions{})
	mustAppend(t, a, "s", entry("user:c1", at(0), "x"), core.AppendOptions{})
	mustAppend(t, b, "s", entry("out:m1", at(0), "x"), core.AppendOptions{})
	for _, tt := range []struct {
		key, entryKey string
		seq           int64
		ok            bool
	}{
		{"s", "user:c1", 2, true},
		{"s", "out:m1", 3, true},
		{"s", "user:c2", 0, false},
		{"s", "user:c", 0, false},
		{"s", "c1", 0, false},
		{"missing", "user:c1", 0, false},
	} {
		for _, j := range []core.Journals{a, b} {
			seq, ok, err := j.Find(ctx, tt.key, tt.entryKey)
			if err != nil || ok != tt.ok || (ok && seq != tt.seq) {
				t.Fatalf("Find(%q, %q) = %d, %v, %v; want %d, %v", tt.key, tt.entryKey, seq, ok, err, tt.seq, tt.ok)
			}
		}
	}
}

func testJournalIdle(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "c", head("e", "", at(time.Hour)))
	mustCreate(t, b, "a", head("e", "", at(0)))
	mustCreate(t, a, "d", head("e", "", at(3*time.Hour)))
	mustCreate(t, b, "b", head("e", "", at(30*time.Minute)))
	for _, tt := range []struct {
		cutoff time.Time
		limit  int
		want   []string
	}{
		{at(2 * time.Hour), 10, []string{"a", "b", "c"}},
		{at(2 * time.Hour), 2, []string{"a", "b"}},
		{at(2 * time.Hour), 1, []string{"a"}},
		{at(4 * time.Hour), 10, []string{"a", "b", "c", "d"}},
		// Before means before: a journal active at the cutoff is not idle.
		{at(0), 10, nil},
		{at(time.Microsecond), 10, []string{"a"}},
		{at(time.Hour), 10, []string{"a", "b"}},
	} {
		for _, j := range []core.Journals{a, b} {
			if got := idle(t, j, tt.cutoff, tt.limit); !slices.Equal(got, tt.want) {
				t.Fatalf("Idle(+%s, %d) = %q, want %q", tt.cutoff.Sub(journalT0), tt.limit, got, tt.want)
			}
		}
	}
	// An append is activity.
	mustAppend(t, a, "a", entry("", at(4*time.Hour), "x"), core.AppendOptions{})
	if got := idle(t, b, at(2*time.Hour), 10); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("Idle after an append to a = %q, want b, c", got)
	}
	if got := idle(t, b, at(5*time.Hour), 10); !slices.Equal(got, []string{"b", "c", "d", "a"}) {
		t.Fatalf("Idle = %q, want b, c, d, a (a last: it is the newest)", got)
	}
}

func testJournalTouch(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	mustCreate(t, a, "s", head("e", "Ann", at(time.Hour)))
	mustCreate(t, a, "t", head("e", "", at(time.Hour)))
	if err := b.Touch(ctx, map[string]time.Time{"s": at(2 * time.Hour), "t": at(30 * time.Minute), "missing": at(5 * time.Hour)}); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	wantHead(t, "moved forward", a, "s", core.JournalHead{Epoch: "e", Name: "Ann", LastActive: at(2 * time.Hour)})
	wantHead(t, "never moved back", a, "t", core.JournalHead{Epoch: "e", LastActive: at(time.Hour)})
	if _, ok := mustHead(t, a, "missing"); ok {
		t.Fatal("Touch created a missing journal")
	}
	if got := idle(t, a, at(90*time.Minute), 10); !slices.Equal(got, []string{"t"}) {
		t.Fatalf("Idle after Touch = %q, want t", got)
	}
	if err := a.Touch(ctx, nil); err != nil {
		t.Fatalf("Touch of nothing: %v", err)
	}
	// Touch moves activity only: no seq, no entry.
	if es := entries(t, b, "s", 0); len(es) != 0 {
		t.Fatalf("Touch added %d entries", len(es))
	}
}

func testJournalDelete(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	for _, key := range []string{"s", "t"} {
		mustCreate(t, a, key, head("e1", "", at(0)))
		mustAppend(t, a, key, entry("k", at(0), "x"), core.AppendOptions{})
		mustAppend(t, a, key, entry("", at(0), "x"), core.AppendOptions{})
	}
	// One touched by another replica since Idle listed it is kept.
	mustCreate(t, a, "u", head("e1", "", at(0)))
	if err := b.Touch(ctx, map[string]time.Time{"u": at(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, []string{"s", "missing", "u"}, at(time.Minute)); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, ok := mustHead(t, a, "u"); !ok {
		t.Fatal("Delete removed a journal active at its cutoff")
	}
	if _, ok := mustHead(t, a, "s"); ok {
		t.Fatal("a deleted journal has a head")
	}
	if es := entries(t, a, "s", 0); len(es) != 0 {
		t.Fatalf("a deleted journal has %d entries", len(es))
	}
	if _, ok, err := a.Find(ctx, "s", "k"); ok || err != nil {
		t.Fatalf("Find in a deleted journal = %v, %v", ok, err)
	}
	if got := idle(t, a, at(time.Hour), 10); !slices.Equal(got, []string{"t", "u"}) {
		t.Fatalf("Idle = %q, want t and u", got)
	}
	wantEntries(t, "the journal not deleted", b, "t", 0, []int64{1, 2})
	if res := mustAppend(t, a, "s", entry("k", at(0), "x"), core.AppendOptions{}); !res.Missing {
		t.Fatalf("append to a deleted journal = %+v, want Missing", res)
	}
	// Created again, it is a new journal: a new epoch, seqs from 1, its
	// old keys gone.
	res := mustAppend(t, b, "s", entry("k", at(time.Minute), "y"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e2"}})
	if res.Seq != 1 || res.Epoch != "e2" || res.Dup {
		t.Fatalf("append with Create after Delete = %+v, want seq 1 in e2", res)
	}
	if err := a.Delete(ctx, nil, at(time.Hour)); err != nil {
		t.Fatalf("Delete of nothing: %v", err)
	}
}

func testJournalLimits(t *testing.T, a, b core.Journals) {
	ctx := context.Background()
	// Bytes, not characters: "é" is two.
	long := strings.Repeat("é", 128)    // 256 bytes: allowed
	tooLong := strings.Repeat("é", 129) // 258 bytes
	if len(long) != 256 {
		t.Fatal("the test's key is not 256 bytes")
	}
	mustCreate(t, a, long, head("e", long, at(0)))
	if res := mustAppend(t, a, long, core.JournalEntry{Key: long, At: at(0), Data: make([]byte, 1<<20)}, core.AppendOptions{Name: long}); res.Seq != 1 {
		t.Fatalf("append at every limit = %+v, want seq 1", res)
	}
	if es := entries(t, b, long, 0); len(es) != 1 || len(es[0].Data) != 1<<20 || es[0].Key != long {
		t.Fatal("the entry at the limits did not come back whole")
	}
	if seq, ok, err := b.Find(ctx, long, long); err != nil || !ok || seq != 1 {
		t.Fatalf("Find at the limit = %d, %v, %v", seq, ok, err)
	}
	wantLimit := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, core.ErrJournalLimit) {
			t.Fatalf("%s: error %v, want one wrapping core.ErrJournalLimit", what, err)
		}
	}
	_, err := a.Create(ctx, tooLong, head("e", "", at(0)))
	wantLimit("Create with a long key", err)
	_, err = a.Create(ctx, "s", head("e", tooLong, at(0)))
	wantLimit("Create with a long name", err)
	_, err = a.Append(ctx, tooLong, entry("", at(0), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}})
	wantLimit("Append with a long key", err)
	mustCreate(t, a, "t", head("e", "", at(0)))
	_, err = a.Append(ctx, "t", entry(tooLong, at(0), "x"), core.AppendOptions{})
	wantLimit("Append with a long entry key", err)
	_, err = a.Append(ctx, "t", core.JournalEntry{At: at(0), Data: make([]byte, 1<<20+1)}, core.AppendOptions{})
	wantLimit("Append with data over 1 MiB", err)
	_, err = a.Append(ctx, "t", entry("", at(0), "x"), core.AppendOptions{Name: tooLong})
	wantLimit("Append with a long name", err)
	_, err = a.Append(ctx, "u", entry("", at(0), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e", Name: tooLong}})
	wantLimit("Append creating a journal with a long name", err)
	// Nothing of these was written.
	for _, key := range []string{"s", "u"} {
		if _, ok := mustHead(t, b, key); ok {
			t.Fatalf("a refused call created journal %q", key)
		}
	}
	wantHead(t, "after the refused appends", b, "t", core.JournalHead{Epoch: "e", LastActive: at(0)})
}

func testJournalDataCopied(t *testing.T, a, b core.Journals) {
	mustCreate(t, a, "s", head("e", "", at(0)))
	buf := []byte("original")
	mustAppend(t, a, "s", core.JournalEntry{Key: "k", At: at(0), Data: buf}, core.AppendOptions{})
	copy(buf, "CHANGED!")
	es := entries(t, a, "s", 0)
	if string(es[0].Data) != "original" {
		t.Fatalf("data = %q after the caller reused its buffer, want original", es[0].Data)
	}
	copy(es[0].Data, "CHANGED!")
	for _, j := range []core.Journals{a, b} {
		if es := entries(t, j, "s", 0); string(es[0].Data) != "original" {
			t.Fatalf("data = %q after a reader changed its copy, want original", es[0].Data)
		}
	}
}

// testJournalConcurrentAppends appends to one journal from both
// replicas at once: every entry gets its own seq, the seqs run 1..n with
// no gap, and every entry is there.
func testJournalConcurrentAppends(t *testing.T, a, b core.Journals) {
	const workers, each = 8, 25
	mustCreate(t, a, "s", head("e", "", at(0)))
	seqs := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		j := []core.Journals{a, b}[w%2]
		wg.Go(func() {
			for i := range each {
				res, err := j.Append(context.Background(), "s", entry(fmt.Sprintf("w%d-%d", w, i), at(time.Minute), fmt.Sprintf("data w%d-%d", w, i)), core.AppendOptions{})
				if err != nil || res.Dup || res.Missing || res.Epoch != "e" {
					t.Errorf("concurrent Append = %+v, %v", res, err)
					return
				}
				seqs[w] = append(seqs[w], res.Seq)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var all []int64
	for w, s := range seqs {
		if !slices.IsSorted(s) {
			t.Fatalf("worker %d got seqs %v: one writer's appends are not in order", w, s)
		}
		all = append(all, s...)
	}
	slices.Sort(all)
	for i, seq := range all {
		if seq != int64(i+1) {
			t.Fatalf("seqs given: %v; want each of 1..%d once", all, workers*each)
		}
	}
	es := entries(t, b, "s", 0)
	if len(es) != workers*each {
		t.Fatalf("%d entries, want %d", len(es), workers*each)
	}
	bySeq := make(map[int64]string)
	for w, s := range seqs {
		for i, seq := range s {
			bySeq[seq] = fmt.Sprintf("w%d-%d", w, i)
		}
	}
	for i, e := range es {
		if e.Seq != int64(i+1) || e.Key != bySeq[e.Seq] || string(e.Data) != "data "+e.Key {
			t.Fatalf("entry %d = seq %d key %q data %q; Append gave seq %d to %q", i, e.Seq, e.Key, e.Data, e.Seq, bySeq[e.Seq])
		}
	}
	if h, _ := mustHead(t, a, "s"); h.LastSeq != workers*each {
		t.Fatalf("last seq %d, want %d", h.LastSeq, workers*each)
	}
}

// testJournalConcurrentCreates creates one journal through Append from
// both replicas at once, each with an epoch of its own: one of them
// creates it, and every append lands in that one journal.
func testJournalConcurrentCreates(t *testing.T, a, b core.Journals) {
	const workers = 16
	res := make([]core.JournalAppended, workers)
	var wg sync.WaitGroup
	for w := range workers {
		j := []core.Journals{a, b}[w%2]
		wg.Go(func() {
			var err error
			res[w], err = j.Append(context.Background(), "s", entry(fmt.Sprint("k", w), at(time.Minute), "x"),
				core.AppendOptions{Create: &core.JournalHead{Epoch: fmt.Sprint("e", w)}})
			if err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	h, _ := mustHead(t, a, "s")
	var seqs []int64
	for w, r := range res {
		if r.Epoch != h.Epoch || r.Dup || r.Missing {
			t.Fatalf("append %d = %+v; the journal's epoch is %s", w, r, h.Epoch)
		}
		seqs = append(seqs, r.Seq)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("seqs %v, want 1..%d: an append created the journal over another's", seqs, workers)
		}
	}
	wantEntries(t, "after the concurrent creates", b, "s", 0, seqs)
}

// testJournalConcurrentDedupe appends one key from both replicas at once:
// it is stored once, and every other append reports its seq as a
// duplicate.
func testJournalConcurrentDedupe(t *testing.T, a, b core.Journals) {
	const workers = 16
	mustCreate(t, a, "s", head("e", "", at(0)))
	res := make([]core.JournalAppended, workers)
	var wg sync.WaitGroup
	for w := range workers {
		j := []core.Journals{a, b}[w%2]
		wg.Go(func() {
			var err error
			res[w], err = j.Append(context.Background(), "s", entry("same", at(time.Minute), fmt.Sprint(w)), core.AppendOptions{})
			if err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	added := 0
	for _, r := range res {
		if r.Seq != 1 {
			t.Fatalf("append = %+v, want seq 1 (stored or duplicate)", r)
		}
		if !r.Dup {
			added++
		}
	}
	if added != 1 {
		t.Fatalf("%d appends of one key were stored, want 1", added)
	}
	wantEntries(t, "after the concurrent duplicates", b, "s", 0, []int64{1})
}

// watcher runs Watch in the background and records its notices.
type watcher struct {
	cancel context.CancelFunc
	done   chan error

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each notice
	newest  map[string]int64
	notices []notice
}

type notice struct {
	key string
	seq int64
}

// startWatch starts a Watch on j, ended (and waited for) when the test
// ends, that records its notices.
func startWatch(t *testing.T, j core.Journals) *watcher { return startWatchHook(t, j, nil) }

// startWatchHook is startWatch with hook, if not nil, called in fn after
// each notice is recorded.
func startWatchHook(t *testing.T, j core.Journals, hook func(key string, lastSeq int64)) *watcher {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan error, 1), changed: make(chan struct{}), newest: make(map[string]int64)}
	go func() {
		w.done <- j.Watch(ctx, func(key string, lastSeq int64) {
			w.mu.Lock()
			w.notices = append(w.notices, notice{key, lastSeq})
			w.newest[key] = max(w.newest[key], lastSeq)
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
			if hook != nil {
				hook(key, lastSeq)
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-w.done:
		case <-time.After(watchDeadline):
			t.Error("Watch did not return after its context ended")
		}
	})
	return w
}

// waitFor waits until a notice for key with seq at least seq has come.
func (w *watcher) waitFor(t *testing.T, key string, seq int64) {
	t.Helper()
	if !w.waitUntil(key, seq, time.Now().Add(watchDeadline)) {
		t.Fatalf("no notice of %q at seq %d within %s (got %v)", key, seq, watchDeadline, w.all())
	}
}

// waitUntil waits until a notice for key with seq at least seq has come,
// or deadline; it reports which.
func (w *watcher) waitUntil(key string, seq int64, deadline time.Time) bool {
	for {
		w.mu.Lock()
		got, changed := w.newest[key], w.changed
		w.mu.Unlock()
		if got >= seq {
			return true
		}
		select {
		case <-changed:
		case err := <-w.done:
			w.done <- err
			return false
		case <-time.After(time.Until(deadline)):
			return false
		}
	}
}

func (w *watcher) saw(key string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.newest[key]
	return ok
}

func (w *watcher) all() []notice {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.notices)
}

// warmUp waits until w's Watch is under way: it appends to a journal of
// its own until w is told of it. A Watch need not report appends made
// before it began.
func warmUp(t *testing.T, j core.Journals, ws ...*watcher) {
	t.Helper()
	deadline := time.Now().Add(watchDeadline)
	for i := int64(1); ; i++ {
		res := mustAppend(t, j, "warm-up", entry("", at(0), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "w"}, Keep: 1})
		ready := true
		for _, w := range ws {
			if !w.waitUntil("warm-up", res.Seq, time.Now().Add(200*time.Millisecond)) {
				ready = false
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Watch told of nothing within %s", watchDeadline)
		}
	}
}

func testJournalWatch(t *testing.T, a, b core.Journals) {
	wa, wb := startWatch(t, a), startWatch(t, b)
	warmUp(t, b, wa, wb)
	mustCreate(t, b, "s", head("e", "", at(0)))
	// An append from the other replica, and from the watcher's own.
	mustAppend(t, b, "s", entry("", at(0), "x"), core.AppendOptions{})
	wa.waitFor(t, "s", 1)
	wb.waitFor(t, "s", 1)
	mustAppend(t, a, "s", entry("", at(0), "x"), core.AppendOptions{})
	wa.waitFor(t, "s", 2)
	wb.waitFor(t, "s", 2)
	// A burst: the newest seq comes, maybe alone.
	for range 5 {
		mustAppend(t, b, "s", entry("", at(0), "x"), core.AppendOptions{})
	}
	wa.waitFor(t, "s", 7)
	// Created by its append.
	mustAppend(t, b, "t", entry("", at(0), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}})
	wa.waitFor(t, "t", 1)
	for _, w := range []*watcher{wa, wb} {
		for _, n := range w.all() {
			switch {
			case n.key == "s" && n.seq >= 1 && n.seq <= 7:
			case n.key == "t" && n.seq == 1:
			case n.key == "warm-up" && n.seq >= 1:
			default:
				t.Fatalf("notice %+v: no such append (all: %v)", n, w.all())
			}
		}
	}
}

// testJournalWatchSlowFn: a Watch whose fn is slow holds up no Append,
// and once it catches up it is told of the newest seq.
func testJournalWatchSlowFn(t *testing.T, a, b core.Journals) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	stuck := make(chan struct{})
	var stuckOnce sync.Once
	slow := startWatchHook(t, a, func(key string, _ int64) {
		if key == "s" {
			stuckOnce.Do(func() {
				close(stuck)
				<-release
			})
		}
	})
	t.Cleanup(unblock) // before the Watch's own cleanup waits for it
	warmUp(t, b, slow)
	mustAppend(t, b, "s", entry("", at(0), "x"), core.AppendOptions{Create: &core.JournalHead{Epoch: "e"}})
	select {
	case <-stuck:
	case <-time.After(watchDeadline):
		t.Fatalf("the Watch was not told of s within %s", watchDeadline)
	}
	appended := make(chan error, 1)
	go func() {
		for range 200 {
			if _, err := b.Append(context.Background(), "s", entry("", at(0), "x"), core.AppendOptions{}); err != nil {
				appended <- err
				return
			}
		}
		appended <- nil
	}()
	select {
	case err := <-appended:
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
	case <-time.After(watchDeadline):
		t.Fatal("Append waited for a Watch's slow fn")
	}
	unblock()
	slow.waitFor(t, "s", 201)
}

func testJournalWatchEnds(t *testing.T, a, b core.Journals) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- a.Watch(ctx, func(string, int64) {}) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch with a cancelled context = %v, want context.Canceled", err)
		}
	case <-time.After(watchDeadline):
		t.Fatal("Watch with a cancelled context did not return")
	}

	w := startWatch(t, b)
	warmUp(t, a, w)
	w.cancel()
	select {
	case err := <-w.done:
		w.done <- err // for the cleanup
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch after its context ended = %v, want context.Canceled", err)
		}
	case <-time.After(watchDeadline):
		t.Fatal("Watch did not return after its context ended")
	}
	// A deadline is a context's end too.
	dctx, dcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer dcancel()
	if err := a.Watch(dctx, func(string, int64) {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Watch past its deadline = %v, want context.DeadlineExceeded", err)
	}
	// Appends go on without a watcher.
	mustAppend(t, a, "warm-up", entry("", at(0), "x"), core.AppendOptions{})
}
