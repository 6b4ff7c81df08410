package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
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
	// (HealthChecker), or its failed Receive; empty when healthy or not
	// checked.
	HealthError string `json:"health_error,omitempty"`
	// Receive is, for an instance whose inbound connection runs on one
	// replica at a time (core.ExclusiveReceiver), ReceiveActive while this
	// replica receives and ReceiveStandby while another does; empty for
	// the others.
	Receive string `json:"receive,omitempty"`
}

// HealthInterval is how often the core calls CheckHealth on a running
// instance that implements HealthChecker.
const HealthInterval = 30 * time.Second

// healthTimeout bounds one CheckHealth call.
const healthTimeout = 5 * time.Second

// instance is one configured adapter instance and the core's view of it.
type instance struct {
	name   string
	kind   string
	taskID string
	// undeliveredNotice is told to a user whose message was dead-lettered
	// (AdapterConfig.UndeliveredNotice); "" when off.
	undeliveredNotice string
	enabled           bool
	messenger         core.Messenger
	log               *slog.Logger

	// healthEvery overrides HealthInterval (tests).
	healthEvery time.Duration
	// lease owns the inbound connection of an exclusive receiver.
	lease receiveLease

	// The supervisor's (see supervisor.go): stopping is cancelled when
	// the gateway asks the instance to stop, with the deadline in
	// stopCtx; done is closed when the supervisor has returned.
	launched     bool
	tried        chan struct{} // closed once the first Start has returned
	triedOnce    sync.Once
	stopOnce     sync.Once
	stopping     context.Context
	stopNow      context.CancelFunc
	stopDeadline context.Context
	done         chan struct{}

	mu     sync.Mutex
	status InstanceStatus
}

// newInstance returns the record of one configured instance, not yet
// supervised.
func newInstance(ac AdapterConfig, log *slog.Logger) *instance {
	inst := &instance{name: ac.Name, kind: ac.Kind, taskID: ac.TaskID, undeliveredNotice: ac.UndeliveredNotice, enabled: ac.IsEnabled(), log: log,
		done: make(chan struct{}), tried: make(chan struct{})}
	inst.stopping, inst.stopNow = context.WithCancel(context.Background())
	inst.status = InstanceStatus{Name: ac.Name, Kind: ac.Kind, State: StatePending, Since: time.Now()}
	if !inst.enabled {
		inst.status.State = StateDisabled
	}
	return inst
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

func (i *instance) setReceive(r string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.Receive = r
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
// messenger implements HealthChecker; else it just waits for ctx.
func (i *instance) watchHealth(ctx context.Context) {
	hc, ok := i.messenger.(core.HealthChecker)
	if !ok {
		<-ctx.Done()
		return
	}
	every := HealthInterval
	if i.healthEvery > 0 {
		every = i.healthEvery
	}
	lifecycle.Every(ctx, every, func() {
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
	})
}

func (i *instance) snapshot() InstanceStatus {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.status
}

func (i *instance) running() bool { return i.snapshot().State == StateRunning }
