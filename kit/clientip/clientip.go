// Package clientip says which address a request came from: the TCP peer,
// or, when the peer is a proxy the operator trusts (server.trusted_proxies),
// the client that proxy names in X-Forwarded-For or X-Real-IP. From anyone
// else those headers are ignored: they say whatever the sender wants.
//
// The gateway works the address out once per request (Resolver.Resolve)
// and records it in the request's context (With). Everything that needs a
// client's address reads it with From: the engine's logs and connection
// caps, and the adapters' own per-address limits (the webchat's), which
// so agree on who a client is. Key turns an address into the key that
// per-address limits count by.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver knows which peers are trusted proxies. The zero value trusts
// none. It is safe for concurrent use.
type Resolver struct {
	trusted []netip.Prefix
}

// NewResolver returns a Resolver that trusts the given proxies: CIDR
// prefixes ("10.0.0.0/8", "fd00::/8") or single addresses ("127.0.0.1").
// Its error names the entry that is neither.
func NewResolver(proxies []string) (*Resolver, error) {
	r := &Resolver{}
	for i, s := range proxies {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ParsePrefix parses one trusted_proxies entry: a CIDR prefix or a single
// address (a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix like \"10.0.0.0/8\" or an address", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix like \"10.0.0.0/8\" or an address", s)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Trusted reports whether a is one of the trusted proxies.
func (r *Resolver) Trusted(a netip.Addr) bool {
	if r == nil || !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the address of the client that sent req. It is the TCP
// peer unless the peer is a trusted proxy. Then X-Forwarded-For is read
// from the right, past the trusted proxies, and the first address that is
// not one is the client (what the last trusted proxy saw); an entry that
// is not an address ends the walk at the hop before it. Without
// X-Forwarded-For, a trusted proxy's X-Real-IP is taken. The zero Addr
// means RemoteAddr was not an address (a test's hand-built request).
func (r *Resolver) Resolve(req *http.Request) netip.Addr {
	peer := Peer(req.RemoteAddr)
	if !r.Trusted(peer) {
		return peer
	}
	if xff := req.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		client := peer
		for i := len(xff) - 1; i >= 0; i-- {
			hops := strings.Split(xff[i], ",")
			for j := len(hops) - 1; j >= 0; j-- {
				a, ok := parseHop(hops[j])
				if !ok {
					return client
				}
				client = a
				if !r.Trusted(a) {
					return a
				}
			}
		}
		return client // every hop a trusted proxy: the first one
	}
	if a, ok := parseHop(req.Header.Get("X-Real-IP")); ok {
		return a
	}
	return peer
}

// parseHop parses one X-Forwarded-For entry: an address, optionally with
// a port ("203.0.113.7:4711", "[2001:db8::1]:4711"), as some proxies write
// it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// Peer parses a RemoteAddr ("host:port") into the peer's address, or the
// zero Addr if it is not one.
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

type ctxKey struct{}

// With returns req carrying a as its client's address, for From.
func With(req *http.Request, a netip.Addr) *http.Request {
	return req.WithContext(context.WithValue(req.Context(), ctxKey{}, a))
}

// From returns the client address recorded by With; for a request that
// did not pass through the gateway's handler (an adapter's own test
// server), the TCP peer.
func From(req *http.Request) netip.Addr {
	if a, ok := req.Context().Value(ctxKey{}).(netip.Addr); ok {
		return a
	}
	return Peer(req.RemoteAddr)
}

// String returns a for logs: "" for the zero Addr rather than "invalid IP".
func String(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Key is what per-address limits count a client by: an IPv4 address as
// it is, an IPv6 address by its /64, since one subscriber (one host, one
// home) gets a whole /64 and picks addresses in it at will. "" for the
// zero Addr.
func Key(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is4() || a.Is4In6():
		return a.Unmap().String()
	default:
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
}
