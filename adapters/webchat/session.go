package webchat

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
)

// errTooManyConns is returned by attach when a session already has its
// maximum of open connections.
var errTooManyConns = errors.New("too many connections for this session")

// errTooManySessions is returned by attach when the session is new and
// its client's address may not start another one now (ip_session_limit).
var errTooManySessions = errors.New("too many new sessions from this address")

// maxIdleSessions bounds the sessions without open tabs kept in memory
// (max_sessions bounds them too, when it is lower). They are kept so that
// a page that reconnects finds its session without a read, and keeps its
// rate limit; the mailbox has everything else they hold.
const maxIdleSessions = 10000

// flushTouchesAt is how many sessions dropped from memory may wait for
// their last activity to be written before the janitor is asked to write
// it at once rather than at its next tick.
const flushTouchesAt = 4096

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
	if e.event && e.from == fromStatus {
		return statusFrameOf(e)
	}
	if e.event {
		return encode(eventFrame{Type: typeEvent, Seq: e.seq, Operator: e.operator, Closed: e.closed, TS: formatTS(e.ts)})
	}
	f := messageFrame{Type: typeMessage, Seq: e.seq, From: e.from, Text: e.text, TS: formatTS(e.ts)}
	if e.from == fromUser {
		// Only the client's own ids go back out; Selarti's stay inside.
		// The user's own text is shown as typed.
		f.ID = e.id
	} else {
		f.HTML = renderReply(e.text)
	}
	return encode(f)
}

// Values of entry.from.
const (
	fromUser     = "user"
	fromBot      = "bot"
	fromOperator = "operator"
)

// session is one browser's conversation as memory holds it: its epoch and
// last seq as the mailbox stores them (the history stays in the mailbox,
// which replays and dedupes from it) and its open connections (tabs).
type session struct {
	id string
	// lock serialises everything that reads or writes the session's
	// stored state (loading it, appending to it, replaying it, expiring
	// it). It is held across the mailbox call and the cache update that
	// follows, so that seqs are assigned, cached and pushed to the tabs in
	// one order. It is a channel so that waiting for it honours a context.
	lock chan struct{}

	// The fields below are guarded by sessions.mu. loaded, epoch,
	// lastSeq, unsynced and users change only with lock held too, so the
	// holder of lock may read them without mu.
	refs         int    // holders of and waiters for lock; the session stays cached while > 0
	cached       bool   // in sessions.byID
	loaded       bool   // epoch and lastSeq mirror the mailbox
	epoch        string // see welcomeFrame
	lastSeq      int64  // seq of the newest entry ever appended
	lastActive   int64  // unix ns: the last message, visit or tab closed
	storedActive int64  // unix ns: last_active as the mailbox had it when loaded
	conns        []*client
	// users are the user messages in the history, oldest first, if
	// usersKnown (see userMessageSeq).
	users      []userMsg
	usersKnown bool
	// The session's entries written without a sync (see appendUser):
	// how many, and the ticket of the last; none once a synced commit
	// has come after it.
	unsynced unsyncedEntries
	// statuses holds the last delivery state and reason stored per
	// client message id (see appendStatus). Guarded by lock.
	statuses map[string]string
	// list is sessions.idle or sessions.active while the session is in
	// it (see place), else nil.
	list *simplelru.LRU[string, *session]
}

