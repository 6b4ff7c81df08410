package discord

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is a REST error answer: {"message": ..., "code": ..., "errors": ...}.
type apiError struct {
	status  int
	code    int
	message string
	errors  any
}

func errorBody(status, code int, message string, errs any) map[string]any {
	b := map[string]any{"message": message, "code": code}
	if errs != nil {
		b["errors"] = errs
	}
	return b
}

func errNotFound(code int, message string) *apiError {
	return &apiError{status: http.StatusNotFound, code: code, message: message}
}

func errForbidden(code int, message string) *apiError {
	return &apiError{status: http.StatusForbidden, code: code, message: message}
}

var (
	errUnauthorized     = &apiError{status: http.StatusUnauthorized, message: "401: Unauthorized"}
	errUnknownChannel   = errNotFound(CodeUnknownChannel, "Unknown Channel")
	errUnknownMessage   = errNotFound(CodeUnknownMessage, "Unknown Message")
	errUnknownUser      = errNotFound(CodeUnknownUser, "Unknown User")
	errMissingAccess    = errForbidden(CodeMissingAccess, "Missing Access")
	errMissingPerms     = errForbidden(CodeMissingPermissions, "Missing Permissions")
	errCannotSendToUser = errForbidden(CodeCannotSendToUser, "Cannot send messages to this user")
	errEmptyMessage     = &apiError{status: http.StatusBadRequest, code: CodeEmptyMessage, message: "Cannot send an empty message"}
	errInvalidJSON      = &apiError{status: http.StatusBadRequest, code: 50109, message: "The request body contains invalid JSON."}
)

// formError is Discord's 50035 Invalid Form Body with one field error.
// field may be a dotted path ("message_reference.message_id").
func formError(field, code, message string) *apiError {
	var errs any = map[string]any{"_errors": []map[string]string{{"code": code, "message": message}}}
	parts := strings.Split(field, ".")
	for i := len(parts) - 1; i >= 0; i-- {
		errs = map[string]any{parts[i]: errs}
	}
	return &apiError{status: http.StatusBadRequest, code: CodeInvalidFormBody, message: "Invalid Form Body", errors: errs}
}

func notSnowflake(field, v string) *apiError {
	return formError(field, "NUMBER_TYPE_COERCE", fmt.Sprintf("Value \"%s\" is not snowflake.", v))
}

// request is one REST request being handled (with s.mu held).
type request struct {
	s       *Server
	r       *http.Request
	bot     *Bot
	version string
	params  map[string]string
	query   url.Values
	body    []byte // the JSON payload (payload_json of a multipart body)
	files   []File
	after   []func() // run with no lock held, before the answer is written
}

