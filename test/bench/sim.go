package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	fakeselarti "github.com/switchboard-gw/switchboard/test/fakes/selarti"
)

// simulator is the Selarti simulator of one step, with its webhook POSTs
// timed. A fresh simulator serves each step (on the same address, so the
// target's config stays valid): the simulator keeps every message and
// webhook it handled, and over a whole run that record would grow to
// gigabytes in the harness, which shares the machine with the target.
// The target re-authenticates once at the start of each step (the new
// simulator does not know the old token), as it would after Selarti
// expired its token; the step's settle time absorbs it.
type simulator struct {
	*fakeselarti.Server
	timing *webhookTiming
}

// startSimulator starts the simulator on addr, posting webhooks to
// webhookURL at zero think time, and records the timing of every bot
// reply webhook into the ledger cur points to.
func startSimulator(addr, apiKey, webhookURL string, cur *atomic.Pointer[ledger]) (*simulator, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// As the simulator's own default: enough idle connections to the one
	// target that its at most 128 concurrent posts reuse them.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	timing := &webhookTiming{next: tr, cur: cur}
	var srv *fakeselarti.Server
	var err error
	// The previous step's simulator has just closed this address; a
	// listener can normally take it at once (SO_REUSEADDR), but retry
	// briefly rather than fail a whole run on a slow close.
	for try := 0; try < 50; try++ {
		srv, err = fakeselarti.New(fakeselarti.Options{
			Addr:       addr,
			APIKey:     apiKey,
			WebhookURL: webhookURL,
			ThinkTime:  0,
			HTTPClient: &http.Client{Timeout: 10 * time.Second, Transport: timing},
		})
		if err == nil {
			return &simulator{Server: srv, timing: timing}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, fmt.Errorf("start selarti simulator: %w", err)
}

// close stops the simulator and closes its idle webhook connections.
func (s *simulator) close() error {
	err := s.Server.Close()
	s.timing.next.CloseIdleConnections()
	return err
}

// collect fills in the ledger's "accepted" times from the simulator's
// record of the sends it accepted.
func (s *simulator) collect(l *ledger) (matched int) {
	for _, r := range s.Received() {
		if seq, ok := decodeSeq(r.Text); ok && l.mark(l.accepted, seq, r.At) {
			matched++
		}
	}
	return matched
}

// webhookTiming is the simulator's HTTP transport: it notes when each
// bot reply webhook goes out (after the simulator's own concurrency
// limit, so this is when the target is really asked) and when the target
// answered it. The user-echo webhooks are passed through untimed.
type webhookTiming struct {
	next *http.Transport
	cur  *atomic.Pointer[ledger]
	pool sync.Pool
}

var botType = []byte(`"message_type":"bot"`)

func (t *webhookTiming) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	seq, ok := t.botSeq(req)
	resp, err := t.next.RoundTrip(req)
	if !ok {
		return resp, err
	}
	if l := t.cur.Load(); l != nil {
		l.mark(l.whStart, seq, start)
		if err == nil && resp.StatusCode/100 == 2 {
			l.mark(l.whEnd, seq, time.Now())
		}
	}
	return resp, err
}

// botSeq reads a copy of the request body and returns the sequence number
// of the message a bot reply answers.
func (t *webhookTiming) botSeq(req *http.Request) (uint64, bool) {
	if req.GetBody == nil {
		return 0, false
	}
	body, err := req.GetBody()
	if err != nil {
		return 0, false
	}
	defer body.Close()
	buf, _ := t.pool.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer t.pool.Put(buf)
	buf.Reset()
	if _, err := io.Copy(buf, body); err != nil {
		return 0, false
	}
	if !bytes.Contains(buf.Bytes(), botType) {
		return 0, false
	}
	return decodeSeqBytes(buf.Bytes())
}