// sessions is the cache of the mailbox's sessions, and the fan-out of
// their entries to open tabs. It holds every session with an open tab,
// and the most recently active others up to a bound. One mutex guards the
// set: no operation under it does I/O (frames go to each connection's
// queue without blocking), so a slow browser never holds up anyone else.
// Mailbox calls run under the session's own lock only, so sessions are
// written concurrently and their commits shared (see mailbox.go).
//
// A session leaves the cache only when nobody holds or waits for its lock
// (refs == 0), so there is at most one session value in use per id, and
// the mailbox sees one session's calls one at a time.
type sessions struct {
	mb sessionStore
	// shared is set when other replicas write mb too (journalMailbox).
	// Then the cache is only what this process last saw: another replica
	// may append to a session, or expire it and create it again, at any
	// time. What the cache serves must then be checked against mb
	// wherever a stale copy would be wrong: the welcome (refresh), the
	// seq an append gets (store), a re-sent message (usersKnown is never
	// set), expiry (expire, shareActivity); and the tabs learn of the
	// other replicas' entries from the store's notices (noticed).
	shared       bool
	historyLimit int
	maxSessions  int // loaded sessions, with tabs or not
	maxIdle      int // loaded sessions without tabs
	maxConns     int

	mu   sync.Mutex
	byID map[string]*session
	// idle and active order the sessions that may be dropped from memory,
	// least recently active first (golang-lru's simplelru): idle holds
	// the loaded ones without tabs, active those with tabs. A session in
	// use (refs > 0) is in neither, so that dropping one never has to
	// look past those that cannot go.
	idle, active *simplelru.LRU[string, *session]
	// limits is the user messages' rate limit, per session.
	limits *ratelimit.Limiter[string]
	// touches holds the last activity of sessions dropped from memory
	// whose mailbox row is older, until it is written (flushTouches).
	touches map[string]time.Time
	// flush asks the janitor to write touches now.
	flush chan struct{}
	// unsynced holds the unsynced entries of sessions dropped from memory
	// (see session.unsynced), until they are synced or the session is
	// loaded again; pruneAt is the size at which it is pruned.
	unsynced map[string]unsyncedEntries
	pruneAt  int
	// behind holds, for sessions with tabs here, the newest seq that
	// another replica's append gave them, as the store's notices told
	// (see noticed), until pushBehind has caught them up; wake tells it
	// there are some.
	behind map[string]int64
	wake   chan struct{}
}

// unsyncedEntries counts a session's entries committed without a sync,
// and not yet followed by a synced commit.
type unsyncedEntries struct {
	n      int
	ticket int64 // of the last of them
}

// count returns how many are still unsynced.
func (u unsyncedEntries) count(mb sessionStore) int {
	if u.n == 0 || mb.isSynced(u.ticket) {
		return 0
	}
	return u.n
}

func newSessions(cfg *Config, mb sessionStore) *sessions {
	return &sessions{
		mb:           mb,
		shared:       mb.shared(),
		historyLimit: cfg.HistoryLimit,
		maxSessions:  cfg.MaxSessions,
		maxIdle:      min(cfg.MaxSessions, maxIdleSessions),
		maxConns:     cfg.MaxConnsPerSession,
		idle:         newSessionList(cfg.MaxSessions),
		active:       newSessionList(cfg.MaxSessions),
		limits: ratelimit.New(ratelimit.Options[string]{
			Keys:   cfg.MaxSessions,
			PerKey: func(string) (rate.Limit, int) { return ratelimit.PerMinute(cfg.RateLimit) },
		}),
		flush:    make(chan struct{}, 1),
		byID:     make(map[string]*session),
		touches:  make(map[string]time.Time),
		unsynced: make(map[string]unsyncedEntries),
		pruneAt:  minPruneAt,
		behind:   make(map[string]int64),
		wake:     make(chan struct{}, 1),
	}
}

// newSessionList returns an empty list for sessions.idle or
// sessions.active. Its capacity is never what bounds it (makeRoom is,
// after each addition), so the library never evicts on its own.
func newSessionList(maxSessions int) *simplelru.LRU[string, *session] {
	l, err := simplelru.NewLRU[string, *session](maxSessions+2, nil)
	if err != nil {
		panic("webchat: " + err.Error()) // maxSessions is validated positive
	}
	return l
}

// minPruneAt is the smallest size of sessions.unsynced that is pruned.
const minPruneAt = 1024

