package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/core/engine"
)

func newServeCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve -c FILE",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := engine.LoadConfig(path)
			if err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
			log := engine.NewLogger(cfg.Log, os.Stderr)
			g, err := engine.New(cfg, engine.Options{Logger: log})
			if err != nil {
				return fmt.Errorf("config %s: %w", path, err)
			}
			logEffectiveConfig(log, cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "config.yaml", "config file")
	return cmd
}
