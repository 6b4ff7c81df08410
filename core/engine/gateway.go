package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
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
	"github.com/switchboard-gw/switchboard/kit/clientip"
	"github.com/switchboard-gw/switchboard/kit/lifecycle"
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
	replica   string // this replica's id (replica.id, or <hostname>-<pid>)
	// proxies says which peers' X-Forwarded-For counts (trusted_proxies).
	proxies *clientip.Resolver

	dirLock    io.Closer // the data directory's lock, held from Start to the end of Shutdown
	store      store.Store
	watched    *watchedStore // store, with its writes watched for /readyz
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
	// privacy says whose chat ids are secrets; set once in New.
	privacy      *atomic.Pointer[ChatPrivacy]
	storeReady   atomic.Bool
	shutdownOnce sync.Once
	// storeProbeEvery and pruneEvery override storeProbeInterval and
	// pruneInterval (tests).
	storeProbeEvery, pruneEvery time.Duration
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
	proxies, err := clientip.NewResolver(cfg.Server.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("key server.trusted_proxies%w", err) // Validate has checked them
	}
	g := &Gateway{cfg: cfg, opts: opts, byName: make(map[string]*instance), proxies: proxies, privacy: new(atomic.Pointer[ChatPrivacy])}
	// Every line the gateway and its adapters log shows private chat ids
	// shortened (see privacyHandler); until the instances are built and
	// have said whether theirs are private, all are.
	g.log = slog.New(newPrivacyHandler(opts.Logger.Handler(), g.privacy))
	g.metrics = newMetrics(func() store.Store {
		if !g.storeReady.Load() {
			return nil
		}
		return g.store
	})
	g.replica = replicaID(cfg)
	g.metrics.replicaInfo.WithLabelValues(g.replica, cfg.Store.Driver).Set(1)

	var errs []error
	for i, ac := range cfg.Adapters {
		inst, err := g.buildInstance(ac)
		if err != nil {
			errs = append(errs, fmt.Errorf("adapters[%d] %q (%s): %w", i, ac.Name, ac.Kind, err))
			continue
		}
		g.instances = append(g.instances, inst)
		g.byName[inst.name] = inst
		if inst.enabled {
			// A series from the start, so that an alert on == 0 fires
			// for an instance that never ran (Start failed before its
			// supervisor began, or it is still in its first Start).
			g.metrics.adapterUp.WithLabelValues(inst.name, inst.kind).Set(0)
		}
	}
	privacy := privacyOf(g.instances)
	g.privacy.Store(&privacy)
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
		Logger:     g.log.With("component", "selarti"),
		Observe:    g.metrics.observeSelarti,
		// A send that went out and got no answer is settled by Selarti's
		// echo (see echoReconciler), not by sending it again at once.
		StopOnUnknownOutcome: reconcilesEchoes(cfg.Selarti),
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
		Metrics:   instanceMetrics{m: g.metrics, instance: ac.Name},
		Journals:  g.journalsFor(ac.Name),
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
		if lp, ok := svc.(core.LandingPage); ok && !strings.HasPrefix(lp.LandingPath(), p) {
			errs = append(errs, fmt.Errorf("instance %q: landing page %q is not under its http path %q", inst.name, lp.LandingPath(), p))
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
	// The data directory first, whatever the store: before anything
	// touches a file in it or an adapter points a webhook at this process.
	if g.cfg.Store.Path != "" {
		lock, err := store.LockDir(g.cfg.Store.Path)
		if err != nil {
			return err
		}
		g.dirLock = lock
	}
	if err := g.openStore(ctx); err != nil {
		g.releaseDir()
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
	if reconcilesEchoes(g.cfg.Selarti) {
		r.echoes = newEchoReconciler(g.cfg.Selarti.EchoWindow)
		// The store itself, not the watch in front of it.
		if h, ok := g.watched.Store.(store.Heads); ok {
			r.heads = h
		}
	}
	r.toSelarti = newDispatcher(store.ToSelarti, g.store, r.sendToSelarti, policy, d.Workers, g.log, g.metrics)
	// Any failure counts, permanent ones too: a wrong send path or field
	// name makes Selarti refuse every message with a 4xx, and that must
	// show on /readyz rather than only in the dead letters.
	r.toSelarti.onResult = func(m store.Message, res attemptResult) {
		g.selartiFailing.Store(res.err != nil)
		r.reportDelivery(m, res)
	}
	if r.echoes != nil {
		r.toSelarti.onDelivered = func(m store.Message) { r.echoes.recorded(m.Chat, m.ID) }
	}
	r.toUser = newDispatcher(store.ToUser, g.store, r.sendToUser, policy, d.Workers, g.log, g.metrics)
	r.toUser.onResult = r.afterDelivery // a dialog change after the message that carried it
	g.router = r

	ln := g.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", g.cfg.Server.Listen)
		if err != nil {
			g.closeStore()
			g.releaseDir()
			return fmt.Errorf("listen on %s: %w", g.cfg.Server.Listen, err)
		}
	}
	maxConns, lowered := effectiveMaxConns(g.cfg.Server.MaxConns)
	if lowered {
		g.log.Warn("server.max_conns lowered to fit the open-file limit", "max_conns", maxConns, "configured", g.cfg.Server.MaxConns)
	}
	ln = newConnLimiter(ln, maxConns, g.cfg.Server.MaxConnsPerIP, g.proxies, g.metrics, g.log.With("component", "listener"))
	srv := g.cfg.Server
	g.httpServer = &http.Server{
		Handler:           g.newHTTPHandler(),
		ReadHeaderTimeout: srv.ReadHeaderTimeout,
		ReadTimeout:       srv.ReadTimeout,
		WriteTimeout:      srv.WriteTimeout,
		IdleTimeout:       srv.IdleTimeout,
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
		g.pruneLoop(runCtx, cmp.Or(g.pruneEvery, pruneInterval))
	}()
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		g.probeStore(runCtx, cmp.Or(g.storeProbeEvery, storeProbeInterval))
	}()
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		r.runEvents(runCtx)
	}()
	g.background.Add(1)
	go func() {
		defer g.background.Done()
		r.runDeliveries(runCtx)
	}()
	if r.echoes != nil {
		g.background.Add(1)
		go func() {
			defer g.background.Done()
			r.echoes.sweepLoop(runCtx)
		}()
	}
	for _, inst := range g.instances {
		if !inst.enabled {
			continue
		}
		if err := os.MkdirAll(filepath.Join(g.cfg.Store.Path, "adapters", inst.name), 0o700); err != nil && g.cfg.Store.Driver == "sqlite" {
			inst.log.Warn("create data directory", "err", err)
		}
		inst.lease = g.receiveLease()
		// Not in g.background: shutdown waits for it within its
		// deadline, through stopInstances.
		inst.launched = true
		go inst.supervise(r.deliverFunc(inst), g.metrics)
	}
	return nil
}

