package webchat

import (
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// TestLandingPathIsThePage: the webchat is a page for people, so the
// gateway's GET / leads to it (core.LandingPage), at its own path.
func TestLandingPathIsThePage(t *testing.T) {
	var m core.Messenger = newTestAdapter(t, core.RawConfig{"path": "/support/chat/"})
	lp, ok := m.(core.LandingPage)
	if !ok {
		t.Fatal("the webchat adapter does not implement core.LandingPage")
	}
	if got := lp.LandingPath(); got != "/support/chat/" {
		t.Fatalf("LandingPath %q, want /support/chat/", got)
	}
}
