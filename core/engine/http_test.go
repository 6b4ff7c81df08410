package engine

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// pageMessenger serves HTTP under prefix; with landing set it is a page
// for people (core.LandingPage), without it a webhook receiver.
type pageMessenger struct {
	lifecycleMessenger
	prefix string
}

func (m *pageMessenger) HTTPPrefix() string { return m.prefix }
func (m *pageMessenger) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}

type landingMessenger struct{ pageMessenger }

func (m *landingMessenger) LandingPath() string { return m.prefix }

// rootOf builds a gateway with the given messengers (one instance each,
// "a0", "a1", …; disabled where off says so) and answers GET /?lang=ru.
func rootOf(t *testing.T, off map[int]bool, ms ...core.Messenger) *httptest.ResponseRecorder {
	t.Helper()
	reg := core.NewRegistry()
	var acs []AdapterConfig
	for i, m := range ms {
		kind := "k" + string(rune('0'+i))
		reg.Register(kind, func(core.Instance) (core.Messenger, error) { return m, nil })
		ac := AdapterConfig{Name: "a" + string(rune('0'+i)), Kind: kind, TaskID: "task"}
		if off[i] {
			f := false
			ac.Enabled = &f
		}
		acs = append(acs, ac)
	}
	gw, err := New(testGatewayConfig(t, acs...), Options{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	gw.newHTTPHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?lang=ru", nil))
	return rec
}

// TestRootRedirectsToFirstLandingPage: GET / leads to the first enabled
// instance that serves a page for people, past webhook receivers and
// disabled instances, keeping the query.
func TestRootRedirectsToFirstLandingPage(t *testing.T) {
	rec := rootOf(t, map[int]bool{1: true},
		&pageMessenger{prefix: "/telegram/"},
		&landingMessenger{pageMessenger{prefix: "/off/"}},
		&landingMessenger{pageMessenger{prefix: "/chat/"}},
		&landingMessenger{pageMessenger{prefix: "/support/"}},
	)
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/chat/?lang=ru" {
		t.Fatalf("GET /: %d, Location %q; want 302 to /chat/?lang=ru", rec.Code, rec.Header().Get("Location"))
	}
}

// TestRootWithoutLandingPageNamesHealthEndpoints: with no page for
// people (only a webhook receiver), GET / is a short plain-text page
// naming the health endpoints, not a bare 404.
func TestRootWithoutLandingPageNamesHealthEndpoints(t *testing.T) {
	rec := rootOf(t, nil, &pageMessenger{prefix: "/telegram/"})
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /: %d %q, want 200 text/plain", rec.Code, rec.Header().Get("Content-Type"))
	}
	for _, want := range []string{"/healthz", "/readyz", "/metrics"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("GET / does not name %s: %s", want, rec.Body)
		}
	}
}

// TestLandingPageUnderItsPrefix: a landing page outside the instance's
// own http path is a configuration error, found by New.
func TestLandingPageUnderItsPrefix(t *testing.T) {
	reg := core.NewRegistry()
	reg.Register("k", func(core.Instance) (core.Messenger, error) {
		return &strayLanding{landingMessenger{pageMessenger{prefix: "/chat/"}}}, nil
	})
	_, err := New(testGatewayConfig(t, AdapterConfig{Name: "web", Kind: "k", TaskID: "task"}), Options{Registry: reg, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "landing page") {
		t.Fatalf("New: %v, want an error about the landing page", err)
	}
}

type strayLanding struct{ landingMessenger }

func (m *strayLanding) LandingPath() string { return "/elsewhere/" }
