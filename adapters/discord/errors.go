package discord

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bwmarrin/discordgo"
	"github.com/gorilla/websocket"
)

// Gateway close codes that no reconnect can fix.
const (
	closeAuthenticationFailed = 4004
	closeInvalidIntents       = 4013
	closeDisallowedIntents    = 4014
)

// isTokenRefused reports whether Discord refused the bot token: a 401
// from the REST API, or the gateway closing with 4004.
func isTokenRefused(err error) bool {
	var re *discordgo.RESTError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode == http.StatusUnauthorized {
		return true
	}
	return errors.Is(err, discordgo.ErrUnauthorized) || closedWith(err, closeAuthenticationFailed)
}

// intentsRefused reports whether the gateway refused the intents: the
// Message Content intent is privileged and must be switched on in the
// Developer Portal (Bot → Privileged Gateway Intents).
func intentsRefused(err error) bool {
	return closedWith(err, closeDisallowedIntents) || closedWith(err, closeInvalidIntents)
}

func closedWith(err error, code int) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

// retryAfterHeader reads a 429's Retry-After (seconds), for an answer
// discordgo did not decode as a rate limit; a second when it is absent.
func retryAfterHeader(resp *http.Response) time.Duration {
	if s, err := strconv.ParseFloat(resp.Header.Get("Retry-After"), 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	return time.Second
}
