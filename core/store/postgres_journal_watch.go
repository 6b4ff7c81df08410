package store

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Watch on PostgreSQL: LISTEN for speed, polling for certainty.
//
// Every append notifies pgJournalChannel when it commits (pg_notify in
// pgJournalAppendSQL) with "<seq> <rev> <tag><key>", the tag naming the
// schema and the instance (pgJournals.noticeTag). Each Watch holds a
// connection of its own, not one of the pool's, that LISTENs on the
// channel and keeps the notices of its schema and instance: fn hears of
// an append within milliseconds of its commit.
//
// A notice is lost when the listening connection is: while it is down
// (the server restarted, a network fault, pg_terminate_backend) or broken
// without anyone knowing yet. So Watch also polls, on the pool: at its
// start, then every pgJournalPoll (about a second), and as soon as the
// listener has (re)connected, it reads the instance's journals whose rev
// (journal_revs at their last append) is above what it has seen, and
// tells fn of those it was not told of by a notice. An append missed by
// LISTEN is thus told within about a second, or as soon as the database
// can be reached again. A listener that is down reconnects with
// exponential backoff, and one that has heard nothing for pgJournalPing
// pings its server, so that a dead connection is found.
//
// Revs are taken in order but may commit out of order, so each poll looks
// back past the highest rev it had seen pgJournalLag before: an append
// whose rev was taken before a later one's but that committed after it
// is still found, if it committed within pgJournalLag. fn is told of a
// journal at a rev only once, whether by a notice or a poll (the notices
// carry the rev): a journal appended to repeatedly while fn is busy is
// told once, at its newest seq.
//
// Everything fn is given comes to Watch's own goroutine: the listener
// only records notices (the newest per journal) and signals, so that a
// slow fn delays no append and no notice.

// Watch's timings (pgWatchKnobs changes them in tests).
const (
	// pgJournalPoll is how often Watch polls.
	pgJournalPoll = time.Second
	// pgJournalLag is how far back past the highest rev it saw a poll
	// looks (see above).
	pgJournalLag = 2 * time.Second
	// pgJournalPing is how long the listening connection may stay quiet
	// before it is pinged.
	pgJournalPing = 30 * time.Second
	// pgJournalSteady is how long a listening connection must have lasted
	// for the reconnection backoff to start again from its first step.
	pgJournalSteady = 30 * time.Second
	// pgJournalQueryTimeout bounds a poll, a connection attempt, LISTEN
	// and a ping.
	pgJournalQueryTimeout = 10 * time.Second
	// pgJournalPage is how many journals a poll reads per query.
	pgJournalPage = 1000
)

const (
	pgJournalMaxRevSQL  = "SELECT COALESCE(max(rev), 0) FROM journals WHERE instance = $1"
	pgJournalChangedSQL = "SELECT key, last_seq, rev FROM journals WHERE instance = $1 AND rev > $2 ORDER BY rev LIMIT $3"
)

// pgWatchKnobs are settings of Watch that tests change (export_test.go)
// before they call it; a zero field is the default.
type pgWatchKnobs struct {
	poll time.Duration // pgJournalPoll
	ping time.Duration // pgJournalPing
	// redial, when not nil, is called on the listener's goroutine after
	// its connection is lost and before it connects again.
	redial func(ctx context.Context)
}

// pgWatch is one Watch call.
type pgWatch struct {
	j     pgJournals
	tag   string
	knobs pgWatchKnobs

	// The listener's notices for run: the newest per journal, and a
	// signal (capacity 1) that there are some. up (capacity 1) says the
	// listener has connected: a poll makes up for what it missed.
	signal  chan struct{}
	up      chan struct{}
	mu      sync.Mutex
	pending map[string]pgJournalNotice

	// run's own.
	fn    func(key string, lastSeq int64)
	based bool             // low and hi were read
	low   int64            // polls read revs above low
	hi    int64            // the highest rev read
	marks []pgRevMark      // hi after each recent poll, oldest first
	told  map[string]int64 // the rev fn was last told of, by journal (revs above low)
}

// pgJournalNotice is a journal's newest seq and its rev.
type pgJournalNotice struct {
	key      string
	seq, rev int64
}

