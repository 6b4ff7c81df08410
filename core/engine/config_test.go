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
			name: "oversize undelivered notice",
			edit: func(s string) string {
				return strings.Replace(s, "    kind: webchat\n", "    kind: webchat\n    undelivered_notice: \""+strings.Repeat("x", 1001)+"\"\n", 1)
			},
			want: []string{"adapters[0].undelivered_notice", "at most 1000 bytes"},
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
			// YAML "timeout: 10" would otherwise be 10ns.
			name: "duration without a unit",
			edit: func(s string) string { return strings.Replace(s, "selarti:\n", "selarti:\n  timeout: 10\n", 1) },
			want: []string{`key selarti.timeout: "10" needs a unit, like 10s`},
		},
		{
			name: "duration without a unit, quoted",
			edit: func(s string) string { return strings.Replace(s, "server:\n", "server:\n  read_timeout: \"30\"\n", 1) },
			want: []string{`key server.read_timeout: "30" needs a unit, like 30s`},
		},
		{
			name: "fractional duration without a unit",
			edit: func(s string) string { return s + "delivery:\n  max_age: 1.5\n" },
			want: []string{`key delivery.max_age: "1.5" needs a unit, like 1.5s`},
		},
		{
			name: "listen without a port",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1"`, 1) },
			want: []string{"key server.listen", `"127.0.0.1" is not host:port`, "missing port"},
		},
		{
			name: "listen as a bare port",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: "8080"`, 1) },
			want: []string{"key server.listen", `"8080" is not host:port`},
		},
		{
			name: "listen with an empty port",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: "127.0.0.1:"`, 1) },
			want: []string{"key server.listen", "has no port"},
		},
		{
			name: "listen with a named port",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: ":http"`, 1) },
			want: []string{"key server.listen", `port "http" must be a number from 0 to 65535`},
		},
		{
			name: "listen with a port out of range",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: ":65536"`, 1) },
			want: []string{"key server.listen", `port "65536" must be a number from 0 to 65535`},
		},
		{
			name: "listen empty",
			edit: func(s string) string { return strings.Replace(s, `listen: "127.0.0.1:0"`, `listen: ""`, 1) },
			want: []string{"key server.listen", "required"},
		},
		{
			name: "bad store driver",
			edit: func(s string) string { return s + "store:\n  driver: redis\n" },
			want: []string{"store.driver"},
		},
		{
			name: "postgres without a dsn",
			edit: func(s string) string { return s + "store:\n  driver: postgres\n" },
			want: []string{"store.dsn", "required with driver postgres"},
		},
		{
			name: "a dsn without postgres",
			edit: func(s string) string { return s + "store:\n  dsn: postgres://u:pw@db/x\n" },
			want: []string{"store.dsn", "only used with driver postgres"},
		},
		{
			name: "unbraced environment variable",
			edit: func(s string) string { return strings.Replace(s, `api_key: "key-123"`, `api_key: $SELARTI_API_KEY`, 1) },
			want: []string{"key selarti.api_key", `"$SELARTI_API_KEY" looks like an environment variable`, `write "${SELARTI_API_KEY}"`},
		},
		{
			name: "unbraced environment variable in an adapter block",
			edit: func(s string) string { return strings.Replace(s, "title: Hello", "title: \"$WEB_TITLE\"", 1) },
			want: []string{"key adapters[0].config.title", "${WEB_TITLE}"},
		},
		{
			name: "bad trusted proxy",
			edit: func(s string) string {
				return strings.Replace(s, "server:\n", "server:\n  trusted_proxies: [10.0.0.0/8, proxy.example.com]\n", 1)
			},
			want: []string{"server.trusted_proxies[1]", "proxy.example.com", "not a CIDR prefix"},
		},
		{
			name: "header timeout above the read timeout",
			edit: func(s string) string {
				return strings.Replace(s, "server:\n", "server:\n  read_timeout: 5s\n  read_header_timeout: 10s\n", 1)
			},
			want: []string{"server.read_header_timeout", "server.read_timeout"},
		},
		{
			name: "no read timeout",
			edit: func(s string) string { return strings.Replace(s, "server:\n", "server:\n  read_timeout: 0s\n", 1) },
			want: []string{"server.read_timeout", "positive"},
		},
		{
			name: "no connections",
			edit: func(s string) string { return strings.Replace(s, "server:\n", "server:\n  max_conns: 0\n", 1) },
			want: []string{"server.max_conns", "at least 1"},
		},
		{
			name: "negative per-address cap",
			edit: func(s string) string { return strings.Replace(s, "server:\n", "server:\n  max_conns_per_ip: -1\n", 1) },
			want: []string{"server.max_conns_per_ip"},
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

// A zero duration needs no unit; IPv6 and host-less listen addresses
// pass.
func TestLoadConfigAcceptsZeroDurationAndListenForms(t *testing.T) {
	for _, listen := range []string{":8080", "127.0.0.1:0", "[::1]:8080", "localhost:65535", "gw.example.com:80"} {
		body := strings.Replace(validYAML, `listen: "127.0.0.1:0"`, `listen: "`+listen+`"`, 1)
		body = strings.Replace(body, "selarti:\n", "selarti:\n  echo_window: 0\n", 1)
		cfg, err := LoadConfig(writeConfig(t, body))
		if err != nil {
			t.Fatalf("listen %q, echo_window 0: %v", listen, err)
		}
		if cfg.Selarti.EchoWindow != 0 {
			t.Fatalf("echo_window = %v", cfg.Selarti.EchoWindow)
		}
	}
}

func TestLoadConfigServerDefaults(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Server
	if got.ReadHeaderTimeout != 10*time.Second || got.ReadTimeout != 30*time.Second || got.WriteTimeout != time.Minute ||
		got.IdleTimeout != 2*time.Minute || got.MaxConns != 10000 || got.MaxConnsPerIP != 256 || len(got.TrustedProxies) != 0 {
		t.Fatalf("server defaults = %+v", got)
	}
	t.Setenv("SWITCHBOARD_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.1")
	cfg, err = LoadConfig(writeConfig(t, validYAML))
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.Server.TrustedProxies; len(p) != 2 || p[0] != "10.0.0.0/8" || p[1] != "192.0.2.1" {
		t.Fatalf("trusted_proxies from the environment = %q", p)
	}
}

// Only a value that is nothing but $NAME is refused: a "$" elsewhere is
// kept, and ${NAME} whose value is "$NAME" is taken as it is.
func TestLoadConfigDollarSigns(t *testing.T) {
	t.Setenv("TEST_LITERAL_KEY", "$NOT_EXPANDED")
	tests := []struct{ name, value, want string }{
		{name: "a dollar inside a secret", value: `"pa$$WORD-1"`, want: "pa$$WORD-1"},
		{name: "a dollar and text", value: `"$KEY and more"`, want: "$KEY and more"},
		{name: "lowercase after the dollar", value: `"$key"`, want: "$key"},
		{name: "a lone dollar", value: `"$"`, want: "$"},
		{name: "braced, with a dollar in its value", value: `"${TEST_LITERAL_KEY}"`, want: "$NOT_EXPANDED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := strings.Replace(validYAML, `api_key: "key-123"`, "api_key: "+tt.value, 1)
			cfg, err := LoadConfig(writeConfig(t, body))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Selarti.APIKey.Reveal(); got != tt.want {
				t.Fatalf("api_key = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadConfigErrorsRedactURLCredentials(t *testing.T) {
	for _, url := range []string{"ftp://user:hunter2@selarti.example/api", "https://user:hunter2@[selarti/api"} {
		body := strings.Replace(validYAML, "selarti:\n", "selarti:\n  base_url: \""+url+"\"\n", 1)
		_, err := LoadConfig(writeConfig(t, body))
		if err == nil || !strings.Contains(err.Error(), "selarti.base_url") {
			t.Fatalf("%s: error = %v, want one naming selarti.base_url", url, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}

// An environment variable under SWITCHBOARD_ that overrides no key is an
// error naming it, with the known one it is likely a typo of.
func TestLoadConfigUnknownEnvOverride(t *testing.T) {
	tests := []struct {
		name, env string
		want      []string
		notWant   string
	}{
		{name: "misspelt key", env: "SWITCHBOARD_SELARTI_APIKEY",
			want: []string{"environment variable SWITCHBOARD_SELARTI_APIKEY overrides no config key", "did you mean SWITCHBOARD_SELARTI_API_KEY?"}},
		{name: "misspelt section", env: "SWITCHBOARD_SERVR_LISTEN",
			want: []string{"SWITCHBOARD_SERVR_LISTEN", "did you mean SWITCHBOARD_SERVER_LISTEN?"}},
		{name: "wire key", env: "SWITCHBOARD_SELARTI_WIRE_SEND_PAHT",
			want: []string{"SWITCHBOARD_SELARTI_WIRE_SEND_PAHT", "did you mean SWITCHBOARD_SELARTI_WIRE_SEND_PATH?"}},
		{name: "nothing close", env: "SWITCHBOARD_REQUIRE_PG",
			want: []string{"environment variable SWITCHBOARD_REQUIRE_PG overrides no config key"}, notWant: "did you mean"},
		{name: "adapter list", env: "SWITCHBOARD_ADAPTERS",
			want: []string{"environment variable SWITCHBOARD_ADAPTERS overrides no config key"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tt.env, "x")
			_, err := LoadConfig(writeConfig(t, validYAML))
			if err == nil {
				t.Fatalf("LoadConfig accepted %s", tt.env)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tt.notWant != "" && strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q mentions %q", err, tt.notWant)
			}
		})
	}
}

// What may be set under SWITCHBOARD_ without overriding a key: the
// tests' and benchmarks' own variables, and a variable the file refers
// to as ${NAME}.
func TestLoadConfigEnvOverrideExceptions(t *testing.T) {
	t.Setenv("SWITCHBOARD_TEST_REQUIRE_PG", "1")
	t.Setenv("SWITCHBOARD_BENCH_PG_DSN", "postgres://bench")
	t.Setenv("SWITCHBOARD_PG_DSN", "postgres://u:pw@db/x")
	t.Setenv("SWITCHBOARD_REPLICA_ID", "gw-1")
	body := validYAML + "store:\n  driver: postgres\n  dsn: \"${SWITCHBOARD_PG_DSN}\"\n"
	cfg, err := LoadConfig(writeConfig(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Store.DSN.Reveal() != "postgres://u:pw@db/x" || cfg.Replica.ID != "gw-1" {
		t.Fatalf("store.dsn = %q, replica.id = %q", cfg.Store.DSN.Reveal(), cfg.Replica.ID)
	}
	// The same variable, not referred to, is an error.
	if _, err := LoadConfig(writeConfig(t, validYAML)); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_PG_DSN") {
		t.Fatalf("SWITCHBOARD_PG_DSN set but not referred to: %v", err)
	}
}
