package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// senders is how many goroutines hand messages to the driver. A send
// blocked on one slow socket must not hold up the schedule of the others.
const senders = 64

// maxLedgerRate bounds the closed-loop steps' ledger size: no target on
// one machine answers more round trips a second than this.
const maxLedgerRate = 30000

// runner drives one run: one target, one driver, one number of chats.
type runner struct {
	o          options
	driver     Driver
	proc       *procGroup
	pg         *pgDatabase // the target's database, when it has one
	log        *slog.Logger
	watch      *rssWatch
	chats      int
	simAddr    string
	apiKey     string
	webhookURL string
	t0         time.Time

	cur      atomic.Pointer[ledger]
	nextSeq  uint64
	nextChat atomic.Uint64

	errMu  sync.Mutex
	errors map[string]int
}

func (r *runner) onReply(text string, at time.Time) {
	seq, ok := decodeSeq(text)
	l := r.cur.Load()
	if !ok || l == nil {
		return
	}
	if l.reply(seq, at) && l.window != nil {
		select {
		case <-l.window:
		default:
		}
	}
}

func (r *runner) onError(code string) {
	r.errMu.Lock()
	r.errors[code]++
	r.errMu.Unlock()
}

func (r *runner) takeErrors() map[string]int {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	e := r.errors
	r.errors = make(map[string]int)
	if len(e) == 0 {
		return nil
	}
	return e
}

// job is one message to send.
type job struct {
	chat int
	seq  uint64
}

// stepPlan says what one step does.
type stepPlan struct {
	kind   string
	rate   float64       // stepRate: offered round trips a second
	window int           // stepWarmup, stepMax: messages outstanding
	count  int           // stepWarmup: messages in all (one per chat)
	settle time.Duration // unmeasured start
	dur    time.Duration // measured window (stepRate, stepMax); the longest warm-up
	drain  time.Duration // longest wait for the last replies
}

// step runs one step against a fresh simulator and measures it.
func (r *runner) step(ctx context.Context, p stepPlan) (StepResult, error) {
	sim, err := startSimulator(r.simAddr, r.apiKey, r.webhookURL, &r.cur)
	if err != nil {
		return StepResult{}, err
	}
	defer sim.close()

	var capacity int
	switch p.kind {
	case stepRate:
		capacity = int(math.Ceil(p.rate*(p.settle+p.dur).Seconds()*1.05)) + 1000
	case stepMax:
		capacity = int(maxLedgerRate * (p.settle + p.dur).Seconds())
	case stepWarmup:
		capacity = p.count
	}
	l := newLedger(r.t0, r.nextSeq, capacity)
	if p.window > 0 {
		l.window = make(chan struct{}, p.window)
	}
	r.cur.Store(l)
	r.takeErrors()
	r.watch.setPhase(describe(p))
	r.watch.resetPeak()

	jobs := make(chan job, 1024)
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for j := range jobs {
				r.send(ctx, l, j)
			}
		})
	}

	m := &measure{r: r, l: l}
	start := time.Now()
	var lag time.Duration
	stalled := false
	switch p.kind {
	case stepRate:
		lag = r.openLoop(ctx, l, p, start, m, jobs)
	case stepMax:
		r.closedLoop(ctx, l, p, m, jobs)
	case stepWarmup:
		m.begin(start)
		stalled = r.warmup(ctx, l, p, jobs)
	}
	close(jobs)
	wg.Wait()
	if p.kind != stepWarmup {
		m.end(time.Now())
	}
	r.watch.setPhase("drain: " + describe(p))
	r.drain(ctx, l, p.drain)
	if p.kind == stepWarmup {
		m.end(time.Now())
	}
	sim.collect(l)
	r.nextSeq += l.issued.Load()
	r.cur.Store(nil)
	r.watch.setPhase("between steps")

	res := m.result(p)
	res.SendLagMS = ms(lag)
	res.Errors = r.takeErrors()
	res.Saturated = res.Lost > 0 || m.cutShort || (p.kind == stepRate && res.Achieved < 0.9*p.rate)
	if stalled {
		return res, fmt.Errorf("warm-up stalled: no reply for %s with %d messages outstanding; %d of %d sent had their reply by the end of the drain",
			stallLimit, p.window, res.Replied, res.Sent)
	}
	return res, ctx.Err()
}

// stallLimit is how long a warm-up whose window is full, or a drain,
// waits for a reply before it gives up: a target that loses replies
// would otherwise hold the warm-up for -warmup-max and each drain for
// its whole length. A target that is only slow answers something every
// few milliseconds.
const stallLimit = 10 * time.Second

