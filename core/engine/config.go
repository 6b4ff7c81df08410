package engine

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/viper"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/core/selarti"
	"github.com/switchboard-gw/switchboard/internal/strictdecode"
	"github.com/switchboard-gw/switchboard/kit/clientip"
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
	Replica  ReplicaConfig   `mapstructure:"replica"`
	Adapters []AdapterConfig `mapstructure:"adapters"`
}

// ReplicaConfig is this process among gateway replicas sharing one store.
// With the embedded store (one process) it changes nothing.
type ReplicaConfig struct {
	// ID names this replica in leases, logs and metrics; unique among the
	// replicas. Default: <hostname>-<pid>.
	ID string `mapstructure:"id"`
	// LeaseTTL is how long a replica holds an instance's receive lease
	// (core.ExclusiveReceiver) without renewing it, which it does every
	// third of it. It bounds a takeover after a replica dies: at most
	// LeaseTTL plus a third.
	LeaseTTL time.Duration `mapstructure:"lease_ttl"`
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
	// TrustedProxies are the reverse proxies, as CIDR prefixes or single
	// addresses, whose X-Forwarded-For and X-Real-IP headers are believed
	// to name the client. Empty (the default): every client is its TCP
	// peer, and those headers are ignored, since anyone can send them.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, headers and body, on
	// every route; a client that sends slower is cut off. WebSockets are
	// not bound by it once upgraded.
	ReadTimeout time.Duration `mapstructure:"read_timeout"`
	// WriteTimeout bounds handling a request and writing its response,
	// from the end of its headers.
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxConns caps the connections open at once (WebSockets included);
	// beyond it new ones get a 503 and are closed. It is also lowered to
	// fit the process's open-file limit.
	MaxConns int `mapstructure:"max_conns"`
	// MaxConnsPerIP caps the connections open at once from one client
	// address (an IPv6 client by its /64); trusted proxies are exempt.
	// 0 turns the cap off.
	MaxConnsPerIP int `mapstructure:"max_conns_per_ip"`
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
	// EchoWindow is how long a user message whose send has an unknown
	// outcome (timed out after it went out, or in flight at a crash)
	// waits for Selarti's echo of it on the "All messages" webhook before
	// it is sent again; the echo proves delivery. 0 turns this off (at
	// least once: such a message is sent again at once). Not used when
	// Wire.IdempotencyKeyField is set: Selarti then drops repeats itself.
	EchoWindow time.Duration `mapstructure:"echo_window"`
	// Wire overrides Selarti's API paths and field names (see selarti.Wire);
	// only for when Selarti changes them.
	Wire selarti.Wire `mapstructure:"wire"`
}

// StoreConfig is where the durable outbox lives.
type StoreConfig struct {
	// Driver is "sqlite" (default: one file under Path, one gateway
	// process), "postgres" (a PostgreSQL database that several gateway
	// replicas share, at DSN) or "memory" (nothing survives a restart;
	// for tests and experiments).
	Driver string `mapstructure:"driver"`
	// DSN is the PostgreSQL connection string (driver postgres), as a URL
	// ("postgres://user:password@host:5432/db?sslmode=verify-full") or
	// keyword/value pairs; pool settings such as pool_max_conns go in it
	// too. It is a secret: it usually holds a password.
	DSN core.Secret `mapstructure:"dsn"`
	// Path is the data directory: the SQLite store, and a folder per
	// adapter instance, with every driver. Each replica has its own.
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
	// UndeliveredNotice, when set, is sent to a user whose message to
	// Selarti became a dead letter, on networks whose adapter cannot show
	// that itself (the webchat marks the message "not delivered"). Off
	// (empty) by default; written in the users' language.
	UndeliveredNotice string `mapstructure:"undelivered_notice"`
	// Config is the kind's own options, decoded by the adapter.
	Config map[string]any `mapstructure:"config"`
}

