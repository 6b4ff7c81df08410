package engine

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/switchboard-gw/switchboard/core"
)

// ChatPrivacy knows which instances' native chat ids are secrets (see
// core.PrivateChatIDs) and shows chat ids accordingly. Only the instances
// it was told are public show their ids in full: an instance that was not
// built (disabled, gone from the config, or an unparsable chat id) counts
// as private, so a mistake hides an id rather than shows it. The zero
// value treats every instance as private.
type ChatPrivacy struct {
	public map[string]bool
}

// privacyOf asks every built instance whether its chat ids are private.
func privacyOf(instances []*instance) ChatPrivacy {
	p := ChatPrivacy{public: make(map[string]bool)}
	for _, inst := range instances {
		if inst.messenger == nil {
			continue // disabled: unknown, so private
		}
		if pc, ok := inst.messenger.(core.PrivateChatIDs); ok && pc.PrivateChatIDs() {
			continue
		}
		p.public[inst.name] = true
	}
	return p
}

// Private reports whether instance's native chat ids are secrets.
func (p ChatPrivacy) Private(instance string) bool { return !p.public[instance] }

// Show returns a namespaced chat id as operators may see it: in full for
// a public instance, else "<instance>:" and core.ShortChatID of the
// native id.
func (p ChatPrivacy) Show(chat string) string {
	instance, native, ok := strings.Cut(chat, ":")
	switch {
	case !ok:
		return core.ShortChatID(chat)
	case !p.Private(instance):
		return chat
	default:
		return instance + ":" + core.ShortChatID(native)
	}
}

// Scrub replaces a private chat's native id in s (an error text about
// that chat) with what Show shows of it.
func (p ChatPrivacy) Scrub(chat, s string) string {
	instance, native, ok := strings.Cut(chat, ":")
	if !ok {
		instance, native = "", chat
	}
	if native == "" || !p.Private(instance) {
		return s
	}
	return strings.ReplaceAll(s, native, core.ShortChatID(native))
}

// chatKeys are the log attribute keys whose values are chat ids.
var chatKeys = map[string]bool{"chat": true, "chat_id": true, "external_chat_id": true}

// privacyHandler is the gateway's log handler in front of the one it was
// given: the value of every attribute named by chatKeys is shown as
// ChatPrivacy.Show shows it, and a private chat's native id is replaced
// in the line's other strings too (an error that quotes it). Log lines
// need no care at their call site: a core line passes the namespaced id
// ("web:<session>"); an adapter's line passes its native one, and the
// instance its logger carries (core.Instance.Logger has instance=<name>)
// says whose it is.
type privacyHandler struct {
	inner   slog.Handler
	privacy *atomic.Pointer[ChatPrivacy] // nil until the instances are built: all private
	// instance is the value of an "instance" attribute added with
	// WithAttrs: the chat ids in this logger's lines are its.
	instance string
	// secrets are the private native ids among the attributes added with
	// WithAttrs, to be scrubbed from every line.
	secrets []string
}

func newPrivacyHandler(inner slog.Handler, p *atomic.Pointer[ChatPrivacy]) *privacyHandler {
	return &privacyHandler{inner: inner, privacy: p}
}

func (h *privacyHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *privacyHandler) policy() ChatPrivacy {
	if p := h.privacy.Load(); p != nil {
		return *p
	}
	return ChatPrivacy{}
}

// showChat returns what a log line shows of chat attribute value v, and
// the native id to scrub from the rest of the line ("" when public).
func (h *privacyHandler) showChat(p ChatPrivacy, v slog.Value) (slog.Value, string) {
	s := v.String()
	if v.Kind() == slog.KindAny {
		s = fmt.Sprint(v.Any())
	}
	instance, native := h.instance, s
	if rest, ok := strings.CutPrefix(s, h.instance+":"); h.instance != "" && ok {
		native = rest
	} else if h.instance == "" {
		var found bool
		if instance, native, found = strings.Cut(s, ":"); !found {
			instance, native = "", s
		}
	}
	if !p.Private(instance) || native == "" {
		return v, ""
	}
	shown := core.ShortChatID(native)
	if strings.HasSuffix(s, ":"+native) {
		shown = s[:len(s)-len(native)] + shown
	}
	return slog.StringValue(shown), native
}