// acquire returns session id, cached or not yet loaded, with its lock
// held. Call release when done.
func (ss *sessions) acquire(ctx context.Context, id string, now time.Time) (*session, error) {
	ss.mu.Lock()
	s, ok := ss.byID[id]
	if !ok {
		// Not counted against the bounds until it is loaded (see
		// makeRoom): a Send to a session nobody has open needs only the
		// lock.
		s = ss.add(id, now)
	}
	s.refs++
	ss.place(s) // in use: out of the lists
	ss.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
		return s, nil
	case <-ctx.Done():
		ss.mu.Lock()
		ss.unref(s)
		ss.mu.Unlock()
		return nil, ctx.Err()
	}
}

// release unlocks s, which acquire returned. The cache may have grown
// beyond its bounds while its sessions were in use; it shrinks back here.
func (ss *sessions) release(s *session) {
	<-s.lock
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.unref(s)
}

// unref counts a holder of (or waiter for) s's lock out, and puts s back
// in its list, or drops it if it holds nothing. Call with mu held.
func (ss *sessions) unref(s *session) {
	s.refs--
	ss.place(s)
	ss.dropIfUnused(s)
	ss.makeRoom()
}

// makeRoom drops sessions from the cache while it holds more than
// maxIdle sessions without tabs, or more than maxSessions loaded ones,
// least recently active first: sessions without tabs first, then those
// with tabs (which reconnect and load it again). Sessions in use are in
// neither list, so they stay (and are not counted, which lets the cache
// exceed its bounds by the calls in flight at most); so do sessions that
// only serve as locks: there are as many as calls in flight, and they go
// when the calls end. Call with mu held.
func (ss *sessions) makeRoom() {
	for ss.idle.Len() > ss.maxIdle {
		ss.evictOldest(ss.idle)
	}
	for ss.idle.Len()+ss.active.Len() > ss.maxSessions {
		if ss.idle.Len() > 0 {
			ss.evictOldest(ss.idle)
		} else {
			ss.evictOldest(ss.active)
		}
	}
}

// evictOldest drops from the cache the least recently active session of
// l, closing its tabs if it has any. The mailbox keeps what is dropped.
// Call with mu held.
func (ss *sessions) evictOldest(l *simplelru.LRU[string, *session]) {
	_, s, ok := l.RemoveOldest()
	if !ok {
		return
	}
	s.list = nil
	ss.remove(s)
}

// fill sets the cached copy of s, now loaded. Call with mu held.
func (ss *sessions) fill(s *session, m sessionMeta) {
	s.epoch, s.lastSeq, s.loaded = m.epoch, m.lastSeq, true
	s.users, s.usersKnown = m.users, m.usersKnown
	s.storedActive = m.lastActive.UnixNano()
	s.lastActive = max(s.lastActive, s.storedActive)
	ss.place(s)
	ss.makeRoom()
}

// add caches a new, not yet loaded session. Call with mu held.
func (ss *sessions) add(id string, now time.Time) *session {
	s := &session{id: id, lock: make(chan struct{}, 1), lastActive: now.UnixNano(), cached: true}
	ss.byID[id] = s
	return s
}

// place puts s in the list its state calls for: none while in use or not
// cached, active with tabs, idle when loaded without tabs, none otherwise.
// A session added to a list goes to its front (most recently active).
// Call with mu held.
func (ss *sessions) place(s *session) {
	var want *simplelru.LRU[string, *session]
	switch {
	case !s.cached || s.refs > 0:
	case len(s.conns) > 0:
		want = ss.active
	case s.loaded:
		want = ss.idle
	}
	if s.list == want {
		return
	}
	if s.list != nil {
		s.list.Remove(s.id)
	}
	if want != nil {
		want.Add(s.id, s)
	}
	s.list = want
}

// dropIfUnused drops s from the cache if it holds nothing worth keeping:
// not loaded (it only served as a lock), no tabs, nobody using it. Call
// with mu held.
func (ss *sessions) dropIfUnused(s *session) {
	if s.refs == 0 && !s.loaded && len(s.conns) == 0 && s.cached {
		ss.remove(s)
	}
}

