package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Call is one Web API request the server received.
type Call struct {
	Method string // as requested, e.g. "chat.postMessage"
	// Params are the request's parameters without the token; objects and
	// arrays (blocks, attachments) as JSON text.
	Params      map[string]string
	Token       string
	TokenKind   TokenKind
	TokenVia    string // "header" (Authorization: Bearer), "body" (a form field) or ""
	ContentType string
	Team        string // the team id of a known token
	At          time.Time
	// Status is the HTTP status answered; 0 when the connection was
	// dropped or the client went away first.
	Status int
	// Error is Slack's error code of an {"ok":false} answer, or
	// "ratelimited" for a 429.
	Error string
	// Warning is the warning of an ok answer ("missing_charset", ...).
	Warning string
	// Answer is the body answered.
	Answer string
	// Injected is set when a Fault decided the answer.
	Injected bool
}

// Fault is one injected failure of one Web API request. A zero Status and
// Error mean the request is processed normally after Delay.
type Fault struct {
	// Status is the HTTP status to answer instead of processing the
	// request: 429 (with RetryAfter) or a 5xx.
	Status int
	// RetryAfter is the Retry-After header, in seconds, of a 429.
	RetryAfter int
	// Error makes the request answer HTTP 200 {"ok":false,"error":Error}
	// without being processed (e.g. "internal_error", "fatal_error").
	Error string
	// Delay is waited before the request is looked at; if the client goes
	// away meanwhile, it is not processed.
	Delay time.Duration
	// Drop closes the connection without an answer, before processing.
	Drop bool
	// DropAnswer processes the request, then closes the connection
	// without an answer: Slack took it, and the client cannot know (a
	// posted message whose answer was lost to a timeout or a crash).
	DropAnswer bool
}

// RateLimited is Slack's answer to a method called too often: HTTP 429,
// Retry-After: seconds, {"ok":false,"error":"ratelimited"}. slack-go turns
// it into a *slack.RateLimitedError with RetryAfter = seconds.
func RateLimited(seconds int) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: seconds}
}

// ServerError is an HTTP 5xx from Slack's front end, with an HTML body.
// slack-go turns it into a slack.StatusCodeError.
func ServerError(status int) Fault { return Fault{Status: status} }

// SlackError is an HTTP 200 {"ok":false,"error":code} answer.
func SlackError(code string) Fault { return Fault{Error: code} }

// FailNext queues faults for the next requests of method (case-insensitive,
// e.g. "chat.postMessage"; "" means any method). Each fault is used once,
// in order.
func (s *Server) FailNext(method string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(method)
	s.faults[key] = append(s.faults[key], faults...)
}

// RateLimit makes the next n calls of method answer HTTP 429 with
// Retry-After: retryAfter.
func (s *Server) RateLimit(method string, n, retryAfter int) {
	for range n {
		s.FailNext(method, RateLimited(retryAfter))
	}
}

func (s *Server) takeFaultLocked(method string) (Fault, bool) {
	for _, key := range []string{method, ""} {
		if q := s.faults[key]; len(q) > 0 {
			f := q[0]
			s.faults[key] = q[1:]
			return f, true
		}
	}
	return Fault{}, false
}

// Calls returns every Web API request received, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls)
	for i := range out {
		out[i].Params = maps.Clone(out[i].Params)
	}
	return out
}

// CallsTo returns the requests of one method (case-insensitive).
func (s *Server) CallsTo(method string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if strings.EqualFold(c.Method, method) {
			out = append(out, c)
		}
	}
	return out
}

// WaitCalls waits until the server has answered at least n requests of
// method.
func (s *Server) WaitCalls(ctx context.Context, method string, n int) error {
	return s.Wait(ctx, func() bool {
		k := 0
		for _, c := range s.CallsTo(method) {
			if c.Status != 0 || c.Answer != "" {
				k++
			}
		}
		return k >= n
	})
}

