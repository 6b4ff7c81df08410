package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/core/engine"
)

func newCheckCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "check -c FILE",
		Short: "Validate a config file (and every adapter's block) without starting anything",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadAndBuild(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Adapters))
			for _, a := range cfg.Adapters {
				state := a.Kind
				if !a.IsEnabled() {
					state += ", disabled"
				}
				names = append(names, fmt.Sprintf("%s (%s)", a.Name, state))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK, %d adapter instance(s): %s\n", path, len(cfg.Adapters), strings.Join(names, ", "))
			return nil
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "config.yaml", "config file")
	return cmd
}

// loadAndBuild is the path that serve and check share: load and validate
// the file, then construct every adapter instance (which decodes and
// checks its own block). check stops here; serve goes on to Start.
func loadAndBuild(path string, log *slog.Logger) (*engine.Config, error) {
	cfg, err := engine.LoadConfig(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if _, err := engine.New(cfg, engine.Options{Logger: log}); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}
