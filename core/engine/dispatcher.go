package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// dispatcher drains one direction of the outbox: it claims the heads of
// chats from the store and runs an attempt for each on a bounded pool of
// workers. The store's lease rule (one head per chat at a time) gives
// per-chat order; the pool gives parallelism across chats, so a slow chat
// occupies one worker and never holds back the others.
//
// The router takes the fast path when a worker is free: it reserves the
// worker, queues the message with Store.EnqueueClaim, which leases it in
// the same transaction when its chat is idle, and starts the attempt
// itself. That spares the usual message (a chat with nothing in flight)
// a Claim, a write transaction of its own, and the wait for the
// dispatcher's loop to wake.
type dispatcher struct {
	dir      store.Direction
	store    store.Store
	attempt  func(ctx context.Context, m store.Message) error
	policy   retryPolicy
	workers  int
	log      *slog.Logger
	metrics  *Metrics
	onResult func(m store.Message, res attemptResult) // optional; after the store knows
	// onDelivered, optional, runs once the store has m delivered.
	onDelivered func(m store.Message)
	// The observers of switchboard_delivery_stage_seconds for dir.
	queued, attempted, recorded prometheus.Observer

	wake chan struct{}
	// slots holds one token per attempt running or reserved: at most
	// workers.
	slots chan struct{}
	// records holds one token per attempt whose result is being written
	// to the store: at most workers. An attempt hands its slot over to a
	// record token as soon as the far side has answered (see handOff).
	records chan struct{}
	// jobs takes each attempt to one of run's workers.
	jobs chan store.Message
	// inflight counts the attempts run has to wait for before it returns,
	// until their results are recorded.
	inflight sync.WaitGroup
	// pool runs the worker goroutines, which start spawns.
	pool sync.WaitGroup
	// mu guards running, so that no attempt is reserved once run has
	// started to wait for inflight, and work and spawned.
	mu      sync.Mutex
	running bool
	work    context.Context // the attempts' context, from run
	spawned int             // worker goroutines started
}

// attemptResult is what became of one attempt, for onResult.
type attemptResult struct {
	err      error
	outcome  string    // OutcomeDelivered, OutcomeRetry, OutcomeDeferred or OutcomeDead
	next     time.Time // when the message is due again (retry and deferral)
	recorded bool      // the store has the result (it is not, on a store failure or when settled already)
}

// retryPolicy decides when a failed message is tried again, and when it
// is given up as a dead letter.
type retryPolicy struct {
	initial, max   time.Duration
	maxAttempts    int
	maxAge         time.Duration
	attemptTimeout time.Duration
}

// idlePoll is how often an idle dispatcher looks for messages whose retry
// time has come. New messages wake it at once.
const idlePoll = 250 * time.Millisecond

func newDispatcher(dir store.Direction, st store.Store, attempt func(context.Context, store.Message) error,
	policy retryPolicy, workers int, log *slog.Logger, metrics *Metrics) *dispatcher {
	queued, attempted, recorded := metrics.stageObservers(directionLabel(dir))
	return &dispatcher{
		dir:       dir,
		store:     st,
		attempt:   attempt,
		policy:    policy,
		workers:   workers,
		log:       log.With("outbox", string(dir)),
		metrics:   metrics,
		wake:      make(chan struct{}, 1),
		slots:     make(chan struct{}, workers),
		records:   make(chan struct{}, workers),
		jobs:      make(chan store.Message),
		queued:    queued,
		attempted: attempted,
		recorded:  recorded,
	}
}

// reserve takes a free worker for an attempt the caller starts with start,
// or gives back with release. It does not wait: false means every worker
// is busy, or the dispatcher is not running.
func (d *dispatcher) reserve() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running {
		return false
	}
	select {
	case d.slots <- struct{}{}:
		d.inflight.Add(1)
		return true
	default:
		return false
	}
}

// handOff frees the worker of an attempt whose far side has answered,
// for the next attempt, while this one's result is written to the store:
// the worker need not wait for that commit, which under load waits for
// the committer's batch in progress, so the workers stay busy sending.
// The message stays leased until its result is recorded, so its chat's
// next message still waits for it. The result takes a record token, and
// waits for one when workers results are being recorded already: a store
// that stalls holds the workers back instead of piling up results.
func (d *dispatcher) handOff() {
	d.records <- struct{}{}
	<-d.slots
	d.notify()
}

// release gives back a worker taken by reserve that starts no attempt,
// and wakes the loop, which may now claim a message for it.
func (d *dispatcher) release() {
	<-d.slots
	d.inflight.Done()
	d.notify()
}

