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
	"github.com/switchboard-gw/switchboard/kit/richtext"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// TestCrashSlackRedeliveryLosesNothing kills the real binary with SIGKILL
// while Slack users write direct messages over Socket Mode. The adapter
// acknowledges an envelope only once the gateway has committed it, so
// what was in flight when the process died, and what users wrote while it
// was dead (Slack queues it while no connection is up), is sent again by
// Slack to the next process: every message reaches Selarti once and is
// answered.
//
// Slack gives two things up that the other networks keep, and the test
// reports them instead of failing on them: an event sent again after its
// acknowledgement deadline can overtake a later one of the same user
// (Slack does not order redeliveries), and chat.postMessage has no
// idempotency key, so an answer whose post was in flight at a kill can
// go out twice (at most once per kill per chat, which is checked).
func TestCrashSlackRedeliveryLosesNothing(t *testing.T) {
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
	secret := strings.Repeat("s", 40)

	wire := selarti.DefaultWire()
	wire.IdempotencyKeyField = idempotency
	sim, err := fakeselarti.New(fakeselarti.Options{APIKey: "crash-key", Wire: wire, WebhookURL: base + "/webhooks/selarti/" + secret})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	// Slack's behaviour, with shorter waits: an envelope not acknowledged
	// within a second is sent again at once, then after 0.5 and 1 s.
	sl, err := fakeslack.New(fakeslack.Options{
		AckTimeout:   time.Second,
		RetryDelays:  []time.Duration{0, 500 * time.Millisecond, time.Second},
		PingInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	team, err := sl.AddTeam(fakeslack.TeamOptions{Name: "Shop", BotName: "shop_bot"})
	if err != nil {
		t.Fatal(err)
	}

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
  - name: sl
    kind: slack
    task_id: crash-task
    config:
      bot_token: %q
      app_token: %q
      api_url: %q
      channel_rate_limit: 50
      channel_burst: 10
`, addr, base, sim.URL(), secret, idempotency, filepath.Join(dir, "data"), team.BotToken(), team.AppToken(), sl.URL())
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
		u     fakeslack.User
		im    fakeslack.Channel
		texts []string
	}
	us := make([]*dmUser, users)
	for i := range us {
		u := team.AddUser(fmt.Sprintf("user%d", i), fmt.Sprintf("User %d", i))
		us[i] = &dmUser{u: u, im: team.IM(u)}
		for m := range messages {
			us[i].texts = append(us[i].texts, fmt.Sprintf("dm %d message %d", i, m))
		}
	}
	chat := func(u *dmUser) string { return "sl:" + team.ID() + ":" + u.im.ID }
	received := func(u *dmUser) []string {
		var got []string
		for _, r := range sim.ReceivedFor(chat(u)) {
			got = append(got, r.Text)
		}
		return got
	}
	answers := func(u *dmUser) []string {
		var got []string
		for _, m := range team.Posted(u.im.ID) {
			got = append(got, m.Text)
		}
		return got
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The users write on while the gateway is killed and restarted.
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Go(func() {
			for _, text := range u.texts {
				team.UserSaysIM(u.u, text)
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
		for len(unique(received(u))) < len(u.texts) || len(unique(answers(u))) < len(u.texts) {
			if ctx.Err() != nil {
				t.Fatalf("%s: %d of %d messages at Selarti, %d answers, %d events pending at Slack, %d given up (logs in %s)",
					u.u.Name, len(unique(received(u))), len(u.texts), len(unique(answers(u))), team.Pending(), failed(team), g.logDir)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if err := sim.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the ack deadline: room for a redelivery or a duplicate
	var lostIn, dupIn, reorderedIn, lostOut, dupOut, reorderedOut int
	for _, u := range us {
		l, d, r := compare(u.texts, received(u))
		lostIn, dupIn, reorderedIn = lostIn+l, dupIn+d, reorderedIn+r
		// Selarti answers in the order it received: the answers are
		// compared with that order, so that an overtaking redelivery
		// counts once (above), not again here.
		var want []string
		for _, text := range unique(received(u)) {
			want = append(want, mrkdwn(fakeselarti.Reply(text)))
		}
		l, d, r = compare(want, answers(u))
		lostOut, dupOut, reorderedOut = lostOut+l, dupOut+d, reorderedOut+r
	}
	redelivered := 0
	for _, e := range team.Envelopes() {
		if e.RetryAttempt > 0 {
			redelivered++
		}
	}
	t.Logf("slack crash test: %d messages over %d DMs, %d kills (SIGKILL) in %s, %d Socket Mode connections, %d envelopes sent again by Slack, %d sends repeated to Selarti (dropped by idempotency key)",
		users*messages, users, kills, time.Since(start).Round(time.Millisecond), len(team.Connections()), redelivered, sim.Repeats())
	t.Logf("user→Selarti: lost %d, duplicated %d, overtaken by a redelivery %d", lostIn, dupIn, reorderedIn)
	t.Logf("Selarti→user: lost %d, duplicated %d, reordered %d; %d conversations read back before an answer that may have gone out",
		lostOut, dupOut, reorderedOut, len(sl.CallsTo("conversations.history")))
	if lostIn+dupIn+lostOut+dupOut+reorderedOut != 0 {
		t.Errorf("messages lost or duplicated, or answers out of order (logs in %s)", g.logDir)
	}
	if n := failed(team); n != 0 {
		t.Errorf("Slack gave up on %d events", n)
	}
}

// unique returns ss without repeats, in the order of first occurrence.
func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// failed counts the events Slack gave up on (never acknowledged).
func failed(team *fakeslack.Team) int {
	n := 0
	seen := map[string]bool{}
	for _, e := range team.Envelopes() {
		if !seen[e.EventID] && team.Failed(e.EventID) {
			n++
		}
		seen[e.EventID] = true
	}
	return n
}

// mrkdwn is what the adapter posts for the assistant's Markdown md.
func mrkdwn(md string) string { return (richtext.SlackMrkdwn{}).Render(richtext.Parse(md)) }
