package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit. Every write goes through one goroutine, the committer,
// which runs the writes that are waiting together in one transaction, each
// under its own savepoint, and commits them with one fsync. A write returns
// only after the commit that holds it, so durability is that of one commit
// per write; the fsync, which costs far more than the statements, is shared
// by the callers that arrived while the previous commit was syncing. A lone
// caller waits for no one: there is no batching delay.
//
// The committer owns the write connection, so it may also lower
// synchronous for the writes not marked durable without any other write
// slipping into that commit. In WAL mode this is safe: the WAL is
// append-only, so the next synced commit makes their frames durable too,
// and a crash before it loses only them. A store marks a write not durable
// only when losing it in a crash loses nothing (core/store's claims: the
// leases they take are released when the store is opened).

// maxBatch bounds the writes in one transaction, and so the time one
// transaction holds the database.
const maxBatch = 128

// ErrClosed is what Write returns after Close.
var ErrClosed = errors.New("committer is closed")

// Request states: queued until the committer takes it, or abandoned by a
// caller whose context ended first.
const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// request is one call's write, waiting for the committer.
type request struct {
	fn      func(t *Tx) error       // nil for a raw request
	raw     func(c *sql.Conn) error // a Checkpoint or a Conn call
	then    func()                  // optional: after the commit, in the committer
	durable bool
	state   atomic.Int32
	done    chan error // buffered: the committer never blocks on it
}

// Committer runs the writes to one database (see Write). It owns the write
// connection it was given, and closes it in Close. Its methods are safe
// for concurrent use.
type Committer struct {
	db *sql.DB
	// conn is db's one connection, held by the committer for its whole
	// life, and stmts are prepared on it: a statement runs on it directly,
	// where a statement prepared on db would go through database/sql's
	// pool and be wrapped anew for each transaction (Tx.Stmt), which cost
	// a tenth of the bytes the gateway allocated per round trip.
	conn  *sql.Conn
	stmts map[string]*sql.Stmt

	writes   chan *request
	stop     chan struct{} // closed by Close to end the committer
	loopDone chan struct{} // closed by the committer when it ends
	broken   error         // set by the committer only: a sticky write error
	// unsynced says the write connection is at synchronous=NORMAL (see
	// setSynced); it is opened at FULL.
	unsynced bool

	// lazy and durable are the committer's, reused from batch to batch so
	// that a commit allocates no more than it must.
	lazy, durable []*request

	closeOnce sync.Once
}

// NewCommitter starts the committer on db, the connection OpenWriter
// opened, which it owns from now on: nothing else may use it. It prepares
// queries on it; Tx runs a query that is among them prepared.
func NewCommitter(ctx context.Context, db *sql.DB, queries []string) (*Committer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the write connection: %w", err)
	}
	stmts := make(map[string]*sql.Stmt, len(queries)+len(controlQueries))
	for _, q := range append(controlQueries, queries...) {
		if stmts[q] != nil {
			continue // listed twice: one statement serves
		}
		st, err := conn.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				_ = st.Close()
			}
			_ = conn.Close()
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		stmts[q] = st
	}
	c := &Committer{
		db:       db,
		conn:     conn,
		stmts:    stmts,
		writes:   make(chan *request, maxBatch),
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	go c.loop()
	return c, nil
}

// Close stops the committer, once the write it may be running has
// committed, and closes the write connection. A write still queued, or
// sent after Close, fails with ErrClosed. Close is safe to call twice;
// the second call does nothing.
//
// The connection closed last checkpoints the WAL into the database: a
// store that has read connections closes them first.
func (c *Committer) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.stop)
		<-c.loopDone
		// Statements prepared on a Conn are the caller's to close
		// (database/sql closes only those prepared on the DB), and SQLite
		// does not truly close a connection with statements open: the
		// last close would not checkpoint the WAL.
		var errs []error
		for _, st := range c.stmts {
			errs = append(errs, st.Close())
		}
		err = errors.Join(append(errs, c.conn.Close(), c.db.Close())...)
	})
	return err
}