// issue hands the next message, to the next chat in turn, to the senders.
func (r *runner) issue(l *ledger, jobs chan<- job) bool {
	seq, ok := l.issue()
	if !ok {
		return false
	}
	chat := int(r.nextChat.Add(1)-1) % r.chats
	jobs <- job{chat: chat, seq: seq}
	return true
}

func (r *runner) send(ctx context.Context, l *ledger, j job) {
	// The id is the network's message id: unique in the run, so the
	// target's dedupe never drops a benchmark message.
	at, err := r.driver.Send(ctx, j.chat, "b"+strconv.FormatUint(j.seq, 10), messageText(j.seq))
	if err == nil {
		l.mark(l.sent, j.seq, at)
	} else {
		r.onError("send_failed: " + errorClass(err))
		if l.window != nil {
			select {
			case <-l.window:
			default:
			}
		}
	}
}

// backlogLimit is how many seconds of offered load may be waiting for
// replies before an open-loop step is cut short as saturated. Without a
// limit, a rate far above what the target sustains would queue tens of
// thousands of messages, and their replies would still be arriving (and
// costing the target CPU) during the next step.
const backlogLimit = 2 * time.Second

// warmup sends each chat's first message, p.window at a time, for at
// most p.dur: chats that have not written by then are not counted as
// active (see runner.chats). It reports whether it stopped because no
// reply came for stallLimit while the window was full: the target lost
// them.
func (r *runner) warmup(ctx context.Context, l *ledger, p stepPlan, jobs chan<- job) (stalled bool) {
	deadline := time.NewTimer(p.dur)
	defer deadline.Stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	start := time.Now()
	for range p.count {
	wait:
		for {
			select {
			case l.window <- struct{}{}:
				break wait
			case <-deadline.C:
				return false
			case <-ctx.Done():
				return false
			case now := <-check.C:
				if l.quietFor(now, start) >= stallLimit {
					return true
				}
			}
		}
		r.issue(l, jobs)
	}
	return false
}

// openLoop offers p.rate messages a second, spread evenly, whatever the
// target does with them (a token bucket refilled every millisecond),
// until the step ends or the backlog passes backlogLimit. It returns how
// far the schedule fell behind at worst.
func (r *runner) openLoop(ctx context.Context, l *ledger, p stepPlan, start time.Time, m *measure, jobs chan<- job) time.Duration {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	measuring := false
	issued := 0
	maxBacklog := uint64(max(100, p.rate*backlogLimit.Seconds()))
	var lag time.Duration
	for {
		select {
		case <-ctx.Done():
			return lag
		case now := <-tick.C:
			el := now.Sub(start)
			if !measuring && el >= p.settle {
				m.begin(now)
				measuring = true
			}
			if el >= p.settle+p.dur {
				return lag
			}
			if l.issued.Load()-l.done.Load() > maxBacklog {
				if !measuring {
					m.begin(now) // saturated while settling: measure what there is
				}
				m.cutShort = true
				return lag
			}
			due := int(p.rate*el.Seconds()) - issued
			for ; due > 0; due-- {
				if !r.issue(l, jobs) {
					return lag
				}
				issued++
			}
			// When the senders cannot keep up, issue blocks and the
			// schedule slips: the load offered was less than asked.
			behind := time.Since(start) - time.Duration(float64(issued)/p.rate*float64(time.Second))
			lag = max(lag, behind)
		}
	}
}

// closedLoop keeps p.window messages outstanding: a new one goes out as
// soon as a reply comes back.
func (r *runner) closedLoop(ctx context.Context, l *ledger, p stepPlan, m *measure, jobs chan<- job) {
	settle := time.NewTimer(p.settle)
	defer settle.Stop()
	end := time.NewTimer(p.settle + p.dur)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-settle.C:
			m.begin(now)
		case <-end.C:
			return
		case l.window <- struct{}{}:
			if !r.issue(l, jobs) {
				return
			}
		}
	}
}

// drain waits until every message of the step has its reply, for at
// most within, and no longer than stallLimit after the last reply came.
func (r *runner) drain(ctx context.Context, l *ledger, within time.Duration) {
	start := time.Now()
	deadline := start.Add(within)
	for !l.complete() && time.Now().Before(deadline) && ctx.Err() == nil && l.quietFor(time.Now(), start) < stallLimit {
		time.Sleep(5 * time.Millisecond)
	}
}

// measure takes the samples at the two ends of a step's measured window.
type measure struct {
	r          *runner
	l          *ledger
	began      bool
	cutShort   bool   // the backlog passed backlogLimit
	first      uint64 // ledger slot of the first measured message
	last       uint64 // one past the last
	from, to   int64  // window, on the ledger's clock
	cpu0, cpu1 time.Duration
	own0, own1 time.Duration
	pg0, pg1   map[int]time.Duration // PostgreSQL's processes, by pid
	commits0   int64                 // the database's commits; -1 unknown
	commits1   int64
	sample     procSample
	load1      float64
}

