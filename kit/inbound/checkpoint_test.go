package inbound

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestCheckpointSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c, err := OpenCheckpoint(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Get("chan-1"); ok {
		t.Fatal("a new checkpoint has positions")
	}
	c.Set("chan-1", "1001")
	c.Set("chan-2", "2001")
	c.Set("chan-1", "1002")
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := OpenCheckpoint(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := again.Get("chan-1"); v != "1002" {
		t.Fatalf("chan-1 = %q after reopen, want 1002", v)
	}
	if got := again.Keys(); !slices.Equal(got, []string{"chan-2", "chan-1"}) {
		t.Fatalf("keys = %v, want least recently set first", got)
	}
}

func TestCheckpointWritesOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c, _ := OpenCheckpoint(path, 0)
	if err := c.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an unchanged checkpoint was written")
	}
	c.Set("a", "1")
	_ = c.Flush(context.Background())
	st1, _ := os.Stat(path)
	c.Set("a", "1") // the same position: nothing to write
	time.Sleep(10 * time.Millisecond)
	_ = c.Flush(context.Background())
	st2, _ := os.Stat(path)
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("setting the same position wrote the file again")
	}
}

func TestCheckpointCrashLeavesOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkpoint.json")
	c, _ := OpenCheckpoint(path, 0)
	c.Set("a", "1")
	_ = c.Flush(context.Background())
	// A crash during a later write leaves a half-written temporary file
	// beside the real one, never a half-written real one.
	if err := os.WriteFile(path+".tmp-123", []byte(`{"version":1,"entr`), 0o600); err != nil {
		t.Fatal(err)
	}
	again, err := OpenCheckpoint(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := again.Get("a"); v != "1" {
		t.Fatalf("a = %q", v)
	}
}

func TestCheckpointCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	for _, body := range []string{"not json", `{"version":9,"entries":[]}`} {
		os.WriteFile(path, []byte(body), 0o600)
		if _, err := OpenCheckpoint(path, 0); !errors.Is(err, ErrCorruptCheckpoint) {
			t.Fatalf("open %q: err = %v, want ErrCorruptCheckpoint", body, err)
		}
	}
}

func TestCheckpointBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c, _ := OpenCheckpoint(path, 3)
	for _, k := range []string{"a", "b", "c", "d"} {
		c.Set(k, "1")
	}
	if _, ok := c.Get("a"); ok || len(c.Keys()) != 3 {
		t.Fatalf("keys %v: the least recently set was not dropped", c.Keys())
	}
}

func TestFlushEveryFlushesAtTheEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checkpoint.json")
	c, _ := OpenCheckpoint(path, 0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.FlushEvery(ctx, time.Hour, func(err error) { t.Error(err) }) })
	var writers sync.WaitGroup
	for g := range 4 {
		writers.Go(func() {
			for i := range 100 {
				c.Set(string(rune('a'+g)), string(rune('0'+i%10)))
			}
		})
	}
	writers.Wait()
	cancel()
	wg.Wait()
	again, _ := OpenCheckpoint(path, 0)
	if len(again.Keys()) != 4 {
		t.Fatalf("after the final flush: %v", again.Keys())
	}
}
