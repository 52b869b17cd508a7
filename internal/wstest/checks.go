package wstest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// Chat has alice and bob, named in UserHeader (see DialAs), talk in the
// room at url: bob's welcome lists them both, each sees the other arrive
// and speak, a sender gets its own message too, and alice sees bob leave.
func Chat(ctx context.Context, t testing.TB, url string) {
	t.Helper()
	alice, _ := DialAs(ctx, t, url, "alice")
	bob, w := DialAs(ctx, t, url, "bob")
	if got := strings.Join(w.Members, ","); got != "alice,bob" {
		t.Fatalf("bob's welcome lists %q", got)
	}
	alice.Expect(ctx, t, "join", "bob")
	bob.Say(ctx, t, "hi alice")
	if e := alice.Expect(ctx, t, "message", "bob"); e.Text != "hi alice" {
		t.Fatalf("alice got %+v", e)
	}
	alice.Say(ctx, t, "hi bob")
	bob.Expect(ctx, t, "message", "bob") // a sender gets its own message too
	bob.Expect(ctx, t, "message", "alice")
	alice.Expect(ctx, t, "message", "alice")
	bob.Close()
	alice.Expect(ctx, t, "leave", "bob")
	alice.Close()
}

// Apart checks, with members named in UserHeader (see DialAs), that the
// rooms at url+"/a" and url+"/b" are apart and that url itself is the
// room dflt: alice and dave are welcomed to a, bob to b, carol to dflt;
// alice sees dave arrive and speak; and bob's next event after his own
// message is that message, where in room a dave's arrival and message
// would come first.
func Apart(ctx context.Context, t testing.TB, url, dflt string) {
	t.Helper()
	in := func(name, path, room string) *Client {
		t.Helper()
		c, w := DialAs(ctx, t, url+path, name)
		if w.Room != room {
			t.Fatalf("%s: welcome to %q, want %q", url+path, w.Room, room)
		}
		return c
	}
	alice := in("alice", "/a", "a")
	bob := in("bob", "/b", "b")
	in("carol", "", dflt)
	dave := in("dave", "/a", "a")
	alice.Expect(ctx, t, "join", "dave")
	dave.Say(ctx, t, "for a")
	alice.Expect(ctx, t, "message", "dave")
	bob.Say(ctx, t, "for b")
	bob.Expect(ctx, t, "message", "bob")
}

// Routes checks the plain HTTP answers of an application that serves
// /health to anyone and, behind an auth middleware that reads UserHeader,
// its WebSocket routes under /ws at base: GET /health is 200; GET
// /ws/chat/a is 401 without a user and 426 (a WebSocket is wanted) as
// alice, as is GET /ws/echo; GET /ws/nothing as alice is 404.
func Routes(ctx context.Context, t testing.TB, base string) {
	t.Helper()
	for _, tc := range []struct {
		path, user string
		want       int
	}{
		{"/health", "", http.StatusOK},
		{"/ws/chat/a", "", http.StatusUnauthorized},
		{"/ws/chat/a", "alice", http.StatusUpgradeRequired},
		{"/ws/echo", "alice", http.StatusUpgradeRequired},
		{"/ws/nothing", "alice", http.StatusNotFound},
	} {
		if got := Status(ctx, t, base+tc.path, User(tc.user)); got != tc.want {
			t.Errorf("GET %s as %q: %d, want %d", tc.path, tc.user, got, tc.want)
		}
	}
}

// Echo checks that the echo endpoint at url, dialed with the request
// header h (nil for none), sends text and binary messages back with their
// type.
func Echo(ctx context.Context, t testing.TB, url string, h http.Header) {
	t.Helper()
	c := dialEcho(ctx, t, url, h)
	echoes(ctx, t, c)
	c.Close(websocket.StatusNormalClosure, "")
}

// dialEcho connects to an echo endpoint, offering no subprotocol; the
// connection is closed when the test ends.
func dialEcho(ctx context.Context, t testing.TB, url string, h http.Header) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// echoes checks that c, connected to an echo endpoint, gets a text and a
// binary message back with their type.
func echoes(ctx context.Context, t testing.TB, c *websocket.Conn) {
	t.Helper()
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, []byte("ping")}, {websocket.MessageBinary, []byte{0, 1, 2, 0xff}}} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, b, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(b, m.data) {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, b, err)
		}
	}
}

// Closed reads every one of conns, each in a goroutine of its own, calls
// stop (which should end the server, as SIGINT ends a program), and fails
// unless each connection is closed with the status want before ctx is
// done. What the connections receive meanwhile is dropped. The goroutines
// end with their connections, or when ctx is done.
func Closed(ctx context.Context, t testing.TB, want websocket.StatusCode, stop func(), conns ...*websocket.Conn) {
	t.Helper()
	codes := make(chan websocket.StatusCode, len(conns))
	for _, c := range conns {
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					codes <- websocket.CloseStatus(err)
					return
				}
			}
		}()
	}
	stop()
	for range conns {
		select {
		case code := <-codes:
			if code != want {
				t.Fatalf("close code %v, want %v", code, want)
			}
		case <-ctx.Done():
			t.Fatalf("a connection is still open: %v", ctx.Err())
		}
	}
}