// remove drops s from the cache and closes its connections, and keeps
// its last activity for the mailbox if the mailbox is behind. Call with
// mu held, and only when s.refs is 0.
func (ss *sessions) remove(s *session) {
	for _, c := range s.conns {
		c.kill(websocket.StatusGoingAway, "session expired")
	}
	if s.unsynced.count(ss.mb) > 0 {
		ss.unsynced[s.id] = s.unsynced
		if len(ss.unsynced) >= ss.pruneAt {
			ss.pruneUnsynced()
		}
	}
	if s.loaded && s.lastActive > s.storedActive {
		ss.touches[s.id] = time.Unix(0, s.lastActive)
		if len(ss.touches) >= flushTouchesAt {
			select {
			case ss.flush <- struct{}{}:
			default:
			}
		}
	}
	s.cached = false
	ss.place(s)
	delete(ss.byID, s.id)
}

// touch marks s as active now. Call with mu held.
func (ss *sessions) touch(s *session, now time.Time) {
	s.lastActive = max(s.lastActive, now.UnixNano())
	if s.list != nil {
		s.list.Get(s.id) // to the front
	}
}

// load fills the cache of s from the mailbox, unless it is loaded. It
// reports whether the mailbox holds the session. Call with s locked.
func (ss *sessions) load(ctx context.Context, s *session) (bool, error) {
	if s.loaded {
		return true, nil
	}
	m, ok, err := ss.mb.meta(ctx, s.id)
	if err != nil || !ok {
		return false, err
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if u, ok := ss.unsynced[s.id]; ok {
		s.unsynced = u
		delete(ss.unsynced, s.id)
	}
	if t, ok := ss.touches[s.id]; ok {
		// Dropped from memory before its last visit was written: that
		// visit still counts.
		s.lastActive = max(s.lastActive, t.UnixNano())
		delete(ss.touches, s.id)
	}
	ss.fill(s, m)
	return true, nil
}

// refresh brings the cached copy of s, which is loaded, up to a store
// that other replicas write too (sessions.shared): it reads the session's
// head and, if another replica appended, shows the tabs the entries they
// have not been shown (pushMissed). A session that the store no longer
// holds, or holds under another epoch (expired and created again by
// another replica), is invalidated: its tabs reconnect, and the next load
// reads it afresh. Call with s locked.
func (ss *sessions) refresh(ctx context.Context, s *session) error {
	m, ok, err := ss.mb.meta(ctx, s.id)
	if err != nil {
		return err
	}
	if !ok || m.epoch != s.epoch {
		ss.invalidate(s)
		return nil
	}
	ss.mu.Lock()
	s.storedActive = max(s.storedActive, m.lastActive.UnixNano())
	s.lastActive = max(s.lastActive, s.storedActive)
	behind := m.lastSeq > s.lastSeq
	ss.mu.Unlock()
	if !behind {
		return nil
	}
	return ss.pushMissed(ctx, s, m.lastSeq)
}

// pushMissed reads the entries of s after its cached last seq, which
// another replica appended, queues them to every open tab, as attach
// queues a reconnecting tab's replay, and moves the cached last seq to
// the newest of them, or to upTo, a seq the store gave, if higher (the
// entries in between were trimmed already). Call with s locked.
func (ss *sessions) pushMissed(ctx context.Context, s *session, upTo int64) error {
	missed, err := ss.mb.history(ctx, s.id, s.lastSeq)
	if err != nil {
		return err
	}
	// Encoded before taking mu, which every connection waits for.
	frames := make([][]byte, len(missed))
	for i := range missed {
		frames[i] = missed[i].frame()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, f := range frames {
		for _, c := range s.conns {
			c.enqueue(f)
		}
	}
	if n := len(missed); n > 0 {
		upTo = max(upTo, missed[n-1].seq)
	}
	s.lastSeq = max(s.lastSeq, upTo)
	return nil
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
	s.loaded, s.epoch, s.lastSeq = false, "", 0
	s.users, s.usersKnown = nil, false
	s.statuses = nil
	for _, c := range s.conns {
		c.kill(websocket.StatusGoingAway, "session reloaded")
	}
	ss.place(s)
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
	if s.loaded && ss.shared {
		// Another replica may have appended since the cache was filled
		// (the notice may not be handled yet), or expired the session
		// and created it again: the welcome must name the epoch and last
		// seq the store has, or the browser would count seqs that other
		// entries get, and the lastSeq check below would reset a browser
		// that saw an entry there.
		if err := ss.refresh(ctx, s); err != nil {
			return err
		}
	}
	stored, err := ss.load(ctx, s)
	if err != nil {
		return err
	}
	if !stored {
		if c.newSession != nil && !c.newSession() {
			return errTooManySessions
		}
		// Stored before the welcome names the epoch: the browser must
		// find the same epoch after a crash.
		ep, last, err := ss.mb.create(ctx, id, newEpoch(), name, now)
		if err != nil {
			return err
		}
		if last == 0 {
			ss.mu.Lock()
			// New, so it has no user message; but in a shared store
			// another replica may store some at any time, which this list
			// would miss: there, every re-sent id is looked up.
			ss.fill(s, sessionMeta{epoch: ep, lastActive: now, usersKnown: !ss.shared})
			ss.mu.Unlock()
		} else if _, err := ss.load(ctx, s); err != nil {
			// Another writer (an operator's tool) got there first.
			return err
		}
	}

	ss.mu.Lock()
	full := len(s.conns) >= ss.maxConns
	ss.mu.Unlock()
	if full {
		// Only detach changes conns without the lock, and it only
		// removes: checked before the replay is read.
		return errTooManyConns
	}
	if (epoch != "" && epoch != s.epoch) || lastSeq > s.lastSeq || lastSeq < 0 {
		// The client counted seqs of another incarnation of this session
		// (the mailbox forgot it, its ttl passed). Replay all we have; the
		// welcome tells the client to reset its counter.
		lastSeq = 0
	}
	// Read and encoded under the session's lock only: no entry can be
	// appended, and so pushed to c, before these are queued.
	frames := [][]byte{encode(welcomeFrame{Type: typeWelcome, Session: id, LastSeq: s.lastSeq, Epoch: s.epoch})}
	if lastSeq < s.lastSeq {
		missed, err := ss.mb.history(ctx, id, max(lastSeq, s.lastSeq-int64(ss.historyLimit)))
		if err != nil {
			return err
		}
		for i := range missed {
			if missed[i].seq > s.lastSeq {
				// Appended by another replica since the welcome's
				// last seq was read (a shared store): its notice brings
				// it to every tab, this one included.
				break
			}
			frames = append(frames, missed[i].frame())
		}
	}

	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.conns = append(s.conns, c)
	ss.place(s)
	ss.touch(s, now)
	for _, f := range frames {
		c.enqueue(f)
	}
	return nil
}

// detach removes c from session id.
func (ss *sessions) detach(id string, c *client, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.byID[id]
	if !ok {
		return
	}
	i := slices.Index(s.conns, c)
	if i < 0 {
		return
	}
	s.conns = slices.Delete(s.conns, i, i+1)
	if len(s.conns) == 0 {
		s.conns = nil
	}
	ss.touch(s, now)
	ss.place(s)
	ss.dropIfUnused(s)
	ss.makeRoom()
}

// userMessageSeq returns the seq of the user message msgID in session id,
// if the history still holds it: a re-send of a message that was already
// accepted (its ack got lost) is acknowledged again, not delivered again.
// A session in memory knows the hashes of its user messages' ids, so a
// new message (no hash matches) costs no read. It needs no lock: a
// message is in the history once its append has returned, and a re-send
// that races with its first copy's append is stored once anyway, and
// acknowledged with the first copy's seq.
func (ss *sessions) userMessageSeq(ctx context.Context, id, msgID string) (int64, bool, error) {
	h := idHash(msgID)
	ss.mu.Lock()
	s, ok := ss.byID[id]
	maybe := !ok || !s.loaded || !s.usersKnown || slices.ContainsFunc(s.users, func(u userMsg) bool { return u.hash == h })
	ss.mu.Unlock()
	if !maybe {
		return 0, false, nil
	}
	return ss.mb.userSeq(ctx, id, msgID)
}

// allow takes one token from session id's rate limit of user messages.
func (ss *sessions) allow(id string) bool { return ss.limits.Allow(id) }

// refund gives back the token of a message the core did not accept (a
// full disk, say): the page re-sends it, and a visitor pays only for the
// messages that went through.
func (ss *sessions) refund(id string) { ss.limits.Refund(id) }

// appendUser stores a user message the core accepted, shows it on every
// tab of the session and then acknowledges it to sender. A message whose
// id the history holds already is only acknowledged again. Nothing is
// acknowledged when it returns an error.
//
// The commit is not synced, unless the session has maxUnsynced entries
// that no synced commit has followed yet: the message itself is safe in
// the core's outbox, synced before DeliverFunc returned, and the next
// synced commit (a reply, usually) syncs this copy too. A process crash
// loses nothing; a machine crash can lose these last copies from the
// history, and the mailbox then skips their seqs (see maxUnsynced).
func (ss *sessions) appendUser(ctx context.Context, id, msgID, text, name string, sender *client, now time.Time) error {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return err
	}
	defer ss.release(s)
	// s.unsynced changes only under the lock, which is held.
	res, err := ss.store(ctx, s, appendReq{
		session:  id,
		e:        entry{from: fromUser, id: msgID, text: text, ts: now},
		newEpoch: newEpoch(), // the session expired since the hello
		name:     name,
		// A session not loaded may have unsynced entries that memory
		// does not know of.
		lazy: s.loaded && s.unsynced.count(ss.mb) < maxUnsynced,
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
		// A context that ended before the committer took the write, a
		// closed mailbox, or an entry the store can never take (too
		// large for the shared store's journals) means not written;
		// anything else may leave the cache behind the mailbox.
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errMailboxClosed) && !core.IsPermanent(err) {
			ss.invalidate(s)
		}
		return res, err
	}
	if !res.dup && !res.missing && !res.synced {
		ss.mu.Lock()
		s.unsynced = unsyncedEntries{n: s.unsynced.count(ss.mb) + 1, ticket: res.ticket}
		ss.mu.Unlock()
	}
	if res.missing || res.dup || !s.loaded {
		// Not cached (then no tab is open on it): the mailbox has it,
		// which is all a later load needs.
		if !res.missing {
			ss.mu.Lock()
			ss.touch(s, r.e.ts)
			ss.mu.Unlock()
		}
		return res, nil
	}
	if ss.shared && res.epoch == s.epoch && res.seq > s.lastSeq+1 {
		// Another replica appended since the cache last looked, and its
		// notice has not been handled yet: the seq is the store's, and
		// the tabs get the entries in between first, then this one, as
		// a reconnecting tab's replay reads them.
		if err := ss.pushMissed(ctx, s, res.seq); err != nil {
			// Committed, but the tabs cannot be caught up: they
			// reconnect and replay.
			ss.invalidate(s)
		}
		ss.mu.Lock()
		ss.touch(s, r.e.ts)
		s.storedActive = max(s.storedActive, r.e.ts.UnixNano())
		ss.mu.Unlock()
		return res, nil
	}
	var b []byte
	if res.epoch == s.epoch && res.seq == s.lastSeq+1 {
		// Encoded before taking mu, which every connection waits for.
		e := r.e
		e.seq = res.seq
		b = e.frame()
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.touch(s, r.e.ts)
	// The append set the stored last activity to the entry's time.
	s.storedActive = max(s.storedActive, r.e.ts.UnixNano())
	if b == nil {
		// The cache missed a change of the mailbox: start over from it.
		ss.invalidateLocked(s)
		return res, nil
	}
	s.lastSeq = res.seq
	if r.e.from == fromUser && !r.e.event && s.usersKnown {
		// Only the history's window counts: older ones are deleted.
		from := res.seq - int64(ss.historyLimit)
		i := 0
		for i < len(s.users) && s.users[i].seq <= from {
			i++
		}
		s.users = append(s.users[i:], userMsg{seq: res.seq, hash: idHash(r.e.id)})
	}
	for _, c := range s.conns {
		c.enqueue(b)
	}
	return res, nil
}

// expireBatch bounds the sessions one expire round looks at.
const expireBatch = 500

// expire deletes from the mailbox (and the cache) up to expireBatch
// sessions last active before cutoff, with their history, and returns how
// many it deleted. Sessions with open tabs are alive however quiet they
// are, and memory may know of activity the mailbox does not (hellos and
// reconnects are not written at once): both are marked active instead.
// Sessions in use are left for the next round.
//
// Only what the store calls idle is deleted, whatever memory holds: in a
// shared store, a session idle here (or not even cached) may have a tab
// open on another replica, which this one cannot see. That replica keeps
// the store's activity of its sessions current (shareActivity), so they
// never come out of idle; what memory knows here only spares more.
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
			if t, ok := ss.touches[id]; ok && !t.Before(cutoff) {
				// Visited after cutoff, then dropped from memory.
				touch[id] = t
				delete(ss.touches, id)
				continue
			}
			// Held as a lock only while the delete runs.
			s = ss.add(id, now)
		case s.refs > 0:
			continue
		case len(s.conns) > 0:
			touch[id] = now
			continue
		case s.lastActive >= cutoff.UnixNano():
			touch[id] = time.Unix(0, s.lastActive)
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
		ss.place(s) // in use: out of the lists
		claimed = append(claimed, s)
		del = append(del, id)
	}
	ss.mu.Unlock()

	err = ss.mb.expire(ctx, del, cutoff, touch)
	ss.mu.Lock()
	for id, t := range touch {
		if s, ok := ss.byID[id]; ok && s.loaded {
			s.storedActive = max(s.storedActive, t.UnixNano())
		} else if err != nil {
			ss.keepTouch(id, t)
		}
	}
	if err == nil {
		for _, s := range claimed {
			ss.invalidateLocked(s)
			delete(ss.touches, s.id)
		}
	}
	ss.mu.Unlock()
	for _, s := range claimed {
		ss.release(s)
	}
	if err != nil {
		return 0, err
	}
	return len(del), nil
}

