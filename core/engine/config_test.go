package engine

import (
	"github.com/switchboard-gw/switchboard/core"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validYAML = `
server:
  listen: "127.0.0.1:0"
selarti:
  api_key: "key-123"
  webhook_secret: "0123456789abcdef0123456789abcdef"
adapters:
  - name: web
    kind: webchat
    task_id: "1721129985149x478019552540622850"
    config:
      title: Hello
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaultsAndAdapters(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Selarti.BaseURL != "https://selarti.com/api/1.1" || cfg.Selarti.Timeout != 10*time.Second {
		t.Errorf("selarti defaults not applied: %+v", cfg.Selarti)
	}
	if cfg.Store.Driver != "sqlite" || cfg.Store.Path != "./data" || cfg.Delivery.Workers != 16 {
		t.Errorf("store/delivery defaults not applied: %+v %+v", cfg.Store, cfg.Delivery)
	}
	if len(cfg.Adapters) != 1 {
		t.Fatalf("adapters = %+v", cfg.Adapters)
	}
	a := cfg.Adapters[0]
	if a.Name != "web" || a.Kind != "webchat" || a.TaskID != "1721129985149x478019552540622850" || !a.IsEnabled() {
		t.Errorf("adapter = %+v", a)
	}
	if a.Config["title"] != "Hello" {
		t.Errorf("adapter config block = %v", a.Config)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string
	}{
		{
			name: "unknown top-level key",
			edit: func(s string) string { return s + "extra: 1\n" },
			want: []string{"unknown key", "extra"},
		},
		{
			name: "unknown nested key",
			edit: func(s string) string { return strings.Replace(s, "selarti:\n", "selarti:\n  apikey: x\n", 1) },
			want: []string{"unknown key", "selarti.apikey"},
		},
		{
			name: "unknown adapter envelope key",
			edit: func(s string) string {
				return strings.Replace(s, "    kind: webchat\n", "    kind: webchat\n    token: x\n", 1)
			},
			want: []string{"unknown key", "token"},
		},
		{
			name: "missing api key",
			edit: func(s string) string { return strings.Replace(s, "  api_key: \"key-123\"\n", "", 1) },
			want: []string{"selarti.api_key", "required"},
		},
		{
			name: "missing webhook secret",
			edit: func(s string) string {
				return strings.Replace(s, "  webhook_secret: \"0123456789abcdef0123456789abcdef\"\n", "", 1)
			},
			want: []string{"selarti.webhook_secret", "required"},
		},
		{
			name: "short webhook secret",
			edit: func(s string) string { return strings.Replace(s, "0123456789abcdef0123456789abcdef", "short", 1) },
			want: []string{"selarti.webhook_secret", "too short"},
		},
		{
			name: "missing task id",
			edit: func(s string) string {
				return strings.Replace(s, "    task_id: \"1721129985149x478019552540622850\"\n", "", 1)
			},
			want: []string{"adapters[0].task_id", "required"},
		},
		{
			name: "bad instance name",
			edit: func(s string) string { return strings.Replace(s, "name: web", "name: Web_Chat", 1) },
			want: []string{"adapters[0].name"},
		},
		{
			name: "duplicate instance name",
			edit: func(s string) string {
				return s + "  - name: web\n    kind: webchat\n    task_id: t\n"
			},
			want: []string{"adapters[1].name", "used twice"},
		},
		{
			name: "bad duration",
			edit: func(s string) string { return strings.Replace(s, "selarti:\n", "selarti:\n  timeout: soon\n", 1) },
			want: []string{"selarti.timeout"},
		},
		{
			name: "bad store driver",
			edit: func(s string) string { return s + "store:\n  driver: redis\n" },
			want: []string{"store.driver"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, tt.edit(validYAML)))
			if err == nil {
				t.Fatal("LoadConfig accepted a bad config")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigEnvExpansionAndOverrides(t *testing.T) {
	t.Setenv("TEST_SELARTI_KEY", "from-env")
	t.Setenv("SWITCHBOARD_DELIVERY_WORKERS", "3")
	t.Setenv("SWITCHBOARD_SELARTI_BASE_URL", "http://127.0.0.1:9999/api/1.1")
	body := strings.Replace(validYAML, `api_key: "key-123"`, `api_key: "${TEST_SELARTI_KEY}"`, 1)
	cfg, err := LoadConfig(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Selarti.APIKey.Reveal() != "from-env" {
		t.Errorf("api_key = %q, want expanded from env", cfg.Selarti.APIKey.Reveal())
	}
	if cfg.Delivery.Workers != 3 {
		t.Errorf("delivery.workers = %d, want the SWITCHBOARD_ override 3", cfg.Delivery.Workers)
	}
	if cfg.Selarti.BaseURL != "http://127.0.0.1:9999/api/1.1" {
		t.Errorf("selarti.base_url = %q, want the override", cfg.Selarti.BaseURL)
	}
}

func TestLoadConfigUnsetEnvIsAnError(t *testing.T) {
	body := strings.Replace(validYAML, `api_key: "key-123"`, `api_key: "${SURELY_NOT_SET_12345}"`, 1)
	_, err := LoadConfig(writeConfig(t, body))
	if err == nil || !strings.Contains(err.Error(), "selarti.api_key") || !strings.Contains(err.Error(), "SURELY_NOT_SET_12345") {
		t.Fatalf("error = %v, want one naming the key and the variable", err)
	}
}

func TestLoadConfigErrorNeverShowsSecrets(t *testing.T) {
	body := strings.Replace(validYAML, "0123456789abcdef0123456789abcdef", "tooshort-but-secret", 1)
	_, err := LoadConfig(writeConfig(t, body))
	if err == nil || strings.Contains(err.Error(), "tooshort-but-secret") {
		t.Fatalf("error = %v; want an error that does not contain the secret", err)
	}
}

func TestLoadConfigWireOverrideFromEnv(t *testing.T) {
	t.Setenv("SWITCHBOARD_SELARTI_WIRE_SEND_PATH", "/wf/send_message_v2")
	cfg, err := LoadConfig(writeConfig(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Selarti.Wire.SendPath != "/wf/send_message_v2" || cfg.Selarti.Wire.TextField != "message" {
		t.Fatalf("wire = %+v, want the send path overridden and the rest default", cfg.Selarti.Wire)
	}
}

func TestNewRefusesAnInvalidConfig(t *testing.T) {
	cfg, err := DefaultConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Selarti.APIKey = "k"
	cfg.Selarti.WebhookSecret = "short"
	if _, err := New(cfg, Options{Registry: core.NewRegistry()}); err == nil || !strings.Contains(err.Error(), "selarti.webhook_secret") {
		t.Fatalf("New with a short webhook secret = %v, want a refusal naming the key", err)
	}
}
