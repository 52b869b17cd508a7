package browser

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// upgradeStripper is a reverse proxy on 127.0.0.1 in front of the server
// that does not do WebSocket: it drops the Upgrade header, as proxies and
// firewalls of the seed articles do. Everything else passes, streamed.
func upgradeStripper(t *testing.T, target string) string {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Upgrade")
		r.Header.Del("Connection")
		rp.ServeHTTP(w, r)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("proxy: %v", err)
		}
	}()
	t.Cleanup(func() {
		srv.Close() // the page's stream is long-lived: no graceful wait
		<-done
	})
	return "http://" + ln.Addr().String()
}

// transportShown is what the page says about its transport.
func transportShown(t *testing.T, tab context.Context) string {
	t.Helper()
	return eval[string](t, tab, `document.getElementById("transport").textContent`)
}

const fallbackShown = "HTTP fallback (SSE + POST)"

// testFallbackProxy: behind a proxy that refuses upgrades, the page falls
// back to Server-Sent Events and POSTs by itself and chats with a
// WebSocket member of the same room: joins, messages both ways, older
// history, departures both ways; the choice is kept for the session (a
// reload goes straight to the fallback); the server's shutdown reaches the
// page as it would over WebSocket.
func testFallbackProxy(t *testing.T, e *env) {
	srv := e.startChat(t, "-welcome-history", "3")
	base := upgradeStripper(t, srv.addr)
	bob := joinRoom(t, srv.WS(), "fallback", "bob") // a WebSocket member, directly
	for i := 1; i <= 5; i++ {
		bob.sayAndSee(fmt.Sprintf("old %d", i))
	}
	b := e.tab(t)
	start := time.Now()
	carol := openChat(t, b, base, "fallback", "carol")
	t.Logf("joined over the fallback in %v", time.Since(start).Round(time.Millisecond))
	if got := transportShown(t, b); got != fallbackShown {
		t.Fatalf("transport shown: %q", got)
	}
	if got := eval[string](t, b, `window.wsroomClient.transport`); got != "sse" {
		t.Fatalf("client.transport = %q", got)
	}
	bob.await(func(ev event) bool { return ev.Type == "join" && ev.Name == "carol" })
	carol.waitMembers("bob", "carol")
	if got := carol.messages(); !reflect.DeepEqual(got, []string{"bob: old 3", "bob: old 4", "bob: old 5"}) {
		t.Fatalf("welcome history: %q", got)
	}
	do(t, b, chromedp.Click(chromedp.ID("older")))
	carol.waitMessage("bob", "old 1")

	carol.say("hello over HTTP")
	if ev := bob.await(func(ev event) bool { return ev.Type == "message" && ev.From == "carol" }); ev.Text != "hello over HTTP" {
		t.Fatalf("bob got %q", ev.Text)
	}
	bob.say("hello over WebSocket")
	carol.waitMessage("bob", "hello over WebSocket")
	carol.waitMessage("carol", "hello over HTTP")
	screenshot(t, b, "chat-fallback.png")

	// dave joins and leaves over WebSocket: the page sees both.
	dave := joinRoom(t, srv.WS(), "fallback", "dave")
	carol.waitNote("dave joined")
	dave.leave()
	carol.waitNote("dave left")

	// The page leaves: bob sees it go, once.
	do(t, b, chromedp.Click(chromedp.ID("joinbtn")))
	carol.waitState("closed")
	bob.await(func(ev event) bool { return ev.Type == "leave" && ev.Name == "carol" })

	// A reload in the same session goes straight to the fallback, with no
	// WebSocket attempt first.
	if got := eval[string](t, b, `sessionStorage.getItem("wsroom.transport " + location.host + "/chat/fallback")`); got != "sse" {
		t.Fatalf("remembered transport: %q", got)
	}
	ctx, cancel := context.WithTimeout(b, step)
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.sockets = 0; window.WebSocket = new Proxy(window.WebSocket, {construct(T, a) { window.sockets++; return new T(...a) }});`,
	})
	cancel()
	if err != nil {
		t.Fatalf("count WebSockets: %v", err)
	}
	carol = openChat(t, b, base, "fallback", "carol")
	if n := eval[int](t, b, `window.sockets`); n != 0 {
		t.Fatalf("%d WebSocket attempts after the fallback was chosen", n)
	}
	recordStates(t, carol)

	// Shutdown: the stream's last event says why, as a close frame would.
	srv.stop()
	carol.waitState("reconnecting")
	if got := eval[string](t, b, `window.states[0].code + ": " + window.states[0].explanation`); got != "1001: The server is restarting or shutting down. (server shutting down)" {
		t.Fatalf("the page explains the shutdown as %q", got)
	}
}

// testFallbackNginx: Debian's nginx as the reverse proxy, configured
// without WebSocket support (no Upgrade passed on, HTTP/1.0 upstream):
// the page chats through it over the fallback with a WebSocket member.
func testFallbackNginx(t *testing.T, e *env) {
	srv := e.startChat(t)
	ng := startNginx(t, srv.addr)
	bob := joinRoom(t, srv.WS(), "nginx", "bob")
	bob.sayAndSee("before")
	b := e.tab(t)
	carol := openChat(t, b, ng.plain, "nginx", "carol")
	if got := transportShown(t, b); got != fallbackShown {
		t.Fatalf("transport shown through nginx: %q", got)
	}
	carol.waitMessage("bob", "before")
	carol.waitMembers("bob", "carol")
	carol.say("through nginx")
	bob.await(func(ev event) bool { return ev.Type == "message" && ev.From == "carol" && ev.Text == "through nginx" })
	bob.say("back through nginx")
	carol.waitMessage("bob", "back through nginx")
	bob.leave()
	carol.waitNote("bob left")
	do(t, b, chromedp.Click(chromedp.ID("joinbtn")))
	carol.waitState("closed")
}

// testFallbackBuffered: nginx told to buffer the stream (it ignores the
// server's X-Accel-Buffering: no): no byte reaches the page, which says
// that a proxy holds the stream back.
func testFallbackBuffered(t *testing.T, e *env) {
	srv := e.startChat(t)
	ng := startNginx(t, srv.addr)
	b := e.tab(t)
	do(t, b, chromedp.Navigate(ng.buffering+"/?room=held"))
	waitJS(t, b, "the chat page's script", `document.documentElement.dataset.ready === "1"`)
	do(t, b,
		chromedp.SetValue(chromedp.ID("name"), "held"),
		chromedp.Click(chromedp.ID("joinbtn")),
	)
	waitJSFor(t, b, 20*time.Second, "the page to say the stream is held back",
		`document.getElementById("status").dataset.buffered === "1" && /proxy on the way is holding back/.test(document.getElementById("detail").textContent)`)
	if got := transportShown(t, b); got != fallbackShown {
		t.Fatalf("transport shown: %q", got)
	}
	screenshot(t, b, "chat-fallback-buffered.png")
}
