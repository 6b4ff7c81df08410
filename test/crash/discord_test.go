package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-gw/switchboard/core/selarti"
	fakediscord "github.com/switchboard-gw/switchboard/test/fakes/discord"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// TestCrashDiscordBackfillLosesNothing kills the real binary with SIGKILL
// while Discord users write direct messages. Discord never sends a
// message event again, so what arrives while the gateway is dead (or in
// flight when it died) must come from the adapter's checkpoint and
// backfill after each restart: every message reaches Selarti once and in
// order, and is answered once in its DM.
func TestCrashDiscordBackfillLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	const (
		users    = 10
		messages = 30 // per user
		kills    = 4
	)
	bin := buildBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	secret := strings.Repeat("d", 40)

	wire := selarti.DefaultWire()
	wire.IdempotencyKeyField = idempotency
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "crash-key", Wire: wire, WebhookURL: base + "/webhooks/selarti/" + secret})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	dc, err := fakediscord.New(fakediscord.Options{HeartbeatInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	bot, err := dc.AddBot(fakediscord.TestToken(1), "shop_bot")
	if err != nil {
		t.Fatal(err)
	}
	dc.AddGuild("Shop", bot)

	config := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`server:
  listen: %q
  public_url: %q
  shutdown_timeout: 10s
selarti:
  base_url: %q
  api_key: crash-key
  webhook_secret: %q
  retry_budget: 2s
  wire:
    idempotency_key_field: %s
store:
  path: %q
delivery:
  backoff_initial: 50ms
  backoff_max: 500ms
log:
  level: info
adapters:
  - name: dc
    kind: discord
    task_id: crash-task
    config:
      token: %q
      api_url: %q
      typing_timeout: 0s
`, addr, base, sim.URL(), secret, idempotency, filepath.Join(dir, "data"), bot.Token(), dc.URL())
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logDir := os.Getenv("CRASH_LOGS") // to keep the gateway's logs after a failure
	if logDir == "" {
		logDir = t.TempDir()
	}
	g := &gateway{t: t, bin: bin, config: config, base: base, logDir: logDir}
	g.start()
	defer g.stop()

	type dmUser struct {
		u     fakediscord.User
		dm    fakediscord.Channel
		texts []string
	}
	us := make([]*dmUser, users)
	for i := range us {
		u := dc.NewUser(fmt.Sprintf("user%d", i), fmt.Sprintf("User %d", i))
		us[i] = &dmUser{u: u, dm: bot.DMChannel(u)}
		for m := range messages {
			us[i].texts = append(us[i].texts, fmt.Sprintf("dm %d message %d", i, m))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	received := func(u *dmUser) []string {
		var got []string
		for _, r := range sim.ReceivedFor("dc:" + u.dm.ID) {
			got = append(got, r.Text)
		}
		return got
	}
	// Each user's first message while the gateway runs: a DM channel the
	// bot never saw cannot be backfilled (Discord lists no DM channels).
	for _, u := range us {
		dc.UserSays(u.dm.ID, u.u, u.texts[0])
	}
	for _, u := range us {
		for len(received(u)) == 0 {
			if ctx.Err() != nil {
				t.Fatalf("first message of %s never reached Selarti (logs in %s)", u.u.Username, g.logDir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// The users write on while the gateway is killed and restarted.
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Go(func() {
			for _, text := range u.texts[1:] {
				dc.UserSays(u.dm.ID, u.u, text)
				time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
			}
		})
	}
	start := time.Now()
	for range kills {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		g.kill()
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond) // messages arrive while it is dead
		g.start()
	}
	wg.Wait()
	for _, u := range us {
		for len(received(u)) < len(u.texts) || len(bot.Sent(u.dm.ID)) < len(u.texts) {
			if ctx.Err() != nil {
				t.Fatalf("%s: %d of %d messages at Selarti, %d answers (logs in %s)", u.u.Username, len(received(u)), len(u.texts), len(bot.Sent(u.dm.ID)), g.logDir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // room for a duplicate
	var lostIn, dupIn, reorderedIn, lostOut, dupOut, reorderedOut int
	for _, u := range us {
		l, d, r := compare(u.texts, received(u))
		lostIn, dupIn, reorderedIn = lostIn+l, dupIn+d, reorderedIn+r
		want := make([]string, len(u.texts))
		for m, text := range u.texts {
			want[m] = fakeselarti.Reply(text)
		}
		var answers []string
		for _, s := range bot.Sent(u.dm.ID) {
			answers = append(answers, s.Content)
		}
		l, d, r = compare(want, answers)
		lostOut, dupOut, reorderedOut = lostOut+l, dupOut+d, reorderedOut+r
	}
	t.Logf("discord crash test: %d messages over %d DMs, %d kills (SIGKILL) in %s, %d gateway sessions identified, %d sends repeated to Selarti (dropped by idempotency key)",
		users*messages, users, kills, time.Since(start).Round(time.Millisecond), len(bot.Identifies()), sim.Repeats())
	t.Logf("user→Selarti: lost %d, duplicated %d, reordered %d", lostIn, dupIn, reorderedIn)
	t.Logf("Selarti→user: lost %d, duplicated %d, reordered %d", lostOut, dupOut, reorderedOut)
	if lostIn+dupIn+reorderedIn+lostOut+dupOut+reorderedOut != 0 {
		t.Errorf("messages lost, duplicated or reordered (logs in %s)", g.logDir)
	}
}
