// Package crash kills the real switchboard binary with SIGKILL, again and
// again, while users chat through the webchat, and checks that no message
// was lost, doubled or reordered in either direction.
package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/switchboard-gw/switchboard/core/selarti"
	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// Figures of the test; CRASH_MESSAGES and CRASH_CHATS scale it up by hand.
var (
	chats       = envInt("CRASH_CHATS", 50)
	perChat     = envInt("CRASH_MESSAGES", 6000) / envInt("CRASH_CHATS", 50)
	minKills    = 8
	maxKills    = 8
	idempotency = "client_message_id" // see docs/delivery-guarantees.md
)

func envInt(name string, def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv(name), &n); err == nil && n > 0 {
		return n
	}
	return def
}

// buildBinary builds the real switchboard binary once for the test, with
// the build tags of the test itself (make test passes the Makefile's).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchboard")
	args := []string{"build", "-o", bin}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "-tags" && s.Value != "" {
				args = append(args, "-tags", s.Value)
			}
		}
	}
	cmd := exec.Command("go", append(args, "github.com/switchboard-gw/switchboard/cmd/switchboard")...)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build switchboard: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gateway runs the binary and restarts it after each kill.
type gateway struct {
	t      *testing.T
	bin    string
	config string
	base   string
	logDir string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current run's process has been reaped
	runs   int
}

func (g *gateway) start() {
	g.t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.runs++
	logf, err := os.Create(filepath.Join(g.logDir, fmt.Sprintf("run-%02d.log", g.runs)))
	if err != nil {
		g.t.Fatal(err)
	}
	cmd := exec.Command(g.bin, "serve", "-c", g.config)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	g.cmd, g.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(g.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("gateway run %d never became ready (see %s)", g.runs, logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *gateway) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = g.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
		g.t.Fatal("killed gateway did not exit")
	}
}

func (g *gateway) stop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// user is one webchat session that sends its messages one by one, each
// after the previous was acknowledged, and collects the replies.
type user struct {
	idx      int
	base     string
	pick     func() string // when set, the gateway each connection goes to (base otherwise)
	session  string
	epoch    string
	lastSeq  int64
	texts    []string
	replies  []string        // bot replies, in the order of their seq
	answered map[string]bool // the distinct replies: a repeat must not end the wait early
	resends  int
	received atomic.Int64 // user messages acked
}

func (u *user) text(i int) string { return fmt.Sprintf("chat %d message %d", u.idx, i) }

// run sends every message and waits for every reply, reconnecting through
// the gateway's deaths.
func (u *user) run(ctx context.Context) error {
	next := 0
	for ctx.Err() == nil {
		err := u.session1(ctx, &next)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(50+rand.IntN(100)) * time.Millisecond):
		}
	}
	return fmt.Errorf("chat %d: %d of %d acked, %d of %d replies: %w", u.idx, next, len(u.texts), len(u.replies), len(u.texts), ctx.Err())
}

