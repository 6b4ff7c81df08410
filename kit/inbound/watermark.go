package inbound

import "sync"

// Watermark tracks, per stream (a channel), how far the messages handed
// to the core are all done, when they are handed over in order but finish
// out of order: the messages of one channel go to several conversations
// (one per user), each retried on its own goroutine, so a later message
// can be accepted before an earlier one. The checkpoint of a stream may
// only move to a message once every earlier one of that stream is done,
// or a restart would skip the earlier one.
//
// Begin a message before it is queued, in the stream's order; call Done
// when the core has accepted it (or refused it for good). Done returns
// the stream's new watermark when it moved: the newest message such that
// it and every earlier one are done. Safe for concurrent use.
type Watermark struct {
	mu      sync.Mutex
	streams map[string]*stream
}

type stream struct {
	pending []string        // begun and not yet past the mark, in order
	done    map[string]bool // finished, but behind an unfinished one
}

// Begin notes that id, the stream's next message, is being handed over.
func (w *Watermark) Begin(streamKey, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.streams == nil {
		w.streams = map[string]*stream{}
	}
	s := w.streams[streamKey]
	if s == nil {
		s = &stream{done: map[string]bool{}}
		w.streams[streamKey] = s
	}
	s.pending = append(s.pending, id)
}

// Done notes that id is done, and returns the stream's watermark and true
// if it moved.
func (w *Watermark) Done(streamKey, id string) (mark string, moved bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.streams[streamKey]
	if s == nil {
		return "", false
	}
	s.done[id] = true
	for len(s.pending) > 0 && s.done[s.pending[0]] {
		mark, moved = s.pending[0], true
		delete(s.done, s.pending[0])
		s.pending = s.pending[1:]
	}
	if len(s.pending) == 0 {
		delete(w.streams, streamKey) // nothing in flight: forget the stream
	}
	return mark, moved
}
