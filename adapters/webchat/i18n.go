package webchat

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The page's and the widget's texts live in one file, assets/i18n.json:
// one catalogue per language, each with its writing direction. The page
// gets them all as assets/i18n.js and picks one (see app.js pickLang);
// the widget gets them inside widget.js (see widgetScript). Go renders
// the page's fallback texts (for a browser without JavaScript) from the
// configured language's catalogue, English for auto.

// langAuto is Config.Lang's "the browser's languages, else English".
const langAuto = "auto"

// defaultLang is the catalogue used when no other fits.
const defaultLang = "en"

// catalogue is one language's texts.
type catalogue struct {
	Name    string            `json:"name"` // in the language itself
	Dir     string            `json:"dir"`  // "ltr" or "rtl"
	Strings map[string]string `json:"strings"`
}

// loadCatalogues reads and checks assets/i18n.json: every catalogue has
// a direction and exactly the keys the English one has. It returns them
// with the file in compact JSON.
func loadCatalogues() (map[string]catalogue, []byte, error) {
	raw, err := assetFS.ReadFile("assets/i18n.json")
	if err != nil {
		return nil, nil, fmt.Errorf("load chat texts: %w", err)
	}
	var cats map[string]catalogue
	if err := json.Unmarshal(raw, &cats); err != nil {
		return nil, nil, fmt.Errorf("load chat texts: %w", err)
	}
	en, ok := cats[defaultLang]
	if !ok {
		return nil, nil, fmt.Errorf("load chat texts: no %q catalogue", defaultLang)
	}
	for lang, c := range cats {
		if c.Dir != "ltr" && c.Dir != "rtl" {
			return nil, nil, fmt.Errorf("load chat texts: %s: dir must be ltr or rtl, got %q", lang, c.Dir)
		}
		for k := range en.Strings {
			if strings.TrimSpace(c.Strings[k]) == "" {
				return nil, nil, fmt.Errorf("load chat texts: %s: no text for %q", lang, k)
			}
		}
		for k := range c.Strings {
			if _, ok := en.Strings[k]; !ok {
				return nil, nil, fmt.Errorf("load chat texts: %s: %q is not an English key", lang, k)
			}
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, nil, fmt.Errorf("load chat texts: %w", err)
	}
	return cats, compact.Bytes(), nil
}

// langs returns the catalogues' languages, sorted.
func langs(cats map[string]catalogue) []string {
	out := make([]string, 0, len(cats))
	for l := range cats {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// checkLang checks Config.Lang against the catalogues.
func checkLang(lang string, cats map[string]catalogue) error {
	if _, ok := cats[lang]; ok || lang == langAuto {
		return nil
	}
	return fmt.Errorf("config.lang: must be %q (the browser's languages, else English) or one of %s, got %q",
		langAuto, strings.Join(langs(cats), ", "), lang)
}

// Markers in widget.js that widgetScript fills in.
var (
	widgetTextsMarker = []byte("/*@texts@*/null")
	widgetLangMarker  = []byte(`/*@lang@*/"auto"`)
)

// widgetScript returns widget.js with the catalogues and the instance's
// language in it: it runs on other sites, so it cannot load a second
// script of ours without their CSP's leave.
func widgetScript(src, texts []byte, lang string) ([]byte, error) {
	if !bytes.Contains(src, widgetTextsMarker) || !bytes.Contains(src, widgetLangMarker) {
		return nil, fmt.Errorf("widget.js lacks its text markers")
	}
	quoted, err := json.Marshal(lang)
	if err != nil {
		return nil, err
	}
	out := bytes.Replace(src, widgetTextsMarker, texts, 1)
	return bytes.Replace(out, widgetLangMarker, quoted, 1), nil
}

// i18nScript is assets/i18n.js: the catalogues for the page.
func i18nScript(texts []byte) []byte {
	return append(append([]byte("window.switchboardWebchatTexts = "), texts...), ";\n"...)
}
