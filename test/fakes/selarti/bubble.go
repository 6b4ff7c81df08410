package selarti

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// bubbleError is the envelope Bubble.io apps answer errors with:
// {"statusCode":400,"body":{"status":"MISSING_DATA","message":"..."}}.
type bubbleError struct {
	StatusCode int             `json:"statusCode"`
	Body       bubbleErrorBody `json:"body"`
}

type bubbleErrorBody struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// writeBubbleError answers status with Bubble's error envelope, and a
// Retry-After header in whole seconds (rounded up) when retryAfter > 0.
func writeBubbleError(w http.ResponseWriter, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeJSON(w, status, bubbleError{StatusCode: status, Body: bubbleErrorBody{Status: code, Message: msg}})
}

// bubbleSuccess is Bubble's envelope for a workflow that ran:
// {"status":"success","response":{...}}.
type bubbleSuccess struct {
	Status   string `json:"status"`
	Response any    `json:"response"`
}

func writeSuccess(w http.ResponseWriter, response any) {
	writeJSON(w, http.StatusOK, bubbleSuccess{Status: "success", Response: response})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed types are marshalled here, so this cannot
		// happen; answer something well-formed anyway.
		status, body = http.StatusInternalServerError, []byte(`{"statusCode":500,"body":{"status":"ERROR","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorCode is the Bubble "status" string used for an injected failure.
func errorCode(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "TOO_MANY_REQUESTS"
	case status == http.StatusUnauthorized:
		return "UNAUTHORIZED"
	case status == http.StatusNotFound:
		return "NOT_FOUND"
	case status == http.StatusServiceUnavailable:
		return "SERVICE_UNAVAILABLE"
	case status >= 500:
		return "SERVER_ERROR"
	default:
		return "ERROR"
	}
}

// newBubbleID returns an id shaped like Bubble's, for example
// "1721129985149x478019552540622850": creation time in milliseconds, "x",
// and 18 random digits. Callers treat ids as opaque; the shape only makes
// the simulator look like the real thing in logs.
func newBubbleID() string {
	const lo, span = 100_000_000_000_000_000, 900_000_000_000_000_000 // 18 digits, no leading zero
	return fmt.Sprintf("%dx%d", time.Now().UnixMilli(), lo+rand.Uint64N(span))
}
