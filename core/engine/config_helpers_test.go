package engine

import "testing"

// testGatewayConfig is the config the engine's gateway tests start from:
// fake Selarti credentials, the memory store, a data directory of the
// test's own, and the given instances.
func testGatewayConfig(t *testing.T, adapters ...AdapterConfig) *Config {
	t.Helper()
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Selarti.APIKey = "key"
	cfg.Selarti.WebhookSecret = "0123456789abcdef0123456789abcdef"
	cfg.Store.Driver = "memory"
	cfg.Store.Path = t.TempDir()
	cfg.Adapters = adapters
	return cfg
}
