package webchat

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// errTooManyConns is returned by attach when a session already has its
// maximum of open connections.
var errTooManyConns = errors.New("too many connections for this session")

// evictScan bounds how far from the least recently active end eviction
// looks for a session without open tabs, so that creating a session stays
// cheap even when most sessions are connected.
const evictScan = 64

// entry is one item of a session's history: a message or a change of the
// dialog's state.
type entry struct {
	seq   int64
	event bool   // a dialog state change, not a message
	from  string // "user", "bot" or "operator" (messages)
	// id is the client's message id for user messages and Selarti's
	// message id for the others; both are used to drop re-sends.
	id       string
	text     string
	operator bool // events
	closed   bool // events
	ts       time.Time
}

// frame encodes e as the server frame that shows it.
func (e *entry) frame() []byte {
	if e.event {
		return encode(eventFrame{Type: typeEvent, Seq: e.seq, Operator: e.operator, Closed: e.closed, TS: formatTS(e.ts)})
	}
	f := messageFrame{Type: typeMessage, Seq: e.seq, From: e.from, Text: e.text, TS: formatTS(e.ts)}
	if e.from == fromUser {
		// Only the client's own ids go back out; Selarti's stay inside.
		f.ID = e.id
	}
	return encode(f)
}

// Values of entry.from.
const (
	fromUser     = "user"
	fromBot      = "bot"
	fromOperator = "operator"
)

// session is one browser's conversation as the cache holds it: a copy of
// what the mailbox stores (its epoch, last seq and recent history), and
// its open connections (tabs).
type session struct {
	id string
	// lock serialises everything that reads or writes the session's
	// stored state (loading it, appending to it, expiring it). It is held
	// across the mailbox call and the cache update that follows, so that
	// seqs are assigned, cached and pushed to the tabs in one order. It
	// is a channel so that waiting for it honours a context.
	lock chan struct{}

	// The fields below are guarded by sessions.mu. loaded, epoch,
	// history and lastSeq change only with lock held too, so the holder
	// of lock may read them without mu.
	refs       int     // holders of and waiters for lock; the session stays cached while > 0
	loaded     bool    // epoch, lastSeq and history mirror the mailbox
	epoch      string  // see welcomeFrame
	history    []entry // oldest first, at most historyLimit
	lastSeq    int64   // seq of the newest entry ever appended
	lastActive time.Time
	conns      map[*client]struct{}
	limiter    *rate.Limiter // user messages
	elem       *list.Element // in sessions.lru; nil once dropped from the cache
}

// sessions is the cache of the mailbox's sessions, and the fan-out of
// their entries to open tabs. One mutex guards the set: no operation under
// it does I/O (frames go to each connection's buffered queue without
// blocking), so a slow browser never holds up anyone else. Mailbox calls
// run under the session's own lock only, so sessions are written
// concurrently and their commits shared (see mailbox.go).
//
// A session leaves the cache only when nobody holds or waits for its lock
// (refs == 0), so there is at most one session value in use per id, and
// the mailbox sees one session's calls one at a time.
type sessions struct {
	mb           *mailbox
	historyLimit int
	maxSessions  int
	maxConns     int
	rateLimit    int // messages per minute

	mu     sync.Mutex
	byID   map[string]*session
	lru    *list.List // of *session; front is the most recently active
	loaded int        // sessions in byID that are loaded; max_sessions bounds it
}

func newSessions(cfg *Config, mb *mailbox) *sessions {
	return &sessions{
		mb:           mb,
		historyLimit: cfg.HistoryLimit,
		maxSessions:  cfg.MaxSessions,
		maxConns:     cfg.MaxConnsPerSession,
		rateLimit:    cfg.RateLimit,
		byID:         make(map[string]*session),
		lru:          list.New(),
	}
}

// acquire returns session id, cached or not yet loaded, with its lock
// held. Call release when done.
func (ss *sessions) acquire(ctx context.Context, id string, now time.Time) (*session, error) {
	ss.mu.Lock()
	s, ok := ss.byID[id]
	if !ok {
		// Not counted against max_sessions until it is loaded (see
		// makeRoom): a Send to a session nobody has open needs only
		// the lock.
		s = ss.add(id, now)
	}
	s.refs++
	ss.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		ss.mu.Lock()
		s.refs--
		ss.dropIfUnused(s)
		ss.mu.Unlock()
		return nil, ctx.Err()
	}
}

