package engine

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
	"github.com/switchboard-gw/switchboard/kit/clientip"
	"github.com/switchboard-gw/switchboard/kit/logthrottle"
)

// newHTTPHandler builds the gateway's one HTTP handler: health, metrics,
// the Selarti webhook and the adapters' own routes.
func (g *Gateway) newHTTPHandler() http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// c.RealIP() is the address guard recorded: echo's own would believe
	// X-Forwarded-For from anyone.
	e.IPExtractor = func(r *http.Request) string { return clientip.String(clientip.From(r)) }
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, _ []byte) error {
			g.log.Error("http handler panic", "route", c.Path(), "err", err)
			return err
		},
	}))
	e.Use(g.guard)
	e.Use(g.accessLog)

	e.GET("/healthz", g.healthz)
	e.GET("/readyz", g.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(g.metrics.Registry, promhttp.HandlerOpts{})))

	rc := &receiver{
		secret:      g.cfg.Selarti.WebhookSecret,
		maxBytes:    g.cfg.Selarti.WebhookMaxBytes,
		readTimeout: min(webhookReadTimeout, g.cfg.Server.ReadTimeout),
		router:      g.router,
		metrics:     g.metrics,
		log:         g.log.With("component", "webhook"),
	}
	rc.warn = logthrottle.New(rc.log, 0, 0)
	e.POST(WebhookPath+"/:secret", rc.handle)
	e.POST(WebhookPath, rc.handle)

	admin := &adminAPI{token: g.cfg.Admin.Token, store: func() store.Store { return g.store }, privacy: g.ChatPrivacy()}
	admin.mount(e)

	landing := ""
	for _, inst := range g.instances {
		svc, ok := inst.messenger.(core.HTTPService)
		if !ok || !inst.enabled {
			continue
		}
		prefix := svc.HTTPPrefix()
		if lp, ok := svc.(core.LandingPage); ok && landing == "" {
			landing = lp.LandingPath() // under prefix: checkHTTPPrefixes saw to it
		}
		h := echo.WrapHandler(svc)
		e.Any(prefix+"*", h)
		// "/chat" → "/chat/", so relative links on the page resolve.
		e.GET(strings.TrimSuffix(prefix, "/"), func(c echo.Context) error {
			target := prefix
			if q := c.Request().URL.RawQuery; q != "" {
				target += "?" + q
			}
			return c.Redirect(http.StatusMovedPermanently, target)
		})
	}
	e.Match([]string{http.MethodGet, http.MethodHead}, "/", rootHandler(landing))
	return e
}

// rootText is GET / on a gateway without a page for people: operators
// who open its address learn where to look instead of a bare 404.
const rootText = `Switchboard gateway. No chat page is configured here.

GET /healthz   liveness: the process serves HTTP
GET /readyz    readiness: store, adapter instances, Selarti, outbox figures
GET /metrics   Prometheus metrics
`

// rootHandler answers GET /: a redirect to landing (the first enabled
// webchat's page, see core.LandingPage), or rootText when there is none.
// The redirect is temporary (302): which page leads is configuration,
// and browsers must not remember it.
func rootHandler(landing string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if landing == "" {
			return c.String(http.StatusOK, rootText)
		}
		target := landing
		if q := c.Request().URL.RawQuery; q != "" {
			target += "?" + q
		}
		return c.Redirect(http.StatusFound, target)
	}
}

// guard runs first on every request. It records the client's address
// (kit/clientip: X-Forwarded-For counts only from server.trusted_proxies)
// for everything after it, adapters included.
//
// And it answers a request whose handler did not read its body to the
// end (a wrong secret, a 404, a GET with a body) without reading the
// rest: otherwise net/http reads up to 256 KiB of the body, to keep the
// connection for the next request, before it sends the response and
// again after it, and a client trickling its body holds the connection
// until server.read_timeout. So the response says "Connection: close"
// (net/http then skips the first read), and once the handler is done the
// connection's read deadline is moved to now (which ends the second one
// at once): the client gets its answer and the connection is closed.
func (g *Gateway) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		req = clientip.With(req, g.proxies.Resolve(req))
		var body *watchedBody
		if req.ContentLength != 0 && req.Body != nil && req.Body != http.NoBody {
			body = &watchedBody{ReadCloser: req.Body, length: req.ContentLength}
			req.Body = body
			res := c.Response()
			res.Before(func() {
				if !body.done.Load() {
					res.Header().Set("Connection", "close")
				}
			})
		}
		c.SetRequest(req)
		err := next(c) // accessLog, next, has written any error response
		if body != nil && !body.done.Load() {
			_ = http.NewResponseController(c.Response()).SetReadDeadline(time.Now())
		}
		return err
	}
}

