package slack

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/clientip"
	"github.com/switchboard-gw/switchboard/kit/inbound"
)

// The Events API over HTTP: Slack posts every event to the request URL,
// <server.public_url>/slack/<name>/events, signed with the app's signing
// secret, and wants a 2xx within three seconds; any other answer (or
// none) is retried with the same event_id, X-Slack-Retry-Num 1 to 3.

// maxEventBytes bounds an Events API request body (and a Socket Mode
// envelope). An event is a few kilobytes; a message's text is at most
// 40,000 characters.
const maxEventBytes = 1 << 20

// answerGrace is how long past inbound.AckDeadline the handler waits for
// the core before it answers 500, so that an event committed just in time
// is still acknowledged within Slack's three seconds.
const answerGrace = 200 * time.Millisecond

// Headers of an Events API request.
const (
	headerRetryNum    = "X-Slack-Retry-Num"
	headerRetryReason = "X-Slack-Retry-Reason"
)

// rejectBadSignature is the reason label, in
// switchboard_adapter_rejects_total, of an events request whose signature
// or timestamp does not check out.
const rejectBadSignature = "bad_signature"

// ServeHTTP serves the Events API at <prefix>events, in events mode:
//
//   - a request without a valid signature (X-Slack-Signature, v0
//     HMAC-SHA256 of "v0:{timestamp}:{body}" with the signing secret,
//     compared in constant time), or whose X-Slack-Request-Timestamp is
//     more than five minutes away, gets 401 and never reaches the core;
//   - url_verification is answered with its challenge;
//   - an event is answered 200 once the core has committed it (or when
//     the app does not answer it), and 500 when the core did not commit
//     it within the deadline: Slack then sends it again, and the core
//     drops the retry if the first copy was committed late. Slack's last
//     retry is answered 200 and retried in the process.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if a.cfg.Mode != ModeEvents || req.URL.Path != a.prefix+"events" {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	received := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxEventBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "could not read the request", http.StatusBadRequest)
		return
	}
	if err := a.verify(req.Header, body); err != nil {
		// Never the body, the signature or the secret in the log.
		a.metrics.Rejected(rejectBadSignature)
		a.warn.Warn(rejectBadSignature, "events request refused: "+err.Error(), "remote", clientip.String(clientip.From(req)))
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	var outer struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &outer); err != nil {
		a.warn.Warn("malformed", "events request refused: malformed JSON", "remote", clientip.String(clientip.From(req)))
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	ev, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
	switch {
	case err != nil && outer.Type == slackevents.CallbackEvent:
		// An event slack-go does not know: not one the app answers.
		a.log.Debug("event ignored: not understood", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	case err != nil:
		a.warn.Warn("malformed", "events request refused: malformed event", "remote", clientip.String(clientip.From(req)), "err", err)
		http.Error(w, "malformed request", http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		v, _ := ev.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if v == nil {
			http.Error(w, "malformed request", http.StatusBadRequest)
			return
		}
		a.log.Info("request URL verified by Slack", "url", core.RedactURL(a.requestURL))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(slackevents.ChallengeResponse{Challenge: v.Challenge})
		return
	case slackevents.AppRateLimited:
		a.log.Warn("Slack is rate limiting the app's events (more than 30,000 an hour): some are not sent")
		w.WriteHeader(http.StatusOK)
		return
	case slackevents.CallbackEvent:
	default:
		w.WriteHeader(http.StatusOK)
		return
	}

	r, ok := a.runs.Enter()
	if !ok {
		// Not started (or stopping): Slack sends it again.
		http.Error(w, "not running", http.StatusServiceUnavailable)
		return
	}
	defer r.Leave()
	retry, _ := strconv.Atoi(req.Header.Get(headerRetryNum))
	dl := delivery{received: received, eventID: eventIDOf(ev), retry: retry, transport: "events"}
	if retry > 0 {
		a.log.Debug("event retried by Slack", "event_id", dl.eventID, "retry", retry, "reason", req.Header.Get(headerRetryReason))
	}
	result := make(chan bool, 1)
	a.dispatch(r, ev, dl, func(ack bool) { result <- ack })
	timer := time.NewTimer(time.Until(received.Add(ackWait)))
	defer timer.Stop()
	acked := false
	select {
	case acked = <-result:
	case <-timer.C:
	case <-req.Context().Done():
	case <-r.Context().Done():
	}
	if !acked {
		http.Error(w, "not committed in time, send it again", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// ackWait is how long after a request arrived its answer may wait for the
// core.
const ackWait = inbound.AckDeadline + answerGrace

// verify checks a request's signature and timestamp with slack-go's
// SecretsVerifier: HMAC-SHA256 keyed with the signing secret over
// "v0:{timestamp}:{body}", compared in constant time (hmac.Equal), and a
// timestamp within five minutes of now, so that a recorded request cannot
// be replayed later. Its errors say what was wrong, not what was sent.
func (a *Adapter) verify(h http.Header, body []byte) error {
	sv, err := slack.NewSecretsVerifier(h, a.cfg.SigningSecret.Reveal())
	switch {
	case errors.Is(err, slack.ErrMissingHeaders):
		return errors.New("no signature headers")
	case errors.Is(err, slack.ErrExpiredTimestamp):
		return errors.New("timestamp more than five minutes away (a replay, or this machine's clock is off)")
	case err != nil:
		return errors.New("malformed signature")
	}
	if _, err := sv.Write(body); err != nil {
		return errors.New("malformed signature")
	}
	if err := sv.Ensure(); err != nil {
		return errors.New("bad signature (is config.signing_secret the app's?)")
	}
	return nil
}
