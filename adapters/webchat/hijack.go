package webchat

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes of an open WebSocket connection. net/http hands a hijacked
// connection over with its own 4 KiB read and 4 KiB write buffers, which
// coder/websocket keeps for the connection's whole life. Most frames here
// are far smaller, and larger ones go past a bufio buffer in one read or
// write anyway, so smaller buffers cost little but a few syscalls on long
// replies, and save most of that memory on every idle tab.
const (
	connReadBuffer  = 1024
	connWriteBuffer = 1024
)

// smallBuffers is the http.ResponseWriter given to websocket.Accept: its
// Hijack hands the connection over with buffers of the sizes above.
type smallBuffers struct{ http.ResponseWriter }

// Unwrap lets http.ResponseController reach the writer underneath.
func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack takes the connection over from net/http. Bytes that net/http has
// read ahead (a client that did not wait for the handshake's answer) are
// carried over into the new read buffer, where coder/websocket looks for
// them; if they do not fit, net/http's own buffers are kept.
func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	n := brw.Reader.Buffered()
	if n > connReadBuffer {
		return conn, brw, nil
	}
	var src io.Reader = conn
	if n > 0 {
		ahead, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn)
	}
	r := bufio.NewReaderSize(src, connReadBuffer)
	if n > 0 {
		// Only the bytes read ahead: the first read of src returns them
		// all, without waiting for the connection.
		if _, err := r.Peek(n); err != nil {
			return conn, brw, nil
		}
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, connWriteBuffer)), nil
}
