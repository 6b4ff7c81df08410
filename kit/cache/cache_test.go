package cache

import (
	"testing"
	"time"
)

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New[string, int](2, time.Minute)
	m.SetClock(func() time.Time { return now })
	m.Put("a", 1)
	m.Put("b", 2)
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Fatalf("get a = %d, %v", v, ok)
	}
	m.Put("c", 3) // evicts b, the least recently used
	if m.Has("b") || !m.Has("a") || !m.Has("c") || m.Len() != 2 {
		t.Fatalf("after eviction: a %v b %v c %v len %d", m.Has("a"), m.Has("b"), m.Has("c"), m.Len())
	}
	m.Put("a", 10)
	if v, _ := m.Get("a"); v != 10 {
		t.Fatalf("updated a = %d", v)
	}
	now = now.Add(2 * time.Minute)
	if m.Has("a") || m.Len() != 1 {
		t.Fatalf("expired entry still there (len %d)", m.Len())
	}
	m.Remove("c")
	if m.Len() != 0 {
		t.Fatalf("len = %d after remove", m.Len())
	}

	// An entry expires exactly its time to live after its Put, and a Put
	// gives it a new one.
	m.Put("d", 4)
	now = now.Add(time.Minute - time.Nanosecond)
	m.Put("e", 5)
	if !m.Has("d") {
		t.Fatal("an entry expired before its time to live")
	}
	now = now.Add(time.Nanosecond)
	if m.Has("d") || !m.Has("e") {
		t.Fatalf("at d's time to live: d %v e %v, want d gone, e kept", m.Has("d"), m.Has("e"))
	}

	forever := New[int64, struct{}](3, 0)
	forever.Put(1, struct{}{})
	forever.SetClock(func() time.Time { return time.Now().Add(1000 * time.Hour) })
	if !forever.Has(1) {
		t.Fatal("an entry without a ttl expired")
	}
}

func TestNewRejectsNoSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New(0, ...) did not panic")
		}
	}()
	New[string, int](0, 0)
}