// apiRequest is a parsed Web API request.
type apiRequest struct {
	params    map[string]string
	token     string
	via       string
	ctype     string
	charset   bool
	parseErr  string // a Slack error code when the body could not be read
	ref       tokenRef
	tokenKind TokenKind
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 10 << 20

// parseRequest reads a request as Slack does: parameters from the query
// string and from a form (urlencoded or multipart) or JSON body. The token
// is taken from the Authorization header, or from a form body's token
// field; Slack ignores a token in a JSON body (JSON requests must use the
// header) and no longer takes one from the query string.
func parseRequest(r *http.Request) apiRequest {
	req := apiRequest{params: map[string]string{}}
	for k, v := range r.URL.Query() {
		if k != "token" {
			req.params[k] = v[0]
		}
	}
	var formToken string
	if r.Method == http.MethodPost && r.Body != nil {
		ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		req.ctype = ct
		_, req.charset = ctParams["charset"]
		body := http.MaxBytesReader(nil, r.Body, maxRequestBytes)
		switch ct {
		case "application/json":
			raw, err := io.ReadAll(body)
			if err != nil {
				req.parseErr = "request_timeout"
				break
			}
			if strings.TrimSpace(string(raw)) == "" {
				break
			}
			dec := json.NewDecoder(strings.NewReader(string(raw)))
			dec.UseNumber()
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				req.parseErr = "invalid_json"
				break
			}
			for k, v := range m {
				if k == "token" {
					continue
				}
				switch v := v.(type) {
				case string:
					req.params[k] = v
				case json.Number:
					req.params[k] = v.String()
				case bool:
					req.params[k] = strconv.FormatBool(v)
				case nil:
				default:
					req.params[k] = string(mustJSON(v))
				}
			}
		case "application/x-www-form-urlencoded", "multipart/form-data":
			r.Body = body
			var err error
			if ct == "multipart/form-data" {
				err = r.ParseMultipartForm(maxRequestBytes)
			} else {
				err = r.ParseForm()
			}
			if err != nil {
				req.parseErr = "invalid_form_data"
				break
			}
			for k, v := range r.PostForm {
				if k == "token" {
					formToken = v[0]
					continue
				}
				req.params[k] = v[0]
			}
		case "":
			raw, _ := io.ReadAll(io.LimitReader(body, 1))
			if len(raw) > 0 {
				req.parseErr = "missing_post_type"
			}
		default:
			req.parseErr = "invalid_post_type"
		}
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		if tok, ok := strings.CutPrefix(auth, "Bearer "); ok {
			req.token, req.via = strings.TrimSpace(tok), "header"
		}
	} else if formToken != "" {
		req.token, req.via = formToken, "body"
	}
	return req
}

// warning is Slack's warning for an ok answer: a JSON body should say its
// charset, a form body should not.
func (req apiRequest) warning() string {
	switch {
	case req.ctype == "application/json" && !req.charset:
		return "missing_charset"
	case (req.ctype == "application/x-www-form-urlencoded" || req.ctype == "multipart/form-data") && req.charset:
		return "superfluous_charset"
	}
	return ""
}

// methodSpec is what a Web API method needs.
type methodSpec struct {
	token TokenKind // the kind of token it takes
	run   func(t *Team, req apiRequest) (map[string]any, string)
}

var methods = map[string]methodSpec{
	"auth.test":             {TokenBot, (*Team).authTest},
	"chat.postmessage":      {TokenBot, (*Team).postMessage},
	"users.info":            {TokenBot, (*Team).usersInfo},
	"conversations.info":    {TokenBot, (*Team).conversationsInfo},
	"conversations.history": {TokenBot, (*Team).conversationsHistory},
	"conversations.replies": {TokenBot, (*Team).conversationsReplies},
	"apps.connections.open": {TokenApp, (*Team).connectionsOpen},
}

