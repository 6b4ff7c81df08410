package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/core/store"
)

// StoreFile is the SQLite store's file name inside store.path.
const StoreFile = "switchboard.db"

// Options are the gateway's dependencies that do not come from the config
// file. Every field is optional.
type Options struct {
	// Registry supplies the adapter kinds; default DefaultRegistry().
	Registry *core.Registry
	// Logger; default slog.Default().
	Logger *slog.Logger
	// HTTPClient is given to adapters and the Selarti client.
	HTTPClient *http.Client
	// Store replaces the store the config describes (tests). The gateway
	// does not close a store it was given.
	Store store.Store
	// Listener replaces listening on server.listen (tests, socket activation).
	Listener net.Listener
}

// Gateway is one running Switchboard: the adapter instances, the router,
// the outbox workers, the Selarti client and the HTTP listener.
type Gateway struct {
	cfg       *Config
	log       *slog.Logger
	opts      Options
	instances []*instance
	byName    map[string]*instance
	selarti   *selarti.Client
	metrics   *Metrics

	store      store.Store
	ownStore   bool
	router     *Router
	httpServer *http.Server

	cancelRun  context.CancelFunc // stops claiming and background loops
	cancelWork context.CancelFunc // cuts attempts in flight short
	background sync.WaitGroup
	dispatch   sync.WaitGroup

	// selartiFailing is set while the last attempt to reach Selarti failed
	// transiently (an outage); /readyz reports it.
	selartiFailing atomic.Bool
	storeReady     atomic.Bool
	shutdownOnce   sync.Once
}

// New builds a gateway from a validated config: it constructs every
// enabled adapter instance through its factory (which decodes and checks
// the instance's own block) and the Selarti client. It does no I/O, so
// `switchboard check` is New without Start.
func New(cfg *Config, opts Options) (*Gateway, error) {
	// Validate again whoever built cfg: a gateway must never start without
	// a webhook secret, whatever path its config took (never fail open).
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Registry == nil {
		opts.Registry = core.DefaultRegistry()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 60 * time.Second, Transport: outboundTransport(cfg.Delivery.Workers)}
	}
	g := &Gateway{cfg: cfg, log: opts.Logger, opts: opts, byName: make(map[string]*instance)}
	g.metrics = newMetrics(func() store.Store {
		if !g.storeReady.Load() {
			return nil
		}
		return g.store
	})

	var errs []error
	for i, ac := range cfg.Adapters {
		inst, err := g.buildInstance(ac)
		if err != nil {
			errs = append(errs, fmt.Errorf("adapters[%d] %q (%s): %w", i, ac.Name, ac.Kind, err))
			continue
		}
		g.instances = append(g.instances, inst)
		g.byName[inst.name] = inst
	}
	if err := checkHTTPPrefixes(g.instances); err != nil {
		errs = append(errs, err)
	}
	client, err := selarti.New(selarti.Config{
		BaseURL:    cfg.Selarti.BaseURL,
		APIKey:     cfg.Selarti.APIKey.Reveal(),
		Wire:       cfg.Selarti.Wire.WithDefaults(),
		Timeout:    cfg.Selarti.Timeout,
		MaxElapsed: cfg.Selarti.RetryBudget,
		HTTPClient: opts.HTTPClient,
		Logger:     opts.Logger.With("component", "selarti"),
		Observe:    g.metrics.observeSelarti,
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("selarti: %w", err))
	}
	g.selarti = client
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) buildInstance(ac AdapterConfig) (*instance, error) {
	factory, err := g.opts.Registry.Factory(ac.Kind)
	if err != nil {
		return nil, err
	}
	log := g.log.With("adapter", ac.Kind, "instance", ac.Name)
	inst := newInstance(ac, log)
	if !inst.enabled {
		return inst, nil
	}
	m, err := factory(core.Instance{
		Name:      ac.Name,
		Kind:      ac.Kind,
		Config:    core.RawConfig(ac.Config),
		Logger:    log,
		HTTP:      g.opts.HTTPClient,
		PublicURL: strings.TrimSuffix(g.cfg.Server.PublicURL, "/"),
		DataDir:   filepath.Join(g.cfg.Store.Path, "adapters", ac.Name),
	})
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("factory returned no messenger")
	}
	inst.messenger = m
	return inst, nil
}

