package webchat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-gw/switchboard/core"
)

// fromStatus is the entry.from of a delivery status: an event entry whose
// text is a deliveryStatus in JSON. It is stored as the dialog's events
// are (an event row, or an event in the journal), so neither store needed
// a new kind, and a reload replays it in its place after the message.
const fromStatus = "status"

// deliveryStatus is what became of one user message on its way to
// Selarti (core.DeliveryEvent), as the history keeps it.
type deliveryStatus struct {
	ID       string `json:"id"` // the client's message id
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	RetryAt  string `json:"retry_at,omitempty"` // RFC 3339, delayed only
}

// statusFrame shows a deliveryStatus to the session's tabs. It carries a
// seq like every history entry.
type statusFrame struct {
	Type     string `json:"type"`
	Seq      int64  `json:"seq"`
	ID       string `json:"id"`
	State    string `json:"state"`
	Reason   string `json:"reason,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
	RetryAt  string `json:"retry_at,omitempty"`
	TS       string `json:"ts"`
}

// statusFrameOf encodes e, a delivery status entry. A text that does not
// decode (written by hand, or damaged) still yields a frame, without an
// id, which the page ignores.
func statusFrameOf(e *entry) []byte {
	var st deliveryStatus
	_ = json.Unmarshal([]byte(e.text), &st)
	return encode(statusFrame{Type: typeStatus, Seq: e.seq, ID: st.ID, State: st.State, Reason: st.Reason,
		Attempts: st.Attempts, RetryAt: st.RetryAt, TS: formatTS(e.ts)})
}

// maxStatusesKept bounds the last states a session remembers to skip
// repeated reports (see sessions.appendStatus).
const maxStatusesKept = 256

// DeliveryChanged stores what became of a user's message in its session's
// history and shows it on the session's open tabs: the page marks the
// message "not delivered" with a Retry button, or says why it is late.
// A report that repeats the message's last state and reason (another
// failed attempt for the same reason) changes nothing and is not stored,
// so that an outage does not fill the bounded history with notes. A
// session the mailbox does not hold is ignored.
func (a *Adapter) DeliveryChanged(ctx context.Context, ev core.DeliveryEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validSessionID(ev.ChatID) {
		return fmt.Errorf("show delivery in chat %q: %w", shortID(ev.ChatID), core.ErrUnknownChat)
	}
	clientID, ok := clientIDOf(ev.ChatID, ev.ID)
	if !ok {
		return fmt.Errorf("show delivery in chat %s: message id %q is not one of this chat's", shortID(ev.ChatID), ev.ID)
	}
	run := a.current()
	if run == nil {
		return fmt.Errorf("show delivery in chat %s: %w", shortID(ev.ChatID), core.ErrNotConnected)
	}
	st := deliveryStatus{ID: clientID, State: string(ev.State), Reason: string(ev.Reason), Attempts: ev.Attempts}
	switch ev.State {
	case core.DeliveryDelayed:
		if !ev.RetryAt.IsZero() {
			st.RetryAt = formatTS(ev.RetryAt)
		}
	case core.DeliveryDelivered:
		st.Reason = ""
	case core.DeliveryFailed:
	default:
		return fmt.Errorf("show delivery in chat %s: unknown state %q", shortID(ev.ChatID), ev.State)
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := run.sessions.appendStatus(sctx, ev.ChatID, st, a.now()); err != nil {
		return fmt.Errorf("show delivery in chat %s: %w", shortID(ev.ChatID), err)
	}
	return nil
}

// clientIDOf returns the client's message id in id, an Inbound.ID that
// inboundID made for session, or false if id is not one of session's.
func clientIDOf(session, id string) (string, bool) {
	_, clientID, ok := strings.Cut(id, "/")
	if !ok || !validClientID(clientID) || inboundID(session, clientID) != id {
		return "", false
	}
	return clientID, true
}

// appendStatus stores st in session id's history and shows it on its
// tabs, unless it repeats the last state and reason stored for the same
// message. It reports whether it stored st; a session the mailbox does
// not hold gets nothing.
func (ss *sessions) appendStatus(ctx context.Context, id string, st deliveryStatus, now time.Time) (bool, error) {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return false, err
	}
	defer ss.release(s)
	key := st.State + " " + st.Reason
	// statuses changes only under the session's lock, which is held.
	if s.statuses[st.ID] == key {
		return false, nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return false, err
	}
	res, err := ss.store(ctx, s, appendReq{session: id, e: entry{event: true, from: fromStatus, text: string(b), ts: now}})
	if err != nil || res.missing {
		return false, err
	}
	if s.statuses == nil || len(s.statuses) >= maxStatusesKept {
		// Forgetting only costs a repeated note.
		s.statuses = make(map[string]string)
	}
	s.statuses[st.ID] = key
	return true, nil
}

// forgetStatus forgets the last delivery state stored for the client's
// message msgID in session id, once the user asked to send it again: the
// next report is news even if it repeats the state before the retry (it
// failed again, for the same reason).
func (ss *sessions) forgetStatus(ctx context.Context, id, msgID string, now time.Time) error {
	s, err := ss.acquire(ctx, id, now)
	if err != nil {
		return err
	}
	defer ss.release(s)
	delete(s.statuses, msgID)
	return nil
}
