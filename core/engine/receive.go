package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// Receive states of an instance whose inbound connection runs on one
// replica at a time (core.ExclusiveReceiver), as InstanceStatus.Receive.
const (
	ReceiveActive  = "active"  // this replica holds the lease and receives
	ReceiveStandby = "standby" // another replica does; this one sends only
)

// receiveLease is how an instance's exclusive inbound connection is
// owned: through leaser, a store several replicas share, as owner (this
// replica), for ttl at a time. A nil leaser (a store one process owns)
// means this process always holds it.
type receiveLease struct {
	leaser store.Leaser
	owner  string
	ttl    time.Duration
}

// leaseName is the lease of an instance's inbound connection.
func leaseName(instance string) string { return "receive:" + instance }

// receiveWhileLeased runs the instance's exclusive inbound connection on
// this replica while it holds the instance's lease, until the instance
// stops: it takes the lease when it is free (every ttl/3), renews it as
// often, calls Receive while it holds it (again, after a backoff, when
// Receive fails), and ends Receive when the lease cannot be renewed before
// it runs out, so that two replicas never receive at once for longer than
// the clocks disagree. When the instance stops it ends Receive and gives
// the lease up at once, for another replica to take within ttl/3.
//
// A replica that dies keeps its lease until it runs out: another takes
// over within ttl plus ttl/3 (see docs/deployment.md).
func (i *instance) receiveWhileLeased(rx core.ExclusiveReceiver, deliver core.DeliverFunc, metrics *Metrics) {
	l := i.lease
	active := metrics.receiveActive.WithLabelValues(i.name)
	every := l.ttl / 3
	var (
		heldUntil time.Time          // end of the lease as last taken or renewed
		cancelRx  context.CancelFunc // ends the Receive running, if any
		rxDone    chan error         // Receive's result
		retryAt   time.Time          // after a failed Receive, not before this
		rxStarted time.Time          // when the Receive running began
	)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = time.Minute
	stopReceiving := func() {
		if cancelRx == nil {
			return
		}
		cancelRx()
		if err := <-rxDone; err != nil {
			i.log.Warn("receive ended with an error", "err", err)
		}
		cancelRx, rxDone = nil, nil
		active.Set(0)
	}
	defer func() {
		stopReceiving()
		if l.leaser != nil && !heldUntil.IsZero() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(i.stopDeadline), 5*time.Second)
			if err := l.leaser.ReleaseLease(ctx, leaseName(i.name), l.owner); err != nil {
				i.log.Warn("give the receive lease up (another replica takes over when it runs out)", "err", err)
			}
			cancel()
		}
	}()

	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		held, prev, err := true, "", error(nil)
		if l.leaser != nil {
			actx, cancel := context.WithTimeout(i.stopping, every)
			held, prev, err = l.leaser.AcquireLease(actx, leaseName(i.name), l.owner, now, l.ttl)
			cancel()
		}
		switch {
		case i.stopping.Err() != nil:
			return
		case err != nil:
			// Unknown: keep receiving while the lease we had is surely
			// still ours, stop before it may have run out.
			i.log.Warn("renew the receive lease", "err", err)
			held = now.Add(every).Before(heldUntil)
		case held:
			if heldUntil.IsZero() || prev != "" {
				metrics.leaseTakeovers.WithLabelValues(i.name).Inc()
				i.log.Info("receiving on this replica", "replica", l.owner, "taken_from", prev)
			}
			heldUntil = now.Add(l.ttl)
		default:
			if !heldUntil.IsZero() {
				i.log.Warn("lost the receive lease to another replica", "replica", l.owner)
			}
			heldUntil = time.Time{}
		}

		if rxDone != nil {
			select {
			case err := <-rxDone:
				// Receive ended by itself: a failure. One that had run a
				// good while starts the backoff again.
				cancelRx, rxDone = nil, nil
				active.Set(0)
				if time.Since(rxStarted) > time.Minute {
					b.Reset()
				}
				wait := b.NextBackOff()
				retryAt = time.Now().Add(wait)
				i.setHealth(fmt.Errorf("receive: %w", err))
				i.log.Warn("receive failed, will retry", "err", err, "wait", wait)
			default:
				if i.snapshot().HealthError != "" && time.Since(rxStarted) > every {
					i.setHealth(nil) // running again since the last look
				}
			}
		}
		switch {
		case !held:
			stopReceiving()
			i.setReceive(ReceiveStandby)
		case rxDone == nil && !time.Now().Before(retryAt):
			ctx, cancel := context.WithCancel(i.stopping)
			cancelRx, rxDone, rxStarted = cancel, make(chan error, 1), time.Now()
			go func(done chan<- error) {
				err := rx.Receive(ctx, deliver)
				if ctx.Err() != nil && err == nil {
					done <- nil
					return
				}
				if err == nil {
					err = fmt.Errorf("receive returned before it was asked to stop")
				}
				done <- err
			}(rxDone)
			active.Set(1)
			i.setReceive(ReceiveActive)
		}

		select {
		case <-i.stopping.Done():
			return
		case <-t.C:
		}
	}
}
