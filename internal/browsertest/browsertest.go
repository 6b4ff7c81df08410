// Package browsertest starts headless Chromium for the repository's
// browser tests (test/e2e, the demo's in cmd/switchboard), one way for
// all of them.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds a Chromium: $CHROMIUM, else the usual install paths, else
// the usual names on the PATH; "" when there is none. exec.LookPath takes
// a path as it is (it must be an executable file) and looks a bare name up
// on the PATH, so one list does for all three.
func Path() string {
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome",
		"chromium", "chromium-browser", "google-chrome"} {
		if p == "" {
			continue
		}
		if found, err := exec.LookPath(p); err == nil {
			return filepath.Clean(found)
		}
	}
	return ""
}

// New starts headless Chromium for one test and stops it when the test
// ends. Without Chromium the test is skipped locally, but fails in CI
// (CI=true), where `make test` installs it: a browser test that silently
// does not run proves nothing.
func New(t testing.TB) context.Context {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found; `make deps` installs it")
		}
		t.Skip("chromium not found (run `make deps`, or set CHROMIUM)")
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// The machine has no internet: keep Chromium from trying.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}