// The statements that run every transaction, and around each write of a
// batch, prepared with the caller's: run as plain text, each was parsed
// and compiled again for every commit (the savepoints, for every write).
const (
	beginSQL      = "BEGIN IMMEDIATE"
	commitSQL     = "COMMIT"
	rollbackSQL   = "ROLLBACK"
	savepointSQL  = "SAVEPOINT w"
	releaseSQL    = "RELEASE w"
	rollbackToSQL = "ROLLBACK TO w"
)

var controlQueries = []string{beginSQL, commitSQL, rollbackSQL, savepointSQL, releaseSQL, rollbackToSQL}

// The synchronous settings are never prepared: SQLite applies a PRAGMA
// like this one while it compiles it, so a prepared one would act once,
// when prepared (and again whenever SQLite recompiles it), not when run.
const (
	syncNormalSQL = "PRAGMA synchronous = NORMAL"
	syncFullSQL   = "PRAGMA synchronous = FULL"
)

// exec runs q on the write connection, prepared when it is one of
// controlQueries.
func (c *Committer) exec(q string) error {
	if st := c.stmts[q]; st != nil {
		_, err := st.Exec()
		return err
	}
	_, err := c.conn.ExecContext(context.Background(), q)
	return err
}

// Tx is what a write sees of the shared transaction: the statements run
// prepared, on the write connection. They run without the caller's
// context: cancelling a statement inside an explicit transaction can roll
// back the whole transaction, other callers' writes included.
type Tx struct {
	conn  *sql.Conn // in a transaction: BEGIN IMMEDIATE ran on it
	stmts map[string]*sql.Stmt
}

// Exec runs q in the transaction, as sql.Tx.Exec does.
func (t *Tx) Exec(q string, args ...any) (sql.Result, error) {
	if st := t.stmts[q]; st != nil {
		return st.Exec(args...)
	}
	return t.conn.ExecContext(context.Background(), q, args...)
}

// QueryRow runs q in the transaction, as sql.Tx.QueryRow does.
func (t *Tx) QueryRow(q string, args ...any) *sql.Row {
	if st := t.stmts[q]; st != nil {
		return st.QueryRow(args...)
	}
	return t.conn.QueryRowContext(context.Background(), q, args...)
}

// Query runs q in the transaction, as sql.Tx.Query does. The caller closes
// the rows before fn returns.
func (t *Tx) Query(q string, args ...any) (*sql.Rows, error) {
	if st := t.stmts[q]; st != nil {
		return st.Query(args...)
	}
	return t.conn.QueryContext(context.Background(), q, args...)
}

// Write runs fn in a committed transaction, through the committer, and
// returns fn's error (its changes undone, the other writes of the batch
// kept) or else the transaction's. durable false lets the commit skip the
// fsync (see the top of this file). Once the committer has taken the
// write, the caller waits for its outcome even if ctx ends, so that a nil
// error always means committed and an error (almost always) means not
// written.
func (c *Committer) Write(ctx context.Context, durable bool, fn func(t *Tx) error) error {
	return c.WriteThen(ctx, durable, fn, nil)
}

// WriteThen is Write, and then, once the transaction holding fn's changes
// has committed (and only then), calls then in the committer's goroutine,
// before Write returns. The writes of one transaction call their then in
// the order their fn ran, and every then of a commit runs before the next
// transaction starts: a caller keeping an in-memory view of the database
// (core/store's pending index) updates it in the order the changes were
// committed, with no commit of another write in between.
func (c *Committer) WriteThen(ctx context.Context, durable bool, fn func(t *Tx) error, then func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.submit(ctx, &request{fn: fn, then: then, durable: durable, done: make(chan error, 1)})
}

// submit queues r for the committer and waits for its outcome (see
// WriteThen).
func (c *Committer) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.writes <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.loopDone:
		return ErrClosed
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		return <-r.done
	case <-c.loopDone:
		// Closed while r was queued: r was never run, unless the committer
		// took it just before it stopped, and then r.done has its outcome.
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ErrClosed
		}
		return <-r.done
	}
}

