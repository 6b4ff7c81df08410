package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboard-gw/switchboard/internal/browsertest"
)

// The widget on the demo's host page (another origin) opens the chat in
// its iframe, and the visitor chats there: the frame is not blocked by
// frame-ancestors, and the reply comes back.
func TestDemoBrowserWidgetOnHostPageChats(t *testing.T) {
	u := startDemo(t)
	ctx := browsertest.New(t)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(u.site+"/"),
		chromedp.WaitVisible(chromedp.CSS("button[aria-expanded]")),
		chromedp.Click(chromedp.CSS("button[aria-expanded]")),
		chromedp.WaitVisible(chromedp.CSS("iframe")),
	); err != nil {
		t.Fatal(err)
	}
	frames, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS("iframe")))
	if err != nil || len(frames) != 1 {
		t.Fatalf("widget iframe: %v (%d)", err, len(frames))
	}
	// The host and the chat are one site (127.0.0.1), so the frame runs in
	// the page's process and FromNode reaches into it.
	in := chromedp.FromNode(frames[0])
	// A frame blocked by frame-ancestors never shows the input.
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx,
		chromedp.WaitVisible(chromedp.ID("input"), in),
		chromedp.SendKeys(chromedp.ID("input"), "hello", in),
		chromedp.Click(chromedp.ID("send"), in),
	); err != nil {
		t.Fatalf("chat in the widget's iframe: %v", err)
	}
	want := "northwind gadgets" // the reply, not the page's own welcome
	deadline := time.Now().Add(20 * time.Second)
	for {
		texts, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("#messages .msg-bot .msg-text"), in, chromedp.AtLeast(0)))
		if err != nil {
			t.Fatal(err)
		}
		var all []string
		for _, n := range texts {
			s, err := chromedp.Run(ctx, chromedp.Text(chromedp.NodeIDs{n.NodeID}))
			if err == nil {
				all = append(all, s)
			}
		}
		if strings.Contains(strings.ToLower(strings.Join(all, "\n")), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no bot reply in the widget; bot bubbles: %q", all)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The operator console, in a browser: the visitor asks for a human, the
// operator takes the conversation over and answers, and the chat shows
// the answer as an operator's.
func TestDemoBrowserOperatorConsole(t *testing.T) {
	u := startDemo(t)
	chat := browsertest.New(t)
	if err := chromedp.Do(chat,
		chromedp.Navigate(u.chat+"/chat/"),
		chromedp.WaitVisible(chromedp.ID("input")),
		chromedp.SendKeys(chromedp.ID("input"), "operator"),
		chromedp.Click(chromedp.ID("send")),
	); err != nil {
		t.Fatal(err)
	}
	console, cancel := chromedp.NewContext(chat) // a second tab
	defer cancel()
	if err := chromedp.Do(console,
		chromedp.Navigate(u.console),
		chromedp.WaitVisible(chromedp.CSS("#list li")),
		chromedp.Click(chromedp.CSS("#list li")),
		chromedp.WaitVisible(chromedp.ID("take")),
		chromedp.Click(chromedp.ID("take")),
		chromedp.WaitNotVisible(chromedp.ID("take")),
		chromedp.SendKeys(chromedp.ID("text"), "Hi, Olga here."),
		chromedp.Click(chromedp.CSS("#reply button[type=submit]")),
	); err != nil {
		t.Fatalf("operator console: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := chromedp.Run(chat, chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#messages .msg-operator .msg-text')).map(e => e.textContent).join('\n')`))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(got, "Olga here") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chat shows no operator message: %q", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
