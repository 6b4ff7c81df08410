package selarti

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCloseStopsEverything(t *testing.T) {
	base := runtime.NumGoroutine()

	// The receiver answers dialog "quick" at once and never answers
	// dialog "stuck", so that at Close one webhook POST is in flight and
	// another dialog sleeps in its hour-long think time.
	arrived := make(chan string, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			body.Write(buf[:n])
			if err != nil {
				break
			}
		}
		if strings.Contains(body.String(), `"external_chat_id":"stuck"`) {
			arrived <- "stuck"
			<-r.Context().Done()
			return
		}
		arrived <- "quick"
	}))

	s, err := newServer(Options{APIKey: testKey, WebhookURL: rcv.URL, ThinkTime: time.Hour}, time.Now, defaultRetry())
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, 0)
	bearer := c.auth()
	c.send(bearer, "quick", "hello")
	c.send(bearer, "stuck", "hello")
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("webhooks did not reach the receiver")
		}
	}

	// And one API request waits in a long SetDelay.
	s.SetDelay(time.Hour)
	var client sync.WaitGroup
	client.Go(func() {
		_, _ = c.post("/wf/auth", "", map[string]any{"key": testKey})
	})
	eventually(t, 2*time.Second, "the delayed request to reach the handler", func() bool {
		for _, g := range ownGoroutines() {
			if strings.Contains(g, "serveAPI") {
				return true
			}
		}
		return false
	})

	waitErr := make(chan error, 1)
	go func() { waitErr <- s.WaitReceived(context.Background(), 100) }()

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Close took %s, want it prompt", el)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	select {
	case err := <-waitErr:
		if err == nil {
			t.Error("WaitReceived returned nil after Close")
		}
	case <-time.After(2 * time.Second):
		t.Error("WaitReceived still blocked after Close")
	}
	if left := ownGoroutines(); len(left) > 0 {
		t.Fatalf("goroutines still running after Close:\n%s", strings.Join(left, "\n\n"))
	}
	if err := s.InjectOperator(context.Background(), "quick", "hi"); err == nil {
		t.Error("InjectOperator succeeded after Close")
	}

	client.Wait()
	rcv.Close()
	c.http.CloseIdleConnections()
	eventually(t, 2*time.Second, "the goroutine count to return to its start", func() bool {
		return runtime.NumGoroutine() <= base
	})
}

func TestWaitReceived(t *testing.T) {
	s := startServer(t, Options{})
	c := newClient(t, s, 5*time.Second)
	bearer := c.auth()

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitReceived(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReceived with nothing sent: %v, want deadline exceeded", err)
	}

	done := make(chan error, 1)
	go func() { done <- s.WaitReceived(context.Background(), 2) }()
	c.send(bearer, "a", "one")
	c.send(bearer, "b", "two")
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitReceived did not return after 2 sends")
	}
	if got := s.ReceivedFor("b"); len(got) != 1 || got[0].Text != "two" {
		t.Errorf("ReceivedFor(b) = %+v", got)
	}
}
