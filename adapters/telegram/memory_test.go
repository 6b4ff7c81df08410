package telegram

import (
	"testing"
	"time"
)

func TestMemory(t *testing.T) {
	now := time.Unix(1000, 0)
	m := newMemory[string, int](2, time.Minute)
	m.now = func() time.Time { return now }
	m.put("a", 1)
	m.put("b", 2)
	if v, ok := m.get("a"); !ok || v != 1 {
		t.Fatalf("get a = %d, %v", v, ok)
	}
	m.put("c", 3) // evicts b, the least recently used
	if m.has("b") || !m.has("a") || !m.has("c") || m.len() != 2 {
		t.Fatalf("after eviction: a %v b %v c %v len %d", m.has("a"), m.has("b"), m.has("c"), m.len())
	}
	m.put("a", 10)
	if v, _ := m.get("a"); v != 10 {
		t.Fatalf("updated a = %d", v)
	}
	now = now.Add(2 * time.Minute)
	if m.has("a") || m.len() != 1 {
		t.Fatalf("expired entry still there (len %d)", m.len())
	}
	m.remove("c")
	if m.len() != 0 {
		t.Fatalf("len = %d after remove", m.len())
	}

	forever := newMemory[int64, struct{}](3, 0)
	forever.put(1, struct{}{})
	forever.now = func() time.Time { return time.Now().Add(1000 * time.Hour) }
	if !forever.has(1) {
		t.Fatal("an entry without a ttl expired")
	}
}
