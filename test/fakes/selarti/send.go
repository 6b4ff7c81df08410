package selarti

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// handleSend is "Send external message": it checks the token and the body,
// records the message, and queues the dialog's webhooks, which go out only
// after the 200 has been written (the reply never comes in the response).
func (s *Server) handleSend(w *recorder, r *http.Request, body []byte, bodyErr error) {
	// Injected failures come first, before auth, so a test can fail a
	// request regardless of the client's token state.
	if status, retryAfter, ok := s.takeFailure(); ok {
		writeBubbleError(w, status, errorCode(status), "injected failure", retryAfter)
		return
	}
	if !s.authorized(r) {
		writeBubbleError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Invalid or expired token", 0)
		return
	}
	fields, err := parseJSON(body)
	if bodyErr != nil {
		err = bodyErr
	}
	if err != nil {
		writeBubbleError(w, http.StatusBadRequest, "MISSING_DATA", err.Error(), 0)
		return
	}
	msg, err := s.parseSend(fields)
	if err != nil {
		writeBubbleError(w, http.StatusBadRequest, "MISSING_DATA", err.Error(), 0)
		return
	}
	w.chat = msg.ChatID
	if s.seenKey(msg) {
		// A repeat of a message already taken: answer as for the first
		// time, and do nothing else.
		writeSuccess(w, struct{}{})
		return
	}

	// The delay in force when the request came, read before the message
	// is taken: a test that waits for the message and then lifts the
	// delay must still see this request delayed.
	s.mu.Lock()
	ackDelay := s.faults.ackDelay
	s.mu.Unlock()

	ready := make(chan struct{})
	release := sync.OnceFunc(func() { close(ready) })
	// Whatever happens below, the queued webhooks must not wait forever.
	defer release()
	if !s.accept(msg, ready) {
		writeBubbleError(w, http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "server is shutting down", 0)
		return
	}

	if ackDelay > 0 {
		// The ambiguous case: Selarti has the message and works on it,
		// while the client is still waiting for the answer.
		release()
		if !s.wait(r.Context(), ackDelay) {
			return // the client gave up: it will never know
		}
	}
	writeSuccess(w, struct{}{})
	// Push the answer out before the webhooks start, so the client
	// normally sees its 200 before the user webhook arrives.
	_ = http.NewResponseController(w).Flush()
}

// parseSend reads the "Send external message" fields named by the Wire.
func (s *Server) parseSend(fields map[string]any) (Received, error) {
	var msg Received
	var err error
	for _, f := range []struct {
		name     string
		dst      *string
		required bool
	}{
		{s.wire.TaskIDField, &msg.TaskID, true},
		{s.wire.ChatIDField, &msg.ChatID, true},
		{s.wire.TextField, &msg.Text, true},
		{s.wire.PhoneField, &msg.Phone, false},
		{s.wire.NameField, &msg.Name, false},
		{s.wire.UsernameField, &msg.Username, false},
		{s.wire.IdempotencyKeyField, &msg.IdempotencyKey, false},
	} {
		if f.name == "" {
			continue
		}
		*f.dst, err = textField(fields, f.name)
		if err != nil {
			return Received{}, err
		}
		if f.required && strings.TrimSpace(*f.dst) == "" {
			return Received{}, dataError(fmt.Sprintf("Missing parameter for workflow %s: parameter %s", s.workflowName(), f.name))
		}
	}
	if len(s.tasks) > 0 && !s.tasks[msg.TaskID] {
		return Received{}, dataError("Task not found: " + msg.TaskID)
	}
	return msg, nil
}

// workflowName is the last element of the send path, as Bubble names the
// workflow in its error messages.
func (s *Server) workflowName() string {
	p := strings.TrimSuffix(s.sendPath, "/")
	return p[strings.LastIndex(p, "/")+1:]
}

// textField returns fields[name] as text. Numbers are accepted as their
// decimal text (the manual's example sends a number, likely a phone); an
// absent or null field is "".
func textField(fields map[string]any, name string) (string, error) {
	switch v := fields[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", dataError("Invalid data for parameter " + name + ": expected text")
	}
}

// dataError is a message for the client in Bubble's wording (hence the
// capital letters), answered as 400 MISSING_DATA.
type dataError string

func (e dataError) Error() string { return string(e) }

const (
	errTooLarge = dataError("Request body is too large")
	errNotJSON  = dataError("Request body is not a JSON object")
)

// readBody reads a request body of at most maxBody bytes. Reading it to
// the end early also lets net/http notice a client that hangs up while
// the request waits in SetDelay.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errTooLarge
		}
		return nil, dataError("Could not read the request body")
	}
	return body, nil
}

// parseJSON decodes a JSON object, keeping numbers as json.Number.
func parseJSON(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, errNotJSON
	}
	return fields, nil
}

// seenKey reports whether msg repeats a message already accepted, by its
// idempotency key (only when Options.Wire names the field), and records
// the key otherwise. Real Selarti documents no such key; the simulator
// honours one so that tests can check the gateway keeps its keys stable.
func (s *Server) seenKey(msg Received) bool {
	if msg.IdempotencyKey == "" {
		return false
	}
	k := msg.TaskID + "\x00" + msg.ChatID + "\x00" + msg.IdempotencyKey
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rec.keys == nil {
		s.rec.keys = map[string]bool{}
	}
	if s.rec.keys[k] {
		s.rec.repeats++
		return true
	}
	s.rec.keys[k] = true
	return false
}