// keepTouch records t as the last activity of session id, which is not in
// memory, unless a later one is recorded. Call with mu held.
func (ss *sessions) keepTouch(id string, t time.Time) {
	if old, ok := ss.touches[id]; !ok || t.After(old) {
		ss.touches[id] = t
	}
}

// flushTouches writes the last activity of the sessions dropped from
// memory since the last flush. With all set, it also writes that of the
// sessions still cached whose mailbox row is behind (at Stop).
func (ss *sessions) flushTouches(ctx context.Context, all bool) error {
	ss.mu.Lock()
	at := ss.touches
	ss.touches = make(map[string]time.Time)
	var written []*session
	if all {
		for _, s := range ss.byID {
			if s.loaded && s.lastActive > s.storedActive {
				at[s.id] = time.Unix(0, s.lastActive)
				written = append(written, s)
			}
		}
	}
	ss.mu.Unlock()
	if len(at) == 0 {
		return nil
	}
	err := ss.mb.touch(ctx, at)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if err != nil {
		for id, t := range at {
			if _, cached := ss.byID[id]; !cached {
				ss.keepTouch(id, t)
			}
		}
		return err
	}
	for _, s := range written {
		s.storedActive = max(s.storedActive, at[s.id].UnixNano())
	}
	return nil
}

// pruneUnsynced forgets the entries of sessions.unsynced that are synced
// by now. Call with mu held.
func (ss *sessions) pruneUnsynced() {
	for id, u := range ss.unsynced {
		if u.count(ss.mb) == 0 {
			delete(ss.unsynced, id)
		}
	}
	ss.pruneAt = max(minPruneAt, 2*len(ss.unsynced))
}

// len returns the number of sessions loaded in the cache and not in use.
func (ss *sessions) len() int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.idle.Len() + ss.active.Len()
}
