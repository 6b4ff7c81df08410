package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"
)

// balancer is the load balancer in front of a gateway-pgN target's
// replicas, in the harness's process: a reverse proxy that hands each
// request to the next replica in turn (round robin, no stickiness, as
// docs/deployment.md says a balancer needs), WebSocket upgrades included
// (httputil.ReverseProxy passes an Upgrade through and then copies both
// ways). The drivers and the Selarti simulator's webhooks use its
// address as the gateway's; the replicas' own calls (to Selarti, to the
// Bot API fake) do not pass it. Its CPU is the harness's.
type balancer struct {
	backends []*url.URL
	next     atomic.Uint64
	errors   atomic.Int64
	picks    []atomic.Int64 // requests handed to each backend
	srv      *http.Server
	ln       net.Listener
	tr       *http.Transport
}

// startBalancer listens on addr ("127.0.0.1:port") and proxies to the
// backends ("http://127.0.0.1:port").
func startBalancer(addr string, backends []string) (*balancer, error) {
	if len(backends) == 0 {
		return nil, errors.New("balancer: no backends")
	}
	b := &balancer{picks: make([]atomic.Int64, len(backends))}
	for _, s := range backends {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("balancer: backend %q is not an http:// address", s)
		}
		b.backends = append(b.backends, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The webhooks in flight at once (the simulator's 128, the Bot API
	// fake's 100) all keep their connection to the replica for the next
	// request, as the clients' own connections to the balancer do.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 1024, 512
	tr.ForceAttemptHTTP2 = false
	b.tr = tr
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(b.pick())
			// The Host the client asked for, as a balancer in front of a
			// public name passes it: the replicas' server.public_url.
			pr.Out.Host = pr.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(io.Discard, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			b.errors.Add(1)
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("balancer: %w", err)
	}
	b.ln = ln
	b.srv = &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = b.srv.Serve(ln) }()
	return b, nil
}

// pick returns the next backend in turn.
func (b *balancer) pick() *url.URL {
	i := (b.next.Add(1) - 1) % uint64(len(b.backends))
	b.picks[i].Add(1)
	return b.backends[i]
}

// URL is the balancer's address, "http://127.0.0.1:port".
func (b *balancer) URL() string { return "http://" + b.ln.Addr().String() }

// Errors counts the requests no replica answered (502 to the client).
func (b *balancer) Errors() int64 { return b.errors.Load() }

// Picks is how many requests (a WebSocket counts once) went to each
// backend.
func (b *balancer) Picks() []int64 {
	out := make([]int64, len(b.picks))
	for i := range b.picks {
		out[i] = b.picks[i].Load()
	}
	return out
}

// Close stops listening and closes the HTTP connections. The WebSockets
// it carries (hijacked, so not the server's any more) end when either
// side closes them: the drivers close theirs before the replicas stop.
func (b *balancer) Close() error {
	err := b.srv.Close()
	b.tr.CloseIdleConnections()
	return err
}