// decode decodes the JSON body into v ({} when empty).
func (q *request) decode(v any) *apiError {
	if len(bytes.TrimSpace(q.body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(q.body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return formError(te.Field, "BASE_TYPE_INVALID", "Invalid value.")
		}
		return errInvalidJSON
	}
	return nil
}

// channel resolves the {id} of the path to a channel the bot can see.
func (q *request) channel() (*channel, *apiError) {
	id := q.params["id"]
	if !isSnowflake(id) {
		return nil, notSnowflake("channel_id", id)
	}
	ch := q.s.channels[id]
	if ch == nil {
		return nil, errUnknownChannel
	}
	if !q.bot.canViewLocked(ch) {
		return nil, errMissingAccess
	}
	return ch, nil
}

// message resolves {message_id} in ch.
func (q *request) message(ch *channel) (*message, *apiError) {
	id := q.params["message_id"]
	if !isSnowflake(id) {
		return nil, notSnowflake("message_id", id)
	}
	m := ch.byID[id]
	if m == nil {
		return nil, errUnknownMessage
	}
	return m, nil
}

// contentIntent is whether REST answers carry others' message content:
// the MESSAGE_CONTENT intent is enabled for the application.
func (q *request) contentIntent() bool { return q.bot.disallowed&IntentMessageContent == 0 }

type handler func(*request) (int, any, *apiError)

type route struct {
	method  string
	pattern string // "/channels/{id}/messages"
	parts   []string
	auth    bool
	handle  handler
}

func (rt *route) template() string { return rt.method + " " + rt.pattern }

// match matches path segments against the route's pattern.
func (rt *route) match(segs []string) (map[string]string, bool) {
	if len(segs) != len(rt.parts) {
		return nil, false
	}
	params := map[string]string{}
	for i, p := range rt.parts {
		if strings.HasPrefix(p, "{") {
			params[strings.Trim(p, "{}")] = segs[i]
		} else if p != segs[i] {
			return nil, false
		}
	}
	return params, true
}

var routes []*route

func init() {
	add := func(method, pattern string, auth bool, h handler) {
		routes = append(routes, &route{method: method, pattern: pattern, parts: strings.Split(strings.Trim(pattern, "/"), "/"), auth: auth, handle: h})
	}
	// Literal segments first: "/users/@me" before "/users/{user_id}".
	add("GET", "/gateway", false, getGateway)
	add("GET", "/gateway/bot", true, getGatewayBot)
	add("GET", "/users/@me", true, getMe)
	add("POST", "/users/@me/channels", true, createDM)
	add("GET", "/users/{user_id}", true, getUser)
	add("GET", "/applications/@me", true, getApplication)
	add("GET", "/oauth2/applications/@me", true, getApplication)
	add("GET", "/channels/{id}", true, getChannel)
	add("GET", "/channels/{id}/messages", true, listMessages)
	add("POST", "/channels/{id}/messages", true, createMessage)
	add("GET", "/channels/{id}/messages/{message_id}", true, getMessage)
	add("PATCH", "/channels/{id}/messages/{message_id}", true, editMessage)
	add("DELETE", "/channels/{id}/messages/{message_id}", true, deleteMessage)
	add("POST", "/channels/{id}/typing", true, triggerTyping)
	add("POST", "/channels/{id}/messages/{message_id}/threads", true, threadFromMessage)
	add("POST", "/channels/{id}/threads", true, threadWithoutMessage)
	add("PUT", "/channels/{id}/messages/{message_id}/reactions/{emoji}/@me", true, addReaction)
	add("DELETE", "/channels/{id}/messages/{message_id}/reactions/{emoji}/@me", true, removeReaction)
}

// findRoute returns the route of method and path segments; pathKnown is
// set when the path exists with another method (405).
func findRoute(method string, segs []string) (rt *route, params map[string]string, pathKnown bool) {
	for _, r := range routes {
		p, ok := r.match(segs)
		if !ok {
			continue
		}
		if r.method == method {
			return r, p, true
		}
		pathKnown = true
	}
	return nil, nil, pathKnown
}

// maxRequestBytes bounds a request body (Discord takes 25 MiB of files).
const maxRequestBytes = 30 << 20

func (s *Server) serveREST(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v")
	version, sub, _ := strings.Cut(rest, "/")
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, 0, "404: Not Found", nil))
		return
	}
	call := Call{Method: r.Method, Path: r.URL.Path, Version: version, Query: r.URL.Query(), At: time.Now()}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody(413, 40005, "Request entity too large", nil))
		return
	}
	call.Body = raw

	var rt *route
	var params map[string]string
	var early *apiError
	switch version {
	case "9", "10":
		segs := strings.Split(strings.Trim(sub, "/"), "/")
		var pathKnown bool
		rt, params, pathKnown = findRoute(r.Method, segs)
		switch {
		case rt != nil:
			call.Route = rt.template()
		case pathKnown:
			early = &apiError{status: http.StatusMethodNotAllowed, message: "405: Method Not Allowed"}
		default:
			early = &apiError{status: http.StatusNotFound, message: "404: Not Found"}
		}
	default:
		early = &apiError{status: http.StatusBadRequest, code: CodeInvalidAPIVersion, message: "Invalid API version"}
	}

	s.mu.Lock()
	var bot *Bot
	if tok, isBot := strings.CutPrefix(r.Header.Get("Authorization"), "Bot "); isBot {
		bot = s.bots[tok]
		if rb := s.revoked[tok]; rb != nil {
			call.BotID = rb.user.ID // recorded as the bot's, answered 401
		}
	}
	if bot != nil {
		call.BotID = bot.user.ID
	}
	if early == nil && rt.auth && bot == nil {
		early = errUnauthorized
	}
	idx := -1 // the call's record; none once StopRecording
	if !s.unrecorded {
		idx = len(s.calls)
		s.calls = append(s.calls, call)
	}
	var fault Fault
	var injected bool
	if early == nil {
		fault, injected = s.takeFaultLocked(bot, call.Route)
	}
	// A fault that decides the answer is not counted against the limits;
	// a mere delay is.
	rl := s.rateLimitLocked(bot, call.Route, params["id"], injected && (fault.Status != 0 || fault.Drop))
	s.broadcastLocked()
	s.mu.Unlock()

	finish := func(status, code int, inj bool) {
		if idx < 0 {
			return
		}
		s.mu.Lock()
		s.calls[idx].Status, s.calls[idx].Code, s.calls[idx].Injected = status, code, inj
		s.broadcastLocked()
		s.mu.Unlock()
	}
	rl.write(w.Header())

	if early != nil {
		finish(early.status, early.code, false)
		writeJSON(w, early.status, errorBody(early.status, early.code, early.message, early.errors))
		return
	}
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			finish(0, 0, true)
			return
		}
	}
	if fault.Drop {
		finish(0, 0, true)
		dropConnection(w)
		return
	}
	if fault.Status != 0 {
		finish(fault.Status, fault.Code, true)
		s.writeFault(w, rl, fault)
		return
	}
	if rl.limited != nil {
		finish(http.StatusTooManyRequests, 0, false)
		s.writeFault(w, rl, *rl.limited)
		return
	}

	q := &request{s: s, r: r, bot: bot, version: version, params: params, query: call.Query, body: raw}
	if perr := q.parseMultipart(r.Header.Get("Content-Type")); perr != nil {
		finish(perr.status, perr.code, false)
		writeJSON(w, perr.status, errorBody(perr.status, perr.code, perr.message, perr.errors))
		return
	}
	s.mu.Lock()
	status, body, aerr := rt.handle(q)
	s.mu.Unlock()
	for _, fn := range q.after {
		fn()
	}
	if aerr != nil {
		finish(aerr.status, aerr.code, false)
		writeJSON(w, aerr.status, errorBody(aerr.status, aerr.code, aerr.message, aerr.errors))
		return
	}
	finish(status, 0, false)
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, body)
}

