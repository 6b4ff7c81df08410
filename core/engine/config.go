package engine

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/internal/strictdecode"
)

// MinWebhookSecretLen is the shortest webhook secret the gateway accepts.
// The secret is the only thing that authenticates Selarti's webhooks (Selarti
// documents no signature), so it must be unguessable: 32 characters of a
// random token is about 190 bits.
const MinWebhookSecretLen = 32

// Config is the whole configuration of a gateway. Load reads it from YAML;
// Validate checks it. Field docs are for operators; config.yaml.example
// repeats them.
type Config struct {
	Server   ServerConfig    `mapstructure:"server"`
	Selarti  SelartiConfig   `mapstructure:"selarti"`
	Store    StoreConfig     `mapstructure:"store"`
	Delivery DeliveryConfig  `mapstructure:"delivery"`
	Log      LogConfig       `mapstructure:"log"`
	Admin    AdminConfig     `mapstructure:"admin"`
	Adapters []AdapterConfig `mapstructure:"adapters"`
}

// ServerConfig is the gateway's one HTTP listener.
type ServerConfig struct {
	// Listen is the address to listen on, e.g. ":8080" or "127.0.0.1:8080".
	Listen string `mapstructure:"listen"`
	// PublicURL is how Selarti and the networks reach this gateway, e.g.
	// "https://gw.example.com". Adapters that register webhooks with their
	// network use it; Selarti's webhook URL is
	// <public_url>/webhooks/selarti/<webhook_secret>.
	PublicURL string `mapstructure:"public_url"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
}

// SelartiConfig is how the gateway talks to Selarti and how Selarti talks
// back.
type SelartiConfig struct {
	// BaseURL of Selarti's API.
	BaseURL string `mapstructure:"base_url"`
	// APIKey from Selarti's panel (avatar, "get api key").
	APIKey core.Secret `mapstructure:"api_key"`
	// WebhookSecret is the random token in the webhook URL
	// (<public_url>/webhooks/selarti/<webhook_secret>). At least 32 characters.
	WebhookSecret core.Secret `mapstructure:"webhook_secret"`
	// Timeout of one HTTP request to Selarti.
	Timeout time.Duration `mapstructure:"timeout"`
	// RetryBudget is how long one delivery attempt may retry transient
	// failures in-process before the message goes back to the outbox.
	RetryBudget time.Duration `mapstructure:"retry_budget"`
	// WebhookMaxBytes limits the size of a webhook body.
	WebhookMaxBytes int64 `mapstructure:"webhook_max_bytes"`
	// Wire overrides Selarti's API paths and field names (see selarti.Wire);
	// only for when Selarti changes them.
	Wire selarti.Wire `mapstructure:"wire"`
}

// StoreConfig is where the durable outbox lives.
type StoreConfig struct {
	// Driver is "sqlite" (default: one file under Path) or "memory"
	// (nothing survives a restart; for tests and experiments).
	Driver string `mapstructure:"driver"`
	// Path is the data directory.
	Path string `mapstructure:"path"`
	// Retention is how long delivered messages are kept (for dedupe and
	// inspection) before they are pruned.
	Retention time.Duration `mapstructure:"retention"`
	// ChatRetention is how long a chat stays known after its user last
	// wrote. Selarti's webhooks for chats not known are refused (404), so
	// this bounds how late an operator can still answer.
	ChatRetention time.Duration `mapstructure:"chat_retention"`
}

// DeliveryConfig tunes the outbox workers.
type DeliveryConfig struct {
	// Workers is how many messages of each direction are delivered at
	// once (at most one per chat).
	Workers int `mapstructure:"workers"`
	// MaxAttempts is how many failed attempts make a message a dead letter.
	MaxAttempts int `mapstructure:"max_attempts"`
	// MaxAge is how old a message may get while retrying before it
	// becomes a dead letter.
	MaxAge time.Duration `mapstructure:"max_age"`
	// BackoffInitial and BackoffMax bound the exponential retry backoff.
	BackoffInitial time.Duration `mapstructure:"backoff_initial"`
	BackoffMax     time.Duration `mapstructure:"backoff_max"`
	// AttemptTimeout bounds one delivery attempt.
	AttemptTimeout time.Duration `mapstructure:"attempt_timeout"`
}

// AdminConfig is the read-only admin API (/admin/deadletters, /admin/outbox).
type AdminConfig struct {
	// Token enables the admin API; requests carry it as
	// "Authorization: Bearer <token>". Empty (the default) disables it.
	// At least 32 characters.
	Token core.Secret `mapstructure:"token"`
}

// LogConfig sets up logging.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is json or text.
	Format string `mapstructure:"format"`
}

// AdapterConfig is one adapter instance.
type AdapterConfig struct {
	// Name is the instance name, also its chat-id namespace.
	Name string `mapstructure:"name"`
	// Kind is the adapter kind (telegram, discord, slack, webchat).
	Kind string `mapstructure:"kind"`
	// TaskID is the Selarti task this instance's users talk to.
	TaskID string `mapstructure:"task_id"`
	// Enabled, when false, keeps the instance in the file but off.
	Enabled *bool `mapstructure:"enabled"`
	// Config is the kind's own options, decoded by the adapter.
	Config map[string]any `mapstructure:"config"`
}

// IsEnabled reports whether the instance is to run (the default).
func (a AdapterConfig) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// defaults are the values of keys the file leaves out. They are also what
// makes SWITCHBOARD_* environment overrides work: viper only looks up the
// environment for keys it knows.
var defaults = map[string]any{
	"server.listen":             ":8080",
	"server.public_url":         "",
	"server.shutdown_timeout":   "15s",
	"selarti.base_url":          "https://selarti.com/api/1.1",
	"selarti.api_key":           "",
	"selarti.webhook_secret":    "",
	"selarti.timeout":           "10s",
	"selarti.retry_budget":      "20s",
	"selarti.webhook_max_bytes": 256 << 10,
	"store.driver":              "sqlite",
	"store.path":                "./data",
	"store.retention":           "168h",
	"store.chat_retention":      "2160h",
	"delivery.workers":          16,
	"delivery.max_attempts":     50,
	"delivery.max_age":          "24h",
	"delivery.backoff_initial":  "1s",
	"delivery.backoff_max":      "5m",
	"delivery.attempt_timeout":  "60s",
	"admin.token":               "",
	"log.level":                 "info",
	"log.format":                "json",
}

// LoadConfig reads a YAML config file, expands ${ENV_VAR} references in
// string values, applies SWITCHBOARD_* environment overrides (for example
// SWITCHBOARD_SELARTI_API_KEY for selarti.api_key), decodes it strictly
// (an unknown key is an error that names it) and validates it. It does not
// decode the adapters' own blocks: building the gateway does that.
func LoadConfig(path string) (*Config, error) {
	v := viper.New()
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, err := decodeViper(v)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// DefaultConfig returns a Config with every default applied and no
// adapters, not yet valid: callers fill in the rest (the demo does) and
// call Validate.
func DefaultConfig() (*Config, error) {
	return decodeViper(viper.New())
}

func decodeViper(v *viper.Viper) (*Config, error) {
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	w := selarti.DefaultWire()
	for k, val := range map[string]string{
		"auth_path": w.AuthPath, "auth_key_field": w.AuthKeyField, "send_path": w.SendPath,
		"task_id_field": w.TaskIDField, "chat_id_field": w.ChatIDField, "text_field": w.TextField,
		"phone_field": w.PhoneField, "name_field": w.NameField, "username_field": w.UsernameField,
		"idempotency_key_field": w.IdempotencyKeyField,
	} {
		v.SetDefault("selarti.wire."+k, val)
	}
	v.SetEnvPrefix("SWITCHBOARD")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	settings := v.AllSettings()
	expanded, err := expandEnv(settings, "")
	if err != nil {
		return nil, err
	}
	var cfg Config
	if err := strictdecode.Decode(expanded, &cfg, ""); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// envRefRE matches ${NAME}. Only the braced form is expanded so that a
// secret containing a bare "$" is left alone.
var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} in every string of a decoded YAML tree. An
// unset variable is an error naming the key: a secret that silently
// became "" would fail much later and far less clearly.
func expandEnv(node any, key string) (any, error) {
	switch n := node.(type) {
	case string:
		var missing string
		out := envRefRE.ReplaceAllStringFunc(n, func(ref string) string {
			name := envRefRE.FindStringSubmatch(ref)[1]
			val, ok := os.LookupEnv(name)
			if !ok && missing == "" {
				missing = name
			}
			return val
		})
		if missing != "" {
			return nil, fmt.Errorf("key %s: environment variable %s is not set", key, missing)
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(n))
		for k, v := range n {
			e, err := expandEnv(v, strictdecode.JoinKey(key, k))
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			e, err := expandEnv(v, fmt.Sprintf("%s[%d]", key, i))
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	return node, nil
}

// Validate checks the configuration, naming the offending key in errors.
// It does not look inside the adapters' own blocks.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Server.Listen == "" {
		bad("server.listen", "required")
	}
	if c.Server.PublicURL != "" {
		if err := checkHTTPURL(c.Server.PublicURL); err != nil {
			bad("server.public_url", "%v", err)
		}
	}
	if err := checkHTTPURL(c.Selarti.BaseURL); err != nil {
		bad("selarti.base_url", "%v", err)
	}
	if c.Selarti.APIKey.IsZero() {
		bad("selarti.api_key", "required")
	}
	switch n := len(c.Selarti.WebhookSecret.Reveal()); {
	case n == 0:
		bad("selarti.webhook_secret", "required (at least %d characters; e.g. `openssl rand -hex 24`)", MinWebhookSecretLen)
	case n < MinWebhookSecretLen:
		bad("selarti.webhook_secret", "too short: %d characters, need at least %d", n, MinWebhookSecretLen)
	case strings.ContainsAny(c.Selarti.WebhookSecret.Reveal(), "/?#% \t\r\n"):
		bad("selarti.webhook_secret", "must not contain '/', '?', '#', '%%' or spaces: it is a URL path segment")
	}
	if n := len(c.Admin.Token.Reveal()); n > 0 && n < MinWebhookSecretLen {
		bad("admin.token", "too short: %d characters, need at least %d", n, MinWebhookSecretLen)
	}
	positive := func(key string, d time.Duration) {
		if d <= 0 {
			bad(key, "must be positive")
		}
	}
	positive("server.shutdown_timeout", c.Server.ShutdownTimeout)
	positive("selarti.timeout", c.Selarti.Timeout)
	positive("selarti.retry_budget", c.Selarti.RetryBudget)
	positive("store.retention", c.Store.Retention)
	positive("store.chat_retention", c.Store.ChatRetention)
	positive("delivery.max_age", c.Delivery.MaxAge)
	positive("delivery.backoff_initial", c.Delivery.BackoffInitial)
	positive("delivery.attempt_timeout", c.Delivery.AttemptTimeout)
	if c.Delivery.BackoffMax < c.Delivery.BackoffInitial {
		bad("delivery.backoff_max", "must not be less than delivery.backoff_initial")
	}
	if c.Selarti.WebhookMaxBytes < 1024 {
		bad("selarti.webhook_max_bytes", "must be at least 1024")
	}
	switch c.Store.Driver {
	case "sqlite":
		if c.Store.Path == "" {
			bad("store.path", "required with driver sqlite")
		}
	case "memory":
	default:
		bad("store.driver", "must be \"sqlite\" or \"memory\", not %q", c.Store.Driver)
	}
	if c.Delivery.Workers < 1 || c.Delivery.Workers > 1024 {
		bad("delivery.workers", "must be between 1 and 1024")
	}
	if c.Delivery.MaxAttempts < 1 {
		bad("delivery.max_attempts", "must be at least 1")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "must be json or text, not %q", c.Log.Format)
	}
	seen := make(map[string]bool)
	for i, a := range c.Adapters {
		key := fmt.Sprintf("adapters[%d]", i)
		switch {
		case a.Name == "":
			bad(key+".name", "required")
		case !core.ValidInstanceName(a.Name):
			bad(key+".name", "%q must match ^[a-z0-9][a-z0-9-]*$ (at most 63 characters)", a.Name)
		case seen[a.Name]:
			bad(key+".name", "%q is used twice", a.Name)
		}
		seen[a.Name] = true
		if a.Kind == "" {
			bad(key+".kind", "required")
		}
		if a.TaskID == "" {
			bad(key+".task_id", "required (the Selarti task id, from the ID column of Tasks)")
		}
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an http or https URL", s)
	}
	return nil
}
