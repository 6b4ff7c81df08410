package core

import (
	"net/url"
	"strings"
)

// RedactURL returns raw fit for a log line or an error message: the
// password of its user info ("https://user:pass@host") replaced by
// "xxxxx", as url.URL.Redacted does, and a user name without a password
// (often a token: "https://token@host") replaced too. A string that does
// not parse as a URL keeps only what comes before "//" and after the
// last "@", so a malformed URL does not leak its credentials either.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return raw
		}
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
		u.User = url.User("xxxxx")
		return u.String()
	}
	scheme, rest, ok := strings.Cut(raw, "//")
	if !ok {
		return raw
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		return scheme + "//xxxxx@" + rest[i+1:]
	}
	return raw
}
