package engine

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
)

const testSession = "Q2hhdCB3aXRoIHVzIQxyzA" // a webchat session id: 22 characters

func TestShortChatID(t *testing.T) {
	for in, want := range map[string]string{
		testSession:  "Q2hhdC…",
		"abcdefghij": "abc…",
		"ab":         "…",
		"":           "…",
		"ёжзийклмнопрстуфхцчшщ": "ёжзийк…",
	} {
		if got := core.ShortChatID(in); got != want {
			t.Errorf("ShortChatID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestChatPrivacyShowAndScrub(t *testing.T) {
	p := ChatPrivacy{public: map[string]bool{"tg": true}}
	for in, want := range map[string]string{
		"tg:42":                "tg:42",
		"web:" + testSession:   "web:Q2hhdC…",
		"gone:" + testSession:  "gone:Q2hhdC…", // not configured: private
		"no-colon-at-all-here": "no-col…",
	} {
		if got := p.Show(in); got != want {
			t.Errorf("Show(%q) = %q, want %q", in, got, want)
		}
	}
	if got := p.Scrub("web:"+testSession, "send to "+testSession+": disk full"); got != "send to Q2hhdC…: disk full" {
		t.Errorf("Scrub = %q", got)
	}
	if got := p.Scrub("tg:42", "send to 42: blocked"); got != "send to 42: blocked" {
		t.Errorf("Scrub of a public chat = %q", got)
	}
	if (ChatPrivacy{}).Show("tg:42") != "tg:…" {
		t.Errorf("the zero ChatPrivacy shows %q, want every id shortened", (ChatPrivacy{}).Show("tg:42"))
	}
}

// testPrivacyLogger logs through a privacyHandler, to text in buf.
func testPrivacyLogger(p *ChatPrivacy) (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	ptr := new(atomic.Pointer[ChatPrivacy])
	if p != nil {
		ptr.Store(p)
	}
	return slog.New(newPrivacyHandler(slog.NewTextHandler(&buf, nil), ptr)), &buf
}

func TestPrivacyHandler(t *testing.T) {
	p := &ChatPrivacy{public: map[string]bool{"tg": true}}
	log, buf := testPrivacyLogger(p)
	errSession := errors.New("send message to chat " + testSession + ": mailbox full")

	// The core's lines: namespaced ids, no instance attribute.
	log.Error("message dead-lettered", "chat", "web:"+testSession, "seq", 7, "err", errSession)
	log.Warn("delivery failed, will retry", "chat", "tg:42", "err", errors.New("chat 42 is slow"))
	log.Info("odd", slog.Group("g", "chat", "web:"+testSession, "note", "about "+testSession))
	log.Info("message about "+testSession, "chat_id", "web:"+testSession)
	// An instance's lines: native ids, the instance from With.
	inst := log.With("adapter", "webchat", "instance", "web")
	inst.Warn("inbound message rejected", "chat", testSession, "err", errSession)
	inst.Debug("dropped") // below the level: nothing
	inst.Info("dialog state changed", "chat", "web:"+testSession)
	// A chat attached with With is shortened, and scrubbed from later attrs.
	inst.With("chat", testSession).Info("later", "err", errSession)
	log.With("instance", "tg").Info("bot blocked", "chat", int64(42))

	out := buf.String()
	if strings.Contains(out, testSession) {
		t.Fatalf("a full session id was logged:\n%s", out)
	}
	for _, want := range []string{
		`msg="message dead-lettered" chat=web:Q2hhdC… seq=7 err="send message to chat Q2hhdC…: mailbox full"`,
		`chat=tg:42 err="chat 42 is slow"`,
		`g.chat=web:Q2hhdC… g.note="about Q2hhdC…"`,
		`msg="message about Q2hhdC…" chat_id=web:Q2hhdC…`,
		`instance=web chat=Q2hhdC… err="send message to chat Q2hhdC…: mailbox full"`,
		`instance=web chat=web:Q2hhdC…`,
		`msg=later adapter=webchat instance=web chat=Q2hhdC… err="send message to chat Q2hhdC…: mailbox full"`,
		`instance=tg chat=42`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "dropped") {
		t.Errorf("a debug line passed the info level:\n%s", out)
	}
}

// TestPrivacyHandlerBeforeInstancesKnown: until the gateway knows whose
// chat ids are public, every one is shortened.
func TestPrivacyHandlerBeforeInstancesKnown(t *testing.T) {
	log, buf := testPrivacyLogger(nil)
	log.Info("early", "chat", "tg:4242424242")
	if out := buf.String(); strings.Contains(out, "4242424242") || !strings.Contains(out, "chat=tg:424…") {
		t.Fatalf("logged %s, want the chat id shortened", out)
	}
}

// testPrivateMessenger is a Messenger with private chat ids.
type testPrivateMessenger struct{ core.Messenger }

func (testPrivateMessenger) PrivateChatIDs() bool { return true }

func TestPrivacyOf(t *testing.T) {
	p := privacyOf([]*instance{
		{name: "web", messenger: testPrivateMessenger{}},
		{name: "tg", messenger: nopMessenger{}},
		{name: "off"}, // disabled: never built
	})
	if !p.Private("web") || p.Private("tg") || !p.Private("off") || !p.Private("unknown") {
		t.Fatalf("privacy = %+v: want web, off and unknown private, tg public", p)
	}
}