// serveAPI answers one Web API request.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, method string) {
	lower := strings.ToLower(method)
	req := parseRequest(r)

	s.mu.Lock()
	ref, known := s.tokens[req.token]
	switch {
	case req.token == "":
		req.tokenKind = TokenNone
	case known:
		req.ref, req.tokenKind = ref, ref.kind
	default:
		req.tokenKind = TokenUnknown
	}
	call := Call{Method: method, Params: req.params, Token: req.token, TokenKind: req.tokenKind,
		TokenVia: req.via, ContentType: r.Header.Get("Content-Type"), At: time.Now()}
	if known {
		call.Team = ref.team.id
	}
	idx := len(s.calls)
	s.calls = append(s.calls, call)
	fault, injected := s.takeFaultLocked(lower)
	s.recordLocked()
	s.mu.Unlock()

	finish := func(status int, code, warning string, answer []byte) {
		s.mu.Lock()
		c := &s.calls[idx]
		c.Status, c.Error, c.Warning, c.Answer, c.Injected = status, code, warning, string(answer), injected
		s.recordLocked()
		s.mu.Unlock()
	}

	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			finish(0, "", "", nil)
			return
		}
	}
	switch {
	case fault.Drop:
		finish(0, "", "", nil)
		dropConnection(w)
		return
	case fault.Status == http.StatusTooManyRequests:
		body := mustJSON(map[string]any{"ok": false, "error": "ratelimited"})
		if fault.RetryAfter >= 0 {
			w.Header().Set("Retry-After", strconv.Itoa(fault.RetryAfter))
		}
		finish(fault.Status, "ratelimited", "", body)
		writeJSON(w, fault.Status, body)
		return
	case fault.Status != 0:
		// Slack's front end answers 5xx with an HTML page, not JSON.
		body := fmt.Appendf(nil, "<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body></html>",
			fault.Status, http.StatusText(fault.Status), fault.Status, http.StatusText(fault.Status))
		finish(fault.Status, "", "", body)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault.Status)
		_, _ = w.Write(body)
		return
	case fault.Error != "":
		body := mustJSON(map[string]any{"ok": false, "error": fault.Error})
		finish(http.StatusOK, fault.Error, "", body)
		writeJSON(w, http.StatusOK, body)
		return
	}
	injected = fault.DropAnswer // a pure delay does not decide the answer

	result, code := s.dispatch(lower, req)
	if fault.DropAnswer {
		finish(0, code, "", nil)
		dropConnection(w)
		return
	}
	var warning string
	if code == "" {
		warning = req.warning()
	}
	body := answerBody(result, code, warning)
	finish(http.StatusOK, code, warning, body)
	writeJSON(w, http.StatusOK, body)
}

// dispatch checks the token and runs the method. It returns the fields of
// an ok answer, or an error code.
func (s *Server) dispatch(method string, req apiRequest) (map[string]any, string) {
	spec, ok := methods[method]
	if !ok {
		return nil, "unknown_method"
	}
	if req.parseErr != "" {
		return nil, req.parseErr
	}
	switch req.tokenKind {
	case TokenNone:
		return nil, "not_authed"
	case TokenUnknown:
		return nil, "invalid_auth"
	}
	t := req.ref.team
	s.mu.Lock()
	revoked := (req.tokenKind == TokenBot && t.botRevoked) || (req.tokenKind == TokenApp && t.appRevoked)
	s.mu.Unlock()
	if revoked {
		return nil, "token_revoked"
	}
	if req.tokenKind != spec.token {
		return nil, "not_allowed_token_type"
	}
	return spec.run(t, req)
}

