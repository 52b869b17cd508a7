package wsroomgin_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/internal/wstest"
	"wsroom.dev/wsroom"
)

// TestChatAndEcho serves chat and echo on a gin engine with its Logger and
// Recovery and an auth middleware: members named by what the middleware
// stored with c.Set join at once, talk and leave; rooms are apart; a route
// without :room is the default room; echo keeps the message type; and
// gin's Logger logs each connection with status 101.
func TestChatAndEcho(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	logged := make(wstest.Lines, 100)
	r := gin.New()
	r.Use(gin.LoggerWithWriter(logged), gin.Recovery())
	r.GET("/health", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	ws := r.Group("/ws", auth)
	ws.GET("/chat/:room", wsroomgin.Chat(rooms))
	ws.GET("/chat", wsroomgin.Chat(rooms))
	ws.GET("/echo", wsroomgin.Echo(rooms))
	base, wsURL := wstest.Serve(t, r)
	ctx := wstest.Context(t)

	wstest.Chat(ctx, t, wsURL+"/ws/chat/kitchen")
	logged.Wait(ctx, t, "| 101 |", `"/ws/chat/kitchen"`)
	wstest.Echo(ctx, t, wsURL+"/ws/echo", wstest.User("eve"))
	logged.Wait(ctx, t, "| 101 |", `"/ws/echo"`)

	// Rooms are apart; /ws/chat is the default room.
	wstest.Apart(ctx, t, wsURL+"/ws/chat", "lobby")

	// Without a user, the auth middleware refuses; other routes are the
	// application's.
	wstest.Routes(ctx, t, base)
}

// TestParam reads the room from a parameter of another name; the hooks
// see every gin parameter as a path value, and c.Set values of any key
// type through Value.
func TestParam(t *testing.T) {
	t.Parallel()
	type ctxKey struct{}
	var (
		mu   sync.Mutex
		seen []string
	)
	rooms := newRooms(t, &wsroom.Options{DefaultRoom: "hall", Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			role, _ := wsroomgin.Value(e.Request, ctxKey{})
			_, missing := wsroomgin.Value(e.Request, "nothing")
			mu.Lock()
			seen = append(seen, fmt.Sprintf("room=%s org=%s team=%s role=%v missing=%v pattern=%s",
				e.Room, e.Request.PathValue("org"), e.Request.PathValue("team"), role, missing, e.Request.Pattern))
			mu.Unlock()
			return identify(ctx, e)
		},
	}})
	r := gin.New()
	r.Use(auth, func(c *gin.Context) { c.Set(ctxKey{}, "admin") })
	r.GET("/orgs/:org/teams/:team/chat", wsroomgin.Chat(rooms, wsroomgin.Param("team")))
	r.GET("/hall", wsroomgin.Chat(rooms, wsroomgin.Param("team")))
	_, wsURL := wstest.Serve(t, r)
	ctx := wstest.Context(t)

	wstest.Chat(ctx, t, wsURL+"/orgs/acme/teams/red/chat")
	if _, w := wstest.DialAs(ctx, t, wsURL+"/orgs/acme/teams/blue/chat", "carol"); w.Room != "blue" {
		t.Fatalf("welcome to %q, want blue", w.Room)
	}
	if _, w := wstest.DialAs(ctx, t, wsURL+"/hall", "dave"); w.Room != "hall" {
		t.Fatalf("a route without the parameter: welcome to %q, want the default room", w.Room)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []string{
		"room=red org=acme team=red role=admin missing=false pattern=/orgs/:org/teams/:team/chat",
		"room=red org=acme team=red role=admin missing=false pattern=/orgs/:org/teams/:team/chat",
		"room=blue org=acme team=blue role=admin missing=false pattern=/orgs/:org/teams/:team/chat",
		"room=hall org= team= role=admin missing=false pattern=/hall",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Identify saw\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

// TestWrapHIsLoud shows the mistake the adapter exists for: the Server
// mounted with gin.WrapH cannot tell the room, and says so (500 and an
// error logged) instead of putting every client in one room; with Chat,
// clients of /ws/chat/a and /ws/chat/b are in two rooms.
func TestWrapHIsLoud(t *testing.T) {
	t.Parallel()
	logged := make(wstest.Lines, 100)
	rooms := newRooms(t, &wsroom.Options{Logger: slog.New(slog.NewTextHandler(logged, nil))})
	r := gin.New()
	r.Use(auth)
	r.GET("/wrapped/chat/:room", gin.WrapH(rooms))
	r.GET("/ws/chat/:room", wsroomgin.Chat(rooms))
	_, wsURL := wstest.Serve(t, r)
	ctx := wstest.Context(t)

	for _, room := range []string{"a", "b"} {
		_, resp, err := websocket.Dial(ctx, wsURL+"/wrapped/chat/"+room, &websocket.DialOptions{HTTPHeader: wstest.User("alice")})
		if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("gin.WrapH: %v %v, want 500", resp, err)
		}
	}
	logged.Wait(ctx, t, "level=ERROR", "cannot tell the room", "/wrapped/chat/a")

	alice, _ := wstest.DialAs(ctx, t, wsURL+"/ws/chat/a", "alice")
	bob, _ := wstest.DialAs(ctx, t, wsURL+"/ws/chat/b", "bob")
	carol, _ := wstest.DialAs(ctx, t, wsURL+"/ws/chat/a", "carol")
	alice.Expect(ctx, t, "join", "carol")
	carol.Say(ctx, t, "a only")
	alice.Expect(ctx, t, "message", "carol")
	bob.Say(ctx, t, "b only")
	bob.Expect(ctx, t, "message", "bob") // not carol's arrival nor her message
}

// TestNothingAfterUpgrade checks that gin writes nothing to a connection
// once it is upgraded: the handlers after Chat and Echo do not run, and
// what a middleware writes when the connection has ended never reaches
// the client, whose stream ends with the server's close frame. gin's
// Logger logs 101.
func TestNothingAfterUpgrade(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	logged := make(wstest.Lines, 100)
	var laterRan, afterRan atomic.Int32
	r := gin.New()
	r.Use(gin.LoggerWithWriter(logged), gin.Recovery(), func(c *gin.Context) {
		c.Next()
		// A middleware that adds to every response when the handler is done.
		afterRan.Add(1)
		c.Header("X-After", "1")
		c.Status(http.StatusTeapot)
		c.Writer.WriteString("appended by a middleware")
	}, auth)
	later := func(c *gin.Context) {
		laterRan.Add(1)
		c.String(http.StatusOK, "a later handler")
	}
	r.GET("/ws/chat/:room", wsroomgin.Chat(rooms), later)
	r.GET("/ws/echo", wsroomgin.Echo(rooms), later)
	ts := httptest.NewUnstartedServer(r)
	httpLog := make(wstest.Lines, 100)
	ts.Config.ErrorLog = log.New(httpLog, "", 0)
	ts.Start()
	t.Cleanup(ts.Close)
	ctx := wstest.Context(t)
	addr := ts.Listener.Addr().String()

	for _, tc := range []struct{ path, protocol string }{{"/ws/chat/r", wsroom.Subprotocol}, {"/ws/echo", ""}} {
		c := rawDial(ctx, t, addr, tc.path, tc.protocol)
		c.writeFrame(t, 0x1, []byte(`{"type":"message","text":"raw"}`))
		if op, _ := c.readFrame(t); op != 0x1 { // the welcome, or the echo
			t.Fatalf("%s: first frame has opcode %#x, want text", tc.path, op)
		}
		c.writeFrame(t, 0x8, binary.BigEndian.AppendUint16(nil, 1000))
		for {
			op, payload := c.readFrame(t)
			if op == 0x8 {
				if code := binary.BigEndian.Uint16(payload); code != 1000 {
					t.Fatalf("%s: close code %d, want 1000", tc.path, code)
				}
				break
			}
		}
		rest, err := io.ReadAll(c.br)
		if len(rest) > 0 || (err != nil && !errors.Is(err, net.ErrClosed)) {
			t.Fatalf("%s: after the close frame the stream has %q (%v)", tc.path, rest, err)
		}
		logged.Wait(ctx, t, "| 101 |", `"`+tc.path+`"`)
		// The middleware's write was refused by net/http, not sent.
		httpLog.Wait(ctx, t, "response.Write on hijacked connection")
	}
	if n := laterRan.Load(); n != 0 {
		t.Fatalf("a handler after Chat or Echo ran %d times", n)
	}
	if n := afterRan.Load(); n != 2 {
		t.Fatalf("the middleware went on after %d connections, want 2", n)
	}
}

// rawConn is a WebSocket client written out by hand, so that the test
// sees every byte the server sends.
type rawConn struct {
	nc net.Conn
	br *bufio.Reader
}

func rawDial(ctx context.Context, t *testing.T, addr, path, protocol string) *rawConn {
	t.Helper()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nX-User: raw\r\n"
	if protocol != "" {
		req += "Sec-WebSocket-Protocol: " + protocol + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%s: status %d, want 101", path, resp.StatusCode)
	}
	if got := resp.Header.Get("Sec-Websocket-Accept"); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("%s: Sec-WebSocket-Accept %q", path, got)
	}
	for _, h := range []string{"X-After", "Content-Length", "Content-Type"} {
		if v := resp.Header.Get(h); v != "" {
			t.Fatalf("%s: the 101 response has %s: %s", path, h, v)
		}
	}
	return &rawConn{nc: nc, br: br}
}

