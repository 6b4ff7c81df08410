package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/core"
)

// run executes the CLI with args and returns its output and error.
func run(args ...string) (string, error) {
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func setExampleEnv(t *testing.T) {
	t.Setenv("SELARTI_API_KEY", "example-key")
	t.Setenv("SELARTI_WEBHOOK_SECRET", strings.Repeat("s", 48))
	t.Setenv("TELEGRAM_TOKEN", "123456789:AAH"+strings.Repeat("x", 32))
	t.Setenv("DISCORD_TOKEN", "MTAx."+strings.Repeat("y", 30))
	t.Setenv("SLACK_BOT_TOKEN", "xoxb-1-2-"+strings.Repeat("z", 24))
	t.Setenv("SLACK_APP_TOKEN", "xapp-1-A1-2-"+strings.Repeat("f", 32))
	t.Setenv("SLACK_SIGNING_SECRET", strings.Repeat("e", 32))
}

func TestCheckAcceptsExample(t *testing.T) {
	setExampleEnv(t)
	out, err := run("check", "-c", "../../config.yaml.example")
	if err != nil {
		t.Fatalf("check config.yaml.example: %v", err)
	}
	if !strings.Contains(out, "OK") {
		t.Fatalf("output = %q", out)
	}
}

// TestExampleDocumentsEveryKind: config.yaml.example has an instance of
// every built-in adapter kind, and a core option added to the code but not
// to the example is caught by TestCheckAcceptsExample's strictness the
// other way round (an option in the example that the code does not know).
func TestExampleDocumentsEveryKind(t *testing.T) {
	raw, err := os.ReadFile("../../config.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Adapters []struct {
			Kind string `yaml:"kind"`
		} `yaml:"adapters"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, a := range doc.Adapters {
		kinds = append(kinds, a.Kind)
	}
	for _, k := range core.DefaultRegistry().Kinds() {
		if !slices.Contains(kinds, k) {
			t.Errorf("config.yaml.example has no instance of kind %q", k)
		}
	}
}

func TestCheckRejectsNamingTheKey(t *testing.T) {
	base := `
selarti:
  api_key: k
  webhook_secret: 0123456789abcdef0123456789abcdef
adapters:
  - name: web
    kind: webchat
    task_id: t
`
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "unknown core key", body: base + "servr:\n  listen: x\n", want: "servr"},
		{name: "unknown adapter key", body: base + "    config:\n      titel: x\n", want: "config.titel"},
		{name: "missing api key", body: strings.Replace(base, "  api_key: k\n", "", 1), want: "selarti.api_key"},
		{name: "unknown kind", body: strings.Replace(base, "kind: webchat", "kind: telegrm", 1), want: `unknown adapter kind "telegrm"`},
		{name: "unbraced environment variable", body: strings.Replace(base, "api_key: k", "api_key: $SELARTI_API_KEY", 1), want: `key selarti.api_key: "$SELARTI_API_KEY" looks like an environment variable, but only the braced form is expanded: write "${SELARTI_API_KEY}"`},
		{name: "base url with a password, not http", body: strings.Replace(base, "selarti:\n", "selarti:\n  base_url: ftp://u:hunter2@selarti.example\n", 1), want: `key selarti.base_url: "ftp://u:xxxxx@selarti.example" must be an http or https URL`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run("check", "-c", p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check error = %v, want one naming %q", err, tt.want)
			}
			if strings.Contains(out+err.Error(), "hunter2") {
				t.Fatalf("check shows a password: %q, %v", out, err)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil || !strings.HasPrefix(out, "switchboard ") {
		t.Fatalf("version = %q, %v", out, err)
	}
}

// The version line names the build tags, and the module's version when
// none was set at build time.
func TestFormatVersion(t *testing.T) {
	platform := runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH
	info := &debug.BuildInfo{
		Main:     debug.Module{Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "-trimpath", Value: "true"}, {Key: "-tags", Value: "stdjson"}},
	}
	for _, tt := range []struct {
		version string
		info    *debug.BuildInfo
		want    string
	}{
		{"dev", info, "switchboard v1.4.0 (" + platform + ", tags stdjson)"},
		{"abc1234", info, "switchboard abc1234 (" + platform + ", tags stdjson)"},
		{"dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "switchboard dev (" + platform + ")"},
		{"dev", nil, "switchboard dev (" + platform + ")"},
	} {
		if got := formatVersion(tt.version, tt.info); got != tt.want {
			t.Errorf("formatVersion(%q, ...) = %q, want %q", tt.version, got, tt.want)
		}
	}
}

// "config loaded" and check's output never show the credentials of a URL.
func TestURLCredentialsNeverShown(t *testing.T) {
	body := `
server:
  public_url: https://gw:pub-hunter2@gw.example.com
selarti:
  base_url: https://alice:hunter2@selarti.example/api/1.1
  api_key: k
  webhook_secret: 0123456789abcdef0123456789abcdef
adapters:
  - name: web
    kind: webchat
    task_id: t
`
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := run("check", "-c", p)
	if err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("check = %q, %v", out, err)
	}
	var logs bytes.Buffer
	cfg, _, err := loadAndBuild(p, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	logEffectiveConfig(slog.New(slog.NewJSONHandler(&logs, nil)), cfg)
	all := out + logs.String()
	if strings.Contains(all, "hunter2") {
		t.Fatalf("a password shows:\n%s", all)
	}
	if !strings.Contains(logs.String(), `"selarti_base_url":"https://alice:xxxxx@selarti.example/api/1.1"`) {
		t.Fatalf("config loaded does not show the redacted base url:\n%s", logs.String())
	}
}
