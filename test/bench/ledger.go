package main

import (
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// textPrefix starts every benchmark message. The simulator's assistant
// answers text that matches none of its rules by quoting it (`You said:
// "load zqxb". ...`), so the reply carries the message's sequence number
// back. The number is written in letters (see encodeSeq) because a run of
// seven digits would be taken for a phone number and answered by another
// rule, and "z" starts no keyword of the assistant.
const textPrefix = "load z"

// encodeSeq writes n in base 26 with the letters a to z.
func encodeSeq(n uint64) string {
	var b [14]byte // 26^14 > 2^64
	i := len(b)
	for {
		i--
		b[i] = byte('a' + n%26)
		n /= 26
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

// messageText is the text of message seq.
func messageText(seq uint64) string { return textPrefix + encodeSeq(seq) }

// decodeSeq finds a message's sequence number in a text that contains
// messageText (the message itself, the bot's reply, or a webhook body).
func decodeSeq(text string) (uint64, bool) {
	i := strings.Index(text, textPrefix)
	if i < 0 {
		return 0, false
	}
	return decodeLetters(text[i+len(textPrefix):])
}

// decodeSeqBytes is decodeSeq for a byte slice, without copying it.
func decodeSeqBytes(b []byte) (uint64, bool) {
	for i := 0; i+len(textPrefix) <= len(b); i++ {
		if b[i] == textPrefix[0] && string(b[i:i+len(textPrefix)]) == textPrefix {
			return decodeLetters(b[i+len(textPrefix):])
		}
	}
	return 0, false
}

func decodeLetters[S string | []byte](s S) (uint64, bool) {
	var n uint64
	digits := 0
	for j := 0; j < len(s) && s[j] >= 'a' && s[j] <= 'z'; j++ {
		d := uint64(s[j] - 'a')
		if n > (math.MaxUint64-d)/26 {
			return 0, false // more than fits: not ours
		}
		n = n*26 + d
		digits++
	}
	return n, digits > 0
}

// ledger holds the times of one step's messages, indexed by sequence
// number. Times are nanoseconds since t0 on the monotonic clock, and 0
// means "not yet". Writers are the senders, the load clients' readers,
// the simulator's webhook transport and the collection of the
// simulator's records, all without a lock: each slot has one writer.
type ledger struct {
	t0   time.Time
	base uint64 // sequence number of slot 0
	cap  uint64

	issued atomic.Uint64 // slots handed out by issue
	done   atomic.Uint64 // slots whose reply arrived (first time)
	dups   atomic.Uint64 // replies that arrived again
	// lastReply is when a first reply last arrived, on the ledger's clock.
	lastReply atomic.Int64

	// window, when not nil, holds one token per message outstanding in a
	// closed-loop step; a first reply takes one out.
	window chan struct{}

	sent     []atomic.Int64 // the load client wrote the message
	accepted []atomic.Int64 // Selarti accepted it (simulator's Received.At)
	whStart  []atomic.Int64 // Selarti began posting the bot's reply webhook
	whEnd    []atomic.Int64 // the target answered that webhook
	replied  []atomic.Int64 // the load client read the reply
}

func newLedger(t0 time.Time, base uint64, capacity int) *ledger {
	return &ledger{
		t0: t0, base: base, cap: uint64(capacity),
		sent:     make([]atomic.Int64, capacity),
		accepted: make([]atomic.Int64, capacity),
		whStart:  make([]atomic.Int64, capacity),
		whEnd:    make([]atomic.Int64, capacity),
		replied:  make([]atomic.Int64, capacity),
	}
}

// issue hands out the next sequence number; ok is false when the ledger
// is full.
func (l *ledger) issue() (seq uint64, ok bool) {
	i := l.issued.Add(1) - 1
	if i >= l.cap {
		l.issued.Add(^uint64(0))
		return 0, false
	}
	return l.base + i, true
}

// slot returns seq's index, or -1 for a number of another step.
func (l *ledger) slot(seq uint64) int {
	if seq < l.base || seq-l.base >= l.issued.Load() {
		return -1
	}
	return int(seq - l.base)
}

// since converts a time to the ledger's clock; never 0, so that "set at
// t0" is not mistaken for "not set".
func (l *ledger) since(at time.Time) int64 { return max(int64(at.Sub(l.t0)), 1) }

// mark records at in times[seq] unless it is set already, and reports
// whether it was this call that set it.
func (l *ledger) mark(times []atomic.Int64, seq uint64, at time.Time) bool {
	i := l.slot(seq)
	if i < 0 {
		return false
	}
	return times[i].CompareAndSwap(0, l.since(at))
}

// reply records the arrival of seq's reply; it reports whether it was
// the first.
func (l *ledger) reply(seq uint64, at time.Time) bool {
	if l.slot(seq) < 0 {
		return false
	}
	if l.mark(l.replied, seq, at) {
		l.done.Add(1)
		l.lastReply.Store(l.since(at))
		return true
	}
	l.dups.Add(1)
	return false
}

// complete reports whether every issued message has its reply.
func (l *ledger) complete() bool { return l.done.Load() >= l.issued.Load() }

// quietFor is how long no first reply has arrived at now, counted from
// start at the earliest.
func (l *ledger) quietFor(now, start time.Time) time.Duration {
	return time.Duration(l.since(now) - max(l.lastReply.Load(), l.since(start)))
}
