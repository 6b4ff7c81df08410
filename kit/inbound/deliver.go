package inbound

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/switchboard-gw/switchboard/core"
)

// DefaultTimeout bounds one DeliverFunc call: the core commits in
// milliseconds, unless its disk is failing.
const DefaultTimeout = 30 * time.Second

// AckDeadline bounds a DeliverFunc call whose acknowledgement is due
// within Slack's 3 seconds, leaving half a second for the acknowledgement
// to travel.
const AckDeadline = 2500 * time.Millisecond

// Deliver hands msg to deliver within timeout (DefaultTimeout when 0).
func Deliver(ctx context.Context, deliver core.DeliverFunc, msg core.Inbound, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return deliver(ctx, msg)
}

// RetryOptions tune Retry. The zero value is usable.
type RetryOptions struct {
	// Timeout bounds each attempt (DefaultTimeout when 0).
	Timeout time.Duration
	// Initial and Max bound the backoff between attempts (500 ms and
	// 30 s when 0); each wait is jittered.
	Initial, Max time.Duration
	// OnRetry, if set, is told of each failed attempt before the wait
	// (to log it: the core has logged the refusal already, but not that
	// the adapter goes on trying).
	OnRetry func(err error, wait time.Duration)
}

// Retry hands msg to deliver until the core accepts it, for a network
// that will not send it again. It returns nil once the core accepted it
// (or recognised a duplicate), the core's error when it refused the
// message for good (core.IsPermanent), or ctx's error when ctx (the
// adapter's run) ended first: the message was not handed over, and the
// adapter's checkpoint has not moved past it, so the next run's backfill
// fetches it again.
//
// Messages of one conversation must be retried in order: call Retry from
// the conversation's own goroutine, so that a later message waits for the
// earlier one.
func Retry(ctx context.Context, deliver core.DeliverFunc, msg core.Inbound, o RetryOptions) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = cmpOr(o.Initial, 500*time.Millisecond)
	b.MaxInterval = cmpOr(o.Max, 30*time.Second)
	opts := []backoff.RetryOption{backoff.WithBackOff(b), backoff.WithMaxElapsedTime(0)}
	if o.OnRetry != nil {
		opts = append(opts, backoff.WithNotify(o.OnRetry))
	}
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := Deliver(ctx, deliver, msg, o.Timeout)
		if err != nil && core.IsPermanent(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, opts...)
	if err != nil && ctx.Err() != nil && !core.IsPermanent(err) {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
