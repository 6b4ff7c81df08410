package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// ProbeStatus is the outcome of one online probe.
type ProbeStatus string

// Probe outcomes, as `switchboard check --online` prints them.
const (
	ProbeOK   ProbeStatus = "ok"
	ProbeFail ProbeStatus = "FAIL"
	ProbeSkip ProbeStatus = "skip"
)

// ProbeResult is one item `check --online` tried: Selarti, or one adapter
// instance.
type ProbeResult struct {
	// Item is "selarti" or "adapter <name> (<kind>)".
	Item   string
	Status ProbeStatus
	// Reason is why it failed (FAIL) or was not tried (skip); its text
	// never holds the configured secrets.
	Reason string
}

// ProbeOnline tries what a started gateway would need first, without
// starting anything: Selarti's auth call with the API key, and each
// enabled instance's cheap probe (core.HealthChecker, which works before
// Start: getMe, GET /users/@me, auth.test). It listens on nothing and
// opens no store. Each item gets timeout; they run at once, and the
// results come in config order, Selarti first. Call it on a gateway from
// New, never started.
func (g *Gateway) ProbeOnline(ctx context.Context, timeout time.Duration) []ProbeResult {
	results := make([]ProbeResult, 1+len(g.instances))
	secrets := g.secrets()
	var wg sync.WaitGroup
	try := func(i int, item string, probe func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			err := probe(pctx)
			switch {
			case err == nil:
				results[i] = ProbeResult{Item: item, Status: ProbeOK}
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				results[i] = ProbeResult{Item: item, Status: ProbeFail, Reason: fmt.Sprintf("no answer within %s: %s", timeout, scrub(err.Error(), secrets))}
			default:
				results[i] = ProbeResult{Item: item, Status: ProbeFail, Reason: scrub(err.Error(), secrets)}
			}
		}()
	}
	try(0, "selarti", g.selarti.Authenticate)
	for n, inst := range g.instances {
		i := n + 1
		item := fmt.Sprintf("adapter %s (%s)", inst.name, inst.kind)
		if !inst.enabled {
			results[i] = ProbeResult{Item: item, Status: ProbeSkip, Reason: "disabled"}
			continue
		}
		hc, ok := inst.messenger.(core.HealthChecker)
		if !ok {
			results[i] = ProbeResult{Item: item, Status: ProbeSkip, Reason: "nothing remote to check"}
			continue
		}
		try(i, item, hc.CheckHealth)
	}
	wg.Wait()
	return results
}

// secretKeyWords mark an adapter block's keys whose values are
// credentials (token, app_token, signing_secret, webhook_secret, ...).
var secretKeyWords = []string{"token", "secret", "key", "password", "dsn"}

// secrets are the credentials of the config, the longest first, for
// scrub. The core's are known by their type; an adapter's by the name of
// their key, since the adapter decodes its own block.
func (g *Gateway) secrets() []string {
	out := []string{g.cfg.Selarti.APIKey.Reveal(), g.cfg.Selarti.WebhookSecret.Reveal(), g.cfg.Admin.Token.Reveal(), g.cfg.Store.DSN.Reveal()}
	for _, ac := range g.cfg.Adapters {
		for k, v := range ac.Config {
			s, ok := v.(string)
			if !ok {
				continue
			}
			for _, w := range secretKeyWords {
				if strings.Contains(strings.ToLower(k), w) {
					out = append(out, s)
					break
				}
			}
		}
	}
	// Short values ("", "k") would blank out ordinary words.
	kept := out[:0]
	for _, s := range out {
		if len(s) >= 4 {
			kept = append(kept, s)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return len(kept[i]) > len(kept[j]) })
	return kept
}

// scrub replaces every secret in msg: the clients take care not to quote
// credentials in their errors, and this makes sure of it.
func scrub(msg string, secrets []string) string {
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, core.Redacted)
	}
	return msg
}
