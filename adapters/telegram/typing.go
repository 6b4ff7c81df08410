package telegram

import (
	"context"
	"sync"
	"time"
)

// typingEvery is how often "typing…" is renewed: Telegram shows it for
// five seconds or until the bot's next message.
const typingEvery = 4500 * time.Millisecond

// maxTyping bounds the chats shown "typing…" at once (one goroutine
// each); past it, new chats simply get no indicator.
const maxTyping = 1000

// typist shows "typing…" in chats whose answer is pending, from the
// user's message until the answer is sent, or for at most timeout.
type typist struct {
	timeout time.Duration // 0: off
	every   time.Duration
	send    func(ctx context.Context, chat int64) error
	now     func() time.Time

	mu   sync.Mutex
	jobs map[int64]*typingJob
}

type typingJob struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the job's goroutine ends
	until  time.Time     // guarded by typist.mu
}

func newTypist(timeout time.Duration, send func(ctx context.Context, chat int64) error) *typist {
	return &typist{timeout: timeout, every: typingEvery, send: send, now: time.Now, jobs: make(map[int64]*typingJob)}
}

// start shows "typing…" in chat until stop, the timeout, or the end of
// run. A chat already typing has its timeout extended.
func (ty *typist) start(run *runState, chat int64) {
	if ty.timeout <= 0 {
		return
	}
	ty.mu.Lock()
	defer ty.mu.Unlock()
	if j, ok := ty.jobs[chat]; ok {
		j.until = ty.now().Add(ty.timeout)
		return
	}
	if len(ty.jobs) >= maxTyping {
		return
	}
	ctx, cancel := context.WithCancel(run.ctx)
	j := &typingJob{cancel: cancel, done: make(chan struct{}), until: ty.now().Add(ty.timeout)}
	ty.jobs[chat] = j
	run.wg.Go(func() { ty.loop(ctx, chat, j) })
}

func (ty *typist) loop(ctx context.Context, chat int64, j *typingJob) {
	defer func() {
		ty.mu.Lock()
		if ty.jobs[chat] == j {
			delete(ty.jobs, chat)
		}
		ty.mu.Unlock()
		j.cancel()
		close(j.done)
	}()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ty.mu.Lock()
		expired := ty.now().After(j.until)
		ty.mu.Unlock()
		if expired {
			return
		}
		if err := ty.send(ctx, chat); err != nil {
			return // blocked, rate limited, or down: not worth insisting
		}
		t.Reset(ty.every)
	}
}

// stop ends "typing…" in chat: its answer is about to be sent. It waits
// for a chat action in flight to be cancelled, so that none arrives after
// the answer and shows "typing…" under it.
func (ty *typist) stop(chat int64) {
	ty.mu.Lock()
	j, ok := ty.jobs[chat]
	delete(ty.jobs, chat)
	ty.mu.Unlock()
	if ok {
		j.cancel()
		<-j.done
	}
}

// active reports whether chat is shown typing (tests).
func (ty *typist) active(chat int64) bool {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	_, ok := ty.jobs[chat]
	return ok
}
