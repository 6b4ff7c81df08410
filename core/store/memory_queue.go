package store

import (
	"container/heap"
	"slices"
)

// chatKey names one chat's queue: a chat has one queue per direction.
type chatKey struct {
	dir  Direction
	chat string
}

// chatQueue is the pending messages of one chat in one direction, and its
// place in the claim order. It exists while the chat has pending messages.
type chatQueue struct {
	key chatKey
	ids []int64 // pending message ids, ascending; ids[0] is the head

	// Claim order, see readiness.
	waiting bool
	readyAt int64

	// The chat's lease: Claim leases a chat's head only when no lease is
	// live, so a chat has at most one.
	leaseID    int64
	leaseUntil int64

	heap  *queueHeap // the heap holding the queue, nil when none
	index int        // its position in that heap
}

// insert adds a pending id in order. Enqueue appends (ids only grow);
// Replay puts an old id back at its place.
func (q *chatQueue) insert(id int64) {
	if n := len(q.ids); n == 0 || q.ids[n-1] < id {
		q.ids = append(q.ids, id)
		return
	}
	i, found := slices.BinarySearch(q.ids, id)
	if !found {
		q.ids = slices.Insert(q.ids, i, id)
	}
}

// remove drops a pending id.
func (q *chatQueue) remove(id int64) {
	if len(q.ids) > 0 && q.ids[0] == id {
		// The usual case, the head delivered: reslicing keeps this O(1).
		q.ids = q.ids[1:]
		return
	}
	if i, found := slices.BinarySearch(q.ids, id); found {
		q.ids = slices.Delete(q.ids, i, i+1)
	}
}

// dueIndex orders the chats of one direction that have pending messages:
// fresh ones (due whatever the time) and waiting ones (due at readyAt),
// each a min-heap on (readyAt, head id).
type dueIndex struct {
	fresh   queueHeap
	waiting queueHeap
}

// add puts q into the heap its waiting flag names.
func (d *dueIndex) add(q *chatQueue) {
	h := &d.fresh
	if q.waiting {
		h = &d.waiting
	}
	heap.Push(h, q)
}

// drop takes q out of its heap, if it is in one.
func (d *dueIndex) drop(q *chatQueue) {
	if q.heap != nil {
		heap.Remove(q.heap, q.index)
	}
}

// next returns the chat to claim next at now (unix nanos), or nil, without
// removing it.
func (d *dueIndex) next(now int64) *chatQueue {
	var f, w *chatQueue
	if len(d.fresh) > 0 {
		f = d.fresh[0]
	}
	if len(d.waiting) > 0 && d.waiting[0].readyAt <= now {
		w = d.waiting[0]
	}
	switch {
	case f == nil:
		return w
	case w == nil:
		return f
	case queueLess(w, f):
		return w
	default:
		return f
	}
}

// queueLess is the claim order: due the longest first, then the lower head.
func queueLess(a, b *chatQueue) bool {
	if a.readyAt != b.readyAt {
		return a.readyAt < b.readyAt
	}
	return a.ids[0] < b.ids[0]
}

// queueHeap is a container/heap of chat queues that keeps each queue's
// index, so that a queue can be removed or moved when its head changes.
type queueHeap []*chatQueue

func (h queueHeap) Len() int           { return len(h) }
func (h queueHeap) Less(i, j int) bool { return queueLess(h[i], h[j]) }

func (h queueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

// Push is for container/heap; use dueIndex.add.
func (h *queueHeap) Push(x any) {
	q := x.(*chatQueue)
	q.heap = h
	q.index = len(*h)
	*h = append(*h, q)
}

// Pop is for container/heap; use dueIndex.drop.
func (h *queueHeap) Pop() any {
	old := *h
	n := len(old)
	q := old[n-1]
	old[n-1] = nil // let the queue be collected once its chat is empty
	*h = old[:n-1]
	q.heap = nil
	q.index = -1
	return q
}