// corePaths are the gateway's own routes; no adapter may serve under them.
var corePaths = []string{"/healthz", "/readyz", "/metrics", "/webhooks/selarti", "/admin/"}

func checkHTTPPrefixes(instances []*instance) error {
	owner := make(map[string]string)
	var errs []error
	for _, inst := range instances {
		svc, ok := inst.messenger.(core.HTTPService)
		if !ok {
			continue
		}
		p := svc.HTTPPrefix()
		if !strings.HasPrefix(p, "/") || !strings.HasSuffix(p, "/") || p == "/" {
			errs = append(errs, fmt.Errorf("instance %q: http path %q must start and end with \"/\" and not be \"/\"", inst.name, p))
			continue
		}
		for _, cp := range corePaths {
			if strings.HasPrefix(p, cp) || strings.HasPrefix(cp, p) {
				errs = append(errs, fmt.Errorf("instance %q: http path %q collides with the gateway's %s", inst.name, p, cp))
			}
		}
		for other, name := range owner {
			if strings.HasPrefix(p, other) || strings.HasPrefix(other, p) {
				errs = append(errs, fmt.Errorf("instance %q: http path %q collides with instance %q's %q", inst.name, p, name, other))
			}
		}
		owner[p] = inst.name
	}
	return errors.Join(errs...)
}

// Start opens the store, starts listening, starts the outbox workers and
// the adapter instances (retrying those that fail in the background), and
// returns. Call Shutdown to stop.
func (g *Gateway) Start(ctx context.Context) error {
	if err := g.openStore(ctx); err != nil {
		return err
	}
	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	g.cancelRun, g.cancelWork = cancelRun, cancelWork

	d := g.cfg.Delivery
	policy := retryPolicy{
		initial: d.BackoffInitial, max: d.BackoffMax,
		maxAttempts: d.MaxAttempts, maxAge: d.MaxAge, attemptTimeout: d.AttemptTimeout,
	}
	r := newRouter(g.log, g.store, g.selarti, g.metrics, g.byName)
	r.toSelarti = newDispatcher(store.ToSelarti, g.store, r.sendToSelarti, policy, d.Workers, g.log, g.metrics)
	// Any failure counts, permanent ones too: a wrong send path or field
	// name makes Selarti refuse every message with a 4xx, and that must
	// show on /readyz rather than only in the dead letters.
	r.toSelarti.onResult = func(_ store.Message, err error) {
		g.selartiFailing.Store(err != nil)
	}
	r.toUser = newDispatcher(store.ToUser, g.store, r.sendToUser, policy, d.Workers, g.log, g.metrics)
	g.router = r

	ln := g.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", g.cfg.Server.Listen)
		if err != nil {
			g.closeStore()
			return fmt.Errorf("listen on %s: %w", g.cfg.Server.Listen, err)
		}
	}
	g.httpServer = &http.Server{
		Handler:           g.newHTTPHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		if err := g.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("http server", "err", err)
		}
	}()
	g.log.Info("listening", "addr", ln.Addr().String(), "webhook_path", WebhookPath+"/<secret>")

	for _, dsp := range []*dispatcher{r.toSelarti, r.toUser} {
		g.dispatch.Add(1)
		go func() {
			defer g.dispatch.Done()
			dsp.run(runCtx, workCtx)
		}()
	}
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		g.pruneLoop(runCtx)
	}()
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		r.runEvents(runCtx)
	}()
	for _, inst := range g.instances {
		if !inst.enabled {
			continue
		}
		if err := os.MkdirAll(filepath.Join(g.cfg.Store.Path, "adapters", inst.name), 0o700); err != nil && g.cfg.Store.Driver == "sqlite" {
			inst.log.Warn("create data directory", "err", err)
		}
		// Not in g.background: shutdown waits for it within its
		// deadline, through stopInstances.
		inst.launched = true
		go inst.supervise(r.deliverFunc(inst), g.metrics)
	}
	return nil
}

