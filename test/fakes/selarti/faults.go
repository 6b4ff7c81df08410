package selarti

import "time"

// faults is the fault-injection state, guarded by Server.mu.
type faults struct {
	failN      int
	failStatus int
	failRetry  time.Duration
	delay      time.Duration
	ackDelay   time.Duration
	down       bool
}

// ExpireTokens makes every token issued so far answer 401, as if they had
// all expired; clients must authenticate again.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// FailNext makes the next n send requests answer status (with a Bubble
// error body, and a Retry-After header in seconds when retryAfter > 0)
// before doing anything else: the message is not recorded and no webhook
// follows. n <= 0 cancels pending failures.
func (s *Server) FailNext(n int, status int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failN = max(n, 0)
	s.faults.failStatus = status
	s.faults.failRetry = retryAfter
}

// takeFailure consumes one injected send failure, if any is pending.
func (s *Server) takeFailure() (status int, retryAfter time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.failN == 0 {
		return 0, 0, false
	}
	s.faults.failN--
	return s.faults.failStatus, s.faults.failRetry, true
}

// SetDelay delays every API request by d before it is handled. A client
// that gives up during the delay has its request dropped unprocessed, as
// if it never arrived. 0 removes the delay.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.delay = d
}

// SetAckDelay makes an accepted send hold its 200 back for d, after the
// message was recorded and its webhooks released. A client that times out
// meanwhile sees a failure although Selarti has the message: the ambiguous
// case where resending makes a duplicate. 0 removes the delay.
func (s *Server) SetAckDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.ackDelay = d
}

// SetDown makes every API request answer 503 with a Bubble error body while
// down is true.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.down = down
}
