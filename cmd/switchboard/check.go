package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/core/engine"
)

func newCheckCmd() *cobra.Command {
	var (
		path    string
		online  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check -c FILE [--online]",
		Short: "Validate a config file (and every adapter's block) without starting anything; --online also tries the credentials",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return errors.New("--timeout must be positive")
			}
			cfg, g, err := loadAndBuild(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			names := make([]string, 0, len(cfg.Adapters))
			enabled := 0
			for _, a := range cfg.Adapters {
				state := a.Kind
				if a.IsEnabled() {
					enabled++
				} else {
					state += ", disabled"
				}
				names = append(names, fmt.Sprintf("%s (%s)", a.Name, state))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK, %d adapter instance(s): %s\n", path, len(cfg.Adapters), strings.Join(names, ", "))
			if enabled == 0 {
				// Valid, but such a gateway answers Selarti's webhooks
				// and no user ever reaches it: surely not what was meant.
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s enables no adapter: no user can reach the gateway; add one under adapters: (see config.yaml.example)\n", path)
			}
			if !online {
				return nil
			}
			return printProbes(cmd.OutOrStdout(), g.ProbeOnline(cmd.Context(), timeout))
		},
	}
	cmd.Flags().StringVarP(&path, "config", "c", "config.yaml", "config file")
	cmd.Flags().BoolVar(&online, "online", false, "also authenticate to Selarti and call each enabled adapter's cheap probe (getMe, auth.test, ...)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "with --online, how long each probe may take")
	return cmd
}

// printProbes prints one line per probe, and fails if any did.
func printProbes(w io.Writer, results []engine.ProbeResult) error {
	failed := 0
	for _, r := range results {
		line := fmt.Sprintf("%s: %s", r.Item, r.Status)
		if r.Reason != "" {
			line += " " + r.Reason
		}
		fmt.Fprintln(w, line)
		if r.Status == engine.ProbeFail {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d online checks failed", failed, len(results))
	}
	return nil
}

// loadAndBuild is the path that serve and check share: load and validate
// the file, then construct every adapter instance (which decodes and
// checks its own block). check stops here, or probes the gateway
// (--online); serve goes on to Start.
func loadAndBuild(path string, log *slog.Logger) (*engine.Config, *engine.Gateway, error) {
	cfg, err := engine.LoadConfig(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	g, err := engine.New(cfg, engine.Options{Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, g, nil
}