type frame struct {
	Type    string `json:"type"`
	Session string `json:"session"`
	Epoch   string `json:"epoch"`
	LastSeq int64  `json:"last_seq"`
	Seq     int64  `json:"seq"`
	From    string `json:"from"`
	Text    string `json:"text"`
	ID      string `json:"id"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

// session1 is one connection's life: hello, then send/ack/replies until
// done (nil) or the connection dies (error).
func (u *user) session1(ctx context.Context, next *int) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	base := u.base
	if u.pick != nil {
		base = u.pick()
	}
	conn, _, err := websocket.Dial(cctx, strings.Replace(base, "http", "ws", 1)+"/chat/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": {base}}})
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	if err := wsjson.Write(cctx, conn, map[string]any{"type": "hello", "session": u.session, "last_seq": u.lastSeq, "epoch": u.epoch}); err != nil {
		return err
	}
	sent := -1 // index of the message sent and not yet acked on this connection
	send := func() error {
		if *next >= len(u.texts) || sent == *next {
			return nil
		}
		sent = *next
		return wsjson.Write(cctx, conn, map[string]any{"type": "message", "id": fmt.Sprintf("c%d-m%d", u.idx, *next), "text": u.texts[*next]})
	}
	for {
		var f frame
		if err := wsjson.Read(cctx, conn, &f); err != nil {
			return err
		}
		switch f.Type {
		case "welcome":
			if u.session != "" && f.Session != u.session {
				return fmt.Errorf("session changed from %s to %s", u.session, f.Session)
			}
			if u.epoch != "" && f.Epoch != u.epoch {
				return fmt.Errorf("chat %d: session epoch changed (%s → %s): the webchat forgot its history", u.idx, u.epoch, f.Epoch)
			}
			u.session, u.epoch = f.Session, f.Epoch
			if *next > 0 && sent == -1 {
				u.resends++ // the unacked message of the last connection goes again
			}
			if err := send(); err != nil {
				return err
			}
		case "ack":
			if f.ID == fmt.Sprintf("c%d-m%d", u.idx, *next) {
				*next++
				u.received.Add(1)
				if err := send(); err != nil {
					return err
				}
			}
		case "error":
			if f.Code == "deliver_failed" {
				sent = -1
				time.Sleep(50 * time.Millisecond)
				if err := send(); err != nil {
					return err
				}
				continue
			}
			return fmt.Errorf("error frame: %s (%s)", f.Error, f.Code)
		case "message":
			if f.Seq <= u.lastSeq {
				continue // replayed, already seen
			}
			if f.Seq != u.lastSeq+1 {
				return fmt.Errorf("chat %d: seq jumped from %d to %d", u.idx, u.lastSeq, f.Seq)
			}
			u.lastSeq = f.Seq
			if f.From == "bot" {
				u.replies = append(u.replies, f.Text)
				u.answered[f.Text] = true
			}
		}
		if *next == len(u.texts) && len(u.answered) >= len(u.texts) {
			conn.Close(websocket.StatusNormalClosure, "")
			return nil
		}
	}
}

// crashMode is how the gateway avoids repeating a user's message to
// Selarti after a crash.
type crashMode struct {
	name string
	// key: Selarti drops repeats by an idempotency key (our simulator
	// does; Selarti documents none).
	key bool
	// echoWindow: selarti.echo_window; with no key, the gateway settles a
	// send in flight at a kill by Selarti's echo of it (0: off).
	echoWindow string
	// repeatsExpected: this mode cannot prevent repeats, and the test must
	// see some, or it could not see them at all.
	repeatsExpected bool
}

// TestCrashKillRestartLosesNothing kills the gateway at least minKills
// times while 50 webchat users chat, in three modes, and checks that no
// message is lost or reordered in either direction, and that no user
// message reaches Selarti twice unless the mode allows it.
func TestCrashKillRestartLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	bin := buildBinary(t)
	for _, mode := range []crashMode{
		{name: "echo reconciliation", echoWindow: "5s"},
		{name: "idempotency key", key: true, echoWindow: "5s"},
		{name: "neither", echoWindow: "0s", repeatsExpected: true},
	} {
		t.Run(mode.name, func(t *testing.T) { runCrash(t, bin, mode) })
	}
}

func runCrash(t *testing.T, bin string, mode crashMode) {
	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	secret := strings.Repeat("c", 40)

	wire := selarti.DefaultWire()
	keyField := `""`
	if mode.key {
		wire.IdempotencyKeyField = idempotency
		keyField = idempotency
	}
	sim, err := fakeselarti.New(fakeselarti.Options{
		APIKey:     "crash-key",
		Wire:       wire,
		WebhookURL: base + "/webhooks/selarti/" + secret,
		// The echoes of sends in flight at a kill are posted while the
		// gateway is down: they must outlast the whole kill phase (15-20 s
		// here), as a real platform's retries (minutes to hours) would. 12
		// tries span 15 s, and a CI run once lost three echoes whose tries
		// all hit a gateway down or starting: three sends resent after the
		// window. 60 tries span two minutes.
		WebhookTries: 60,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()

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
  echo_window: %s
  wire:
    idempotency_key_field: %s
store:
  path: %q
delivery:
  workers: 32
  backoff_initial: 50ms
  backoff_max: 500ms
log:
  level: info
adapters:
  - name: web
    kind: webchat
    task_id: crash-task
    config:
      rate_limit: 100000
      ip_rate_limit: 0
      ip_session_limit: 0
`, addr, base, sim.URL(), secret, mode.echoWindow, keyField, filepath.Join(dir, "data"))
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, bin: bin, config: config, base: base, logDir: t.TempDir()}
	g.start()
	defer g.stop()

	users := make([]*user, chats)
	total := 0
	for i := range users {
		u := &user{idx: i, base: base, answered: map[string]bool{}}
		for m := range perChat {
			u.texts = append(u.texts, u.text(m))
		}
		total += len(u.texts)
		users[i] = u
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	var done atomic.Int32
	errs := make([]error, len(users))
	for i, u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = u.run(ctx)
			done.Add(1)
		}()
	}

	// Kill at random moments while the users chat: maxKills times at most,
	// at least minKills (6,000 messages keep the users busy for about twice
	// that on this machine), each after 0.2 to 0.6 s of work, then let the
	// users finish.
	kills := 0
	start := time.Now()
	for kills < maxKills && int(done.Load()) < len(users) && ctx.Err() == nil {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		if int(done.Load()) == len(users) && kills >= minKills {
			break
		}
		g.kill()
		kills++
		time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
		g.start()
	}
	wg.Wait()
	elapsed := time.Since(start)

	// Figures, per direction.
	var lostIn, dupIn, reorderedIn, lostOut, dupOut, reorderedOut, resends int
	for i, u := range users {
		if errs[i] != nil {
			t.Errorf("user %d: %v", i, errs[i])
		}
		resends += u.resends
		var got []string
		for _, r := range sim.ReceivedFor("web:" + u.session) {
			got = append(got, r.Text)
		}
		l, d, r := compare(u.texts, got)
		lostIn, dupIn, reorderedIn = lostIn+l, dupIn+d, reorderedIn+r
		want := make([]string, len(u.texts))
		for m, text := range u.texts {
			want[m] = fakeselarti.Reply(text)
		}
		l, d, r = compare(want, u.replies)
		lostOut, dupOut, reorderedOut = lostOut+l, dupOut+d, reorderedOut+r
	}
	settled, resent := g.countLogs("echo proves delivery"), g.countLogs("no echo from Selarti within the window")
	t.Logf("crash test (%s): %d messages over %d chats, %d kills (SIGKILL) in %s, %d user resends, GOMAXPROCS %d",
		mode.name, total, len(users), kills, elapsed.Round(time.Millisecond), resends, runtime.GOMAXPROCS(0))
	t.Logf("user→Selarti: lost %d, duplicated %d, reordered %d; %d repeats dropped by idempotency key; %d sends settled by Selarti's echo, %d sent again after the echo window",
		lostIn, dupIn, reorderedIn, sim.Repeats(), settled, resent)
	t.Logf("Selarti→user: lost %d, duplicated %d, reordered %d", lostOut, dupOut, reorderedOut)
	// A webhook Selarti gave up on is the harness failing, not the
	// gateway: a lost echo makes the gateway resend (at least once, as
	// documented), a lost reply is lost at Selarti. Say so apart.
	if gaveUp := sim.GaveUp(); len(gaveUp) > 0 {
		t.Errorf("the Selarti simulator gave up on %d webhooks (the first: %v, %s): its retries did not outlast the kills", len(gaveUp), gaveUp[0].Payload[selarti.FieldMessageType], gaveUp[0].Err)
	}
	if kills < minKills {
		t.Errorf("only %d kills, want at least %d", kills, minKills)
	}
	if lostIn+reorderedIn+lostOut+reorderedOut != 0 {
		t.Errorf("messages lost or reordered (logs in %s)", g.logDir)
	}
	switch {
	case mode.repeatsExpected && dupIn == 0:
		t.Errorf("no message reached Selarti twice in %d kills without key or reconciliation: the test cannot see repeats", kills)
	case !mode.repeatsExpected && dupIn != 0:
		t.Errorf("%d user messages reached Selarti twice (logs in %s)", dupIn, g.logDir)
	}
	// A repeated user message makes the assistant answer twice, and
	// nothing else may double a reply. (A user may leave before the second
	// answer to its last message comes: fewer is fine.)
	if dupOut > dupIn {
		t.Errorf("%d replies duplicated, more than the %d repeated user messages (logs in %s)", dupOut, dupIn, g.logDir)
	}
}

// countLogs counts the lines containing s over every run's log.
func (g *gateway) countLogs(s string) int {
	files, _ := filepath.Glob(filepath.Join(g.logDir, "run-*.log"))
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			n += strings.Count(string(b), s)
		}
	}
	return n
}

// compare counts, against the expected sequence, the messages missing from
// got, the extra copies in got, and those out of order.
func compare(want, got []string) (lost, dup, reordered int) {
	seen := map[string]int{}
	for _, g := range got {
		seen[g]++
	}
	for _, w := range want {
		switch n := seen[w]; {
		case n == 0:
			lost++
		case n > 1:
			dup += n - 1
		}
	}
	// Order: the first occurrences of got must follow want's order.
	pos := map[string]int{}
	for i, w := range want {
		pos[w] = i
	}
	last := -1
	first := map[string]bool{}
	for _, g := range got {
		if first[g] {
			continue
		}
		first[g] = true
		p, ok := pos[g]
		if !ok {
			dup++ // not a message we sent at all
			continue
		}
		if p < last {
			reordered++
		}
		last = max(last, p)
	}
	return lost, dup, reordered
}