// pgRevMark is the highest rev read by the poll at a time.
type pgRevMark struct {
	at time.Time
	hi int64
}

// Watch implements core.Journals (see the top of this file). It returns
// ctx's error when ctx ends, and ErrClosed when the store closes; it
// survives the database's going away and coming back.
func (j pgJournals) Watch(ctx context.Context, fn func(key string, lastSeq int64)) error {
	const op = "watch journals"
	s := j.s
	done, err := s.use(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	s.watchers.Add(1) // under use: Close waits for it
	done()
	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(s.closing, cancel)
	w := &pgWatch{
		j: j, tag: j.noticeTag(), knobs: s.watchKnobs,
		signal: make(chan struct{}, 1), up: make(chan struct{}, 1),
		pending: make(map[string]pgJournalNotice),
		fn:      fn, told: make(map[string]int64),
	}
	// The first poll reads where the revs are, before the listener
	// starts: an append that commits after it is either heard or read
	// by the poll that follows the listener's connection.
	_ = w.poll(wctx) // run tries again if it failed
	listened := make(chan struct{})
	go func() {
		defer s.watchers.Done()
		defer close(listened)
		w.listen(wctx)
	}()
	w.run(wctx)
	cancel()
	stopOnClose()
	<-listened
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%s: %w", op, ErrClosed)
}

// run tells fn of the listener's notices and polls, until ctx ends.
func (w *pgWatch) run(ctx context.Context) {
	every := cmp.Or(w.knobs.poll, pgJournalPoll)
	tick := time.NewTicker(every)
	defer tick.Stop()
	retry := newPgBackoff(100*time.Millisecond, every)
	var again <-chan time.Time // a failed poll's next try
	if !w.based {
		again = time.After(retry.NextBackOff())
	}
	due := false
	for ctx.Err() == nil {
		if due {
			due = false
			if err := w.poll(ctx); err != nil {
				if again == nil {
					again = time.After(retry.NextBackOff())
				}
			} else {
				retry.Reset()
			}
		}
		select {
		case <-ctx.Done():
		case <-w.signal:
			w.deliver(ctx)
		case <-w.up:
			due = true
		case <-tick.C:
			due = true
		case <-again:
			again, due = nil, true
		}
	}
}

// deliver tells fn of the listener's notices, oldest first.
func (w *pgWatch) deliver(ctx context.Context) {
	w.mu.Lock()
	got := w.pending
	w.pending = make(map[string]pgJournalNotice, len(got))
	w.mu.Unlock()
	ns := slices.SortedFunc(maps.Values(got), func(a, b pgJournalNotice) int { return cmp.Compare(a.rev, b.rev) })
	for _, n := range ns {
		if ctx.Err() != nil {
			return
		}
		w.tell(n)
	}
}

// tell calls fn for n unless fn was told of n's journal at n's rev or a
// later one.
func (w *pgWatch) tell(n pgJournalNotice) {
	if n.rev <= w.told[n.key] {
		return
	}
	w.told[n.key] = n.rev
	w.fn(n.key, n.seq)
}

// poll reads the journals appended to since the last polls (see the top
// of this file) and tells fn of them; the first one reads only where the
// revs are. It holds no connection while fn runs.
func (w *pgWatch) poll(ctx context.Context) error {
	found, err := w.read(ctx)
	if err != nil || found == nil {
		return err
	}
	now := time.Now()
	for _, n := range found {
		w.hi = max(w.hi, n.rev)
	}
	// low moves to the highest rev read by the newest poll at least
	// pgJournalLag ago.
	w.marks = append(w.marks, pgRevMark{now, w.hi})
	for len(w.marks) > 1 && now.Sub(w.marks[1].at) >= pgJournalLag {
		w.marks = w.marks[1:]
	}
	if now.Sub(w.marks[0].at) >= pgJournalLag && w.marks[0].hi > w.low {
		w.low = w.marks[0].hi
		maps.DeleteFunc(w.told, func(_ string, rev int64) bool { return rev <= w.low })
	}
	for _, n := range found {
		if ctx.Err() != nil {
			break
		}
		w.tell(n)
	}
	return nil
}

// read runs a poll's queries: the journals with a rev above low, oldest
// first (not nil, when they succeed), or, for the first poll, the highest
// rev (then nil).
func (w *pgWatch) read(ctx context.Context) ([]pgJournalNotice, error) {
	s := w.j.s
	done, err := s.use(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := context.WithTimeout(ctx, pgJournalQueryTimeout)
	defer cancel()
	if !w.based {
		var hi int64
		if err := s.pool.QueryRow(ctx, pgJournalMaxRevSQL, w.j.instance).Scan(&hi); err != nil {
			return nil, err
		}
		w.based, w.low, w.hi = true, hi, hi
		w.marks = []pgRevMark{{time.Now(), hi}}
		return nil, nil
	}
	found := []pgJournalNotice{}
	after := w.low
	for {
		rows, err := s.pool.Query(ctx, pgJournalChangedSQL, w.j.instance, after, pgJournalPage)
		if err != nil {
			return nil, err
		}
		page, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pgJournalNotice, error) {
			var n pgJournalNotice
			err := r.Scan(&n.key, &n.seq, &n.rev)
			return n, err
		})
		if err != nil {
			return nil, err
		}
		found = append(found, page...)
		if len(page) < pgJournalPage {
			return found, nil
		}
		after = page[len(page)-1].rev
	}
}