// ErrCheckpointBusy is what Checkpoint returns when a reader (another
// process's, say) kept it from copying the whole WAL into the database
// within the busy timeout: the WAL is left as it was, and the next
// checkpoint tries again.
var ErrCheckpointBusy = errors.New("checkpoint incomplete: a reader is using the WAL")

// Checkpoint copies the WAL into the database file and truncates the WAL
// to zero bytes (PRAGMA wal_checkpoint(TRUNCATE)). It runs in the
// committer, between two commits, so none of our writes is in progress;
// it waits for readers up to the busy timeout, holding the writes queued
// behind it meanwhile. SQLite's own checkpoints (every 1000 pages) reuse
// the WAL from its start but never shrink it below journal_size_limit
// (see OpenWriter), and cannot finish while readers keep it in use; this
// one gives the space back, say after old messages were deleted. A
// checkpoint that fails (the database file cannot grow on a full disk)
// loses nothing: the WAL keeps what it held.
func (c *Committer) Checkpoint(ctx context.Context) error {
	return c.Conn(ctx, func(*sql.Conn) error { return c.checkpoint() })
}

// Conn runs fn with the write connection, in the committer, between two
// commits and outside any transaction: for what must see or set that one
// connection (a PRAGMA of it, a bulk load in a test). Writes queued behind
// it wait until fn returns. fn must leave no transaction open.
func (c *Committer) Conn(ctx context.Context, fn func(conn *sql.Conn) error) error {
	return c.submit(ctx, &request{raw: fn, done: make(chan error, 1)})
}

// checkpointBusyTimeout is how long a Checkpoint waits for readers to
// leave the WAL; the writes queued behind it wait as long. Our own reads
// take milliseconds; a reader that stays longer (a sqlite3 shell in a
// transaction) makes this checkpoint give up rather than stall the
// gateway's writes for the whole busy timeout.
const checkpointBusyTimeout = 200 * time.Millisecond

// checkpoint runs a Checkpoint, on the committer's goroutine.
func (c *Committer) checkpoint() error {
	if c.broken != nil {
		return c.broken
	}
	ctx := context.Background()
	if _, err := c.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", checkpointBusyTimeout.Milliseconds())); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer func() {
		if _, err := c.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); err != nil {
			c.broken = fmt.Errorf("store needs reopening: restore busy_timeout: %w", err)
		}
	}()
	var busy, walFrames, copied int
	if err := c.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &walFrames, &copied); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("%w (%d of %d frames copied)", ErrCheckpointBusy, copied, walFrames)
	}
	return nil
}

// loop is the committer. It runs until stop is closed.
func (c *Committer) loop() {
	defer close(c.loopDone)
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-c.writes:
			batch = append(batch[:0], r)
		case <-c.stop:
			return
		}
		// Whatever queued up while the last commit was syncing.
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-c.writes:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

// commit runs the writes gathered in one go and tells each caller its
// outcome. When the batch holds a durable write, every write of the batch
// goes in its one synced transaction: a second, unsynced transaction for
// the others would write again to the WAL the pages both change, and cost
// a commit, to spare them a wait of one fsync. Without one, the writes
// commit unsynced. The writes gathered are concurrent calls, so any order
// between them is correct.
func (c *Committer) commit(batch []*request) {
	lazy, durable := c.lazy[:0], c.durable[:0]
	var raws []*request
	for _, r := range batch {
		if !r.state.CompareAndSwap(reqQueued, reqTaken) {
			continue // its caller gave up and returned
		}
		if r.raw != nil {
			raws = append(raws, r)
		} else if r.durable {
			durable = append(durable, r)
		} else {
			lazy = append(lazy, r)
		}
	}
	if len(durable) > 0 {
		durable = append(durable, lazy...)
		c.commitPart(durable, true)
	} else {
		c.commitPart(lazy, false)
	}
	if len(raws) > 0 && c.broken == nil {
		// What a raw call writes is as durable as a durable write.
		_ = c.setSynced(true) // on failure c.broken is set
	}
	for _, r := range raws {
		if c.broken != nil {
			r.done <- c.broken
			continue
		}
		r.done <- r.raw(c.conn)
	}
	clear(lazy)
	clear(durable)
	c.lazy, c.durable = lazy, durable
}