func answerBody(result map[string]any, code, warning string) []byte {
	if code != "" {
		return mustJSON(map[string]any{"ok": false, "error": code})
	}
	out := map[string]any{"ok": true}
	maps.Copy(out, result)
	if warning != "" {
		out["warning"] = warning
		out["response_metadata"] = map[string]any{"warnings": []string{warning}}
	}
	return mustJSON(out)
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

func (t *Team) authTest(apiRequest) (map[string]any, string) {
	return map[string]any{
		"url":                   "https://" + t.opts.Domain + ".slack.com/",
		"team":                  t.opts.Name,
		"user":                  t.bot.Name,
		"team_id":               t.id,
		"user_id":               t.bot.ID,
		"bot_id":                t.bot.BotID,
		"is_enterprise_install": false,
	}, ""
}

func (t *Team) usersInfo(req apiRequest) (map[string]any, string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	u, ok := t.users[req.params["user"]]
	if !ok {
		return nil, "user_not_found"
	}
	return map[string]any{"user": t.userJSONLocked(u, req.params["include_locale"] == "true")}, ""
}

func (t *Team) userJSONLocked(u *User, locale bool) map[string]any {
	tz := u.TZ
	if tz == "" {
		tz = "Europe/Amsterdam"
	}
	first, last, _ := strings.Cut(u.RealName, " ")
	profile := map[string]any{
		"title":                   "",
		"phone":                   "",
		"skype":                   "",
		"real_name":               u.RealName,
		"real_name_normalized":    u.RealName,
		"display_name":            u.DisplayName,
		"display_name_normalized": u.DisplayName,
		"fields":                  nil,
		"status_text":             "",
		"status_emoji":            "",
		"status_expiration":       0,
		"avatar_hash":             "g" + strings.ToLower(u.ID[1:]),
		"first_name":              first,
		"last_name":               last,
		"image_24":                "https://secure.gravatar.com/avatar/" + strings.ToLower(u.ID) + ".jpg?s=24",
		"image_48":                "https://secure.gravatar.com/avatar/" + strings.ToLower(u.ID) + ".jpg?s=48",
		"image_72":                "https://secure.gravatar.com/avatar/" + strings.ToLower(u.ID) + ".jpg?s=72",
		"team":                    t.id,
	}
	if u.IsBot {
		profile["bot_id"] = u.BotID
		profile["always_active"] = true
		if u.ID == t.bot.ID {
			profile["api_app_id"] = t.opts.AppID
		}
	}
	out := map[string]any{
		"id":                  u.ID,
		"team_id":             t.id,
		"name":                u.Name,
		"deleted":             u.Deleted,
		"color":               "9f69e7",
		"real_name":           u.RealName,
		"tz":                  tz,
		"tz_label":            "Central European Time",
		"tz_offset":           3600,
		"profile":             profile,
		"is_admin":            false,
		"is_owner":            false,
		"is_primary_owner":    false,
		"is_restricted":       false,
		"is_ultra_restricted": false,
		"is_bot":              u.IsBot,
		"is_app_user":         false,
		"updated":             time.Now().Unix(),
		"is_email_confirmed":  !u.IsBot,
	}
	if locale {
		out["locale"] = "en-US"
	}
	return out
}

func (t *Team) conversationsInfo(req apiRequest) (map[string]any, string) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	c, ok := t.channels[req.params["channel"]]
	if !ok || (c.IsPrivate && !c.BotMember) {
		return nil, "channel_not_found"
	}
	ch := t.channelJSONLocked(c)
	if req.params["include_num_members"] == "true" && !c.IsIM {
		ch["num_members"] = t.numMembersLocked(c)
	}
	if req.params["include_locale"] == "true" {
		ch["locale"] = "en-US"
	}
	return map[string]any{"channel": ch}, ""
}

func (t *Team) numMembersLocked(c *Channel) int {
	n := 0
	for _, u := range t.users {
		if !u.IsBot {
			n++
		}
	}
	if c.BotMember {
		n++
	}
	return n
}

func (t *Team) channelJSONLocked(c *Channel) map[string]any {
	if c.IsIM {
		return map[string]any{
			"id":              c.ID,
			"created":         c.Created,
			"is_archived":     false,
			"is_im":           true,
			"is_org_shared":   false,
			"context_team_id": t.id,
			"updated":         c.Created * 1000,
			"user":            c.User,
			"is_user_deleted": false,
			"priority":        0,
		}
	}
	empty := map[string]any{"value": "", "creator": "", "last_set": 0}
	return map[string]any{
		"id":                         c.ID,
		"name":                       c.Name,
		"is_channel":                 true,
		"is_group":                   false,
		"is_im":                      false,
		"is_mpim":                    false,
		"is_private":                 c.IsPrivate,
		"created":                    c.Created,
		"is_archived":                c.Archived,
		"is_general":                 false,
		"unlinked":                   0,
		"name_normalized":            c.Name,
		"is_shared":                  false,
		"is_org_shared":              false,
		"is_pending_ext_shared":      false,
		"pending_shared":             []string{},
		"context_team_id":            t.id,
		"updated":                    c.Created * 1000,
		"parent_conversation":        nil,
		"creator":                    c.Creator,
		"is_ext_shared":              false,
		"shared_team_ids":            []string{t.id},
		"pending_connected_team_ids": []string{},
		"is_member":                  c.BotMember,
		"topic":                      empty,
		"purpose":                    empty,
		"previous_names":             []string{},
	}
}

// connectionsOpen hands out a new single-use WebSocket URL.
func (t *Team) connectionsOpen(apiRequest) (map[string]any, string) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ticket := s.uuidLocked()
	s.tickets[ticket] = t
	appHash := fakeSecret("apphash", len(s.tickets))[:64]
	wsURL := "ws" + strings.TrimPrefix(s.root, "http") + "/link/?ticket=" + ticket + "&app_id=" + appHash
	return map[string]any{"url": wsURL}, ""
}
