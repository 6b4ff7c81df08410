package main

import (
	"log/slog"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
)

// logEffectiveConfig logs what the gateway is about to run, without any
// secret: the Secret fields redact themselves, URLs lose the credentials
// in their user info, and adapter blocks are not logged at all (their
// tokens are plain strings until decoded).
func logEffectiveConfig(log *slog.Logger, cfg *engine.Config) {
	instances := make([]any, 0, len(cfg.Adapters))
	for _, a := range cfg.Adapters {
		instances = append(instances, slog.Group(a.Name, "kind", a.Kind, "task_id", a.TaskID, "enabled", a.IsEnabled()))
	}
	log.Info("config loaded",
		slog.String("version", versionString()),
		slog.String("listen", cfg.Server.Listen),
		slog.String("public_url", core.RedactURL(cfg.Server.PublicURL)),
		slog.String("selarti_base_url", core.RedactURL(cfg.Selarti.BaseURL)),
		slog.Any("selarti_api_key", cfg.Selarti.APIKey),
		slog.String("store_driver", cfg.Store.Driver),
		slog.String("store_path", cfg.Store.Path),
		slog.Group("adapters", instances...),
	)
}
