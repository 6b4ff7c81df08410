package webchat

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// assetFS holds the page, its script and style, and the widget script.
// They are plain files with no build step.
//
//go:embed assets
var assetFS embed.FS

// asset is one file ready to serve.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

func newAsset(body []byte, ctype string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
}

// site is the instance's HTTP content, rendered once in New.
type site struct {
	page  asset            // index.html with this instance's texts
	files map[string]asset // by path relative to the prefix
	csp   string           // Content-Security-Policy of the page
}

// pageData is what index.html is rendered with. html/template escapes it
// for its context, so operator-supplied texts cannot inject markup.
type pageData struct {
	Title       string // the operator's, or "": the language's
	T           map[string]string
	Lang        string // Config.Lang
	HTMLLang    string // the fallback texts' language
	Dir         string
	Welcome     string
	WelcomeHTML string // Welcome's Markdown, rendered as replies are
	Placeholder string
	Path        string
	MaxBytes    int
}

// newSite renders the page for cfg and loads the static files.
func newSite(cfg *Config) (*site, error) {
	tmpl, err := template.ParseFS(assetFS, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("parse chat page: %w", err)
	}
	cats, texts, err := loadCatalogues()
	if err != nil {
		return nil, err
	}
	if err := checkLang(cfg.Lang, cats); err != nil {
		return nil, err
	}
	fallback := cfg.Lang
	if fallback == langAuto {
		fallback = defaultLang
	}
	var page bytes.Buffer
	err = tmpl.Execute(&page, pageData{
		Title:       cfg.Title,
		T:           cats[fallback].Strings,
		Lang:        cfg.Lang,
		HTMLLang:    fallback,
		Dir:         cats[fallback].Dir,
		Welcome:     cfg.Welcome,
		WelcomeHTML: renderReply(cfg.Welcome),
		Placeholder: cfg.Placeholder,
		Path:        cfg.Path,
		MaxBytes:    cfg.MaxMessageBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("render chat page: %w", err)
	}
	st := &site{
		page:  newAsset(page.Bytes(), "text/html; charset=utf-8"),
		files: make(map[string]asset),
		csp:   pageCSP(cfg),
	}
	for rel, file := range map[string]string{
		"assets/app.js":    "assets/app.js",
		"assets/style.css": "assets/style.css",
		"widget.js":        "assets/widget.js",
	} {
		b, err := assetFS.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("load chat asset %s: %w", file, err)
		}
		ctype := "text/javascript; charset=utf-8"
		if strings.HasSuffix(file, ".css") {
			ctype = "text/css; charset=utf-8"
		}
		if rel == "widget.js" {
			if b, err = widgetScript(b, texts, cfg.Lang); err != nil {
				return nil, fmt.Errorf("load chat asset %s: %w", file, err)
			}
		}
		st.files[rel] = newAsset(b, ctype)
	}
	st.files["assets/i18n.js"] = newAsset(i18nScript(texts), "text/javascript; charset=utf-8")
	return st, nil
}

// pageCSP is the page's Content-Security-Policy: nothing but its own
// script, style and WebSocket, no inline script, and framing only by the
// sites allowed to embed the widget. Messages are rendered from text nodes
// anyway; the policy is the second wall.
func pageCSP(cfg *Config) string {
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src 'self' ws: wss:",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors " + cfg.frameAncestors(),
	}, "; ")
}

// ServeHTTP serves the chat under the configured path: the page at the
// path itself, its assets under "assets/", the widget script at
// "widget.js" and the WebSocket at "ws".
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, a.cfg.Path)
	if !ok {
		if r.URL.Path+"/" == a.cfg.Path {
			// "/chat" -> "/chat/": the page's relative URLs need the slash.
			target := a.cfg.Path
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
		return
	}
	if rest == "ws" {
		a.serveWS(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if rest == "" {
		h.Set("Content-Security-Policy", a.site.csp)
		serveAsset(w, r, a.site.page)
		return
	}
	f, ok := a.site.files[rest]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if rest == "widget.js" {
		// Other sites load the widget with a plain <script> tag; let
		// pages that set Cross-Origin-Embedder-Policy load it too.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	}
	serveAsset(w, r, f)
}

// serveAsset writes f with revalidation caching: browsers keep it but ask
// each time (cheaply, by ETag), so a gateway upgrade shows at once.
func serveAsset(w http.ResponseWriter, r *http.Request, f asset) {
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
}
