package engine

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/store"
)

// newHTTPHandler builds the gateway's one HTTP handler: health, metrics,
// the Selarti webhook and the adapters' own routes.
func (g *Gateway) newHTTPHandler() http.Handler {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, _ []byte) error {
			g.log.Error("http handler panic", "route", c.Path(), "err", err)
			return err
		},
	}))
	e.Use(g.accessLog)

	e.GET("/healthz", g.healthz)
	e.GET("/readyz", g.readyz)
	e.GET("/metrics", echo.WrapHandler(promhttp.HandlerFor(g.metrics.Registry, promhttp.HandlerOpts{})))

	rc := &receiver{
		secret:   g.cfg.Selarti.WebhookSecret,
		maxBytes: g.cfg.Selarti.WebhookMaxBytes,
		router:   g.router,
		metrics:  g.metrics,
		log:      g.log.With("component", "webhook"),
	}
	e.POST(WebhookPath+"/:secret", rc.handle)
	e.POST(WebhookPath, rc.handle)

	admin := &adminAPI{token: g.cfg.Admin.Token, store: func() store.Store { return g.store }}
	admin.mount(e)

	for _, inst := range g.instances {
		svc, ok := inst.messenger.(core.HTTPService)
		if !ok || !inst.enabled {
			continue
		}
		prefix := svc.HTTPPrefix()
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
	return e
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
	Instances []InstanceStatus   `json:"instances"`
	Selarti   string             `json:"selarti,omitempty"`
	Outbox    map[string]outStat `json:"outbox,omitempty"`
}

type outStat struct {
	Pending          int     `json:"pending"`
	Dead             int     `json:"dead"`
	OldestPendingSec float64 `json:"oldest_pending_seconds"`
}

// healthz is liveness: the process serves HTTP. It always answers 200 and
// shows the instances for people.
func (g *Gateway) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, healthReply{Status: "ok", Instances: g.Statuses()})
}

// readyz is readiness: 200 when the store is open, every enabled instance
// runs and Selarti is reachable as far as the last delivery knows; 503
// otherwise, with the reason in the body.
func (g *Gateway) readyz(c echo.Context) error {
	reply := healthReply{Status: "ready", Instances: g.Statuses(), Selarti: "ok", Outbox: map[string]outStat{}}
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
		ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
		defer cancel()
		for _, dir := range store.Directions {
			st, err := g.store.Stats(ctx, dir)
			if err != nil {
				ready = false
				continue
			}
			var age float64
			if !st.OldestPending.IsZero() {
				age = time.Since(st.OldestPending).Seconds()
			}
			reply.Outbox[directionLabel(dir)] = outStat{Pending: st.Pending, Dead: st.Dead, OldestPendingSec: age}
		}
	}
	if !ready {
		reply.Status = "not ready"
		return c.JSON(http.StatusServiceUnavailable, reply)
	}
	return c.JSON(http.StatusOK, reply)
}
