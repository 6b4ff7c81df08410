package webchat

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/messengertest"
)

func TestConfigDefaults(t *testing.T) {
	a := newTestAdapter(t, nil)
	var want Config
	want.setDefaults()
	if !reflect.DeepEqual(a.cfg, want) {
		t.Fatalf("config = %+v, want defaults %+v", a.cfg, want)
	}
	if want.Path != "/chat/" || want.HistoryLimit != 200 || want.SessionTTL != 720*time.Hour ||
		want.MaxSessions != 100000 || want.MaxMessageBytes != 4000 || want.RateLimit != 30 ||
		want.MaxConnsPerSession != 5 || want.PingInterval != 30*time.Second || want.Title != "" || want.Lang != "auto" {
		t.Fatalf("defaults drifted from the documented ones: %+v", want)
	}
}

// TestExample keeps example.yaml complete and in step with the defaults
// and with config.yaml.example.
func TestExample(t *testing.T) {
	messengertest.CheckExample(t, messengertest.Example[Config]{
		Kind:     Kind,
		YAML:     Example,
		Defaults: func() Config { var c Config; c.setDefaults(); return c },
		Normalize: func(c *Config) {
			if len(c.AllowedOrigins) == 0 {
				c.AllowedOrigins = nil // [] and absent mean the same
			}
		},
	})
}

func TestConfigDecodes(t *testing.T) {
	a := newTestAdapter(t, core.RawConfig{
		"path":            "/support/",
		"title":           "Help",
		"welcome":         "Hi! Ask me anything.",
		"allowed_origins": []any{"https://shop.example.com", "*.example.org"},
		"session_ttl":     "2h",
		"ping_interval":   "10s",
		"rate_limit":      "12",
	})
	c := a.cfg
	if c.Path != "/support/" || c.Title != "Help" || c.Welcome != "Hi! Ask me anything." ||
		!reflect.DeepEqual(c.AllowedOrigins, []string{"https://shop.example.com", "*.example.org"}) ||
		c.SessionTTL != 2*time.Hour || c.PingInterval != 10*time.Second || c.RateLimit != 12 {
		t.Fatalf("decoded %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		raw  core.RawConfig
		want []string // substrings of the error
	}{
		{name: "unknown key", raw: core.RawConfig{"pathh": "/chat/"}, want: []string{"unknown key", "config.pathh"}},
		{name: "path without slashes", raw: core.RawConfig{"path": "chat"}, want: []string{"config.path", `"chat"`}},
		{name: "path without trailing slash", raw: core.RawConfig{"path": "/chat"}, want: []string{"config.path"}},
		{name: "path with dot-dot", raw: core.RawConfig{"path": "/a/../b/"}, want: []string{"config.path"}},
		{name: "path with quote", raw: core.RawConfig{"path": `/a"b/`}, want: []string{"config.path"}},
		{name: "root path", raw: core.RawConfig{"path": "/"}, want: []string{"config.path"}},
		{name: "wrong type", raw: core.RawConfig{"history_limit": "lots"}, want: []string{"config.history_limit"}},
		{name: "zero history", raw: core.RawConfig{"history_limit": 0}, want: []string{"config.history_limit"}},
		{name: "bad duration", raw: core.RawConfig{"session_ttl": "a while"}, want: []string{"config.session_ttl"}},
		{name: "short ttl", raw: core.RawConfig{"session_ttl": "5s"}, want: []string{"config.session_ttl", "at least 1m"}},
		{name: "zero max sessions", raw: core.RawConfig{"max_sessions": 0}, want: []string{"config.max_sessions"}},
		{name: "negative message size", raw: core.RawConfig{"max_message_bytes": -1}, want: []string{"config.max_message_bytes"}},
		{name: "huge message size", raw: core.RawConfig{"max_message_bytes": 10 << 20}, want: []string{"config.max_message_bytes"}},
		{name: "zero rate", raw: core.RawConfig{"rate_limit": 0}, want: []string{"config.rate_limit"}},
		{name: "zero conns", raw: core.RawConfig{"max_conns_per_session": 0}, want: []string{"config.max_conns_per_session"}},
		{name: "fast ping", raw: core.RawConfig{"ping_interval": "10ms"}, want: []string{"config.ping_interval"}},
		{name: "unknown language", raw: core.RawConfig{"lang": "de"}, want: []string{"config.lang", `"de"`, "en, ru, uz"}},
		{name: "origin with path", raw: core.RawConfig{"allowed_origins": []any{"https://shop.example.com/"}}, want: []string{"config.allowed_origins[0]"}},
		{name: "origin with CSP injection", raw: core.RawConfig{"allowed_origins": []any{"https://a.com; script-src *"}}, want: []string{"config.allowed_origins[0]"}},
		{name: "star with others", raw: core.RawConfig{"allowed_origins": []any{"*", "https://a.com"}}, want: []string{"config.allowed_origins", "only entry"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(core.Instance{Name: "web", Kind: Kind, Config: tt.raw})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