// listen keeps a connection LISTENing on pgJournalChannel until ctx ends,
// reconnecting with backoff when it is lost.
func (w *pgWatch) listen(ctx context.Context) {
	bo := newPgBackoff(100*time.Millisecond, 10*time.Second)
	for {
		lasted, connected := w.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if lasted >= pgJournalSteady {
			bo.Reset()
		}
		if connected && w.knobs.redial != nil {
			w.knobs.redial(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(bo.NextBackOff()):
		}
	}
}

// listenOnce connects, LISTENs and records the notices until the
// connection fails or ctx ends. It reports whether it got as far as
// listening, and for how long it did.
func (w *pgWatch) listenOnce(ctx context.Context) (lasted time.Duration, listened bool) {
	conn, err := w.connect(ctx)
	if err != nil {
		return 0, false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	start := time.Now()
	select {
	case w.up <- struct{}{}:
	default:
	}
	quiet := cmp.Or(w.knobs.ping, pgJournalPing)
	for {
		wctx, cancel := context.WithTimeout(ctx, quiet)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		if n != nil {
			w.note(n)
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil || !timedOut || conn.IsClosed() {
			return time.Since(start), true
		}
		// Quiet for a while: is the server still there?
		pctx, cancel := context.WithTimeout(ctx, pgJournalQueryTimeout)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return time.Since(start), true
		}
	}
}

// connect opens the listening connection, with the pool's settings and
// an application_name that tells it apart, and LISTENs.
func (w *pgWatch) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg := w.j.s.pool.Config().ConnConfig // a copy
	app := cmp.Or(cfg.RuntimeParams["application_name"], "switchboard")
	cfg.RuntimeParams["application_name"] = app + " journal watch"
	ctx, cancel := context.WithTimeout(ctx, pgJournalQueryTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgJournalChannel); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// note records notice n if it is one of this watch's schema and instance,
// and signals run.
func (w *pgWatch) note(n *pgconn.Notification) {
	if n.Channel != pgJournalChannel {
		return
	}
	seqText, rest, ok1 := strings.Cut(n.Payload, " ")
	revText, rest, ok2 := strings.Cut(rest, " ")
	key, ok3 := strings.CutPrefix(rest, w.tag)
	seq, err1 := strconv.ParseInt(seqText, 10, 64)
	rev, err2 := strconv.ParseInt(revText, 10, 64)
	if !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil {
		return // another schema's or instance's (or not a journal notice)
	}
	w.mu.Lock()
	if rev > w.pending[key].rev {
		w.pending[key] = pgJournalNotice{key: key, seq: seq, rev: rev}
	}
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// newPgBackoff is an exponential backoff from first to most, randomised.
func newPgBackoff(first, most time.Duration) *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = first
	bo.MaxInterval = most
	bo.Multiplier = 2
	bo.Reset()
	return bo
}
