package selarti

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Received is one accepted "Send external message" call.
type Received struct {
	// TaskID, ChatID, Text, Name, Username and Phone are the request's
	// fields as sent ("" when absent; numbers as their decimal text).
	TaskID, ChatID, Text, Name, Username, Phone string
	// IdempotencyKey is the key sent in Wire.IdempotencyKeyField, if any.
	IdempotencyKey string
	// At is when the simulator accepted it.
	At time.Time
}

// WebhookAttempt is one webhook POST attempt.
type WebhookAttempt struct {
	// Payload is the JSON object posted.
	Payload map[string]any
	// Status is the receiver's HTTP status, 0 when there was no answer.
	Status int
	// Err is why the attempt failed (network error, non-2xx status, no
	// webhook URL); "" when it succeeded.
	Err string
	// At is when the attempt ended.
	At time.Time
}

// records is what the server keeps for tests, guarded by Server.mu.
type records struct {
	received  []Received
	attempts  []WebhookAttempt
	authCount int
	pending   int              // webhooks queued or in flight
	keys      map[string]bool  // idempotency keys seen
	repeats   int              // sends dropped as repeats of a key
	gaveUp    []WebhookAttempt // the last attempt of each webhook given up
	// changed is closed and replaced on every change, waking waiters
	// without polling.
	changed chan struct{}
}

func (r *records) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Received returns the accepted send calls, in the order they were
// accepted.
func (s *Server) Received() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rec.received)
}

// ReceivedFor returns the accepted send calls for one chat id, in order.
func (s *Server) ReceivedFor(chatID string) []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Received
	for _, m := range s.rec.received {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// AuthCount returns how many auth requests were handled, accepted or not
// (requests refused by SetDown or SetDelay's disconnect do not count).
func (s *Server) AuthCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.authCount
}

// Webhooks returns every webhook POST attempt so far, in the order they
// ended, retries included. Payloads are copies.
func (s *Server) Webhooks() []WebhookAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAttempts(s.rec.attempts)
}

// cloneAttempts copies attempts with their payloads, so that a test cannot
// change what the server keeps.
func cloneAttempts(attempts []WebhookAttempt) []WebhookAttempt {
	out := slices.Clone(attempts)
	for i := range out {
		out[i].Payload = clonePayload(out[i].Payload)
	}
	return out
}

// WaitReceived blocks until at least n send calls have been accepted, ctx
// is done, or the server is closed.
func (s *Server) WaitReceived(ctx context.Context, n int) error {
	err := s.waitFor(ctx, func() bool { return len(s.rec.received) >= n })
	if err != nil {
		return fmt.Errorf("wait for %d received messages: %w", n, err)
	}
	return nil
}

// WaitIdle blocks until no webhook is queued or being posted (every one
// was delivered or given up), ctx is done, or the server is closed.
func (s *Server) WaitIdle(ctx context.Context) error {
	err := s.waitFor(ctx, func() bool { return s.rec.pending == 0 })
	if err != nil {
		return fmt.Errorf("wait for webhooks to drain: %w", err)
	}
	return nil
}

// waitFor blocks until cond (called under mu) holds.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ok, closed, changed := cond(), s.closed, s.rec.changed
		s.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return errClosed
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Repeats returns how many sends were answered but dropped because their
// idempotency key had been seen: the gateway sent a message again (after a
// timeout or a crash) and the key saved the user from a duplicate.
func (s *Server) Repeats() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.repeats
}

// GaveUp returns the last attempt of every webhook the simulator gave up
// on after Options.WebhookTries failed tries, oldest first: a message
// Selarti meant to post and never did (a user echo lost this way leaves a
// send in doubt unproven, so the gateway sends it again).
func (s *Server) GaveUp() []WebhookAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneAttempts(s.rec.gaveUp)
}
