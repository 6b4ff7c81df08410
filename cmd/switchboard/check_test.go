package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
	faketelegram "github.com/switchboard-gw/switchboard/test/fakes/telegram"
)

// runSplit executes the CLI with args and returns its standard output
// and error apart.
func runSplit(args ...string) (stdout, stderr string, err error) {
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const checkCore = `
selarti:
  api_key: k
  webhook_secret: 0123456789abcdef0123456789abcdef
`

// A config with no adapter enabled is valid, but check says on stderr
// that no user can reach such a gateway.
func TestCheckWarnsWithoutAdapters(t *testing.T) {
	for name, body := range map[string]string{
		"none":     checkCore,
		"disabled": checkCore + "adapters:\n  - name: web\n    kind: webchat\n    task_id: t\n    enabled: false\n",
	} {
		t.Run(name, func(t *testing.T) {
			out, errOut, err := runSplit("check", "-c", writeFile(t, body))
			if err != nil || !strings.Contains(out, "OK") {
				t.Fatalf("check = %q, %v", out, err)
			}
			if !strings.Contains(errOut, "warning:") || !strings.Contains(errOut, "enables no adapter") {
				t.Fatalf("stderr = %q, want a warning that no adapter is enabled", errOut)
			}
			if strings.Contains(out, "warning") {
				t.Fatalf("the warning went to stdout: %q", out)
			}
		})
	}
	_, errOut, err := runSplit("check", "-c", writeFile(t, checkCore+"adapters:\n  - name: web\n    kind: webchat\n    task_id: t\n"))
	if err != nil || errOut != "" {
		t.Fatalf("with an adapter: stderr %q, %v", errOut, err)
	}
}

// What serve would trip on, check refuses, naming the key or variable.
func TestCheckRefusesWhatServeTripsOn(t *testing.T) {
	base := checkCore + "adapters:\n  - name: tg\n    kind: telegram\n    task_id: t\n    config:\n      token: \"123456789:AAH" + strings.Repeat("x", 32) + "\"\n"
	tests := []struct {
		name, body, env, want string
	}{
		{name: "core duration without a unit", body: strings.Replace(base, "selarti:\n", "selarti:\n  timeout: 10\n", 1),
			want: `key selarti.timeout: "10" needs a unit, like 10s`},
		{name: "adapter duration without a unit", body: base + "      request_timeout: 30\n",
			want: `key config.request_timeout: "30" needs a unit, like 30s`},
		{name: "listen without a port", body: "server:\n  listen: localhost\n" + base,
			want: `key server.listen: "localhost" is not host:port`},
		{name: "listen with a port out of range", body: "server:\n  listen: \":80800\"\n" + base,
			want: `key server.listen: ":80800": port "80800" must be a number from 0 to 65535`},
		{name: "misspelt environment override", body: base, env: "SWITCHBOARD_SELARTI_TIMOUT",
			want: "environment variable SWITCHBOARD_SELARTI_TIMOUT overrides no config key (did you mean SWITCHBOARD_SELARTI_TIMEOUT?)"},
		{name: "duration without a unit from the environment", body: base, env: "SWITCHBOARD_SELARTI_TIMEOUT",
			want: `key selarti.timeout: "5" needs a unit, like 5s`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv(tt.env, "5")
			}
			_, _, err := runSplit("check", "-c", writeFile(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("check error = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// onlineEnv is a fake Selarti, Telegram, Discord and Slack, and a config
// with one instance on each, a webchat and a disabled instance.
type onlineEnv struct {
	sel  *fakeselarti.Server
	dc   *fakediscord.Bot
	team *fakeslack.Team
	path string
}

const onlineAPIKey = "selarti-key-for-check"

func newOnlineEnv(t *testing.T, selartiKey, telegramToken string) *onlineEnv {
	t.Helper()
	sel, err := fakeselarti.New(fakeselarti.Options{APIKey: onlineAPIKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sel.Close() })
	tg, err := faketelegram.New(faketelegram.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if _, err := tg.AddBot(faketelegram.TestToken(1), "shop_bot"); err != nil {
		t.Fatal(err)
	}
	dcSrv, err := fakediscord.New(fakediscord.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dcSrv.Close() })
	dc, err := dcSrv.AddBot(fakediscord.TestToken(1), "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	slSrv, err := fakeslack.New(fakeslack.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slSrv.Close() })
	team, err := slSrv.AddTeam(fakeslack.TeamOptions{Name: "Shop", BotName: "shop_bot"})
	if err != nil {
		t.Fatal(err)
	}
	body := `
selarti:
  base_url: ` + sel.URL() + `
  api_key: ` + selartiKey + `
  webhook_secret: 0123456789abcdef0123456789abcdef
store:
  path: ` + t.TempDir() + `
adapters:
  - name: tg
    kind: telegram
    task_id: t
    config:
      token: "` + telegramToken + `"
      api_url: ` + tg.URL() + `
  - name: dc
    kind: discord
    task_id: t
    config:
      token: "` + dc.Token() + `"
      api_url: ` + dcSrv.URL() + `
  - name: sl
    kind: slack
    task_id: t
    config:
      bot_token: "` + team.BotToken() + `"
      app_token: "` + team.AppToken() + `"
      api_url: ` + slSrv.URL() + `
  - name: web
    kind: webchat
    task_id: t
  - name: off
    kind: telegram
    task_id: t
    enabled: false
    config:
      token: "` + faketelegram.TestToken(2) + `"
`
	return &onlineEnv{sel: sel, dc: dc, team: team, path: writeFile(t, body)}
}

func TestCheckOnlinePasses(t *testing.T) {
	e := newOnlineEnv(t, onlineAPIKey, faketelegram.TestToken(1))
	out, _, err := runSplit("check", "-c", e.path, "--online")
	if err != nil {
		t.Fatalf("check --online = %v\n%s", err, out)
	}
	want := []string{
		"selarti: ok",
		"adapter tg (telegram): ok",
		"adapter dc (discord): ok",
		"adapter sl (slack): ok",
		"adapter web (webchat): skip nothing remote to check",
		"adapter off (telegram): skip disabled",
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1+len(want) || strings.Join(lines[1:], "\n") != strings.Join(want, "\n") {
		t.Fatalf("check --online printed\n%s\nwant the OK line, then\n%s", out, strings.Join(want, "\n"))
	}
	// Without --online, nothing is tried.
	e.sel.Close()
	if out, _, err := runSplit("check", "-c", e.path); err != nil || strings.Contains(out, "selarti:") {
		t.Fatalf("check without --online = %q, %v", out, err)
	}
}

// Wrong credentials and a Selarti that is down are each a FAIL line, and
// check exits with an error; no secret shows.
func TestCheckOnlineFails(t *testing.T) {
	wrongTG := faketelegram.TestToken(999)
	e := newOnlineEnv(t, "wrong-selarti-key", wrongTG)
	e.dc.RevokeToken()
	e.team.RevokeBotToken()
	out, _, err := runSplit("check", "-c", e.path, "--online", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "4 of 6 online checks failed") {
		t.Fatalf("check --online = %v, want 4 failures\n%s", err, out)
	}
	for _, item := range []string{"selarti", "adapter tg (telegram)", "adapter dc (discord)", "adapter sl (slack)"} {
		if !strings.Contains(out, "\n"+item+": FAIL ") {
			t.Errorf("no FAIL line for %s in\n%s", item, out)
		}
	}
	for _, secret := range []string{"wrong-selarti-key", wrongTG, e.dc.Token(), e.team.BotToken(), e.team.AppToken()} {
		if strings.Contains(out+err.Error(), secret) {
			t.Errorf("the output shows a secret %q:\n%s", secret, out)
		}
	}

	// Selarti down: a FAIL within the timeout.
	e = newOnlineEnv(t, onlineAPIKey, faketelegram.TestToken(1))
	e.sel.Close()
	start := time.Now()
	out, _, err = runSplit("check", "-c", e.path, "--online", "--timeout", "2s")
	if err == nil || !strings.Contains(out, "\nselarti: FAIL ") || !strings.Contains(out, "adapter tg (telegram): ok") {
		t.Fatalf("check --online with Selarti down = %v\n%s", err, out)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
}