// parseMultipart takes payload_json and the files of a multipart body.
func (q *request) parseMultipart(contentType string) *apiError {
	mt, mp, _ := mime.ParseMediaType(contentType)
	if mt != "multipart/form-data" {
		return nil
	}
	mr := multipart.NewReader(bytes.NewReader(q.body), mp["boundary"])
	q.body = nil
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &apiError{status: http.StatusBadRequest, code: 50035, message: "Invalid Form Body"}
		}
		data, err := io.ReadAll(part)
		if err != nil {
			return &apiError{status: http.StatusBadRequest, code: 50035, message: "Invalid Form Body"}
		}
		switch name := part.FormName(); {
		case name == "payload_json":
			q.body = data
		case part.FileName() != "":
			q.files = append(q.files, File{Field: name, Name: part.FileName(), ContentType: part.Header.Get("Content-Type"), Data: data})
		}
	}
}

// takeFaultLocked takes the next fault for a request: the bot's queue for
// the route, then its "" queue, then the server's.
func (s *Server) takeFaultLocked(b *Bot, route string) (Fault, bool) {
	queues := []map[string][]Fault{s.faults}
	if b != nil {
		queues = append([]map[string][]Fault{b.faults}, queues...)
	}
	for _, m := range queues {
		for _, key := range []string{route, ""} {
			if q := m[key]; len(q) > 0 {
				m[key] = q[1:]
				return q[0], true
			}
		}
	}
	return Fault{}, false
}

