package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchboard-gw/switchboard/core/engine"
	"github.com/switchboard-gw/switchboard/core/store"
)

func newDeadLettersCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "deadletters list|show ID|replay ID|drop ID",
		Short: "Inspect, replay or drop dead letters (works beside a running gateway)",
		Long: `deadletters opens the store of the config's data directory beside the
running gateway (SQLite keeps the two apart) and lists, shows, replays or
drops messages that could not be delivered. A replayed message goes back to
its place in its chat's order; the running gateway delivers it at once.`,
	}
	cmd.PersistentFlags().StringVarP(&path, "config", "c", "config.yaml", "config file")

	var asJSON bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, path, func(st store.Store, privacy engine.ChatPrivacy) error {
				dead, err := st.DeadLetters(cmd.Context(), limit)
				if err != nil {
					return err
				}
				views := make([]engine.MessageView, 0, len(dead))
				for _, m := range dead {
					views = append(views, engine.ViewMessage(m, privacy))
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), views)
				}
				return writeTable(cmd.OutOrStdout(), views)
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one message (any state) as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return withStore(cmd, path, func(st store.Store, privacy engine.ChatPrivacy) error {
				m, err := st.Get(cmd.Context(), id)
				if err != nil {
					return fmt.Errorf("message %d: %w", id, err)
				}
				return writeJSON(cmd.OutOrStdout(), engine.ViewMessage(m, privacy))
			})
		},
	}
	act := func(use, short, done string, do func(store.Store, context.Context, int64) error) *cobra.Command {
		return &cobra.Command{
			Use:   use + " ID [ID...]",
			Short: short,
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withStore(cmd, path, func(st store.Store, _ engine.ChatPrivacy) error {
					var errs []error
					for _, a := range args {
						id, err := parseID(a)
						if err == nil {
							err = do(st, cmd.Context(), id)
						}
						if err != nil {
							errs = append(errs, fmt.Errorf("%s %s: %w", use, a, err))
							continue
						}
						fmt.Fprintf(cmd.OutOrStdout(), "%s %d\n", done, id)
					}
					return errors.Join(errs...)
				})
			},
		}
	}
	replay := act("replay", "Make dead letters pending again, in their chat's order", "replayed",
		func(st store.Store, ctx context.Context, id int64) error { return st.Replay(ctx, id) })
	drop := act("drop", "Delete dead letters for good", "dropped",
		func(st store.Store, ctx context.Context, id int64) error { return st.Drop(ctx, id) })
	cmd.AddCommand(list, show, replay, drop)
	return cmd
}

// withStore opens the configured store beside its owner and runs fn with
// it and with the chat privacy of the config's instances, so that chat
// ids are shown as the gateway shows them.
func withStore(cmd *cobra.Command, configPath string, fn func(store.Store, engine.ChatPrivacy) error) error {
	ctx := cmd.Context()
	cfg, err := engine.LoadConfig(configPath)
	if err != nil {
		return fmt.Errorf("config %s: %w", configPath, err)
	}
	privacy := chatPrivacy(cfg, cmd.ErrOrStderr())
	var st store.Store
	switch cfg.Store.Driver {
	case "sqlite":
		st, err = store.OpenSQLiteShared(ctx, filepath.Join(cfg.Store.Path, engine.StoreFile))
	case "postgres":
		// The database the replicas share: any replica then claims a
		// replayed message.
		st, err = store.OpenPostgres(ctx, cfg.Store.DSN.Reveal())
	default:
		return fmt.Errorf("store.driver is %q: only the sqlite and postgres stores keep dead letters", cfg.Store.Driver)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st, privacy)
}

// chatPrivacy builds the config's adapter instances, as `switchboard
// check` does (no I/O), to learn whose chat ids are secrets. If that
// fails, every chat id is shown shortened.
func chatPrivacy(cfg *engine.Config, errOut io.Writer) engine.ChatPrivacy {
	gw, err := engine.New(cfg, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Fprintf(errOut, "note: every chat id is shown shortened: the adapters could not be built: %v\n", err)
		return engine.ChatPrivacy{}
	}
	return gw.ChatPrivacy()
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a message id", s)
	}
	return id, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTable(w io.Writer, views []engine.MessageView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDIR\tCHAT\tATTEMPTS\tCREATED\tTEXT\tLAST ERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", v.ID, v.Direction, v.Chat, v.Attempts,
			v.CreatedAt.Format("2006-01-02 15:04:05"), oneLine(v.Text, 40), oneLine(v.LastError, 80))
	}
	if len(views) == 0 {
		fmt.Fprintln(tw, "(no dead letters)")
	}
	return tw.Flush()
}

// oneLine flattens and shortens s for a table cell.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
