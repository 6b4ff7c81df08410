package webchat

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// get runs one request through a's handler.
func get(t *testing.T, a *Adapter, method, target string, hdr http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	a := newTestAdapter(t, core.RawConfig{
		"title":       `Help & <b>support</b>`,
		"welcome":     `Hi "there" <script>alert(1)</script>`,
		"placeholder": "Ask us",
	})
	resp := get(t, a, http.MethodGet, "/chat/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'self'",
		"script-src 'self'",
		"connect-src 'self' ws: wss:",
		"object-src 'none'",
		"frame-ancestors 'self'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if h.Get("Referrer-Policy") == "" {
		t.Error("no Referrer-Policy")
	}
	if h.Get("X-Frame-Options") != "" {
		t.Error("X-Frame-Options set; the widget frames the page")
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q", ct)
	}

	page := body(t, resp)
	for _, want := range []string{
		`<textarea id="input"`,
		`<button type="submit" id="send"`,
		`<div id="messages"`,
		`aria-live="polite"`,
		`<label for="input"`,
		`src="/chat/assets/app.js"`,
		`href="/chat/assets/style.css"`,
		`data-path="/chat/"`,
		`placeholder="Ask us"`,
		`Help &amp; &lt;b&gt;support&lt;/b&gt;`,
		`data-welcome="Hi &#34;there&#34; &lt;script&gt;alert(1)&lt;/script&gt;"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// No inline script and nothing from elsewhere.
	if strings.Contains(page, "<script>") || strings.Contains(page, "http://") || strings.Contains(page, "https://") || strings.Contains(page, "style=") {
		t.Error("page has inline script/style or an external reference")
	}
}

func TestFrameAncestors(t *testing.T) {
	tests := []struct {
		name    string
		allowed []any
		want    string
	}{
		{name: "default", want: "frame-ancestors 'self'"},
		{name: "listed sites", allowed: []any{"https://Shop.example.com", "*.example.org"}, want: "frame-ancestors 'self' https://shop.example.com *.example.org"},
		{name: "everyone", allowed: []any{"*"}, want: "frame-ancestors *"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := core.RawConfig{}
			if tt.allowed != nil {
				raw["allowed_origins"] = tt.allowed
			}
			a := newTestAdapter(t, raw)
			csp := get(t, a, http.MethodGet, "/chat/", nil).Header.Get("Content-Security-Policy")
			if !strings.HasSuffix(csp, tt.want) {
				t.Fatalf("CSP %q does not end with %q", csp, tt.want)
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	a := newTestAdapter(t, nil)
	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		ctype    string
		contains string
	}{
		{name: "script", method: "GET", path: "/chat/assets/app.js", status: 200, ctype: "text/javascript", contains: "copySafe"},
		{name: "style", method: "GET", path: "/chat/assets/style.css", status: 200, ctype: "text/css", contains: "prefers-color-scheme: dark"},
		{name: "widget", method: "GET", path: "/chat/widget.js", status: 200, ctype: "text/javascript", contains: "iframe"},
		{name: "head", method: "HEAD", path: "/chat/", status: 200, ctype: "text/html"},
		{name: "unknown file", method: "GET", path: "/chat/assets/nope.js", status: 404},
		{name: "template not served raw", method: "GET", path: "/chat/assets/index.html", status: 404},
		{name: "post", method: "POST", path: "/chat/", status: 405},
		{name: "outside the prefix", method: "GET", path: "/other/", status: 404},
		{name: "plain GET on the socket before Start", method: "GET", path: "/chat/ws", status: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, a, tt.method, tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.ctype != "" && !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Errorf("Content-Type = %q, want %s", resp.Header.Get("Content-Type"), tt.ctype)
			}
			if tt.contains != "" && !strings.Contains(body(t, resp), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestWidgetIsCrossOriginLoadable(t *testing.T) {
	a := newTestAdapter(t, nil)
	resp := get(t, a, http.MethodGet, "/chat/widget.js", nil)
	if got := resp.Header.Get("Cross-Origin-Resource-Policy"); got != "cross-origin" {
		t.Fatalf("Cross-Origin-Resource-Policy = %q", got)
	}
}

func TestRedirectToSlash(t *testing.T) {
	a := newTestAdapter(t, nil)
	resp := get(t, a, http.MethodGet, "/chat?embed=1", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/chat/?embed=1" {
		t.Fatalf("got %d to %q, want 301 to /chat/?embed=1", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestETagRevalidation(t *testing.T) {
	a := newTestAdapter(t, nil)
	first := get(t, a, http.MethodGet, "/chat/assets/app.js", nil)
	etag := first.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	again := get(t, a, http.MethodGet, "/chat/assets/app.js", http.Header{"If-None-Match": {etag}})
	if again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation status %d, want 304", again.StatusCode)
	}
}