// window is a fixed rate-limit window.
type window struct {
	count int
	reset time.Time
}

func (w *window) hit(now time.Time, d time.Duration) {
	if !now.Before(w.reset) {
		w.count = 0
		w.reset = now.Add(d)
	}
	w.count++
}

// rateLimit is what a request's X-RateLimit-* headers say.
type rateLimit struct {
	limit     int
	remaining int
	reset     time.Time
	bucket    string
	limited   *Fault // the request is over a real limit
}

func (rl rateLimit) write(h http.Header) {
	after := max(time.Until(rl.reset), 0)
	h.Set("X-RateLimit-Limit", strconv.Itoa(rl.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(rl.remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(rl.reset.UnixMilli())/1000, 'f', 3, 64))
	h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(after.Seconds(), 'f', 3, 64))
	h.Set("X-RateLimit-Bucket", rl.bucket)
}

func bucketHash(route string) string {
	sum := sha256.Sum256([]byte(route))
	return hex.EncodeToString(sum[:16])
}

// rateLimitLocked counts a request against its bucket (bot, route, major
// parameter) and the bot's global limit. Injected faults are not counted.
func (s *Server) rateLimitLocked(b *Bot, route, major string, injected bool) rateLimit {
	who := "anonymous"
	if b != nil {
		who = b.user.ID
	}
	key := who + " " + route + " " + major
	w := s.buckets[key]
	if w == nil {
		w = &window{}
		s.buckets[key] = w
	}
	now := time.Now()
	rl := rateLimit{limit: s.opts.RouteLimit, bucket: bucketHash(route)}
	if injected {
		if !now.Before(w.reset) {
			rl.remaining, rl.reset = rl.limit, now.Add(s.opts.RouteWindow)
		} else {
			rl.remaining, rl.reset = max(rl.limit-w.count, 0), w.reset
		}
		return rl
	}
	w.hit(now, s.opts.RouteWindow)
	rl.remaining = max(rl.limit-w.count, 0)
	rl.reset = w.reset
	if s.opts.GlobalLimit > 0 {
		g := s.globals[who]
		if g == nil {
			g = &window{}
			s.globals[who] = g
		}
		g.hit(now, time.Second)
		if g.count > s.opts.GlobalLimit {
			f := TooManyRequests(time.Until(g.reset), true)
			rl.limited = &f
			return rl
		}
	}
	if w.count > rl.limit {
		f := TooManyRequests(time.Until(w.reset), false)
		rl.limited = &f
	}
	return rl
}

// writeFault writes an injected (or real) error answer.
func (s *Server) writeFault(w http.ResponseWriter, rl rateLimit, f Fault) {
	h := w.Header()
	if f.Status == http.StatusTooManyRequests {
		secs := f.RetryAfter.Seconds()
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(secs))))
		scope := f.Scope
		if scope == "" {
			scope = "user"
		}
		h.Set("X-RateLimit-Scope", scope)
		msg := f.Message
		if msg == "" {
			msg = "You are being rate limited."
			if scope == "shared" {
				msg = "The resource is being rate limited."
			}
		}
		if f.Global {
			h.Set("X-RateLimit-Global", "true")
			if f.BucketHeaders {
				h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
			} else {
				for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"} {
					h.Del(k)
				}
			}
		} else if scope != "shared" {
			reset := time.Now().Add(f.RetryAfter)
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Reset", strconv.FormatFloat(float64(reset.UnixMilli())/1000, 'f', 3, 64))
			h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
		}
		body := map[string]any{"message": msg, "retry_after": math.Round(secs*1000) / 1000, "global": f.Global}
		if f.Code != 0 {
			body["code"] = f.Code
		}
		writeJSON(w, http.StatusTooManyRequests, body)
		return
	}
	msg := f.Message
	if msg == "" {
		msg = fmt.Sprintf("%d: %s", f.Status, http.StatusText(f.Status))
	}
	writeJSON(w, f.Status, errorBody(f.Status, f.Code, msg, nil))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// flexID is a snowflake given as a JSON string or number.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n.String())
	return nil
}
