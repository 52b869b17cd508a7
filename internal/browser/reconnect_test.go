package browser

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// recordStates makes the page keep every state event of its client in
// window.states.
func recordStates(t *testing.T, p *chatPage) {
	t.Helper()
	eval[bool](t, p.tab, `(window.states = [], window.wsroomClient.on("state", (s) => window.states.push(s)), true)`)
}

// testReconnectResume cuts the page's connection in the network, between
// the browser and the server, while messages are on their way to it, and
// while more are sent. The page reconnects by itself (backoff), resumes
// after the last message it saw, and shows every message once, in order.
//
// The browser reaches the server through a TCP proxy the test controls;
// the other member (bob, a Go client) talks to the server directly:
//
//  1. carol (the page) sees before-1 and before-2;
//  2. the proxy freezes: lost-1 and lost-2 reach the proxy, not the page;
//  3. the proxy cuts every connection and refuses new ones: the page
//     retries; bob says away-1;
//  4. the proxy lets connections through: the page resumes with since =
//     the id of before-2 and gets lost-1, lost-2 and away-1;
//  5. bob says after-1.
func testReconnectResume(t *testing.T, e *env) {
	srv := e.startChat(t)
	px := newProxy(t, srv.addr)
	b := e.tab(t)
	carol := openChat(t, b, px.URL(), "resume", "carol")
	recordStates(t, carol)
	bob := joinRoom(t, srv.WS(), "resume", "bob")
	carol.waitMembers("bob", "carol")

	bob.sayAndSee("before-1")
	bob.sayAndSee("before-2")
	carol.waitMessage("bob", "before-2")

	px.freeze()
	bob.sayAndSee("lost-1")
	bob.sayAndSee("lost-2")
	px.waitLost(t, "lost-2")

	down := time.Now()
	px.cut()
	bob.await(func(e event) bool { return e.Type == "leave" && e.Name == "carol" })
	carol.waitState("reconnecting")
	bob.sayAndSee("away-1")
	screenshot(t, b, "chat-reconnecting.png")
	px.up()

	bob.await(func(e event) bool { return e.Type == "join" && e.Name == "carol" })
	carol.waitState("open")
	t.Logf("back %v after the cut", time.Since(down).Round(time.Millisecond))
	bob.sayAndSee("after-1")
	carol.waitMessage("bob", "after-1")

	want := []string{"bob: before-1", "bob: before-2", "bob: lost-1", "bob: lost-2", "bob: away-1", "bob: after-1"}
	if got := carol.messages(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the page shows\n%q\nwant\n%q", got, want)
	}
	if n := eval[int](t, b, `new Set([...document.querySelectorAll("#log li.msg")].map(li => li.dataset.id)).size`); n != len(want) {
		t.Fatalf("%d distinct message ids shown for %d messages", n, len(want))
	}
	st := eval[[]map[string]any](t, b, `window.states.map(s => ({state: s.state, code: s.code ?? 0}))`)
	if len(st) < 3 || st[0]["state"] != "reconnecting" || st[0]["code"] != float64(1006) || st[len(st)-1]["state"] != "open" {
		t.Fatalf("state changes: %v", st)
	}
	if gap := eval[int](t, b, `document.querySelectorAll("#log li.gap").length`); gap != 0 {
		t.Fatal("the page says messages were lost, but the resume had them all")
	}
	carol.waitMembers("bob", "carol")
	carol.waitNote("Back in the room: 3 messages sent while you were away.")
	screenshot(t, b, "chat-resumed.png")
}

// testServerRestart stops the server (SIGINT: it closes every connection
// with 1001, going away) and starts it again on the same address. The page
// says what happened, counts down, comes back by itself, and chats on. The
// example keeps history in memory, so what was said before the restart is
// gone from the server: the page keeps what it showed, says that the
// missed messages could not be recovered, and shows the new ones.
func testServerRestart(t *testing.T, e *env) {
	srv := e.startChat(t)
	b := e.tab(t)
	carol := openChat(t, b, srv.URL(), "restart", "carol")
	recordStates(t, carol)
	bob := joinRoom(t, srv.WS(), "restart", "bob")
	bob.sayAndSee("before the restart")
	carol.waitMessage("bob", "before the restart")

	srv.stop()
	carol.waitState("reconnecting")
	if got := eval[string](t, b, `window.states[0].code + ": " + window.states[0].explanation`); !strings.HasPrefix(got, "1001: The server is restarting or shutting down.") {
		t.Fatalf("the page explains the restart as %q", got)
	}
	waitJS(t, b, "the countdown", `/^Reconnecting in \d+ s$/.test(document.getElementById("state").textContent)`)
	srv.start()

	carol.waitState("open")
	bob = joinRoom(t, srv.WS(), "restart", "bob")
	bob.sayAndSee("after the restart")
	carol.waitMessage("bob", "after the restart")
	want := []string{"bob: before the restart", "bob: after the restart"}
	if got := carol.messages(); !reflect.DeepEqual(got, want) {
		t.Fatalf("the page shows\n%q\nwant\n%q", got, want)
	}
	if gap := eval[int](t, b, `document.querySelectorAll("#log li.gap").length`); gap != 1 {
		t.Fatalf("%d notes that messages could not be recovered, want 1", gap)
	}
}