// rewrite applies the privacy rules to a, collecting the private native
// ids it shows into secrets (first pass, chat attributes only) or
// scrubbing secrets from it (second pass, everything else).
func (h *privacyHandler) rewrite(p ChatPrivacy, a slog.Attr, secrets *[]string, scrub bool) (slog.Attr, bool) {
	a.Value = a.Value.Resolve()
	switch {
	case a.Value.Kind() == slog.KindGroup:
		attrs := a.Value.Group()
		out := make([]slog.Attr, len(attrs))
		changed := false
		for i, g := range attrs {
			var c bool
			out[i], c = h.rewrite(p, g, secrets, scrub)
			changed = changed || c
		}
		if changed {
			a.Value = slog.GroupValue(out...)
		}
		return a, changed
	case chatKeys[a.Key]:
		if scrub {
			return a, false
		}
		v, native := h.showChat(p, a.Value)
		if native == "" {
			return a, false
		}
		*secrets = append(*secrets, native)
		a.Value = v
		return a, true
	case scrub && len(*secrets) > 0:
		var s string
		switch a.Value.Kind() {
		case slog.KindString:
			s = a.Value.String()
		case slog.KindAny:
			switch x := a.Value.Any().(type) {
			case error:
				s = x.Error()
			case fmt.Stringer:
				s = x.String()
			default:
				return a, false
			}
		default:
			return a, false
		}
		scrubbed := scrubAll(s, *secrets)
		if scrubbed == s {
			return a, false
		}
		a.Value = slog.StringValue(scrubbed)
		return a, true
	}
	return a, false
}

func scrubAll(s string, secrets []string) string {
	for _, n := range secrets {
		if n != "" && strings.Contains(s, n) {
			s = strings.ReplaceAll(s, n, core.ShortChatID(n))
		}
	}
	return s
}

func (h *privacyHandler) Handle(ctx context.Context, r slog.Record) error {
	hasChat := false
	r.Attrs(func(a slog.Attr) bool {
		if chatKeys[a.Key] || a.Value.Kind() == slog.KindGroup || a.Value.Kind() == slog.KindLogValuer {
			hasChat = true
			return false
		}
		return true
	})
	if !hasChat && len(h.secrets) == 0 {
		return h.inner.Handle(ctx, r)
	}
	p := h.policy()
	attrs := make([]slog.Attr, 0, r.NumAttrs())
	r.Attrs(func(a slog.Attr) bool {
		attrs = append(attrs, a)
		return true
	})
	secrets := append([]string(nil), h.secrets...)
	changed := false
	for i := range attrs {
		var c bool
		attrs[i], c = h.rewrite(p, attrs[i], &secrets, false)
		changed = changed || c
	}
	if len(secrets) > 0 {
		for i := range attrs {
			var c bool
			attrs[i], c = h.rewrite(p, attrs[i], &secrets, true)
			changed = changed || c
		}
	}
	msg := scrubAll(r.Message, secrets)
	if !changed && msg == r.Message {
		return h.inner.Handle(ctx, r)
	}
	out := slog.NewRecord(r.Time, r.Level, msg, r.PC)
	out.AddAttrs(attrs...)
	return h.inner.Handle(ctx, out)
}

func (h *privacyHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.secrets = append([]string(nil), h.secrets...)
	for _, a := range attrs {
		if a.Key == "instance" {
			c.instance = a.Value.Resolve().String()
		}
	}
	p := c.policy()
	out := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		out[i], _ = c.rewrite(p, a, &c.secrets, false)
	}
	for i := range out {
		out[i], _ = c.rewrite(p, out[i], &c.secrets, true)
	}
	c.inner = h.inner.WithAttrs(out)
	return &c
}

func (h *privacyHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}
