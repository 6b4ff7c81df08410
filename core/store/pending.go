package store

import (
	"container/heap"
	"slices"
)

// pendingIndex is the claim order of the pending messages, in memory: per
// direction, the chats that have pending messages, each with its pending
// ids in order, its head's times and its lease. Memory keeps it beside
// its messages. SQLite keeps it in front of its table and rebuilds it
// from the table when it opens, so that Claim is no write and the end of
// an attempt one statement (leases need no durability: an embedded store
// releases them all when it opens, see Store).
//
// Claim costs O(limit log chats): each direction keeps its chats in two
// heaps (see dueIndex). The index holds about 150 bytes per pending
// message and per chat with pending messages; nothing for the others.
// It is not safe for concurrent use: its store guards it.
type pendingIndex struct {
	msgs   map[int64]pendingTimes // every pending message
	queues map[chatKey]*chatQueue // chats with pending messages
	due    map[Direction]*dueIndex
}

// pendingTimes is what the index keeps of one pending message.
type pendingTimes struct {
	key     chatKey
	created int64 // CreatedAt, unix nanos
	next    int64 // NextAt, unix nanos; 0 when due at once
	// doubted: claim reported a lease of the message that ran out, and
	// no Retry or Defer has ended an attempt since, so the message is in
	// doubt already and the next such lease needs no report (a store
	// would write InDoubt again for nothing).
	doubted bool
}

func newPendingIndex() *pendingIndex {
	x := &pendingIndex{
		msgs:   make(map[int64]pendingTimes),
		queues: make(map[chatKey]*chatQueue),
		due:    make(map[Direction]*dueIndex),
	}
	for _, dir := range Directions {
		x.due[dir] = &dueIndex{}
	}
	return x
}

// add records a message that became pending (Enqueue, Replay, or a store
// opening). With leaseUntil not 0 it leases the message until then when
// it is due at once and its chat had nothing pending in its direction
// (EnqueueClaim), and reports so. An id already pending changes nothing.
func (x *pendingIndex) add(id int64, dir Direction, chat string, created, next, leaseUntil int64) (leased bool) {
	if _, ok := x.msgs[id]; ok {
		return false
	}
	key := chatKey{dir, chat}
	x.msgs[id] = pendingTimes{key: key, created: created, next: next}
	q := x.queues[key]
	if q == nil {
		q = &chatQueue{key: key, index: -1}
		x.queues[key] = q
		if leaseUntil != 0 && next == 0 {
			q.leaseID, q.leaseUntil = id, leaseUntil
			leased = true
		}
	} else {
		// Out of the heap before the head may change: the heap orders by
		// head. (Replay may put an old id before the head.)
		x.due[dir].drop(q)
	}
	q.insert(id)
	x.place(q)
	return leased
}

// claim leases up to limit heads of dir due at now (unix nanos) until
// until, due the longest first (see Store.Claim), and returns their ids
// in ascending order. expired is the leases that ran out in the chats it
// took (no Delivered, Retry, Defer or Kill ended them): their messages
// may have reached the far side, and the store marks them InDoubt. The
// message holding such a lease is usually the head claimed again, but
// not always (Replay may have put an older one before it). A message
// reported once is not reported again until Retry or Defer (see
// pendingTimes.doubted).
func (x *pendingIndex) claim(dir Direction, now, until int64, limit int) (ids []int64, expired []chatLease) {
	d := x.due[dir]
	for len(ids) < limit {
		q := d.next(now)
		if q == nil {
			break
		}
		d.drop(q)
		if p, ok := x.msgs[q.leaseID]; ok && !p.doubted {
			p.doubted = true
			x.msgs[q.leaseID] = p
			expired = append(expired, chatLease{q.leaseID, q.leaseUntil})
		}
		q.leaseID, q.leaseUntil = q.ids[0], until
		x.place(q)
		ids = append(ids, q.leaseID)
	}
	slices.Sort(ids)
	return ids, expired
}

// chatLease is a chat's lease: the message holding it, and until when
// (unix nanos).
type chatLease struct {
	id, until int64
}

// unclaim undoes claim, for a store that could not complete the claim:
// the chats of ids are leased again as they were before, and the next
// claim reports the expired leases again.
func (x *pendingIndex) unclaim(ids []int64, expired []chatLease) {
	for _, id := range ids {
		x.setLease(id, 0)
	}
	for _, l := range expired {
		x.setLease(l.id, l.until)
		if p, ok := x.msgs[l.id]; ok {
			p.doubted = false
			x.msgs[l.id] = p
		}
	}
}

// remove takes a message out of the pending ones (Delivered, Kill),
// ending the lease it holds. It reports whether id was pending.
func (x *pendingIndex) remove(id int64) bool {
	p, ok := x.msgs[id]
	if !ok {
		return false
	}
	delete(x.msgs, id)
	q := x.queues[p.key]
	x.due[p.key.dir].drop(q)
	q.remove(id)
	q.endLease(id)
	x.place(q)
	return true
}

// retry records that a pending message is not to be attempted before
// next (unix nanos), ending the lease it holds. It reports whether id was
// pending.
func (x *pendingIndex) retry(id int64, next int64) bool {
	p, ok := x.msgs[id]
	if !ok {
		return false
	}
	p.next = next
	p.doubted = false // Retry clears InDoubt; Defer may
	x.msgs[id] = p
	q := x.queues[p.key]
	x.due[p.key.dir].drop(q)
	q.endLease(id)
	x.place(q)
	return true
}

// setLease leases message id's chat to id until until (unix nanos), or,
// with until 0, ends the lease id holds, if it holds one. An id that is
// not pending changes nothing.
func (x *pendingIndex) setLease(id, until int64) {
	p, ok := x.msgs[id]
	if !ok {
		return
	}
	q := x.queues[p.key]
	if until == 0 && q.leaseID != id {
		return
	}
	x.due[p.key.dir].drop(q)
	if until == 0 {
		q.endLease(id)
	} else {
		q.leaseID, q.leaseUntil = id, until
	}
	x.place(q)
}

// place computes q's claim order from its head and lease and puts it in its
// direction's heap, or forgets q when its chat has nothing pending. q must
// be out of the heap.
func (x *pendingIndex) place(q *chatQueue) {
	if len(q.ids) == 0 {
		delete(x.queues, q.key)
		return
	}
	head := x.msgs[q.ids[0]]
	q.waiting, q.readyAt = readiness(head.created, head.next, q.leaseUntil)
	x.due[q.key.dir].add(q)
}

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

// endLease ends the chat's lease if message id holds it. A message whose
// lease ran out while another message of the chat was claimed (after a
// Replay) holds none.
func (q *chatQueue) endLease(id int64) {
	if q.leaseID == id {
		q.leaseID, q.leaseUntil = 0, 0
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