// release unlocks s, which acquire returned. The cache may have grown
// beyond maxSessions while every session was in use; it shrinks back here.
func (ss *sessions) release(s *session) {
	<-s.lock
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.refs--
	ss.dropIfUnused(s)
	ss.makeRoom()
}

// makeRoom drops sessions from the cache while it holds more than
// maxSessions loaded ones; sessions in use stay, the one being loaded
// among them. Sessions that only serve as locks are not counted: there
// are as many as calls in flight, and they go when the calls end. Call
// with mu held.
func (ss *sessions) makeRoom() {
	for ss.loaded > ss.maxSessions && ss.evictOne() {
	}
}

// fill sets the cached copy of s, now loaded. Call with mu held.
func (ss *sessions) fill(s *session, epoch string, lastSeq int64, history []entry) {
	if !s.loaded && s.elem != nil {
		ss.loaded++
	}
	s.epoch, s.lastSeq, s.history, s.loaded = epoch, lastSeq, history, true
	ss.makeRoom()
}

// add caches a new, not yet loaded session. Call with mu held.
func (ss *sessions) add(id string, now time.Time) *session {
	s := &session{
		id:         id,
		lock:       make(chan struct{}, 1),
		lastActive: now,
		conns:      make(map[*client]struct{}),
		limiter:    rate.NewLimiter(rate.Limit(float64(ss.rateLimit)/60), ss.rateLimit),
	}
	s.elem = ss.lru.PushFront(s)
	ss.byID[id] = s
	return s
}

// dropIfUnused drops s from the cache if it holds nothing worth keeping:
// not loaded (it only served as a lock), no tabs, nobody using it. Call
// with mu held.
func (ss *sessions) dropIfUnused(s *session) {
	if s.refs == 0 && !s.loaded && len(s.conns) == 0 && s.elem != nil {
		ss.remove(s)
	}
}

// evictOne drops from the cache the least recently active session without
// open tabs or, if the oldest few all have tabs, the least recently active
// one (whose tabs are closed; they reconnect and reload it). Sessions in
// use are never dropped. It reports false when every session is in use.
// The mailbox keeps what is dropped. Call with mu held.
func (ss *sessions) evictOne() bool {
	var fallback *session
	n := 0
	for e := ss.lru.Back(); e != nil; e = e.Prev() {
		s := e.Value.(*session)
		if s.refs > 0 {
			continue
		}
		if len(s.conns) == 0 {
			ss.remove(s)
			return true
		}
		if fallback == nil {
			fallback = s
		}
		if n++; n >= evictScan {
			break
		}
	}
	if fallback == nil {
		return false
	}
	ss.remove(fallback)
	return true
}

// remove drops s from the cache and closes its connections. Call with mu
// held, and only when s.refs is 0.
func (ss *sessions) remove(s *session) {
	for c := range s.conns {
		c.kill(websocket.StatusGoingAway, "session expired")
	}
	if s.loaded {
		ss.loaded--
	}
	ss.lru.Remove(s.elem)
	s.elem = nil
	delete(ss.byID, s.id)
}

// touch marks s as active now. Call with mu held.
func (ss *sessions) touch(s *session, now time.Time) {
	s.lastActive = now
	if s.elem != nil {
		ss.lru.MoveToFront(s.elem)
	}
}

// load fills the cache of s from the mailbox, unless it is loaded. It
// reports whether the mailbox holds the session. Call with s locked.
func (ss *sessions) load(ctx context.Context, s *session) (bool, error) {
	if s.loaded {
		return true, nil
	}
	st, ok, err := ss.mb.load(ctx, s.id)
	if err != nil || !ok {
		return false, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.fill(s, st.epoch, st.lastSeq, st.history)
	return true, nil
}

// invalidate forgets the cached copy of s, which may differ from the
// mailbox (a write failed in a way that leaves its outcome unknown), and
// closes its tabs: they reconnect and replay from the mailbox. Call with
// s locked.
func (ss *sessions) invalidate(s *session) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.invalidateLocked(s)
}