func (m *measure) begin(at time.Time) {
	m.began = true
	m.first = m.l.issued.Load()
	m.from = m.l.since(at)
	if s, err := m.r.proc.sample(); err == nil {
		m.cpu0 = s.CPU
	}
	m.own0 = selfCPU()
	m.pg0, m.commits0 = m.pgCPU()
}

// pgCPU samples PostgreSQL's processes for the target's database, and
// its commits; nil and -1 without one, or when they cannot be read (then
// logged).
func (m *measure) pgCPU() (map[int]time.Duration, int64) {
	if m.r.pg == nil {
		return nil, -1
	}
	ctx := context.Background()
	c, err := m.r.pg.cpu(ctx)
	if err != nil {
		m.r.log.Warn("PostgreSQL's CPU is not measured in this step", "err", err)
		c = nil
	}
	n, err := m.r.pg.commits(ctx)
	if err != nil {
		m.r.log.Warn("PostgreSQL's commits are not counted in this step", "err", err)
		n = -1
	}
	return c, n
}

func (m *measure) end(at time.Time) {
	m.last = m.l.issued.Load()
	m.to = m.l.since(at)
	if s, err := m.r.proc.sample(); err == nil {
		m.cpu1 = s.CPU
		m.sample = s
	}
	m.own1 = selfCPU()
	m.pg1, m.commits1 = m.pgCPU()
	m.load1 = loadAverage()
}

// result computes the step's figures from the ledger.
func (m *measure) result(p stepPlan) StepResult {
	l := m.l
	res := StepResult{Kind: p.kind, Window: p.window, RSS: m.sample.RSS, PeakRSS: m.sample.HWM, Load1: m.load1}
	if p.kind == stepRate {
		res.Offered = p.rate
	}
	if !m.began {
		return res
	}
	res.Seconds = time.Duration(m.to - m.from).Seconds()
	var in, out, wh, rt []time.Duration
	for i := m.first; i < m.last; i++ {
		sent := l.sent[i].Load()
		if sent == 0 {
			continue // the send failed; counted in Errors
		}
		res.Sent++
		replied := l.replied[i].Load()
		if replied == 0 {
			res.Lost++
			continue
		}
		res.Replied++
		rt = append(rt, time.Duration(replied-sent))
		if a := l.accepted[i].Load(); a != 0 {
			in = append(in, time.Duration(a-sent))
		}
		if ws := l.whStart[i].Load(); ws != 0 {
			out = append(out, time.Duration(replied-ws))
			if we := l.whEnd[i].Load(); we != 0 {
				wh = append(wh, time.Duration(we-ws))
			}
		}
	}
	// Achieved counts replies by when they arrived, whatever step sent
	// them: under overload the replies lag the sends, and this is the
	// rate the target really sustained.
	arrived := 0
	for i := range l.issued.Load() {
		if at := l.replied[i].Load(); at >= m.from && at < m.to {
			arrived++
		}
	}
	res.Dups = int(l.dups.Load())
	if res.Seconds > 0 {
		res.Achieved = float64(arrived) / res.Seconds
	}
	res.In, res.Out, res.WebhookAnswer, res.RoundTrip = summarise(in), summarise(out), summarise(wh), summarise(rt)
	res.CPUSeconds = (m.cpu1 - m.cpu0).Seconds()
	if m.pg0 != nil && m.pg1 != nil {
		res.PGCPUSeconds = cpuBetween(m.pg0, m.pg1).Seconds()
	}
	if arrived > 0 {
		res.CPUPer1000 = res.CPUSeconds / float64(arrived) * 1000
		res.PGCPUPer1000 = res.PGCPUSeconds / float64(arrived) * 1000
		if m.commits0 >= 0 && m.commits1 >= 0 {
			res.PGCommitsPerRT = float64(m.commits1-m.commits0) / float64(arrived)
		}
	}
	res.HarnessCPUSeconds = (m.own1 - m.own0).Seconds()
	return res
}

var chatNumber = regexp.MustCompile(`chat \d+`)

// errorClass shortens an error to what identifies its kind, without the
// chat number, so that the report can count errors by cause.
func errorClass(err error) string {
	msg := chatNumber.ReplaceAllString(err.Error(), "chat N")
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return msg
}

// describe is a one-line progress note for a step.
func describe(p stepPlan) string {
	switch p.kind {
	case stepRate:
		return fmt.Sprintf("%.0f rt/s for %s", p.rate, p.dur)
	case stepMax:
		return fmt.Sprintf("max, %d outstanding, for %s", p.window, p.dur)
	default:
		return fmt.Sprintf("warm-up, %d first messages", p.count)
	}
}
