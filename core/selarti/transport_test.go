package selarti

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedServer is a Selarti whose send answers wait until the test opens
// the current round's gate, so that a round's sends are all in flight at
// once and each needs a connection of its own. It counts the connections
// opened to it.
type gatedServer struct {
	srv     *httptest.Server
	conns   atomic.Int64
	arrived chan struct{}
	gate    atomic.Pointer[chan struct{}]
}

func newGatedServer(t *testing.T) *gatedServer {
	t.Helper()
	g := &gatedServer{arrived: make(chan struct{}, 1024)}
	w := DefaultWire()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/1.1"+w.AuthPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"status":"success","response":{"token":"tok-1"}}`)
	})
	mux.HandleFunc("POST /api/1.1"+w.SendPath, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		gate := g.gate.Load()
		g.arrived <- struct{}{}
		select {
		case <-*gate:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, `{"status":"success","response":{}}`)
	})
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			g.conns.Add(1)
		}
	}
	g.srv.Start()
	t.Cleanup(g.srv.Close)
	return g
}

// round sends n messages at once and returns how many connections were
// opened for them.
func (g *gatedServer) round(t *testing.T, c *Client, n int) int64 {
	t.Helper()
	gate := make(chan struct{})
	g.gate.Store(&gate)
	before := g.conns.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- c.Send(context.Background(), testMsg) })
	}
	for i := range n {
		select {
		case <-g.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d of %d sends reached the server", i, n)
		}
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	return g.conns.Load() - before
}

func TestParallelSendsReuseConnections(t *testing.T) {
	tests := []struct {
		name string
		n    int // sends in flight at once
		mod  func(*Config)
	}{
		{"default", DefaultMaxIdleConns, nil},
		{"more than the default", 24, func(c *Config) { c.MaxIdleConns = 24 }},
		// What the gateway passes: a shared client on the default transport.
		{"caller's client on the default transport", 20, func(c *Config) {
			c.HTTPClient = &http.Client{Timeout: time.Minute}
			c.MaxIdleConns = 20
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGatedServer(t)
			cfg := Config{BaseURL: g.srv.URL + "/api/1.1", APIKey: testKey, Timeout: 20 * time.Second, MaxElapsed: 30 * time.Second}
			if tt.mod != nil {
				tt.mod(&cfg)
			}
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatal(err)
			}
			// The first round opens n-1 connections (the auth's is
			// reused); the second must find all n idle.
			if got := g.round(t, c, tt.n); got != int64(tt.n-1) {
				t.Errorf("first round opened %d connections, want %d", got, tt.n-1)
			}
			if got := g.round(t, c, tt.n); got != 0 {
				t.Errorf("second round opened %d new connections, want 0 (all %d reused)", got, tt.n)
			}
		})
	}
}

func TestHTTPClientNotModified(t *testing.T) {
	shared := &http.Client{Timeout: time.Minute}
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", APIKey: "k", HTTPClient: shared, MaxIdleConns: 32})
	if err != nil {
		t.Fatal(err)
	}
	if shared.Transport != nil {
		t.Errorf("the caller's client was given a transport: %T", shared.Transport)
	}
	if def := http.DefaultTransport.(*http.Transport); def.MaxIdleConnsPerHost != 0 {
		t.Errorf("http.DefaultTransport was changed: MaxIdleConnsPerHost = %d", def.MaxIdleConnsPerHost)
	}
	if c.http.Timeout != time.Minute {
		t.Errorf("Timeout = %s, want the caller's", c.http.Timeout)
	}
	tr, ok := c.http.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != 32 || tr.MaxIdleConns < 32 {
		t.Fatalf("transport = %#v, want an *http.Transport keeping 32 idle connections", c.http.Transport)
	}

	// A transport of the caller's own is the caller's to tune.
	own := &http.Transport{MaxIdleConnsPerHost: 1}
	custom := &http.Client{Transport: own}
	c, err = New(Config{BaseURL: "http://127.0.0.1:1", APIKey: "k", HTTPClient: custom})
	if err != nil {
		t.Fatal(err)
	}
	if c.http != custom || own.MaxIdleConnsPerHost != 1 {
		t.Errorf("a client with its own transport was replaced or changed")
	}
}

func TestNewRejectsNegativeMaxIdleConns(t *testing.T) {
	_, err := New(Config{BaseURL: "http://127.0.0.1:1", APIKey: "k", MaxIdleConns: -1})
	if err == nil || !strings.Contains(err.Error(), "max idle conns") {
		t.Errorf("err = %v, want one about max idle conns", err)
	}
}
