package mychat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/switchboard-gw/switchboard/core"
)

// CheckHealth asks the network who the bot is: a cheap probe of the
// token, called by the core every 30 s while the instance runs.
func (a *Adapter) CheckHealth(ctx context.Context) error {
	_, err := a.me(ctx)
	return err
}

// me returns the bot's user id (GET /me). A refused token is permanent:
// retrying Start cannot fix it.
func (a *Adapter) me(ctx context.Context) (string, error) {
	resp, err := a.call(ctx, http.MethodGet, "/me", nil)
	if err != nil {
		return "", fmt.Errorf("check token: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return "", core.Permanent(errors.New("check token: refused; fix config.token"))
	default:
		return "", fmt.Errorf("check token: status %d", resp.StatusCode)
	}
	var me struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&me); err != nil || me.ID == "" {
		return "", fmt.Errorf("check token: unreadable answer: %v", err)
	}
	return me.ID, nil
}

// call makes one API request. The token goes in a header, never in the
// URL: a *url.Error quotes the URL, and errors end up in logs.
func (a *Adapter) call(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.cfg.APIURL+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	return a.http.Do(req)
}
