package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The demo's sample host page: a shop's page on another origin (the next
// port: another port is another origin) with the widget's script tag, so
// that the widget is tried as a site would embed it. Its origin is in the
// webchat's allowed_origins; without it the chat's frame-ancestors would
// block the iframe, as it does for any site not listed.

// demoSitePage is the host page. Its CSP is as strict as a careful shop's:
// scripts and frames from the gateway only.
var demoSitePage = template.Must(template.New("site").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Demo shop · Демо-магазин · Demo do'kon</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; }
  section { margin: 1.2rem 0; }
  code { background: #f3f3f3; padding: 0 .2em; }
</style>
</head>
<body>
<h1>Demo shop · Демо-магазин · Demo do'kon</h1>
<section lang="en">
  <p>This page stands for your own site, on another origin ({{.Site}}) than the gateway ({{.Gateway}}).
  It embeds the chat with one script tag. Open the chat with the button at the bottom right.</p>
</section>
<section lang="ru">
  <p>Эта страница изображает ваш сайт: у неё другой источник ({{.Site}}), чем у шлюза ({{.Gateway}}).
  Чат встроен одним тегом script. Откройте его кнопкой внизу справа.</p>
</section>
<section lang="uz">
  <p>Bu sahifa sizning saytingiz o'rnida: uning manbasi ({{.Site}}) shlyuznikidan ({{.Gateway}}) boshqa.
  Chat bitta script tegi bilan qo'shilgan. Uni pastki o'ng burchakdagi tugma bilan oching.</p>
</section>
<pre><code>&lt;script src="{{.Widget}}" async&gt;&lt;/script&gt;</code></pre>
<script src="{{.Widget}}" async></script>
</body>
</html>
`))

// demoSite serves the host page on its own listener.
type demoSite struct {
	srv  *http.Server
	done chan struct{}
}

// startDemoSite serves the host page on ln; gateway is the gateway's base
// URL.
func startDemoSite(ln net.Listener, gateway string, log *slog.Logger) *demoSite {
	site := "http://" + ln.Addr().String()
	data := struct{ Site, Gateway, Widget string }{site, gateway, gateway + "/chat/widget.js"}
	csp := strings.Join([]string{
		"default-src 'none'",
		"script-src " + gateway,
		"frame-src " + gateway,
		"style-src 'unsafe-inline'",
		"base-uri 'none'",
		"form-action 'none'",
	}, "; ")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		if err := demoSitePage.Execute(w, data); err != nil {
			log.Warn("host page not served", "err", err)
		}
	})
	s := &demoSite{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("host page server stopped", "err", err)
		}
	}()
	return s
}

// shutdown stops the host page server and waits for it.
func (s *demoSite) shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	<-s.done
	if err != nil {
		return fmt.Errorf("stop the host page: %w", err)
	}
	return nil
}

// siteOrigins lists the origins a browser may give the host page on ln:
// its address, and with a loopback address "localhost" too, which a user
// may type instead.
func siteOrigins(ln net.Listener) []string {
	addr := ln.Addr().(*net.TCPAddr)
	out := []string{"http://" + addr.String()}
	if addr.IP.IsLoopback() {
		out = append(out, fmt.Sprintf("http://localhost:%d", addr.Port))
	}
	return out
}
