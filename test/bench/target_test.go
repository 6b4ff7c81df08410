package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/switchboard-gw/switchboard/adapters/webchat"
	"github.com/switchboard-gw/switchboard/core"
)

// The generated config must be one the real gateway accepts, with the
// store durable and the driver's adapter block valid for its kind.
func TestGatewayConfigIsValid(t *testing.T) {
	for _, chats := range []int{10, 100000, 300000} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.yaml")
		d := &webchatDriver{}
		cfg := gatewayConfig(gatewayParams{
			Listen: "127.0.0.1:18080", SelartiURL: "http://127.0.0.1:18081/api/1.1", APIKey: "k",
			Secret: "0123456789abcdef0123456789abcdef0123", DataDir: filepath.Join(dir, "data"), Workers: 24,
			Adapter: d.Adapter(instanceName, taskID, chats),
		})
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := core.LoadConfig(path)
		if err != nil {
			t.Fatalf("%d chats: config rejected: %v\n%s", chats, err, cfg)
		}
		if c.Store.Driver != "sqlite" || c.Delivery.Workers != 24 || len(c.Adapters) != 1 || c.Adapters[0].Name != instanceName {
			t.Errorf("%d chats: decoded %+v", chats, c)
		}
		reg := core.NewRegistry()
		reg.Register(webchat.Kind, webchat.New)
		if _, err := core.New(c, core.Options{Registry: reg}); err != nil {
			t.Errorf("%d chats: the webchat block is rejected: %v", chats, err)
		}
	}
}
