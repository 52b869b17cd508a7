package browser

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The payloads: a name that calls alert (a dialog) and a message that
// sets a window flag, if either is ever parsed as HTML.
const (
	xssName = `<img src=x onerror=alert(1)>`
	xssText = `<img src=x onerror="window.xssRan=1"><script>window.xssRan=2</script>`
)

// noScriptRan checks that no payload ran in the tab: no flag, no dialog.
// To prove that the detectors work, it then runs a control payload of its
// own through innerHTML, which must be caught by both. An image that fails
// to load reports its error asynchronously, so the control also serves as
// a barrier: the payload's images, added earlier, have failed by then.
func noScriptRan(t *testing.T, tab context.Context, d *dialogs) {
	t.Helper()
	if n := eval[int](t, tab, `document.querySelectorAll("img:not(#echoed)").length`); n != 0 {
		t.Fatalf("%d <img> elements were made from user data", n)
	}
	eval[bool](t, tab, `(document.body.insertAdjacentHTML("beforeend", '<img id=control src=x onerror="window.controlRan=1;alert(\'control\')">'), true)`)
	waitJS(t, tab, "the control payload to run", `window.controlRan === 1`)
	if got := d.seen(); !reflect.DeepEqual(got, []string{"control"}) {
		t.Fatalf("dialogs opened: %q (want only the control's)", got)
	}
	if ran := eval[string](t, tab, `String(window.xssRan)`); ran != "undefined" {
		t.Fatalf("a payload ran: window.xssRan = %s", ran)
	}
}

// testXSSChatPage: a name and a message made of HTML appear as text on the
// chat page, and run nothing: from another member, and as the page's own
// name.
func testXSSChatPage(t *testing.T, e *env) {
	srv := e.startChat(t)
	b := e.tab(t)
	d := watchDialogs(t, b)
	viewer := openChat(t, b, srv.URL(), "xss", "viewer")

	evil := joinRoom(t, srv.WS(), "xss", xssName)
	evil.sayAndSee(xssText)
	own := `<svg/onload=alert(2)>`
	self := openChat(t, e.tab(t), srv.URL(), "xss", own)
	d2 := watchDialogs(t, self.tab)
	self.say(`<b onmouseover=alert(3)>bold?</b>`)
	evil.sayAndSee("done")

	viewer.waitMessage(xssName, "done")
	viewer.waitMessage(own, `<b onmouseover=alert(3)>bold?</b>`)
	viewer.waitNote(xssName + " joined")
	viewer.waitMembers("viewer", xssName, own)
	if got := viewer.messages(); !slices.Contains(got, xssName+": "+xssText) {
		t.Fatalf("the payload is not shown as text: %q", got)
	}
	self.waitMessage(xssName, "done")
	if got := eval[string](t, self.tab, `document.querySelector("#members li.me").firstChild.textContent`); got != own {
		t.Fatalf("own name shown as %q", got)
	}
	screenshot(t, b, "chat-xss.png")
	noScriptRan(t, b, d)
	noScriptRan(t, self.tab, d2)
}

// testXSSOriginalPage: the original page appends every line with
// innerHTML; the core HTML-escapes names and texts in the plain-text lines
// (protocol.md), so the same payloads show as text there too.
func testXSSOriginalPage(t *testing.T, e *env) {
	srv := e.startChat(t)
	b := e.tab(t)
	d := watchDialogs(t, b)
	old := openOriginal(t, b, srv.URL(), "watcher")
	old.waitLine("欢迎【watcher】来到聊天室!")

	evil := joinRoom(t, srv.WS(), "lobby", xssName)
	evil.sayAndSee(xssText)
	evil.sayAndSee("done")
	old.waitLine(`说 :"done"`) // the lines before it have arrived too

	noScriptRan(t, b, d)
	text := eval[string](t, b, `document.getElementById("LogContainer").textContent`)
	for _, line := range []string{"欢迎【" + xssName + "】来到聊天室!", xssName + `说 :"` + xssText + `"`} {
		if !strings.Contains(text, line) {
			t.Fatalf("the original page does not show %q as text; it shows:\n%s", line, text)
		}
	}
}