func (ss *sessions) invalidateLocked(s *session) {
	if s.loaded && s.elem != nil {
		ss.loaded--
	}
	s.loaded, s.epoch, s.lastSeq, s.history = false, "", 0, nil
	for c := range s.conns {
		c.kill(websocket.StatusGoingAway, "session reloaded")
	}
}

// attach adds c to session id, loading it from the mailbox or creating it
// there (with a new epoch) when unknown, then queues the welcome frame and
// every history entry newer than lastSeq to c. epoch is the client's idea
// of the session's epoch ("" if it has none); name is its display name.
func (ss *sessions) attach(ctx context.Context, id, name string, c *client, lastSeq int64, epoch string, now time.Time) error {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return err
	}
	defer ss.release(s)
	stored, err := ss.load(ctx, s)
	if err != nil {
		return err
	}
	if !stored {
		// Stored before the welcome names the epoch: the browser must
		// find the same epoch after a crash.
		ep, last, err := ss.mb.create(ctx, id, newEpoch(), name, now)
		if err != nil {
			return err
		}
		if last == 0 {
			ss.mu.Lock()
			ss.fill(s, ep, 0, nil)
			ss.mu.Unlock()
		} else if _, err := ss.load(ctx, s); err != nil {
			// Another writer (an operator's tool) got there first.
			return err
		}
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(s.conns) >= ss.maxConns {
		return errTooManyConns
	}
	s.conns[c] = struct{}{}
	ss.touch(s, now)
	if (epoch != "" && epoch != s.epoch) || lastSeq > s.lastSeq || lastSeq < 0 {
		// The client counted seqs of another incarnation of this session
		// (the mailbox forgot it, its ttl passed). Replay all we have; the
		// welcome tells the client to reset its counter.
		lastSeq = 0
	}
	c.enqueue(encode(welcomeFrame{Type: typeWelcome, Session: id, LastSeq: s.lastSeq, Epoch: s.epoch}))
	for i := range s.history {
		if s.history[i].seq > lastSeq {
			c.enqueue(s.history[i].frame())
		}
	}
	return nil
}

// detach removes c from session id.
func (ss *sessions) detach(id string, c *client, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s, ok := ss.byID[id]; ok {
		if _, ok := s.conns[c]; ok {
			delete(s.conns, c)
			ss.touch(s, now)
			ss.dropIfUnused(s)
		}
	}
}

// userMessageSeq returns the seq of the user message msgID in session id,
// if the history still holds it: a re-send of a message that was already
// accepted (its ack got lost) is acknowledged again, not delivered again.
func (ss *sessions) userMessageSeq(ctx context.Context, id, msgID string, now time.Time) (int64, bool, error) {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return 0, false, err
	}
	defer ss.release(s)
	if stored, err := ss.load(ctx, s); err != nil || !stored {
		return 0, false, err
	}
	if e := s.find(fromUser, msgID); e != nil {
		return e.seq, true, nil
	}
	return 0, false, nil
}

// allow takes one token from session id's rate limiter. A session not in
// the cache has no connection left to send from, so it is not limited.
func (ss *sessions) allow(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	return !ok || s.limiter.AllowN(now, 1)
}

// appendUser stores a user message the core accepted, shows it on every
// tab of the session and then acknowledges it to sender. A message whose
// id the history holds already is only acknowledged again. Nothing is
// acknowledged when it returns an error.
func (ss *sessions) appendUser(ctx context.Context, id, msgID, text, name string, sender *client, now time.Time) error {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return err
	}
	defer ss.release(s)
	res, err := ss.store(ctx, s, appendReq{
		session:  id,
		e:        entry{from: fromUser, id: msgID, text: text, ts: now},
		newEpoch: newEpoch(), // the session expired since the hello
		name:     name,
	})
	if err != nil {
		return err
	}
	// Still under the session's lock: no other entry can be pushed
	// between the broadcast and the ack.
	sender.enqueue(encode(ackFrame{Type: typeAck, ID: msgID, Seq: res.seq}))
	return nil
}

// appendOutbound stores a message for the user (creating the session if
// the mailbox does not hold it) and shows it on every open tab. A message
// whose Selarti id the history holds already is not added twice. It
// returns the seq.
func (ss *sessions) appendOutbound(ctx context.Context, id, outID, from, text string, now time.Time) (int64, error) {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return 0, err
	}
	defer ss.release(s)
	res, err := ss.store(ctx, s, appendReq{
		session:  id,
		e:        entry{from: from, id: outID, text: text, ts: now},
		newEpoch: newEpoch(),
	})
	return res.seq, err
}

