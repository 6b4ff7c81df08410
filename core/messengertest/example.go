package messengertest

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-gw/switchboard/core"
)

// Example describes an adapter's embedded example.yaml, its commented
// "config:" block, for CheckExample.
type Example[C any] struct {
	// Kind is the adapter kind.
	Kind string
	// YAML is the embedded example.yaml.
	YAML []byte
	// Defaults returns a Config with nothing but the defaults set (the
	// adapter's setDefaults).
	Defaults func() C
	// Placeholders are the example's values that are not defaults, by
	// key: a required secret has no default, so the example shows its
	// ${ENV} placeholder ({"token": "${TELEGRAM_TOKEN}"}). They are
	// checked, then reset to the default before the comparison.
	Placeholders map[string]string
	// Normalize, if set, is applied to the decoded example before the
	// comparison, for what decodes differently but means the same ([]
	// and an absent list).
	Normalize func(decoded *C)
	// NotBuiltIn says the kind is not in adapters/all (a skeleton, an
	// adapter of your own build): config.yaml.example does not show it,
	// so that part is not checked.
	NotBuiltIn bool
}

// CheckExample checks that an adapter's example.yaml is what operators
// read: it decodes strictly (core.DecodeConfig) to exactly the defaults,
// it names every key of the Config, config.yaml.example (at the root of
// the module) shows it verbatim as the config block of an instance of the
// kind (unless NotBuiltIn), and the adapter's README.md (in the package's directory, when it
// has one) names every key as `key`. So an option added to the code but
// not to the docs, or a default changed in one place only, fails a test.
func CheckExample[C any](t *testing.T, ex Example[C]) {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal(ex.YAML, &raw); err != nil {
		t.Fatalf("parse example.yaml: %v", err)
	}
	for key, want := range ex.Placeholders {
		if got, _ := raw[key].(string); got != want {
			t.Errorf("example.yaml %s = %q, want the placeholder %q", key, got, want)
		}
		delete(raw, key)
	}
	var got C
	if err := core.DecodeConfig(raw, &got); err != nil {
		t.Fatalf("decode example.yaml: %v", err)
	}
	want := ex.Defaults()
	// A placeholder's key keeps its default (its zero, for a secret).
	resetKeys(&got, &want, ex.Placeholders)
	if ex.Normalize != nil {
		ex.Normalize(&got)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example.yaml decodes to\n%+v\nwant the defaults\n%+v", got, want)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[C]()
	for i := range typ.NumField() {
		key := typ.Field(i).Tag.Get("mapstructure")
		if key == "" || key == "-" {
			continue
		}
		if !strings.Contains(string(ex.YAML), "\n"+key+":") && !strings.HasPrefix(string(ex.YAML), key+":") {
			t.Errorf("example.yaml lacks key %q", key)
		}
		if readme != nil && !strings.Contains(string(readme), "`"+key+"`") {
			t.Errorf("README.md never names key `%s`", key)
		}
	}
	if !ex.NotBuiltIn {
		checkInConfigExample(t, ex.Kind, ex.YAML)
	}
}

// resetKeys sets the fields of got named by keys (mapstructure tags) to
// their values in want.
func resetKeys[C any](got, want *C, keys map[string]string) {
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		if _, ok := keys[g.Type().Field(i).Tag.Get("mapstructure")]; ok {
			g.Field(i).Set(w.Field(i))
		}
	}
}

// checkInConfigExample finds config.yaml.example and checks that an
// instance of kind has example as its config block, indented as YAML
// needs and otherwise byte for byte the same.
func checkInConfigExample(t *testing.T, kind string, example []byte) {
	t.Helper()
	path, err := findUp("config.yaml.example")
	if err != nil {
		t.Fatalf("find config.yaml.example: %v", err)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "kind: "+kind+"\n") {
		t.Fatalf("%s has no instance of kind %q", path, kind)
	}
	for _, indent := range []string{"      ", "    ", "        "} {
		if strings.Contains(string(doc), "config:\n"+indentLines(string(example), indent)) {
			return
		}
	}
	t.Errorf("%s does not show the %s example.yaml verbatim as an instance's config block; copy it there, indented under \"config:\"", path, kind)
}

func indentLines(s, indent string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			b.WriteString(indent)
		}
		b.WriteString(l)
	}
	return b.String()
}

// findUp looks for name in the working directory and its parents, up to
// the module root (the directory with go.mod).
func findUp(name string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return "", errors.New(name + " not found up to the module root " + dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New(name + " not found")
		}
		dir = parent
	}
}
