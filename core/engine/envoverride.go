package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// EnvPrefix starts the name of every environment override:
// SWITCHBOARD_SELARTI_API_KEY overrides selarti.api_key.
const EnvPrefix = "SWITCHBOARD_"

// envFreePrefixes start SWITCHBOARD_ variables that are not overrides and
// never will be: the tests' and the benchmarks' own (a test database's
// DSN, say). Nothing of the gateway's configuration is under them.
var envFreePrefixes = []string{EnvPrefix + "TEST_", EnvPrefix + "BENCH_"}

// envName is the environment variable that overrides key (viper's
// mapping: the prefix, the key upper-cased, "." as "_").
func envName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// checkEnvOverrides refuses SWITCHBOARD_* variables in environ that
// override none of keys, naming each and the known one it is closest to.
// viper ignores them, so a misspelt override (SWITCHBOARD_SELARTI_APIKEY)
// would leave the file's value, or the default, in place without a word.
// A variable the file refers to as ${NAME} (refs) is not an override but
// is used, so it passes: SWITCHBOARD_PG_DSN in dsn: "${SWITCHBOARD_PG_DSN}".
func checkEnvOverrides(environ []string, keys []string, refs map[string]bool) error {
	known := make(map[string]bool, len(keys))
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		n := envName(k)
		if !known[n] {
			known[n] = true
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || known[name] || refs[name] || hasAnyPrefix(name, envFreePrefixes) {
			continue
		}
		unknown = append(unknown, name)
	}
	sort.Strings(unknown)
	var errs []error
	for _, name := range unknown {
		msg := fmt.Sprintf("environment variable %s overrides no config key", name)
		if best := closest(name, names); best != "" {
			msg += fmt.Sprintf(" (did you mean %s?)", best)
		}
		errs = append(errs, errors.New(msg+"; unset it, or refer to it in the file as ${"+name+"}"))
	}
	return errors.Join(errs...)
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// closest returns the name among names nearest to s in edit distance, if
// near enough to be a likely typo: at most a quarter of the part after
// the prefix, and at least 2 edits allowed.
func closest(s string, names []string) string {
	limit := max(2, (len(s)-len(EnvPrefix))/4)
	best, bestD := "", limit+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes: the
// names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// envRefs collects the NAMEs of every ${NAME} in the strings of a
// decoded YAML tree.
func envRefs(node any, into map[string]bool) {
	switch n := node.(type) {
	case string:
		for _, m := range envRefRE.FindAllStringSubmatch(n, -1) {
			into[m[1]] = true
		}
	case map[string]any:
		for _, v := range n {
			envRefs(v, into)
		}
	case []any:
		for _, v := range n {
			envRefs(v, into)
		}
	}
}
