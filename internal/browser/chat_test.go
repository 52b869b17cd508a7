package browser

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chatPage drives the chat page (index.html, which imports /wsroom.js) in
// a tab.
type chatPage struct {
	t    *testing.T
	tab  context.Context
	name string
}

// openChat loads the chat page from base and joins room as name, the way
// a person does: fill in the form, press Join, wait for "Connected".
func openChat(t *testing.T, tab context.Context, base, room, name string) *chatPage {
	t.Helper()
	do(t, tab, chromedp.Navigate(base+"/?room="+url.QueryEscape(room)))
	waitJS(t, tab, "the chat page's script", `document.documentElement.dataset.ready === "1"`)
	do(t, tab,
		chromedp.SetValue(chromedp.ID("room"), room),
		chromedp.SetValue(chromedp.ID("name"), name),
		chromedp.Click(chromedp.ID("joinbtn")),
	)
	p := &chatPage{t: t, tab: tab, name: name}
	p.waitState("open")
	return p
}

func (p *chatPage) waitState(state string) {
	p.t.Helper()
	waitJS(p.t, p.tab, p.name+"'s page "+state, `document.getElementById("status").dataset.state === `+js(state))
}

// say types text into the send box and presses Enter.
func (p *chatPage) say(text string) {
	p.t.Helper()
	do(p.t, p.tab, chromedp.SetValue(chromedp.ID("text"), text), chromedp.SendKeys(chromedp.ID("text"), "\r"))
}

// waitMessage waits until the log shows a message from `from` with text.
func (p *chatPage) waitMessage(from, text string) {
	p.t.Helper()
	waitJS(p.t, p.tab, fmt.Sprintf("%s to see %s say %q", p.name, from, text),
		fmt.Sprintf(`[...document.querySelectorAll("#log li.msg")].some(li => li.querySelector(".from").textContent === %s && li.querySelector(".text").textContent === %s)`, js(from), js(text)))
}

// waitNote waits until the log shows an event line with exactly text.
func (p *chatPage) waitNote(text string) {
	p.t.Helper()
	waitJS(p.t, p.tab, fmt.Sprintf("%s to see %q", p.name, text),
		fmt.Sprintf(`[...document.querySelectorAll("#log li.event")].some(li => li.textContent === %s)`, js(text)))
}

// messages lists the log's messages as "from: text", top to bottom.
func (p *chatPage) messages() []string {
	p.t.Helper()
	return eval[[]string](p.t, p.tab, `[...document.querySelectorAll("#log li.msg")].map(li => li.querySelector(".from").textContent + ": " + li.querySelector(".text").textContent)`)
}

// waitMembers waits until the member list is exactly names (sorted).
func (p *chatPage) waitMembers(names ...string) {
	p.t.Helper()
	names = slices.Sorted(slices.Values(names))
	want := make([]string, len(names))
	for i, n := range names {
		want[i] = js(n)
	}
	waitJS(p.t, p.tab, fmt.Sprintf("%s's member list to be %q", p.name, names),
		fmt.Sprintf(`JSON.stringify([...document.querySelectorAll("#members li")].map(li => li.firstChild.textContent)) === JSON.stringify([%s])`, strings.Join(want, ",")))
}

