package engine

import (
	"net/http"
	"testing"
)

func TestOutboundTransportKeepsAConnectionPerWorker(t *testing.T) {
	def := http.DefaultTransport.(*http.Transport)
	for _, workers := range []int{1, 16, 64} {
		tr := outboundTransport(workers)
		if tr.MaxIdleConnsPerHost < workers || tr.MaxIdleConns < workers {
			t.Errorf("workers %d: idle connections %d per host, %d in all; want at least %d", workers, tr.MaxIdleConnsPerHost, tr.MaxIdleConns, workers)
		}
		if tr == def {
			t.Fatal("the default transport itself was returned")
		}
	}
	if def.MaxIdleConnsPerHost != 0 {
		t.Fatalf("the default transport was changed: MaxIdleConnsPerHost %d", def.MaxIdleConnsPerHost)
	}
}
