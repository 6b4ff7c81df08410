package inbound

import "testing"

func TestWatermarkWaitsForEarlierMessages(t *testing.T) {
	var w Watermark
	for _, id := range []string{"1", "2", "3"} {
		w.Begin("chan", id)
	}
	if mark, moved := w.Done("chan", "2"); moved {
		t.Fatalf("moved to %s while 1 is in flight", mark)
	}
	if mark, moved := w.Done("chan", "1"); !moved || mark != "2" {
		t.Fatalf("after 1 and 2: mark %q moved %v, want 2", mark, moved)
	}
	w.Begin("chan", "4")
	if _, moved := w.Done("chan", "4"); moved {
		t.Fatal("moved past 3, which is in flight")
	}
	if mark, moved := w.Done("chan", "3"); !moved || mark != "4" {
		t.Fatalf("mark %q moved %v, want 4", mark, moved)
	}
	if len(w.streams) != 0 {
		t.Fatal("a stream with nothing in flight is still kept")
	}
}

func TestWatermarkStreamsAreApart(t *testing.T) {
	var w Watermark
	w.Begin("a", "1")
	w.Begin("b", "2")
	if mark, moved := w.Done("b", "2"); !moved || mark != "2" {
		t.Fatalf("stream b waited for stream a: %q %v", mark, moved)
	}
	if _, moved := w.Done("c", "9"); moved {
		t.Fatal("an unknown stream moved")
	}
}
