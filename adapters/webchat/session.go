package webchat

import (
	"container/list"
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

// session is one browser's conversation: its recent history and its open
// connections (tabs).
type session struct {
	id         string
	epoch      string  // see welcomeFrame
	history    []entry // oldest first, at most historyLimit
	lastSeq    int64   // seq of the newest entry ever appended
	lastActive time.Time
	conns      map[*client]struct{}
	limiter    *rate.Limiter // user messages
	elem       *list.Element // in sessions.lru
}

// sessions is the in-memory set of sessions. One mutex guards it all: no
// operation under it does I/O (frames go to each connection's buffered
// queue without blocking), so a slow browser never holds up anyone else,
// and appending an entry and queueing it to every tab happen atomically,
// which keeps every tab's frames in seq order.
type sessions struct {
	historyLimit int
	maxSessions  int
	maxConns     int
	rateLimit    int // messages per minute

	mu   sync.Mutex
	byID map[string]*session
	lru  *list.List // of *session; front is the most recently active
}

func newSessions(cfg *Config) *sessions {
	return &sessions{
		historyLimit: cfg.HistoryLimit,
		maxSessions:  cfg.MaxSessions,
		maxConns:     cfg.MaxConnsPerSession,
		rateLimit:    cfg.RateLimit,
		byID:         make(map[string]*session),
		lru:          list.New(),
	}
}

// getOrCreate returns the session id, creating it (and evicting another
// one if the set is full) when it is unknown. Call with mu held.
func (ss *sessions) getOrCreate(id string, now time.Time) *session {
	if s, ok := ss.byID[id]; ok {
		return s
	}
	for len(ss.byID) >= ss.maxSessions {
		ss.evictOne()
	}
	s := &session{
		id:         id,
		epoch:      newEpoch(),
		lastActive: now,
		conns:      make(map[*client]struct{}),
		limiter:    rate.NewLimiter(rate.Limit(float64(ss.rateLimit)/60), ss.rateLimit),
	}
	s.elem = ss.lru.PushFront(s)
	ss.byID[id] = s
	return s
}

// evictOne forgets the least recently active session without open tabs
// or, if the oldest few all have tabs, the least recently active one
// (whose tabs are closed; they reconnect into a fresh session). Call with
// mu held.
func (ss *sessions) evictOne() {
	victim := ss.lru.Back()
	for e, n := victim, 0; e != nil && n < evictScan; e, n = e.Prev(), n+1 {
		if len(e.Value.(*session).conns) == 0 {
			victim = e
			break
		}
	}
	if victim != nil {
		ss.remove(victim.Value.(*session))
	}
}

// remove forgets s and closes its connections. Call with mu held.
func (ss *sessions) remove(s *session) {
	for c := range s.conns {
		c.kill(websocket.StatusGoingAway, "session expired")
	}
	ss.lru.Remove(s.elem)
	delete(ss.byID, s.id)
}

// touch marks s as active now. Call with mu held.
func (ss *sessions) touch(s *session, now time.Time) {
	s.lastActive = now
	ss.lru.MoveToFront(s.elem)
}

// attach adds c to session id (creating it if unknown), then queues the
// welcome frame and every history entry newer than lastSeq to c, all
// under the lock so that no live entry can slip in between or twice.
// epoch is the client's idea of the session's epoch ("" if it has none).
func (ss *sessions) attach(id string, c *client, lastSeq int64, epoch string, now time.Time) error {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.getOrCreate(id, now)
	if len(s.conns) >= ss.maxConns {
		return errTooManyConns
	}
	s.conns[c] = struct{}{}
	ss.touch(s, now)
	if (epoch != "" && epoch != s.epoch) || lastSeq > s.lastSeq || lastSeq < 0 {
		// The client counted seqs of another incarnation of this session
		// (the gateway restarted, or forgot the session). Replay all we
		// have; the welcome tells the client to reset its counter.
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
		}
	}
}

// userMessageSeq returns the seq of the user message msgID in session id,
// if the history still holds it: a re-send of a message that was already
// accepted (its ack got lost) is acknowledged again, not delivered again.
func (ss *sessions) userMessageSeq(id, msgID string) (int64, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return 0, false
	}
	if e := s.find(fromUser, msgID); e != nil {
		return e.seq, true
	}
	return 0, false
}

// allow takes one token from session id's rate limiter.
func (ss *sessions) allow(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.getOrCreate(id, now).limiter.AllowN(now, 1)
}

// appendUser records a user message the core accepted, shows it on every
// tab of the session and acknowledges it to sender. It returns the seq.
func (ss *sessions) appendUser(id, msgID, text string, sender *client, now time.Time) int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.getOrCreate(id, now)
	ss.touch(s, now)
	var seq int64
	if e := s.find(fromUser, msgID); e != nil {
		seq = e.seq
	} else {
		seq = ss.append(s, entry{from: fromUser, id: msgID, text: text, ts: now})
	}
	sender.enqueue(encode(ackFrame{Type: typeAck, ID: msgID, Seq: seq}))
	return seq
}

// appendOutbound records a message for the user (creating the session if
// it is unknown) and shows it on every open tab. A message whose Selarti
// id is already in the history is not added twice. It returns the seq.
func (ss *sessions) appendOutbound(id, outID, from, text string, now time.Time) int64 {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.getOrCreate(id, now)
	ss.touch(s, now)
	if outID != "" {
		for i := range s.history {
			if e := &s.history[i]; e.from != fromUser && !e.event && e.id == outID {
				return e.seq
			}
		}
	}
	return ss.append(s, entry{from: from, id: outID, text: text, ts: now})
}

// appendEvent records a change of the dialog's state in session id and
// shows it on every open tab. It reports false for an unknown session:
// a note about a conversation nobody can see is not worth a session.
func (ss *sessions) appendEvent(id string, operator, closed bool, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return false
	}
	ss.append(s, entry{event: true, operator: operator, closed: closed, ts: now})
	return true
}

// append adds e to s's history with the next seq, drops the oldest entry
// beyond the limit, and queues e to every open tab. Call with mu held.
func (ss *sessions) append(s *session, e entry) int64 {
	s.lastSeq++
	e.seq = s.lastSeq
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
	return e.seq
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

// purgeIdle forgets sessions without open tabs that were last active
// before cutoff, and returns how many it forgot.
func (ss *sessions) purgeIdle(cutoff time.Time) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	// The list is ordered by lastActive, newest first, so the walk from
	// the back stops at the first session still fresh. Sessions with open
	// tabs are skipped: they are alive however quiet they are.
	for e := ss.lru.Back(); e != nil; {
		s := e.Value.(*session)
		if !s.lastActive.Before(cutoff) {
			break
		}
		prev := e.Prev()
		if len(s.conns) == 0 {
			ss.remove(s)
			n++
		}
		e = prev
	}
	return n
}

// len returns the number of sessions.
func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.byID)
}