// IsEnabled reports whether the instance is to run (the default).
func (a AdapterConfig) IsEnabled() bool { return a.Enabled == nil || *a.Enabled }

// defaults are the values of keys the file leaves out. They are also what
// makes SWITCHBOARD_* environment overrides work: viper only looks up the
// environment for keys it knows.
var defaults = map[string]any{
	"server.listen":              ":8080",
	"server.public_url":          "",
	"server.shutdown_timeout":    "15s",
	"server.trusted_proxies":     []string{},
	"server.read_header_timeout": "10s",
	"server.read_timeout":        "30s",
	"server.write_timeout":       "60s",
	"server.idle_timeout":        "120s",
	"server.max_conns":           10000,
	"server.max_conns_per_ip":    256,
	"selarti.base_url":           "https://selarti.com/api/1.1",
	"selarti.api_key":            "",
	"selarti.webhook_secret":     "",
	"selarti.timeout":            "10s",
	"selarti.retry_budget":       "20s",
	"selarti.webhook_max_bytes":  256 << 10,
	"selarti.echo_window":        "5s",
	"replica.id":                 "",
	"replica.lease_ttl":          "6s",
	"store.driver":               "sqlite",
	"store.dsn":                  "",
	"store.path":                 "./data",
	"store.retention":            "168h",
	"store.chat_retention":       "2160h",
	"delivery.workers":           16,
	"delivery.max_attempts":      50,
	"delivery.max_age":           "24h",
	"delivery.backoff_initial":   "1s",
	"delivery.backoff_max":       "5m",
	"delivery.attempt_timeout":   "60s",
	"admin.token":                "",
	"log.level":                  "info",
	"log.format":                 "json",
}

// LoadConfig reads a YAML config file, expands ${ENV_VAR} references in
// string values, applies SWITCHBOARD_* environment overrides (for example
// SWITCHBOARD_SELARTI_API_KEY for selarti.api_key; one that overrides no
// key is an error, see checkEnvOverrides), decodes it strictly (an
// unknown key is an error that names it) and validates it. It does not
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
	// keys are the scalar keys, which an environment variable can
	// override (adapter blocks are in a list, which viper cannot
	// address).
	keys := make([]string, 0, len(defaults)+10)
	for k, val := range defaults {
		v.SetDefault(k, val)
		keys = append(keys, k)
	}
	w := selarti.DefaultWire()
	for k, val := range map[string]string{
		"auth_path": w.AuthPath, "auth_key_field": w.AuthKeyField, "send_path": w.SendPath,
		"task_id_field": w.TaskIDField, "chat_id_field": w.ChatIDField, "text_field": w.TextField,
		"phone_field": w.PhoneField, "name_field": w.NameField, "username_field": w.UsernameField,
		"idempotency_key_field": w.IdempotencyKeyField,
	} {
		v.SetDefault("selarti.wire."+k, val)
		keys = append(keys, "selarti.wire."+k)
	}
	v.SetEnvPrefix(strings.TrimSuffix(EnvPrefix, "_"))
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	settings := v.AllSettings()
	refs := make(map[string]bool)
	envRefs(settings, refs)
	if err := checkEnvOverrides(os.Environ(), keys, refs); err != nil {
		return nil, err
	}
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

// bareEnvRefRE matches a value that is nothing but an unbraced reference,
// "$SELARTI_API_KEY": surely meant as ${SELARTI_API_KEY}, which is what
// is expanded. Taken literally, the gateway would run with the variable's
// name as its API key, and `check` would not notice.
var bareEnvRefRE = regexp.MustCompile(`^\$([A-Z_][A-Z0-9_]*)$`)

