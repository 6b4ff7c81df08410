package webchat

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestFramesSentBeforeTheHandshakeAnswer checks that frames a client sends
// right behind its upgrade request, which net/http reads ahead, reach the
// connection: a few bytes in the smaller buffer, more in net/http's.
func TestFramesSentBeforeTheHandshakeAnswer(t *testing.T) {
	ts := startServer(t, newTestAdapter(t, nil))
	addr := strings.TrimPrefix(ts.srv.URL, "http://")
	for _, tt := range []struct {
		name     string
		messages int // of about 600 bytes each, behind the hello
	}{
		{name: "hello only"},
		{name: "more than the small buffer", messages: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req bytes.Buffer
			req.WriteString("GET " + ts.a.cfg.Path + "ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			frames := []string{`{"type":"hello"}`}
			for i := range tt.messages {
				frames = append(frames, fmt.Sprintf(`{"type":"message","id":"m%d","text":"%s"}`, i, strings.Repeat("x", 600)))
			}
			for _, f := range frames {
				req.Write(maskedTextFrame([]byte(f)))
			}
			if tt.messages > 0 && req.Len() <= connReadBuffer {
				t.Fatalf("only %d bytes: not more than the small buffer", req.Len())
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(waitTimeout))
			if _, err := c.Write(req.Bytes()); err != nil { // all in one write
				t.Fatal(err)
			}
			tab := &rawWS{c: c, br: bufio.NewReader(c)}
			for {
				line, err := tab.br.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
			}
			if f, err := tab.readData(); err != nil || !bytes.Contains(f, []byte(`"type":"welcome"`)) {
				t.Fatalf("first frame = %s, %v; want the welcome", f, err)
			}
			for i := range tt.messages {
				for range 2 { // the echo, then the ack
					f, err := tab.readData()
					if err != nil || !bytes.Contains(f, fmt.Appendf(nil, `"id":"m%d"`, i)) {
						t.Fatalf("frame = %.80s, %v; want the echo or ack of m%d", f, err, i)
					}
				}
			}
		})
	}
}

// maskedTextFrame is a client's text frame holding p, masked with a zero
// key (which leaves p as it is).
func maskedTextFrame(p []byte) []byte {
	b := []byte{0x81}
	if len(p) < 126 {
		b = append(b, 0x80|byte(len(p)))
	} else {
		b = append(b, 0x80|126, byte(len(p)>>8), byte(len(p)))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, p...)
}