// finish ends an attempt handed off by handOff, once its result is
// recorded (or was not to be), and wakes the loop, which may now claim
// the chat's next message.
func (d *dispatcher) finish() {
	<-d.records
	d.inflight.Done()
	d.notify()
}

// start runs the attempt of m, leased by the caller, on the worker the
// caller reserved: an idle worker goroutine, or a new one while there
// are fewer than 2*workers. An attempt holds a slot and then, while its
// result is recorded, a record token (see handOff), so that many always
// have one free for start.
func (d *dispatcher) start(m store.Message) {
	select {
	case d.jobs <- m:
		return
	default:
	}
	d.mu.Lock()
	if d.spawned < 2*d.workers {
		d.spawned++
		work := d.work
		d.pool.Go(func() { d.worker(work) })
	}
	d.mu.Unlock()
	d.jobs <- m
}

// worker runs attempts handed to it by start until jobs is closed. The
// workers live as long as run, rather than a goroutine per attempt: an
// attempt's call chain (formatting, a client library's JSON encoder, an
// HTTP request) grows a new goroutine's stack from its first few
// kilobytes by copying it several times, which cost about a tenth of the
// gateway's CPU under load (see docs/benchmarks.md); a worker's stack
// stays grown between attempts. They are started as the load needs them,
// so that an idle gateway holds none.
func (d *dispatcher) worker(work context.Context) {
	for m := range d.jobs {
		d.process(work, m, d.handOff)
		d.finish()
	}
}

// notify wakes the dispatcher: a message was queued or a worker freed up.
func (d *dispatcher) notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// lease is how long a claimed message stays reserved for its worker; it
// outlasts an attempt so that a live worker never loses its message.
func (d *dispatcher) lease() time.Duration { return d.policy.attemptTimeout + 30*time.Second }