// watchedBody is a request body that knows whether it was read to its
// end.
type watchedBody struct {
	io.ReadCloser
	length int64 // Content-Length, or -1 (chunked)
	read   int64
	done   atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if err == io.EOF || (b.length > 0 && b.read >= b.length) {
		b.done.Store(true)
	}
	return n, err
}

// accessLog logs each request at debug level (warn for 5xx) by its route
// pattern, never its raw path: the webhook path carries the secret.
func (g *Gateway) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		status := c.Response().Status
		level := g.log.Debug
		if status >= 500 {
			level = g.log.Warn
		}
		level("http request", "method", c.Request().Method, "route", c.Path(),
			"status", status, "duration", time.Since(start), "bytes", c.Response().Size)
		return nil
	}
}

type healthReply struct {
	Status    string             `json:"status"`
	Replica   string             `json:"replica"`
	Instances []InstanceStatus   `json:"instances"`
	Selarti   string             `json:"selarti,omitempty"`
	Store     string             `json:"store,omitempty"`
	Outbox    map[string]outStat `json:"outbox,omitempty"`
}

// outStat is one outbox's figures as /readyz and /admin/outbox show them:
// snake_case, the age in seconds like the metrics.
type outStat struct {
	Pending          int     `json:"pending"`
	Dead             int     `json:"dead"`
	OldestPendingSec float64 `json:"oldest_pending_seconds"` // 0 when none is pending
}

func viewStats(st store.Stats, now time.Time) outStat {
	var age float64
	if !st.OldestPending.IsZero() {
		age = now.Sub(st.OldestPending).Seconds()
	}
	return outStat{Pending: st.Pending, Dead: st.Dead, OldestPendingSec: age}
}

// healthz is liveness: the process serves HTTP. It always answers 200 and
// shows the instances for people.
func (g *Gateway) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthReply{Status: "ok", Replica: g.replica, Instances: g.Statuses()})
}

// readyz is readiness: 200 when the store is open and its last write
// succeeded (see watchedStore), every enabled instance runs and Selarti is
// reachable as far as the last delivery knows; 503 otherwise, with the
// reason in the body.
func (g *Gateway) readyz(c echo.Context) error {
	reply := healthReply{Status: "ready", Replica: g.replica, Instances: g.Statuses(), Selarti: "ok", Outbox: map[string]outStat{}}
	ready := g.storeReady.Load()
	for _, s := range reply.Instances {
		if (s.State != StateRunning && s.State != StateDisabled) || s.HealthError != "" {
			ready = false
		}
	}
	if g.selartiFailing.Load() {
		reply.Selarti = "failing"
		ready = false
	}
	if g.storeReady.Load() {
		reply.Store = "ok"
		if failing, since, lastErr := g.watched.writeHealth(); failing {
			reply.Store = fmt.Sprintf("writes failing for %s: %s", time.Since(since).Round(time.Second), lastErr)
			ready = false
		}
	}
	if g.storeReady.Load() {
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		for _, dir := range store.Directions {
			st, err := g.store.Stats(ctx, dir)
			if err != nil {
				ready = false
				continue
			}
			reply.Outbox[directionLabel(dir)] = viewStats(st, time.Now())
		}
	}
	if !ready {
		reply.Status = "not ready"
		return c.JSON(http.StatusServiceUnavailable, reply)
	}
	return c.JSON(http.StatusOK, reply)
}