// receiveLease is how this replica owns exclusive inbound connections:
// by the store's leases when it is shared (store.Leaser), else always.
func (g *Gateway) receiveLease() receiveLease {
	l := receiveLease{owner: g.replica, ttl: g.cfg.Replica.LeaseTTL}
	// The store itself, not the watch in front of it.
	if leaser, ok := g.watched.Store.(store.Leaser); ok {
		l.leaser = leaser
	}
	return l
}

// replicaID is replica.id, or <hostname>-<pid>.
func replicaID(cfg *Config) string {
	if cfg.Replica.ID != "" {
		return cfg.Replica.ID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "switchboard"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

func (g *Gateway) openStore(ctx context.Context) error {
	switch {
	case g.opts.Store != nil:
		g.store = g.opts.Store
	case g.cfg.Store.Driver == "postgres":
		st, err := store.OpenPostgres(ctx, g.cfg.Store.DSN.Reveal())
		if err != nil {
			return err // it names the operation, never the DSN
		}
		g.store, g.ownStore = st, true
		g.log.Info("store opened", "driver", "postgres", "replica", g.replica)
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
		if n := st.InDoubtAtOpen(); n > 0 {
			g.log.Warn("the last run did not shut down cleanly: messages that may have been in flight are checked before they are sent again (a message to Selarti waits for its echo; a reply is looked for where the network allows)",
				"in_doubt", n, "echo_window", g.cfg.Selarti.EchoWindow)
		}
	}
	g.watched = watchStore(g.store, g.log.With("component", "store"))
	g.store = g.watched
	g.storeReady.Store(true)
	return nil
}

// releaseDir releases the data directory's lock, if held.
func (g *Gateway) releaseDir() {
	if g.dirLock != nil {
		if err := g.dirLock.Close(); err != nil {
			g.log.Warn("release data directory lock", "err", err)
		}
		g.dirLock = nil
	}
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
// adapters and the Selarti client: net/http's default, keeping four idle
// connections per delivery worker to each host. The default keeps two,
// so with more workers sending to one API (Selarti, the Bot API) every
// send past the second opened a new connection, and closed it after. One
// per worker was not enough either: besides the workers' sends, an
// adapter's "typing…" indicators call the same API (one request per user
// message), and the surplus connections were dialled and closed again
// under load (3.3% of the gateway's CPU, docs/benchmarks.md).
func outboundTransport(workers int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, 4*workers)
	t.MaxIdleConns = max(t.MaxIdleConns, 16*workers)
	return t
}

// pruneInterval is how often delivered messages past retention are
// deleted, and the store's WAL checkpointed.
const pruneInterval = 10 * time.Minute

func (g *Gateway) pruneLoop(ctx context.Context, every time.Duration) {
	lifecycle.Every(ctx, every, func() {
		now := time.Now()
		n, err := g.store.Prune(ctx, now.Add(-g.cfg.Store.Retention), now.Add(-g.cfg.Store.ChatRetention))
		if err != nil {
			g.log.Warn("prune store", "err", err)
		} else if n > 0 {
			g.log.Info("store pruned", "messages", n)
		}
		g.checkpointStore(ctx)
	})
}

// checkpointStore shrinks the store's write-ahead log, if it has one
// (store.Checkpointer): SQLite never gives a WAL's room back by itself,
// which on a small disk keeps the room a burst took (or a prune freed).
func (g *Gateway) checkpointStore(ctx context.Context) {
	cp, ok := g.watched.Store.(store.Checkpointer)
	if !ok {
		return
	}
	if err := cp.Checkpoint(ctx); err != nil && ctx.Err() == nil {
		g.log.Warn("checkpoint store", "err", err)
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
	g.releaseDir()
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

// ChatPrivacy says which instances' chat ids are secrets, as the gateway
// shows them in its logs and admin API: for the admin commands, which
// must show them the same way.
func (g *Gateway) ChatPrivacy() ChatPrivacy { return *g.privacy.Load() }

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
