package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestResolve(t *testing.T) {
	r, err := NewResolver([]string{"10.0.0.0/8", "192.0.2.1", "fd00::/8"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		remote string
		xff    []string
		realIP string
		want   string
	}{
		{name: "no proxy", remote: "203.0.113.7:4711", want: "203.0.113.7"},
		{name: "forwarded-for from an untrusted peer is ignored", remote: "203.0.113.7:4711", xff: []string{"198.51.100.1"}, want: "203.0.113.7"},
		{name: "real-ip from an untrusted peer is ignored", remote: "203.0.113.7:4711", realIP: "198.51.100.1", want: "203.0.113.7"},
		{name: "trusted proxy", remote: "10.1.2.3:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "trusted single address", remote: "192.0.2.1:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "a spoofed entry left of the client is ignored", remote: "10.1.2.3:80", xff: []string{"1.1.1.1, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "a chain of trusted proxies", remote: "10.1.2.3:80", xff: []string{"1.1.1.1, 198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
		{name: "several headers read as one list", remote: "10.1.2.3:80", xff: []string{"1.1.1.1", "198.51.100.1, 10.9.9.9"}, want: "198.51.100.1"},
		{name: "every hop trusted: the first", remote: "10.1.2.3:80", xff: []string{"10.0.0.5, 10.9.9.9"}, want: "10.0.0.5"},
		{name: "garbage ends the walk at the hop before it", remote: "10.1.2.3:80", xff: []string{"nonsense, 10.9.9.9"}, want: "10.9.9.9"},
		{name: "garbage at once: the peer", remote: "10.1.2.3:80", xff: []string{"nonsense"}, want: "10.1.2.3"},
		{name: "entries with ports", remote: "10.1.2.3:80", xff: []string{"[2001:db8::1]:4711, 10.9.9.9:80"}, want: "2001:db8::1"},
		{name: "real-ip from a trusted proxy", remote: "10.1.2.3:80", realIP: "198.51.100.1", want: "198.51.100.1"},
		{name: "forwarded-for wins over real-ip", remote: "10.1.2.3:80", xff: []string{"198.51.100.2"}, realIP: "198.51.100.1", want: "198.51.100.2"},
		{name: "trusted peer without headers", remote: "10.1.2.3:80", want: "10.1.2.3"},
		{name: "ipv6 trusted proxy", remote: "[fd00::1]:80", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "ipv4-mapped peer", remote: "[::ffff:10.1.2.3]:80", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "not an address", remote: "pipe", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if tt.realIP != "" {
				req.Header.Set("X-Real-IP", tt.realIP)
			}
			if got := String(r.Resolve(req)); got != tt.want {
				t.Errorf("Resolve = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestZeroResolverTrustsNobody(t *testing.T) {
	for _, r := range []*Resolver{nil, {}} {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.RemoteAddr = "127.0.0.1:1"
		req.Header.Set("X-Forwarded-For", "198.51.100.1")
		req.Header.Set("X-Real-IP", "198.51.100.2")
		if got := String(r.Resolve(req)); got != "127.0.0.1" {
			t.Errorf("Resolve = %q, want the peer", got)
		}
	}
}

func TestNewResolverNamesTheBadEntry(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "", "10.0.0.1/8/2"} {
		if _, err := NewResolver([]string{"10.0.0.0/8", bad}); err == nil {
			t.Errorf("%q accepted", bad)
		} else if err.Error()[:3] != "[1]" {
			t.Errorf("%q: error %q does not name entry [1]", bad, err)
		}
	}
	r, err := NewResolver([]string{"::ffff:10.0.0.0/104"})
	if err != nil || !r.Trusted(netip.MustParseAddr("10.2.3.4")) {
		t.Errorf("an IPv4-mapped prefix is not the IPv4 prefix: %v", err)
	}
}

func TestWithAndFrom(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	if got := String(From(req)); got != "127.0.0.1" {
		t.Errorf("From without With = %q, want the peer", got)
	}
	req = With(req, netip.MustParseAddr("198.51.100.1"))
	if got := String(From(req)); got != "198.51.100.1" {
		t.Errorf("From = %q, want what With recorded", got)
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"198.51.100.1", "198.51.100.1"},
		{"::ffff:198.51.100.1", "198.51.100.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
	}
	for _, tt := range tests {
		if got := Key(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Key(%s) = %q, want %q", tt.addr, got, tt.want)
		}
	}
	if Key(netip.Addr{}) != "" {
		t.Error("Key of the zero Addr is not empty")
	}
}