// writeFrame writes a final, masked frame (payload under 126 bytes).
func (c *rawConn) writeFrame(t *testing.T, opcode byte, payload []byte) {
	t.Helper()
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{0x80 | opcode, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, p := range payload {
		b = append(b, p^mask[i%4])
	}
	if _, err := c.nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one unmasked frame from the server.
func (c *rawConn) readFrame(t *testing.T) (opcode byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	if h[1]&0x80 != 0 {
		t.Fatal("the server masked a frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		io.ReadFull(c.br, l[:])
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		io.ReadFull(c.br, l[:])
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 1<<20 {
		t.Fatalf("frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return h[0] & 0x0f, payload
}

// TestRefusalsStayClean checks that a request the Server refuses is
// answered once, by the Server, with nothing from gin appended.
func TestRefusalsStayClean(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	r := gin.New()
	r.GET("/ws/chat/:room", wsroomgin.Chat(rooms), func(c *gin.Context) { c.String(http.StatusOK, "later") })
	base, _ := wstest.Serve(t, r)
	resp, err := http.Get(base + "/ws/chat/a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || bytes.Contains(body, []byte("later")) {
		t.Fatalf("plain GET: %d %q", resp.StatusCode, body)
	}
}

// TestMisuse: a missing Server or parameter name is a programmer's error,
// found when the routes are built.
func TestMisuse(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	for name, f := range map[string]func(){
		"Chat(nil)":          func() { wsroomgin.Chat(nil) },
		"Echo(nil)":          func() { wsroomgin.Echo(nil) },
		"Chat(rooms, Param)": func() { wsroomgin.Chat(rooms, wsroomgin.Param("")) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}