func (g *Gateway) openStore(ctx context.Context) error {
	switch {
	case g.opts.Store != nil:
		g.store = g.opts.Store
	case g.cfg.Store.Driver == "memory":
		g.store, g.ownStore = store.NewMemory(), true
		g.log.Warn("store is in memory: queued messages do not survive a restart")
	default:
		path := filepath.Join(g.cfg.Store.Path, StoreFile)
		st, err := store.OpenSQLite(ctx, path)
		if err != nil {
			return err // it names the operation and the path
		}
		g.store, g.ownStore = st, true
		g.log.Info("store opened", "path", path)
	}
	g.storeReady.Store(true)
	return nil
}

func (g *Gateway) closeStore() {
	g.storeReady.Store(false)
	if g.ownStore {
		if err := g.store.Close(); err != nil {
			g.log.Error("close store", "err", err)
		}
	}
}

// outboundTransport is the transport of the HTTP client shared by the
// adapters and the Selarti client: net/http's default, keeping an idle
// connection per delivery worker to each host. The default keeps two, so
// with more workers sending to one API (Selarti, the Bot API) every send
// past the second opened a new connection, and closed it after.
func outboundTransport(workers int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, workers)
	t.MaxIdleConns = max(t.MaxIdleConns, 4*workers)
	return t
}

// pruneInterval is how often delivered messages past retention are deleted.
const pruneInterval = 10 * time.Minute

func (g *Gateway) pruneLoop(ctx context.Context) {
	t := time.NewTicker(pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := time.Now()
			n, err := g.store.Prune(ctx, now.Add(-g.cfg.Store.Retention), now.Add(-g.cfg.Store.ChatRetention))
			if err != nil {
				g.log.Warn("prune store", "err", err)
			} else if n > 0 {
				g.log.Info("store pruned", "messages", n)
			}
		}
	}
}

// Shutdown stops the gateway gracefully: it stops taking requests, lets
// the deliveries in flight finish, stops the adapters, and closes the
// store. Messages still queued stay in the store for the next start. ctx
// bounds the whole shutdown; past it, work in flight is cut short.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.shutdownOnce.Do(func() { err = g.shutdown(ctx) })
	return err
}

func (g *Gateway) shutdown(ctx context.Context) error {
	g.log.Info("shutting down")
	var errs []error
	if g.httpServer != nil {
		if err := g.httpServer.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if g.cancelRun != nil {
		g.cancelRun()
		done := make(chan struct{})
		go func() { g.dispatch.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			g.cancelWork()
			<-done
		}
	}
	errs = append(errs, g.stopInstances(ctx))
	g.background.Wait()
	if g.cancelWork != nil {
		g.cancelWork()
	}
	if g.store != nil {
		g.closeStore()
	}
	g.log.Info("stopped")
	return errors.Join(errs...)
}

// WaitStarted waits until every enabled instance has been through its
// first Start, or until ctx is done, and returns an error naming the
// instances that are not running then (they go on retrying in the
// background). For a front end that must not print "ready" while its
// chat still answers 503 (the demo).
func (g *Gateway) WaitStarted(ctx context.Context) error {
	var errs []error
	for _, inst := range g.instances {
		if !inst.launched {
			continue
		}
		select {
		case <-inst.tried:
		case <-ctx.Done():
			return fmt.Errorf("wait for instance %s to start: %w", inst.name, ctx.Err())
		}
		if s := inst.snapshot(); s.State != StateRunning {
			errs = append(errs, fmt.Errorf("instance %s is %s: %s", inst.name, s.State, s.LastError))
		}
	}
	return errors.Join(errs...)
}

// stopInstances asks every supervised instance to stop, all at once, and
// waits until they have, or until ctx is done: one slow adapter must not
// eat the others' share of the shutdown deadline.
func (g *Gateway) stopInstances(ctx context.Context) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, inst := range g.instances {
		if !inst.launched {
			continue
		}
		wg.Go(func() {
			if err := inst.stop(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run starts the gateway and serves until ctx ends, then shuts down within
// server.shutdown_timeout.
func (g *Gateway) Run(ctx context.Context) error {
	if err := g.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.cfg.Server.ShutdownTimeout)
	defer cancel()
	return g.Shutdown(sctx)
}

// Store is the gateway's outbox, once started (for the admin commands).
func (g *Gateway) Store() store.Store { return g.store }

// Statuses reports every instance's health, sorted by name.
func (g *Gateway) Statuses() []InstanceStatus {
	out := make([]InstanceStatus, 0, len(g.instances))
	for _, inst := range g.instances {
		out = append(out, inst.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