// appendEvent stores a change of the dialog's state in session id and
// shows it on every open tab. It reports false for a session the mailbox
// does not hold: a note about a conversation nobody can see is not worth
// a session.
func (ss *sessions) appendEvent(ctx context.Context, id string, operator, closed bool, now time.Time) (bool, error) {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return false, err
	}
	defer ss.release(s)
	res, err := ss.store(ctx, s, appendReq{session: id, e: entry{event: true, operator: operator, closed: closed, ts: now}})
	return err == nil && !res.missing, err
}

// store appends r to the mailbox and, once it is committed, to the cached
// copy of s, and queues it to every open tab. Call with s locked.
func (ss *sessions) store(ctx context.Context, s *session, r appendReq) (appended, error) {
	res, err := ss.mb.append(ctx, r)
	if err != nil {
		// A context that ended before the committer took the write, or
		// a closed mailbox, means not written; anything else may leave
		// the cache behind the mailbox.
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errMailboxClosed) {
			ss.invalidate(s)
		}
		return res, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if res.missing {
		return res, nil
	}
	ss.touch(s, r.e.ts)
	if res.dup || !s.loaded {
		// Not cached (then no tab is open on it): the mailbox has it,
		// which is all a later load needs.
		return res, nil
	}
	if res.epoch != s.epoch || res.seq != s.lastSeq+1 {
		// The cache missed a change of the mailbox: start over from it.
		ss.invalidateLocked(s)
		return res, nil
	}
	e := r.e
	e.seq = res.seq
	s.lastSeq = e.seq
	if len(s.history) >= ss.historyLimit {
		n := copy(s.history, s.history[len(s.history)-ss.historyLimit+1:])
		s.history = s.history[:n]
	}
	s.history = append(s.history, e)
	if len(s.conns) > 0 {
		b := e.frame()
		for c := range s.conns {
			c.enqueue(b)
		}
	}
	return res, nil
}

// find returns the message from "from" with id msgID, or nil.
func (s *session) find(from, msgID string) *entry {
	for i := len(s.history) - 1; i >= 0; i-- {
		if e := &s.history[i]; !e.event && e.from == from && e.id == msgID {
			return e
		}
	}
	return nil
}

// expireBatch bounds the sessions one expire round looks at.
const expireBatch = 500

// expire deletes from the mailbox (and the cache) up to expireBatch
// sessions last active before cutoff, with their history, and returns how
// many it deleted. Sessions with open tabs are alive however quiet they
// are, and the cache may know of activity the mailbox does not (hellos
// and reconnects are not written): both are marked active instead.
// Sessions in use are left for the next round.
func (ss *sessions) expire(ctx context.Context, cutoff, now time.Time) (int, error) {
	ids, err := ss.mb.idle(ctx, cutoff, expireBatch)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	var del []string
	var claimed []*session
	touch := make(map[string]time.Time)
	ss.mu.Lock()
	for _, id := range ids {
		s, ok := ss.byID[id]
		switch {
		case !ok:
			// Held as a lock only while the delete runs.
			s = ss.add(id, now)
		case s.refs > 0:
			continue
		case len(s.conns) > 0:
			touch[id] = now
			continue
		case !s.lastActive.Before(cutoff):
			touch[id] = s.lastActive
			continue
		}
		// refs is 0, so nobody holds the lock or waits for it (release
		// unlocks before it counts down): this always takes it.
		select {
		case s.lock <- struct{}{}:
		default:
			ss.dropIfUnused(s)
			continue
		}
		s.refs++
		claimed = append(claimed, s)
		del = append(del, id)
	}
	ss.mu.Unlock()

	err = ss.mb.expire(ctx, del, touch)
	if err == nil {
		ss.mu.Lock()
		for _, s := range claimed {
			ss.invalidateLocked(s)
		}
		ss.mu.Unlock()
	}
	for _, s := range claimed {
		ss.release(s)
	}
	if err != nil {
		return 0, err
	}
	return len(del), nil
}

// len returns the number of sessions loaded in the cache.
func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.loaded
}
