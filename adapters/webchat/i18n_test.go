package webchat

import (
	"io"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

// TestCataloguesComplete: every language has every key, a direction, and
// the three languages the project promises are there.
func TestCataloguesComplete(t *testing.T) {
	cats, _, err := loadCatalogues()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(langs(cats), ","); got != "en,ru,uz" {
		t.Fatalf("languages %s, want en,ru,uz", got)
	}
	en := cats[defaultLang].Strings
	for lang, c := range cats {
		if c.Dir != "ltr" && c.Dir != "rtl" {
			t.Errorf("%s: dir %q", lang, c.Dir)
		}
		for k := range en {
			if strings.TrimSpace(c.Strings[k]) == "" {
				t.Errorf("%s: no text for %q", lang, k)
			}
		}
		for k := range c.Strings {
			if _, ok := en[k]; !ok {
				t.Errorf("%s: %q is not an English key", lang, k)
			}
		}
		if lang != defaultLang && c.Strings["placeholder"] == en["placeholder"] {
			t.Errorf("%s: the placeholder is the English one", lang)
		}
	}
}

// keyUses finds the catalogue keys the assets use: t('key') in the
// scripts, data-i18n and data-i18n-label attributes and {{.T.key}} in
// the page.
var keyUses = regexp.MustCompile(`\bt\(\s*['"]([a-z_]+)['"]|data-i18n(?:-label)?="([a-z_]+)"|\{\{\s*\.T\.([a-z_]+)\s*\}\}`)

// TestAssetsUseOnlyCatalogueKeys parses app.js, widget.js and index.html:
// every key they use exists (in English, and so in every catalogue, by
// the test above), and every key is used by one of them. A t() call with
// anything but a literal key would escape this check, so there is none.
func TestAssetsUseOnlyCatalogueKeys(t *testing.T) {
	cats, _, err := loadCatalogues()
	if err != nil {
		t.Fatal(err)
	}
	en := cats[defaultLang].Strings
	used := map[string]bool{}
	for _, file := range []string{"assets/app.js", "assets/widget.js", "assets/index.html"} {
		b, err := assetFS.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range keyUses.FindAllStringSubmatch(string(b), -1) {
			key := m[1] + m[2] + m[3]
			n++
			used[key] = true
			if _, ok := en[key]; !ok {
				t.Errorf("%s uses key %q, which the catalogues lack", file, key)
			}
		}
		if n == 0 {
			t.Errorf("%s uses no key: the pattern no longer matches how it looks texts up", file)
		}
		// Besides t's definition, the one computed key allowed reads the
		// data-i18n attributes of the page, which are checked above.
		src := strings.NewReplacer("function t(", "", "t(n.getAttribute(", "").Replace(string(b))
		if dyn := regexp.MustCompile(`\bt\(\s*[^'"\s)]`).FindString(src); dyn != "" {
			t.Errorf("%s calls t() with a computed key (%q): use a literal, so that this test can check it", file, dyn)
		}
	}
	for k := range en {
		if !used[k] {
			t.Errorf("key %q is in the catalogues but no asset uses it", k)
		}
	}
}

// getBody fetches rel under a's path through its ServeHTTP.
func getBody(t *testing.T, a *Adapter, rel string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, httptest.NewRequest("GET", a.cfg.Path+rel, nil))
	if rec.Code != 200 {
		t.Fatalf("GET %s: %d", rel, rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

// TestPageAndWidgetInConfiguredLanguage: with lang set, the page's own
// texts (those a browser without JavaScript shows) are that language's,
// and the page and the widget are told the language; the catalogues are
// served for the page and written into the widget.
func TestPageAndWidgetInConfiguredLanguage(t *testing.T) {
	a := newTestAdapter(t, core.RawConfig{"lang": "ru"})
	page := getBody(t, a, "")
	for _, want := range []string{`<html lang="ru" dir="ltr">`, `data-lang="ru"`, `placeholder="Введите сообщение…"`, "<title>Напишите нам</title>", "Для этого чата нужен JavaScript."} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	texts := getBody(t, a, "assets/i18n.js")
	if !strings.HasPrefix(texts, "window.switchboardWebchatTexts = {") || !strings.Contains(texts, "Yetkazilmadi") {
		t.Errorf("assets/i18n.js = %.80q…", texts)
	}
	widget := getBody(t, a, "widget.js")
	if strings.Contains(widget, "/*@texts@*/") || strings.Contains(widget, "/*@lang@*/") || !strings.Contains(widget, `"Закрыть чат"`) || !strings.Contains(widget, `})("ru");`) {
		t.Errorf("widget.js does not carry the texts and the language")
	}

	// The operator's texts win over the catalogue's, in every language.
	a = newTestAdapter(t, core.RawConfig{"title": "Northwind", "placeholder": "Ask us"})
	page = getBody(t, a, "")
	for _, want := range []string{`<html lang="en" dir="ltr">`, `data-lang="auto"`, `placeholder="Ask us"`, "<title>Northwind</title>", `data-title="Northwind"`} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestStyleUsesLogicalSides: a right-to-left catalogue lays the page out
// mirrored only if the style names no physical side.
func TestStyleUsesLogicalSides(t *testing.T) {
	b, err := assetFS.ReadFile("assets/style.css")
	if err != nil {
		t.Fatal(err)
	}
	physical := regexp.MustCompile(`(?m)^\s*(margin|padding|border)-(left|right)\b|^\s*(left|right)\s*:|\b(top|bottom)-(left|right)-radius|text-align\s*:\s*(left|right)|float\s*:\s*(left|right)`)
	if m := physical.FindAllString(string(b), -1); len(m) > 0 {
		t.Errorf("style.css uses physical sides %q: use logical properties (margin-inline-start, border-end-end-radius…)", slices.Compact(m))
	}
}
