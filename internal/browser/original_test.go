package browser

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// originalPage drives the original chat page (original.html: the seed's
// jQuery page, which speaks the plain-text protocol) in a tab.
type originalPage struct {
	t   *testing.T
	tab context.Context
}

// openOriginal loads the original page and connects with its own button,
// under name (its default, 黄晓安, when empty).
func openOriginal(t *testing.T, tab context.Context, base, name string) *originalPage {
	t.Helper()
	do(t, tab, chromedp.Navigate(base+"/original.html"))
	waitJS(t, tab, "jQuery's ready handler", `typeof jQuery === "function" && document.getElementById("Connection").value !== ""`)
	p := &originalPage{t: t, tab: tab}
	if got, want := eval[string](t, tab, `document.getElementById("Connection").value`), base[len("http://"):]+"/chat"; got != want {
		t.Fatalf("server address on the original page: %q, want %q", got, want)
	}
	if name != "" {
		do(t, tab, chromedp.SetValue(chromedp.ID("txtName"), name))
	}
	do(t, tab, chromedp.Click(chromedp.ID("ToggleConnection")))
	p.waitUnlocked()
	waitJS(t, tab, "the original page to connect", `document.getElementById("LogContainer").textContent.includes("连接已经建立。")`)
	return p
}

// waitUnlocked waits until the page's "please wait" pane is gone.
func (p *originalPage) waitUnlocked() {
	p.t.Helper()
	waitJS(p.t, p.tab, "the original page's lock pane to lift", `document.getElementById("skm_LockPane").className === "LockOff"`)
}

// waitLine waits until the page's log shows text.
func (p *originalPage) waitLine(text string) {
	p.t.Helper()
	waitJS(p.t, p.tab, fmt.Sprintf("the original page to show %q", text),
		`document.getElementById("LogContainer").textContent.includes(`+js(text)+`)`)
}

// say sends a message the page's way: type, then Enter (its jQuery
// keypress handler clicks 发送).
func (p *originalPage) say(text string) {
	p.t.Helper()
	do(p.t, p.tab, chromedp.WaitVisible(chromedp.ID("DataToSend")), chromedp.SetValue(chromedp.ID("DataToSend"), text), chromedp.SendKeys(chromedp.ID("DataToSend"), "\r"))
	waitJS(p.t, p.tab, "the original page to clear its input", `document.getElementById("DataToSend").value === ""`)
}

// testOriginalPage: the original page logs in over the plain-text protocol
// and chats, side by side, with a member on the new page (JSON), and sees
// it leave.
func testOriginalPage(t *testing.T, e *env) {
	srv := e.startChat(t)
	b := e.tab(t)
	old := openOriginal(t, b, srv.URL(), "")
	old.waitLine("欢迎【黄晓安】来到聊天室!")

	alice := openChat(t, e.tab(t), srv.URL(), "lobby", "alice") // /chat serves the room lobby
	alice.waitMembers("alice", "黄晓安")
	old.waitLine("欢迎【alice】来到聊天室!")

	old.say("你好，我是旧页面")
	alice.waitMessage("黄晓安", "你好，我是旧页面") // the server strips the page's `NAME说 :"…"`
	old.waitLine(`黄晓安说 :"你好，我是旧页面"`)
	alice.say("hello, old page")
	old.waitLine(`alice说 :"hello, old page"`)
	screenshot(t, b, "original.png")
	if screenshotDir(t) != "" {
		do(t, b, chromedp.EmulateViewport(720, 560))
		do(t, alice.tab, chromedp.EmulateViewport(640, 560))
		screenshotSideBySide(t, "original-and-chat.png", b, alice.tab)
	}

	do(t, alice.tab, chromedp.Click(chromedp.ID("joinbtn")))
	old.waitLine("【alice】离开了聊天室!")

	// Its own button disconnects it; the new page would see it go.
	bob := openChat(t, alice.tab, srv.URL(), "lobby", "bob")
	bob.waitMembers("bob", "黄晓安")
	do(t, b, chromedp.Click(chromedp.ID("ToggleConnection")))
	old.waitUnlocked()
	bob.waitNote("黄晓安 left")
	bob.waitMembers("bob")
}
