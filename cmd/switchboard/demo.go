package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// demoTaskID is the Selarti task the demo's webchat talks to.
const demoTaskID = "demo-task"

func newDemoCmd() *cobra.Command {
	var (
		port    int
		host    string
		dataDir string
		think   time.Duration
		level   string
	)
	cmd := &cobra.Command{
		Use:   "demo [--port 8080]",
		Short: "Run the webchat against a local Selarti simulator: no account anywhere",
		Long: `demo starts a local Selarti simulator (a small rule-based assistant speaking
Selarti's real HTTP API and webhooks) and a gateway with the webchat adapter,
wired together over real HTTP on loopback. Open the printed URL in a browser.

It also serves a sample host page with the chat widget on the next port
(another origin, allowed in the webchat's allowed_origins), and the
simulator's operator console, where you take a conversation over and
answer as a human. Without --data, the history is kept in a temporary
folder and forgotten at exit.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, cmd, demoOptions{host: host, port: port, dataDir: dataDir, think: think, level: level})
		},
	}
	cmd.Flags().IntVar(&port, "port", 8080, "port of the gateway")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on (the demo has no real secrets, but keep it local)")
	cmd.Flags().StringVar(&dataDir, "data", "", "data directory, kept after exit (default: a temporary one, removed at exit)")
	cmd.Flags().DurationVar(&think, "think", 600*time.Millisecond, "how long the simulated assistant 'thinks' before replying")
	cmd.Flags().StringVar(&level, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

type demoOptions struct {
	host, dataDir, level string
	port                 int
	think                time.Duration
}

// portHint says how to pick another port, in the words of how the demo
// was started: make sets MAKELEVEL in its recipes' environment, and a
// make user sets PORT=, not --port.
func portHint() string {
	if os.Getenv("MAKELEVEL") != "" {
		return "try make demo PORT=9000"
	}
	return "try --port 9000"
}

// dataHint says where the history goes, and how to keep it.
func dataHint(dir string) string {
	if dir != "" {
		return "kept in " + dir
	}
	if os.Getenv("MAKELEVEL") != "" {
		return "forgotten at exit (make demo DATA=dir keeps it)"
	}
	return "forgotten at exit (--data dir keeps it)"
}

// runDemo runs the demo until ctx ends. After a clean shutdown it returns
// nil, so that Ctrl+C ends it with status 0.
func runDemo(ctx context.Context, cmd *cobra.Command, o demoOptions) error {
	history := dataHint(o.dataDir)
	if o.dataDir == "" {
		dir, err := os.MkdirTemp("", "switchboard-demo-")
		if err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		defer os.RemoveAll(dir)
		o.dataDir = dir
	}
	// Fresh credentials each run: the demo listens on a real port.
	apiKey, secret := rand.Text(), rand.Text()+rand.Text()

	cfg, err := engine.DefaultConfig()
	if err != nil {
		return err
	}
	cfg.Log = engine.LogConfig{Level: o.level, Format: "text"}
	log := engine.NewLogger(cfg.Log, os.Stderr)

	ln, err := net.Listen("tcp", net.JoinHostPort(o.host, fmt.Sprint(o.port)))
	if err != nil {
		return fmt.Errorf("listen: %w (%s)", err, portHint())
	}
	// The host page on the next port (any free one with --port 0).
	sitePort := 0
	if o.port != 0 {
		sitePort = ln.Addr().(*net.TCPAddr).Port + 1
	}
	siteLn, err := net.Listen("tcp", net.JoinHostPort(o.host, fmt.Sprint(sitePort)))
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen for the sample host page on the next port: %w (%s)", err, portHint())
	}

	// The simulator listens on loopback whatever --host says: its operator
	// console has no login.
	sim, err := fakeselarti.New(fakeselarti.Options{
		APIKey:    apiKey,
		Tasks:     []string{demoTaskID},
		ThinkTime: o.think,
		Logger:    log.With("component", "selarti-simulator"),
	})
	if err != nil {
		ln.Close()
		siteLn.Close()
		return fmt.Errorf("start selarti simulator: %w", err)
	}
	defer sim.Close()

	base := "http://" + ln.Addr().String()
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.PublicURL = base
	cfg.Selarti.BaseURL = sim.URL()
	cfg.Selarti.APIKey = core.Secret(apiKey)
	cfg.Selarti.WebhookSecret = core.Secret(secret)
	cfg.Store.Path = o.dataDir
	cfg.Adapters = []engine.AdapterConfig{{
		Name:   "web",
		Kind:   "webchat",
		TaskID: demoTaskID,
		Config: map[string]any{
			"title":           "Switchboard demo",
			"welcome":         "Hi! I am the demo assistant of a small shop, running on a local Selarti simulator. Ask me about prices, delivery, or type \"operator\".",
			"allowed_origins": siteOrigins(siteLn),
		},
	}}
	if err := cfg.Validate(); err != nil {
		ln.Close()
		siteLn.Close()
		return err
	}
	g, err := engine.New(cfg, engine.Options{Logger: log, Listener: ln})
	if err != nil {
		ln.Close()
		siteLn.Close()
		return err
	}
	sim.SetWebhookURL(base + engine.WebhookPath + "/" + secret)
	site := startDemoSite(siteLn, base, log.With("component", "host-page"))
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
		defer cancel()
		return errors.Join(g.Shutdown(sctx), site.shutdown(sctx))
	}
	if err := g.Start(ctx); err != nil {
		return errors.Join(err, site.shutdown(context.Background()))
	}
	// Say "running" only once the chat answers: a user who opens it at
	// once would otherwise get a 503.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	err = g.WaitStarted(wctx)
	wcancel()
	if err != nil {
		return errors.Join(fmt.Errorf("start the demo: %w", err), stop())
	}
	fmt.Fprintf(cmd.OutOrStdout(), `
Switchboard demo is running.

  Open the chat:     %s/chat/
  Widget on a site:  http://%s/   (another origin, in allowed_origins)
  Operator console:  %s   (take a conversation over, answer as a human)
  Health:            %s/readyz
  Metrics:           %s/metrics
  History:           %s

Press Ctrl+C to stop.

`, base, siteLn.Addr(), sim.ConsoleURL(), base, base, history)
	<-ctx.Done()
	return stop()
}
