package selarti

import "net/http"

// httpClient returns the *http.Client a Client sends with. Go's default
// transport keeps only 2 idle connections per host, so when more Sends
// than that run in parallel, every burst closes the surplus connections
// and the next one dials (and, over TLS, handshakes) them again. A client
// on the default transport therefore gets its own copy of that transport
// with MaxIdleConnsPerHost (and MaxIdleConns) raised to idle. The caller's
// *http.Client and http.DefaultTransport are never modified: the gateway
// shares its client with the adapters. A Transport of the caller's own is
// left as it is, since whoever built it has tuned it.
func httpClient(given *http.Client, idle int) *http.Client {
	hc := given
	if hc == nil {
		hc = &http.Client{}
	}
	if hc.Transport != nil && hc.Transport != http.DefaultTransport {
		return hc
	}
	def, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return hc // replaced by someone with a RoundTripper we cannot tune
	}
	t := def.Clone()
	t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, idle)
	if t.MaxIdleConns != 0 { // 0 means no limit
		t.MaxIdleConns = max(t.MaxIdleConns, idle)
	}
	own := *hc
	own.Transport = t
	return &own
}