// run claims and dispatches until ctx ends, then waits for the attempts in
// flight. Those run under work, which the caller cancels when the
// shutdown deadline passes. It is called once.
func (d *dispatcher) run(ctx, work context.Context) {
	d.mu.Lock()
	d.work, d.running = work, true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running = false
		d.mu.Unlock()
		d.inflight.Wait()
		close(d.jobs)
		d.pool.Wait()
	}()
	timer := time.NewTimer(idlePoll)
	defer timer.Stop()
	for {
		if free := d.workers - len(d.slots); free > 0 {
			msgs, err := d.store.Claim(ctx, d.dir, time.Now(), d.lease(), free)
			if err != nil && ctx.Err() == nil {
				d.log.Error("claim messages", "err", err)
			}
			for _, m := range msgs {
				// May wait: the router may have reserved a worker since
				// free was counted. The message stays leased meanwhile.
				d.slots <- struct{}{}
				d.inflight.Add(1)
				d.start(m)
			}
			if len(msgs) == free {
				continue // there may be more: claim again as soon as a slot frees
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(idlePoll)
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// process makes one attempt, calls answered once the attempt has ended,
// and records its result in the store.
func (d *dispatcher) process(ctx context.Context, m store.Message, answered func()) {
	start := time.Now()
	observeSince(d.queued, m.CreatedAt, start)
	actx, cancel := context.WithTimeout(ctx, d.policy.attemptTimeout)
	err := d.safeAttempt(actx, m)
	cancel()
	ended := time.Now()
	observeSince(d.attempted, start, ended)
	answered()
	var df *deferral
	isDeferral := errors.As(err, &df)
	if err != nil && ctx.Err() != nil && !(isDeferral && df.inDoubt) {
		// Shutting down: the attempt was cut short, not failed. Leave the
		// message leased; the store releases it at the next start. One
		// that may have reached the far side is recorded as in doubt.
		return
	}
	// Record the result even if shutdown starts now: a delivered message
	// that is not marked delivered would be sent twice.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer scancel()
	inst := instanceOf(m)
	label := directionLabel(d.dir)
	var serr error
	res := attemptResult{err: err}
	switch {
	case err == nil:
		res.outcome = OutcomeDelivered
		serr = d.store.Delivered(sctx, m.ID)
		d.metrics.message(label, inst, OutcomeDelivered)
		d.log.Debug("delivered", "chat", m.Chat, "seq", m.ID, "attempts", m.Attempts+1)
	case isDeferral && !df.inDoubt && time.Since(m.CreatedAt) >= d.policy.maxAge:
		res.outcome = OutcomeDead
		serr = d.store.Kill(sctx, m.ID, df.Error())
		d.metrics.message(label, inst, OutcomeDead)
		d.log.Error("message dead-lettered", "chat", m.Chat, "seq", m.ID, "age", time.Since(m.CreatedAt).Round(time.Second), "err", df)
	case isDeferral:
		until := df.until
		if until.IsZero() {
			// Not a failure, so the attempts do not grow: the wait stays
			// that of the next attempt.
			until = time.Now().Add(d.policy.backoff(m.Attempts + 1))
		}
		res.outcome, res.next = OutcomeDeferred, until
		serr = d.store.Defer(sctx, m.ID, until, df.inDoubt || df.keepDoubt, df.note())
		d.metrics.message(label, inst, OutcomeDeferred)
		d.log.Debug("delivery deferred", "chat", m.Chat, "seq", m.ID, "until", until, "in_doubt", df.inDoubt, "reason", df.reason)
	case d.giveUp(m, err):
		res.outcome = OutcomeDead
		serr = d.store.Kill(sctx, m.ID, err.Error())
		d.metrics.message(label, inst, OutcomeDead)
		d.log.Error("message dead-lettered", "chat", m.Chat, "seq", m.ID, "attempts", m.Attempts+1, "err", err)
	default:
		wait := d.policy.backoff(m.Attempts + 1)
		if ra, ok := core.RetryAfter(err); ok && ra > wait {
			wait = ra
		}
		res.outcome, res.next = OutcomeRetry, time.Now().Add(wait)
		serr = d.store.Retry(sctx, m.ID, res.next, err.Error())
		d.metrics.message(label, inst, OutcomeRetry)
		d.log.Warn("delivery failed, will retry", "chat", m.Chat, "seq", m.ID, "attempts", m.Attempts+1, "wait", wait, "err", err)
	}
	switch {
	case errors.Is(serr, store.ErrNotFound):
		// Settled already: Selarti's echo proved it delivered while the
		// attempt ran (see echoReconciler), or its lease ran out and
		// another attempt finished it.
		d.log.Debug("delivery result not recorded: settled already", "chat", m.Chat, "seq", m.ID)
	case serr != nil:
		// The lease runs out and the message is tried again: at least once.
		d.log.Error("record delivery result", "chat", m.Chat, "seq", m.ID, "err", serr)
	case err == nil && d.onDelivered != nil:
		d.onDelivered(m)
	}
	observeSince(d.recorded, ended, time.Now())
	res.recorded = serr == nil
	if d.onResult != nil {
		d.onResult(m, res)
	}
}

// deferral is an attempt's answer "not now, and not a failure": the
// message waits until until (zero: the dispatcher's backoff) without
// counting an attempt, so that neither a slow adapter restart nor a wait
// for Selarti's echo moves it towards max_attempts. delivery.max_age
// still applies to the first kind.
type deferral struct {
	until   time.Time
	inDoubt bool // the last attempt may have reached the far side
	// keepDoubt keeps the message's InDoubt mark through a wait that is
	// not an attempt (its instance is not running yet after a crash), so
	// that the attempt after it still knows; unlike inDoubt it does not
	// keep the message from ageing into a dead letter.
	keepDoubt bool
	reason    error // why; kept as the message's last error when it says more
}

func (d *deferral) Error() string { return "deferred: " + d.reason.Error() }
func (d *deferral) Unwrap() error { return d.reason }

// note is what the store keeps as the last error: the reason, except for
// the routine waits for an echo, which keep the error that caused them.
func (d *deferral) note() string {
	if errors.Is(d.reason, errAwaitingEcho) {
		return ""
	}
	return d.reason.Error()
}

// safeAttempt runs the attempt, turning a panic in an adapter into an
// error: one bad message must not take the gateway down. This is the last
// resort the style guide allows at the adapter boundary.
func (d *dispatcher) safeAttempt(ctx context.Context, m store.Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = core.Permanent(fmt.Errorf("panic in delivery: %v", p))
		}
	}()
	return d.attempt(ctx, m)
}

func (d *dispatcher) giveUp(m store.Message, err error) bool {
	if core.IsPermanent(err) {
		return true
	}
	if m.Attempts+1 >= d.policy.maxAttempts {
		return true
	}
	return time.Since(m.CreatedAt) >= d.policy.maxAge
}

// backoff returns the wait before attempt number n+1, after n failures:
// exponential from initial, capped at max, with "equal jitter" (half
// fixed, half random) so that many chats failing together spread out.
// It is computed from the attempt count the store keeps, not from a
// stateful backoff object, because the count survives restarts.
func (p retryPolicy) backoff(failures int) time.Duration {
	d := p.initial
	for i := 1; i < failures && d < p.max; i++ {
		d *= 2
	}
	d = min(d, p.max)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}
