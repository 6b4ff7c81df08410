package engine

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/store"
)

func TestChatCache(t *testing.T) {
	clock := time.Now()
	c := newChatCache(2, time.Minute)
	c.entries.SetClock(func() time.Time { return clock })
	known := func(flags uint32) store.ChatInfo { return store.ChatInfo{Known: true, Flags: flags} }

	if _, ok := c.get("a"); ok {
		t.Fatal("empty cache: hit")
	}
	c.put("a", known(1))
	if got, ok := c.get("a"); !ok || got != known(1) {
		t.Fatalf("get(a) = %+v, %v; want flags 1", got, ok)
	}
	c.put("a", known(3))
	if got, _ := c.get("a"); got != known(3) {
		t.Fatalf("get(a) after an update = %+v, want flags 3", got)
	}

	// Unknown chats are never kept: they may become known at any moment.
	c.put("u", store.ChatInfo{Flags: 7})
	if _, ok := c.get("u"); ok {
		t.Fatal("an unknown chat was cached")
	}
	c.put("a", store.ChatInfo{})
	if _, ok := c.get("a"); ok {
		t.Fatal("a chat that became unknown is still cached")
	}

	// Bounded: the least recently used goes.
	c.put("x", known(0))
	c.put("y", known(0))
	c.get("x")
	c.put("z", known(0))
	if _, ok := c.get("y"); ok {
		t.Fatal("the least recently used entry was kept past the bound")
	}
	for _, chat := range []string{"x", "z"} {
		if _, ok := c.get(chat); !ok {
			t.Fatalf("%s evicted, want kept", chat)
		}
	}

	// Entries expire.
	clock = clock.Add(time.Minute)
	if _, ok := c.get("z"); ok {
		t.Fatal("an entry past its time to live was returned")
	}
}

func TestChatCacheLocksAreStable(t *testing.T) {
	c := newChatCache(1, time.Minute)
	if c.lock("web:1") != c.lock("web:1") {
		t.Fatal("one chat got two locks")
	}
}

// BenchmarkChatCacheMemory reports what a full chat cache holds per entry
// (B/entry, the live heap after a GC over the entries), for chatCacheSize's
// comment: `go test -run='^$' -bench=ChatCacheMemory ./core/engine/`.
func BenchmarkChatCacheMemory(b *testing.B) {
	var per float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newChatCache(chatCacheSize, chatCacheTTL)
		for i := range chatCacheSize {
			c.put(fmt.Sprintf("telegram:%d", 1_000_000_000+i), store.ChatInfo{Known: true})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / chatCacheSize
		runtime.KeepAlive(c)
	}
	b.ReportMetric(per, "B/entry")
	b.ReportMetric(per*chatCacheSize/(1<<20), "MiB/full")
}
