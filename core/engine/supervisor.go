package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
)

// startTimeout bounds one call of Messenger.Start, and the Stop that
// cleans up after a failed one.
const startTimeout = 30 * time.Second

// supervise is the one goroutine that owns the instance's lifecycle, from
// its first Start to its last Stop, so that Start and Stop never run at
// once and the state it reports is the last thing that happened.
//
// It starts the instance, retrying with capped exponential backoff (and
// jitter) while the error is transient, so that a network that is down at
// boot does not keep the gateway or the other instances down; before each
// retry it calls Stop to clean up what the failed Start left. A permanent
// error (a revoked token) stops the retries and is reported on /readyz.
// Once the instance runs, it watches its health (HealthChecker). When the
// gateway asks it to stop (see stop), it cuts a Start in progress short,
// calls Stop with the shutdown's deadline and returns.
func (i *instance) supervise(deliver core.DeliverFunc, metrics *Metrics) {
	defer close(i.done)
	defer i.triedOnce.Do(func() { close(i.tried) })
	up := metrics.adapterUp.WithLabelValues(i.name, i.kind) // 0 since New
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = time.Minute
	for {
		sctx, cancel := context.WithTimeout(i.stopping, startTimeout)
		err := i.messenger.Start(sctx, deliver)
		cancel()
		if err == nil {
			if i.stopping.Err() == nil {
				i.setState(StateRunning, nil)
				up.Set(1)
				i.log.Info("adapter started")
				i.triedOnce.Do(func() { close(i.tried) })
				if rx, ok := i.messenger.(core.ExclusiveReceiver); ok && rx.Exclusive() {
					go i.watchHealth(i.stopping)
					i.receiveWhileLeased(rx, deliver, metrics)
				} else {
					i.watchHealth(i.stopping)
				}
			}
			// Asked to stop, maybe while Start was still running: the
			// messenger is up, so it gets its Stop like any other.
			i.stopMessenger(i.stopDeadline)
			up.Set(0)
			return
		}
		// Clean up whatever the failed Start left behind before trying
		// again (or before giving up).
		cleanup, cancel := context.WithTimeout(context.Background(), startTimeout)
		if i.stopping.Err() != nil {
			cleanup, cancel = context.WithCancel(i.stopDeadline)
		}
		if serr := i.messenger.Stop(cleanup); serr != nil {
			i.log.Warn("adapter stop after a failed start", "err", serr)
		}
		cancel()
		if i.stopping.Err() != nil {
			i.setState(StateStopped, nil)
			i.log.Info("adapter stopped before it started", "err", err)
			return
		}
		if core.IsPermanent(err) {
			i.setState(StateFailed, err)
			i.log.Error("adapter start failed permanently", "err", err)
			i.triedOnce.Do(func() { close(i.tried) })
			<-i.stopping.Done()
			i.setState(StateStopped, nil)
			return
		}
		wait := b.NextBackOff()
		i.setState(StateFailing, err)
		i.log.Warn("adapter start failed, retrying", "err", err, "wait", wait)
		i.triedOnce.Do(func() { close(i.tried) })
		t := time.NewTimer(wait)
		select {
		case <-i.stopping.Done():
			t.Stop()
			i.setState(StateStopped, nil)
			return
		case <-t.C:
		}
	}
}

// stopMessenger calls Stop on the running messenger and records the end.
func (i *instance) stopMessenger(ctx context.Context) {
	if err := i.messenger.Stop(ctx); err != nil {
		i.log.Warn("adapter stop", "err", err)
	}
	i.setState(StateStopped, nil)
	i.log.Info("adapter stopped")
}

// stop asks the supervisor to stop the instance, with ctx as Stop's
// deadline, and waits until it has, or until ctx is done. Only the first
// call's ctx counts.
func (i *instance) stop(ctx context.Context) error {
	i.stopOnce.Do(func() {
		i.stopDeadline = ctx
		i.stopNow()
	})
	select {
	case <-i.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop instance %s: %w", i.name, ctx.Err())
	}
}
