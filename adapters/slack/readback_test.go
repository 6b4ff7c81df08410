package slack

import (
	"strings"
	"testing"

	"github.com/switchboard-gw/switchboard/core"
	"github.com/switchboard-gw/switchboard/kit/richtext"
	fakeslack "github.com/switchboard-gw/switchboard/test/fakes/slack"
)

// maybeSent is out with core.Outbound.MaybeSent: a retry after an
// attempt that failed, or one in flight when the gateway died.
func maybeSent(chat, id, text string) core.Outbound {
	o := out(chat, id, text)
	o.MaybeSent = true
	return o
}

// TestAnswerThatWentOutIsNotPostedAgain: Slack takes the second part of a
// long answer but its reply is lost; a new adapter (the gateway
// restarted: nothing in memory) asked again with MaybeSent reads the
// conversation back and posts only the parts after it. A first attempt
// reads nothing back.
func TestAnswerThatWentOutIsNotPostedAgain(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	dm := h.team.IM(h.user(0)).ID
	long := strings.Repeat("The smart lamp is bright. ", 170) + "\n\n" + strings.Repeat("It ships in two days. ", 200) + "\n\n" + strings.Repeat("Returns are free. ", 200)
	h.srv.FailNext("chat.postMessage", fakeslack.Fault{}, fakeslack.Fault{DropAnswer: true})
	if err := h.a.Send(ctxTimeout(t), out(h.dm(0), "r1", long)); err == nil {
		t.Fatal("Send succeeded though Slack's answer to part 2 was lost")
	}
	if n := len(h.team.Posted(dm)); n != 2 {
		t.Fatalf("%d parts posted before the lost answer, want 2", n)
	}
	if n := len(h.srv.CallsTo("conversations.history")); n != 0 {
		t.Fatalf("a first attempt read the conversation back %d times", n)
	}

	again := h.build(nil)
	h.start(again)
	if err := again.Send(ctxTimeout(t), maybeSent(h.dm(0), "r1", long)); err != nil {
		t.Fatal(err)
	}
	want := richtext.Split(richtext.Parse(long), richtext.SlackMrkdwn{}, messageLimit)
	parts := h.posted(dm)
	if len(parts) != len(want) || len(want) < 3 {
		t.Fatalf("%d parts posted in all, want the answer's %d, each once", len(parts), len(want))
	}
	for i := range want {
		if parts[i] != want[i].Text {
			t.Fatalf("part %d posted is not the answer's part %d", i+1, i+1)
		}
	}
	for i, p := range h.team.Posted(dm) {
		if !strings.Contains(p.Params["metadata"], `"id":"r1"`) {
			t.Fatalf("part %d carries no metadata naming its answer: %q", i+1, p.Params["metadata"])
		}
	}
	if n := len(h.srv.CallsTo("conversations.history")); n != 1 {
		t.Fatalf("read the conversation back %d times, want once", n)
	}
	// Another answer that may have gone out, but did not: posted.
	if err := again.Send(ctxTimeout(t), maybeSent(h.dm(0), "r2", "Anything else?")); err != nil {
		t.Fatal(err)
	}
	if n := len(h.team.Posted(dm)); n != len(want)+1 {
		t.Fatalf("%d messages posted, want %d: an answer not found was not posted", n, len(want)+1)
	}
}

// TestThreadAnswerReadBack: an answer in a mention's thread is looked for
// in the thread (conversations.replies).
func TestThreadAnswerReadBack(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	r := h.team.Mention(h.user(0), h.general, "price?", "")
	eventually(t, "the mention delivered", func() bool { return len(h.core.Accepted()) == 1 })
	chat := h.core.Accepted()[0].ChatID
	h.srv.FailNext("chat.postMessage", fakeslack.Fault{DropAnswer: true})
	if err := h.a.Send(ctxTimeout(t), out(chat, "r1", "It is $29.")); err == nil {
		t.Fatal("Send succeeded though Slack's answer was lost")
	}
	if err := h.a.Send(ctxTimeout(t), maybeSent(chat, "r1", "It is $29.")); err != nil {
		t.Fatal(err)
	}
	if posted := h.team.Posted(h.general.ID); len(posted) != 1 || posted[0].ThreadTS != r.TS {
		t.Fatalf("posted %+v, want the answer once in the thread", posted)
	}
	if n := len(h.srv.CallsTo("conversations.replies")); n != 1 {
		t.Fatalf("conversations.replies called %d times, want once", n)
	}
}

// TestReadBackFailures: without the scope to read history the answer is
// posted (at least once, logged); a rate-limited read posts nothing and
// the outbox waits, rather than risk a repeat.
func TestReadBackFailures(t *testing.T) {
	h := newHarness(t, nil)
	h.start(h.a)
	dm := h.team.IM(h.user(0)).ID
	h.srv.FailNext("conversations.history", fakeslack.RateLimited(7))
	err := h.a.Send(ctxTimeout(t), maybeSent(h.dm(0), "r1", "hello"))
	if wait, ok := core.RetryAfter(err); !ok || wait < 7e9 {
		t.Fatalf("Send with a rate-limited read back = %v, want a RetryAfter of 7s", err)
	}
	if n := len(h.team.Posted(dm)); n != 0 {
		t.Fatalf("%d posted while the read back was refused", n)
	}
	h.srv.FailNext("conversations.history", fakeslack.Fault{Error: "missing_scope"})
	if err := h.a.Send(ctxTimeout(t), maybeSent(h.dm(0), "r1", "hello")); err != nil {
		t.Fatal(err)
	}
	if n := len(h.team.Posted(dm)); n != 1 {
		t.Fatalf("%d posted without the history scope, want 1", n)
	}
	if !h.logs.Contains("cannot read back a conversation") {
		t.Fatalf("the missing scope was not logged:\n%s", h.logs)
	}
}
