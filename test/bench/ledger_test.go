package main

import (
	"encoding/json"
	"testing"
	"time"

	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

func TestSeqSurvivesTheSimulatorsReply(t *testing.T) {
	for _, seq := range []uint64{0, 1, 25, 26, 675, 676, 1234567, 99999999999, 1<<63 + 12345} {
		text := messageText(seq)
		reply := fakeselarti.Reply(text)
		body, err := json.Marshal(map[string]any{"message_text": reply, "message_type": "bot"})
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string]func() (uint64, bool){
			"message":      func() (uint64, bool) { return decodeSeq(text) },
			"reply":        func() (uint64, bool) { return decodeSeq(reply) },
			"webhook body": func() (uint64, bool) { return decodeSeqBytes(body) },
		} {
			n, ok := got()
			if !ok || n != seq {
				t.Errorf("seq %d: from the %s (%q) decoded %d, %v", seq, name, text, n, ok)
			}
		}
	}
}

func TestDecodeSeqRejectsOtherTexts(t *testing.T) {
	for _, text := range []string{"", "hello", "load ", "load z", "You said: \"load z\"", "load zzzzzzzzzzzzzzzzz"} {
		if n, ok := decodeSeq(text); ok {
			t.Errorf("decodeSeq(%q) = %d, want no number", text, n)
		}
	}
}

func TestLedger(t *testing.T) {
	t0 := time.Now()
	l := newLedger(t0, 100, 3)
	for want := uint64(100); want < 103; want++ {
		if seq, ok := l.issue(); !ok || seq != want {
			t.Fatalf("issue() = %d, %v, want %d", seq, ok, want)
		}
	}
	if _, ok := l.issue(); ok {
		t.Fatal("issue() beyond the capacity succeeded")
	}
	if l.issued.Load() != 3 {
		t.Errorf("issued = %d after a refused issue, want 3", l.issued.Load())
	}
	at := t0.Add(5 * time.Millisecond)
	if !l.reply(101, at) || l.reply(101, at.Add(time.Millisecond)) {
		t.Error("the first reply must count and the second must not")
	}
	if got := l.replied[1].Load(); got != int64(5*time.Millisecond) {
		t.Errorf("reply time = %d, want the first one's", got)
	}
	if l.dups.Load() != 1 || l.done.Load() != 1 {
		t.Errorf("dups %d, done %d, want 1 and 1", l.dups.Load(), l.done.Load())
	}
	for _, seq := range []uint64{99, 103, 5000} {
		if l.reply(seq, at) || l.mark(l.accepted, seq, at) {
			t.Errorf("seq %d of another step was recorded", seq)
		}
	}
	if l.complete() {
		t.Error("complete with 2 of 3 replies missing")
	}
	l.reply(100, at)
	l.reply(102, at)
	if !l.complete() {
		t.Error("not complete with every reply in")
	}
	if l.mark(l.sent, 100, t0); l.sent[0].Load() == 0 {
		t.Error("a time equal to t0 was stored as 0, which means unset")
	}
}

func TestLedgerQuietFor(t *testing.T) {
	t0 := time.Now()
	l := newLedger(t0, 100, 10)
	start := t0.Add(time.Second)
	if got := l.quietFor(t0.Add(3*time.Second), start); got != 2*time.Second {
		t.Errorf("no reply yet: quiet for %s, want 2s (since start)", got)
	}
	l.issue()
	l.reply(100, t0.Add(5*time.Second))
	if got := l.quietFor(t0.Add(8*time.Second), start); got != 3*time.Second {
		t.Errorf("quiet for %s, want 3s (since the reply)", got)
	}
	l.reply(100, t0.Add(7*time.Second)) // a duplicate is no news
	if got := l.quietFor(t0.Add(8*time.Second), start); got != 3*time.Second {
		t.Errorf("after a duplicate: quiet for %s, want 3s", got)
	}
}
