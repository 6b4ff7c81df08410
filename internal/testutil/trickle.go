package testutil

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TrickleResult is what Trickle saw.
type TrickleResult struct {
	// Reply is what the server sent before it closed the connection.
	Reply string
	// Closed reports whether the server closed the connection within the
	// limit; After is when.
	Closed bool
	After  time.Duration
}

// Trickle is a slow-loris client: it sends head (a request line and its
// headers, without the blank line that ends them) to addr with
// "Transfer-Encoding: chunked", then a body of one byte every interval,
// and reads until the server closes the connection or limit passes.
func Trickle(t testing.TB, addr, head string, every, limit time.Duration) TrickleResult {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("trickle: %v", err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head+"\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
		t.Fatalf("trickle: write head: %v", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if _, err := io.WriteString(conn, "1\r\nx\r\n"); err != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	_ = conn.SetReadDeadline(start.Add(limit))
	reply, err := io.ReadAll(conn)
	res := TrickleResult{Reply: string(reply), After: time.Since(start)}
	// EOF or a reset: the server closed it. A deadline: it did not.
	res.Closed = !errors.Is(err, os.ErrDeadlineExceeded)
	return res
}
