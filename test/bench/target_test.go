package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/adapters/telegram"
	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/engine"
)

// The generated config must be one the real gateway accepts, with the
// store durable and each driver's adapter block valid for its kind (for
// Telegram: webhook mode against the fake, with the config's public URL).
func TestGatewayConfigIsValid(t *testing.T) {
	tg := &telegramDriver{}
	if err := tg.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	for _, d := range []Driver{&webchatDriver{}, tg} {
		for _, chats := range []int{10, 100000, 300000} {
			dir := t.TempDir()
			path := filepath.Join(dir, "config.yaml")
			cfg := gatewayConfig(gatewayParams{
				Listen: "127.0.0.1:18080", SelartiURL: "http://127.0.0.1:18081/api/1.1", APIKey: "k",
				Secret: "0123456789abcdef0123456789abcdef0123", DataDir: filepath.Join(dir, "data"), Workers: 24,
				Adapter: d.Adapter(d.Instance(), taskID, chats),
			})
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := engine.LoadConfig(path)
			if err != nil {
				t.Fatalf("%s, %d chats: config rejected: %v\n%s", d.Name(), chats, err, cfg)
			}
			if c.Store.Driver != "sqlite" || c.Delivery.Workers != 24 || len(c.Adapters) != 1 || c.Adapters[0].Name != d.Instance() {
				t.Errorf("%s, %d chats: decoded %+v", d.Name(), chats, c)
			}
			reg := core.NewRegistry()
			reg.Register(webchat.Kind, webchat.New)
			reg.Register(telegram.Kind, telegram.New)
			if _, err := engine.New(c, engine.Options{Registry: reg}); err != nil {
				t.Errorf("%s, %d chats: the adapter block is rejected: %v", d.Name(), chats, err)
			}
		}
	}
}