// commitPart runs writes in one transaction and tells each its outcome.
func (c *Committer) commitPart(live []*request, durable bool) {
	if len(live) == 0 {
		return
	}
	if c.broken != nil {
		for _, r := range live {
			r.done <- c.broken
		}
		return
	}
	errs, err := c.runBatch(live, durable)
	if err == nil {
		for i, r := range live {
			if errs[i] == nil && r.then != nil {
				r.then()
			}
		}
	}
	for i, r := range live {
		if errs[i] != nil {
			r.done <- errs[i]
		} else {
			r.done <- err
		}
	}
}

// runBatch runs the writes of one batch in one transaction, each under a
// savepoint so that one failing write does not undo the others. errs holds
// each write's own error (its savepoint rolled back); err is the
// transaction's, which applies to the writes without one.
func (c *Committer) runBatch(live []*request, durable bool) (errs []error, err error) {
	errs = make([]error, len(live))
	if err := c.setSynced(durable); err != nil {
		return errs, err
	}

	// The transaction is run by hand on the held connection, as
	// database/sql's BeginTx would with _txlock=immediate (OpenWriter).
	if err := c.exec(beginSQL); err != nil {
		return errs, err
	}
	t := &Tx{conn: c.conn, stmts: c.stmts}
	if len(live) == 1 {
		// The usual case under light load: no savepoint needed.
		if errs[0] = live[0].fn(t); errs[0] != nil {
			return errs, c.rollback()
		}
		return errs, c.commitTx()
	}
	for i, r := range live {
		if _, err := t.Exec(savepointSQL); err != nil {
			return errs, errors.Join(err, c.rollback())
		}
		if errs[i] = r.fn(t); errs[i] != nil {
			if _, err := t.Exec(rollbackToSQL); err != nil {
				return errs, errors.Join(err, c.rollback())
			}
		}
		if _, err := t.Exec(releaseSQL); err != nil {
			return errs, errors.Join(err, c.rollback())
		}
	}
	return errs, c.commitTx()
}

// setSynced sets synchronous for the next transaction: FULL for a durable
// one, NORMAL for one that is not. The setting stays until it must change,
// so that a run of unsynced commits does not switch it back and forth.
func (c *Committer) setSynced(durable bool) error {
	if c.unsynced == !durable {
		return nil
	}
	if !durable {
		if err := c.exec(syncNormalSQL); err != nil {
			return fmt.Errorf("lower synchronous: %w", err)
		}
		c.unsynced = true
		return nil
	}
	if err := c.exec(syncFullSQL); err != nil {
		// Never commit a durable write without FULL: stop writing.
		c.broken = fmt.Errorf("store needs reopening: restore synchronous=FULL: %w", err)
		return c.broken
	}
	c.unsynced = false
	return nil
}

// commitTx commits the transaction runBatch began. A COMMIT that fails
// (a full disk) can leave the transaction open in SQLite: it is rolled
// back, so that the next batch does not begin inside it.
func (c *Committer) commitTx() error {
	if err := c.exec(commitSQL); err != nil {
		return errors.Join(err, c.rollback())
	}
	return nil
}

// rollback ends the transaction runBatch began, undoing it. A rollback
// that fails when SQLite has already ended the transaction (it rolls back
// by itself on some errors) is no failure; any other leaves the
// connection in an unknown state, and the committer stops writing.
func (c *Committer) rollback() error {
	err := c.exec(rollbackSQL)
	if err == nil || strings.Contains(err.Error(), "no transaction is active") {
		return nil
	}
	c.broken = fmt.Errorf("store needs reopening: roll back a failed write: %w", err)
	return c.broken
}