// expandEnv replaces ${NAME} in every string of a decoded YAML tree. An
// unset variable is an error naming the key: a secret that silently
// became "" would fail much later and far less clearly. So is a value
// that is exactly $NAME (see bareEnvRefRE); a "$" anywhere else is kept
// as written, since secrets and passwords may contain one. A value that
// really is "$NAME" can still be had by putting it in a variable and
// writing ${VAR}: expanded text is not looked at again.
func expandEnv(node any, key string) (any, error) {
	switch n := node.(type) {
	case string:
		if m := bareEnvRefRE.FindStringSubmatch(strings.TrimSpace(n)); m != nil {
			return nil, fmt.Errorf("key %s: %q looks like an environment variable, but only the braced form is expanded: write \"${%s}\"", key, strings.TrimSpace(n), m[1])
		}
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
	if err := checkListen(c.Server.Listen); err != nil {
		bad("server.listen", "%v", err)
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
	positive("server.read_header_timeout", c.Server.ReadHeaderTimeout)
	positive("server.read_timeout", c.Server.ReadTimeout)
	positive("server.write_timeout", c.Server.WriteTimeout)
	positive("server.idle_timeout", c.Server.IdleTimeout)
	if c.Server.ReadHeaderTimeout > c.Server.ReadTimeout {
		bad("server.read_header_timeout", "must not be more than server.read_timeout")
	}
	if c.Server.MaxConns < 1 {
		bad("server.max_conns", "must be at least 1")
	}
	if c.Server.MaxConnsPerIP < 0 {
		bad("server.max_conns_per_ip", "must be 0 (no cap) or more")
	}
	for i, p := range c.Server.TrustedProxies {
		if _, err := clientip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("server.trusted_proxies[%d]", i), "%v", err)
		}
	}
	positive("selarti.timeout", c.Selarti.Timeout)
	positive("selarti.retry_budget", c.Selarti.RetryBudget)
	if c.Replica.LeaseTTL < 300*time.Millisecond {
		bad("replica.lease_ttl", "must be at least 300ms")
	}
	if c.Selarti.EchoWindow < 0 {
		bad("selarti.echo_window", "must not be negative (0 turns echo reconciliation off)")
	}
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
	case "postgres":
		if c.Store.DSN.IsZero() {
			bad("store.dsn", "required with driver postgres")
		}
		if c.Store.Path == "" {
			bad("store.path", "required: adapters keep files there with every driver")
		}
	case "memory":
	default:
		bad("store.driver", "must be \"sqlite\", \"postgres\" or \"memory\", not %q", c.Store.Driver)
	}
	if c.Store.Driver != "postgres" && !c.Store.DSN.IsZero() {
		bad("store.dsn", "only used with driver postgres (store.driver is %q)", c.Store.Driver)
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
		if n := a.UndeliveredNotice; !utf8.ValidString(n) || len(n) > maxUndeliveredNotice {
			bad(key+".undelivered_notice", "at most %d bytes of UTF-8 text", maxUndeliveredNotice)
		}
		if a.TaskID == "" {
			bad(key+".task_id", "required (the Selarti task id, from the ID column of Tasks)")
		}
	}
	return errors.Join(errs...)
}

// checkListen parses a listen address as net.Listen would take it,
// host:port with a numeric port: "8080" alone or ":http" pass
// net.SplitHostPort or not, but serve would fail on them, or listen
// somewhere else than meant, only once started.
func checkListen(addr string) error {
	if addr == "" {
		return errors.New("required (e.g. \":8080\" or \"127.0.0.1:8080\")")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		var aerr *net.AddrError
		if errors.As(err, &aerr) {
			err = errors.New(aerr.Err)
		}
		return fmt.Errorf("%q is not host:port (e.g. \":8080\" or \"127.0.0.1:8080\"): %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("%q has no port (e.g. \"%s:8080\")", addr, host)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return fmt.Errorf("%q: port %q must be a number from 0 to 65535", addr, port)
	}
	return nil
}

// checkHTTPURL's errors show s with its credentials redacted: url.Parse's
// own errors quote the whole string.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%q is not a URL: %w", core.RedactURL(s), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an http or https URL", core.RedactURL(s))
	}
	return nil
}
