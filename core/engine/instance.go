package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/switchboard-gw/switchboard/core"
)

// InstanceState is where an adapter instance is in its life.
type InstanceState string

// Instance states, as shown on /healthz and /readyz.
const (
	StatePending  InstanceState = "pending"  // not started yet, or starting
	StateRunning  InstanceState = "running"  // Start succeeded
	StateFailing  InstanceState = "failing"  // Start failed; retrying with backoff
	StateFailed   InstanceState = "failed"   // Start failed permanently; not retrying
	StateStopped  InstanceState = "stopped"  // Stop was called
	StateDisabled InstanceState = "disabled" // enabled: false in the config
)

// InstanceStatus is a snapshot of an instance's health.
type InstanceStatus struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	State     InstanceState `json:"state"`
	LastError string        `json:"last_error,omitempty"`
	Since     time.Time     `json:"since"`
	// HealthError is the last failed CheckHealth of a running instance
	// (HealthChecker); empty when healthy or not checked.
	HealthError string `json:"health_error,omitempty"`
}

// HealthInterval is how often the core calls CheckHealth on a running
// instance that implements HealthChecker.
const HealthInterval = 30 * time.Second

// healthTimeout bounds one CheckHealth call.
const healthTimeout = 5 * time.Second

// instance is one configured adapter instance and the core's view of it.
type instance struct {
	name      string
	kind      string
	taskID    string
	enabled   bool
	messenger core.Messenger
	log       *slog.Logger

	// healthEvery overrides HealthInterval (tests).
	healthEvery time.Duration

	mu     sync.Mutex
	status InstanceStatus
}

func (i *instance) setState(s InstanceState, err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.State = s
	i.status.Since = time.Now()
	i.status.LastError = ""
	if err != nil {
		i.status.LastError = err.Error()
	}
}

func (i *instance) setHealth(err error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.HealthError = ""
	if err != nil {
		i.status.HealthError = err.Error()
	}
}

// watchHealth calls CheckHealth every HealthInterval until ctx ends, if the
// messenger implements HealthChecker.
func (i *instance) watchHealth(ctx context.Context) {
	hc, ok := i.messenger.(core.HealthChecker)
	if !ok {
		return
	}
	every := HealthInterval
	if i.healthEvery > 0 {
		every = i.healthEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, healthTimeout)
		err := hc.CheckHealth(hctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil && i.snapshot().HealthError == "" {
			i.log.Warn("adapter health check failed", "err", err)
		} else if err == nil && i.snapshot().HealthError != "" {
			i.log.Info("adapter healthy again")
		}
		i.setHealth(err)
	}
}

func (i *instance) snapshot() InstanceStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.status
}

func (i *instance) running() bool { return i.snapshot().State == StateRunning }

// startTimeout bounds one call of Messenger.Start.
const startTimeout = 30 * time.Second

// supervise starts the instance, retrying with capped exponential backoff
// (and jitter) while the error is transient, so that a network that is
// down at boot does not keep the gateway or the other instances down. A
// permanent error (a revoked token) stops the retries and is reported on
// /readyz. Once the instance runs, it watches its health (HealthChecker)
// until ctx ends; it returns then, or when Start failed for good.
func (i *instance) supervise(ctx context.Context, deliver core.DeliverFunc, metrics *Metrics) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = time.Second
	b.MaxInterval = time.Minute
	for {
		sctx, cancel := context.WithTimeout(ctx, startTimeout)
		err := i.messenger.Start(sctx, deliver)
		cancel()
		if err == nil {
			i.setState(StateRunning, nil)
			metrics.adapterUp.WithLabelValues(i.name, i.kind).Set(1)
			i.log.Info("adapter started")
			i.watchHealth(ctx)
			return
		}
		// Clean up whatever the failed Start left behind before trying again.
		stopCtx, stopCancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
		_ = i.messenger.Stop(stopCtx)
		stopCancel()
		if ctx.Err() != nil {
			return
		}
		if core.IsPermanent(err) {
			i.setState(StateFailed, err)
			i.log.Error("adapter start failed permanently", "err", err)
			return
		}
		wait := b.NextBackOff()
		i.setState(StateFailing, err)
		i.log.Warn("adapter start failed, retrying", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// stop stops a started (or failed) instance.
func (i *instance) stop(ctx context.Context, metrics *Metrics) {
	if !i.enabled {
		return
	}
	if err := i.messenger.Stop(ctx); err != nil {
		i.log.Warn("adapter stop", "err", err)
	}
	i.setState(StateStopped, nil)
	metrics.adapterUp.WithLabelValues(i.name, i.kind).Set(0)
	i.log.Info("adapter stopped")
}