// testTwoTabsChat: two tabs join a room, see each other arrive, chat, and
// one sees the other leave; a member of the JSON protocol written in Go
// takes part too.
func testTwoTabsChat(t *testing.T, e *env) {
	start := time.Now()
	srv := e.startChat(t)
	b := e.tab(t)
	alice := openChat(t, b, srv.URL(), "tabs", "alice")
	bob := openChat(t, e.tab(t), srv.URL(), "tabs", "bob")

	alice.waitNote("bob joined")
	alice.waitMembers("alice", "bob")
	bob.waitMembers("alice", "bob")

	bob.say("hello from bob")
	alice.waitMessage("bob", "hello from bob")
	alice.say("hi bob! 你好 👋")
	bob.waitMessage("alice", "hi bob! 你好 👋")

	carol := joinRoom(t, srv.WS(), "tabs", "carol")
	alice.waitMembers("alice", "bob", "carol")
	carol.sayAndSee("carol here, from a Go client")
	bob.say("see you in a minute")
	alice.waitMessage("bob", "see you in a minute")

	want := []string{"bob: hello from bob", "alice: hi bob! 你好 👋", "carol: carol here, from a Go client", "bob: see you in a minute"}
	for _, p := range []*chatPage{alice, bob} {
		p.waitMessage("bob", "see you in a minute")
		if got := p.messages(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s's log:\n%q\nwant\n%q", p.name, got, want)
		}
	}
	// Every message shows its time; the sender's own are marked.
	if n := eval[int](t, b, `[...document.querySelectorAll("#log li.msg time")].filter(e => /\d/.test(e.textContent) && e.dateTime).length`); n != len(want) {
		t.Fatalf("messages with a time: %d of %d", n, len(want))
	}
	if got := eval[[]string](t, b, `[...document.querySelectorAll("#log li.msg.mine .text")].map(e => e.textContent)`); !reflect.DeepEqual(got, []string{"hi bob! 你好 👋"}) {
		t.Fatalf("alice's own messages: %q", got)
	}
	if got := eval[string](t, b, `document.getElementById("transport").textContent`); got != "WebSocket" {
		t.Fatalf("transport shown: %q", got)
	}
	screenshot(t, b, "chat.png")

	// bob leaves: alice sees it, bob's page says so.
	do(t, bob.tab, chromedp.Click(chromedp.ID("joinbtn")))
	alice.waitNote("bob left")
	alice.waitMembers("alice", "carol")
	bob.waitState("closed")
	if got := eval[string](t, bob.tab, `document.getElementById("detail").textContent`); got != "You left." {
		t.Fatalf("bob's page after leaving: %q", got)
	}
	if eval[bool](t, bob.tab, `document.getElementById("text").disabled`) != true {
		t.Fatal("bob can still type after leaving")
	}

	// On a phone the member list folds above the log and nothing is wider
	// than the screen.
	phone(t, b)
	if w := eval[[]int](t, b, `[document.documentElement.scrollWidth, innerWidth]`); w[0] > w[1] {
		t.Fatalf("page is %dpx wide on a %dpx screen", w[0], w[1])
	}
	if !eval[bool](t, b, `document.getElementById("members-box").getBoundingClientRect().bottom <= document.getElementById("log").getBoundingClientRect().top + 1`) {
		t.Fatal("on a phone, the member list is not above the log")
	}
	screenshot(t, b, "chat-phone.png")
	t.Logf("two tabs chatted in %v", time.Since(start).Round(time.Millisecond))
}

// testOlderMessages: the history shown on join, then the "older messages"
// button pages back until there is no more.
func testOlderMessages(t *testing.T, e *env) {
	srv := e.startChat(t, "-welcome-history", "5")
	b := e.tab(t)
	bot := joinRoom(t, srv.WS(), "history", "bot")
	for i := 1; i <= 12; i++ {
		bot.sayAndSee(fmt.Sprintf("message %02d", i))
	}
	p := openChat(t, b, srv.URL(), "history", "reader")
	p.waitMessage("bot", "message 12")
	want := func(from, to int) []string {
		var s []string
		for i := from; i <= to; i++ {
			s = append(s, fmt.Sprintf("bot: message %02d", i))
		}
		return s
	}
	if got := p.messages(); !reflect.DeepEqual(got, want(8, 12)) {
		t.Fatalf("welcome history: %q", got)
	}
	do(t, b, chromedp.Click(chromedp.ID("older")))
	p.waitMessage("bot", "message 01") // a page of 50: the rest at once
	if got := p.messages(); !reflect.DeepEqual(got, want(1, 12)) {
		t.Fatalf("after older messages: %q", got)
	}
	waitJS(t, b, "the button to say there is no more", `document.getElementById("older").textContent === "No older messages" && document.getElementById("older").disabled`)
}

// testNameTaken: a taken name is refused in words, and another name joins.
func testNameTaken(t *testing.T, e *env) {
	srv := e.startChat(t)
	b := e.tab(t)
	joinRoom(t, srv.WS(), "names", "dup")
	do(t, b, chromedp.Navigate(srv.URL()+"/"))
	waitJS(t, b, "the chat page's script", `document.documentElement.dataset.ready === "1"`)
	do(t, b,
		chromedp.SetValue(chromedp.ID("room"), "names"),
		chromedp.SetValue(chromedp.ID("name"), "dup"),
		chromedp.Click(chromedp.ID("joinbtn")),
	)
	waitJS(t, b, "the refusal", `document.getElementById("state").textContent === "Not joined"`)
	if got := eval[string](t, b, `document.getElementById("detail").textContent`); got != "That name is taken in this room: pick another." {
		t.Fatalf("the refusal reads %q", got)
	}
	if got := eval[string](t, b, `document.getElementById("joinbtn").textContent`); got != "Join" {
		t.Fatalf("after the refusal the button reads %q", got)
	}
	p := openChat(t, b, srv.URL(), "names", "dup2")
	p.waitMembers("dup", "dup2")
}
