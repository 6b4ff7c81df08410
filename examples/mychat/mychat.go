// Package mychat is the skeleton adapter of docs/writing-an-adapter.md: a
// complete adapter, built on the kit, for MyChat, a made-up network whose
// HTTP API has three calls: GET /me, GET /updates?offset=N (a long poll
// that returns every update from N on; asking for a higher offset
// acknowledges the ones below it) and POST /messages. Copy it, replace
// the calls with your network's, and keep the rest. `make test` compiles
// it and runs the conformance suite against its fake (mychat_test.go).
package mychat

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
	"github.com/switchboard-gw/switchboard/kit/outbound"
	"github.com/switchboard-gw/switchboard/kit/ratelimit"
)

// Kind is the adapter kind in the config ("kind: mychat").
const Kind = "mychat"

func init() { core.Register(Kind, New) }

// Interface guards: the build breaks if a signature drifts.
var (
	_ core.Messenger     = (*Adapter)(nil)
	_ core.HealthChecker = (*Adapter)(nil)
)

// Adapter is one mychat instance (one bot).
type Adapter struct {
	cfg      Config
	log      *slog.Logger
	http     *http.Client
	limits   *ratelimit.Limiter[string] // per chat, and for the bot
	progress *outbound.Progress         // split messages: parts already sent
	runs     lifecycle.Runs[runData]    // one Start..Stop at a time
}

// runData is what one run holds besides its context.
type runData struct {
	deliver core.DeliverFunc
	me      string // the bot's own user id, to ignore its own messages
}

// New builds an instance from its config. It does no I/O.
func New(inst core.Instance) (core.Messenger, error) {
	var cfg Config
	cfg.setDefaults()
	if err := core.DecodeConfig(inst.Config, &cfg); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Adapter{
		cfg:      cfg,
		log:      inst.Logger,
		http:     inst.HTTP,
		limits:   newLimiter(&cfg),
		progress: outbound.NewProgress(10000, 24*time.Hour),
	}, nil
}

// Start checks the token, learns the bot's own id, and starts the poll
// loop. ctx bounds the start-up only: the loop runs until Stop.
func (a *Adapter) Start(ctx context.Context, deliver core.DeliverFunc) error {
	me, err := a.me(ctx)
	if err != nil {
		return fmt.Errorf("start mychat: %w", err) // core.Permanent for a refused token
	}
	r, err := a.runs.Begin(runData{deliver: deliver, me: me})
	if err != nil {
		return fmt.Errorf("start mychat: %w", err)
	}
	r.Go(func(ctx context.Context) { a.poll(ctx, r) })
	a.log.Info("started", "bot", me)
	return nil
}

// Stop ends the poll loop and waits for it, or until ctx is done. It is
// a no-op when not started (also after a failed Start, or a second time).
func (a *Adapter) Stop(ctx context.Context) error {
	r, err := a.runs.End(ctx, nil)
	if err != nil {
		return fmt.Errorf("stop mychat: %w", err)
	}
	if r != nil {
		a.log.Info("stopped")
	}
	return nil
}
