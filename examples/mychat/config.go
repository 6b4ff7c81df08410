package mychat

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// Example is the commented "config:" block, as in config.yaml.example.
//
//go:embed example.yaml
var Example []byte

// Config is the "config:" block of a mychat instance. Field comments are
// for operators: example.yaml repeats them.
type Config struct {
	// APIURL is the network's API root (also the seam tests point at a
	// fake).
	APIURL string `mapstructure:"api_url"`
	// Token authenticates the bot; a core.Secret never prints its value.
	Token core.Secret `mapstructure:"token"`
	// PollTimeout is how long one long poll waits for updates.
	PollTimeout time.Duration `mapstructure:"poll_timeout"`
	// ChatRateLimit is the most messages per second sent to one chat.
	ChatRateLimit float64 `mapstructure:"chat_rate_limit"`
}

// setDefaults sets what keys absent from the config keep.
func (c *Config) setDefaults() {
	c.APIURL = "https://api.mychat.example"
	c.PollTimeout = 30 * time.Second
	c.ChatRateLimit = 1
}

// validate checks c after decoding; its errors name the key.
func (c *Config) validate() error {
	u, err := url.Parse(c.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config.api_url: must be an http or https URL, got %q", c.APIURL)
	}
	if c.Token.IsZero() {
		return errors.New("config.token: required")
	}
	// The core's HTTP client gives up after 60 s; a poll needs its
	// timeout plus time to answer.
	if c.PollTimeout < time.Second || c.PollTimeout > 50*time.Second {
		return fmt.Errorf("config.poll_timeout: must be between 1s and 50s, got %s", c.PollTimeout)
	}
	if c.ChatRateLimit <= 0 {
		return fmt.Errorf("config.chat_rate_limit: must be above 0, got %v", c.ChatRateLimit)
	}
	return nil
}
