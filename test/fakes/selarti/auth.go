package selarti

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"
)

// maxBody is the largest request body accepted, like Bubble's limit on
// workflow payloads.
const maxBody = 1 << 20

// neverExpires is the "expires" value reported when TokenTTL is 0: a year,
// in seconds.
const neverExpires = 365 * 24 * 60 * 60

// handleAuth exchanges the API key for a bearer token. Every request that
// reaches it counts towards AuthCount, accepted or not.
func (s *Server) handleAuth(w http.ResponseWriter, body []byte) {
	s.mu.Lock()
	s.rec.authCount++
	s.mu.Unlock()

	// A body that is not JSON (or too large) carries no key: answer as
	// for a wrong key.
	fields, _ := parseJSON(body)
	key, _ := fields[s.wire.AuthKeyField].(string)
	if key == "" || subtle.ConstantTimeCompare([]byte(key), []byte(s.opts.APIKey)) != 1 {
		writeBubbleError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Invalid API key", 0)
		return
	}

	token := rand.Text() + rand.Text()
	var expiry time.Time
	expires := int64(neverExpires)
	if ttl := s.opts.TokenTTL; ttl > 0 {
		expiry = s.now().Add(ttl)
		expires = int64(ttl / time.Second)
	}
	s.mu.Lock()
	s.tokens[token] = expiry
	s.mu.Unlock()
	writeSuccess(w, map[string]any{"token": token, "user_id": s.ids.user, "expires": expires})
}

// authorized reports whether r carries a live bearer token.
func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	expiry, ok := s.tokens[token]
	if !ok {
		return false
	}
	if !expiry.IsZero() && !s.now().Before(expiry) {
		delete(s.tokens, token)
		return false
	}
	return true
}
