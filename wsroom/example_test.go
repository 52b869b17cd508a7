package wsroom_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// This example mounts the chat and echo endpoints on a ServeMux and has two
// clients of the JSON protocol talk in a room.
func Example() {
	rooms, err := wsroom.New(nil) // safe defaults: same-origin only, limits on
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	mux.Handle("/echo", rooms.Echo())

	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat/general"
	alice := dialJSON(ctx, url, "alice")
	bob := dialJSON(ctx, url, "bob")
	defer alice.CloseNow()
	defer bob.CloseNow()

	printEvent(ctx, alice) // bob's arrival
	bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hello, alice"}`))
	printEvent(ctx, alice)
	bob.Close(websocket.StatusNormalClosure, "")
	printEvent(ctx, alice)

	// Output:
	// alice: {"type":"welcome","room":"general","name":"alice","members":["alice"],"count":1,"history":[]}
	// bob: {"type":"welcome","room":"general","name":"bob","members":["alice","bob"],"count":2,"history":[]}
	// {"type":"join","name":"bob"}
	// {"type":"message","from":"bob","text":"hello, alice"}
	// {"type":"leave","name":"bob"}
}

// dialJSON connects a client of the JSON protocol, joins as name and prints
// its welcome.
func dialJSON(ctx context.Context, url, name string) *websocket.Conn {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		log.Fatal(err)
	}
	c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name))
	fmt.Print(name, ": ")
	printEvent(ctx, c)
	return c
}

// printEvent prints the next event, without the fields that vary between
// runs (id and ts).
func printEvent(ctx context.Context, c *websocket.Conn) {
	_, b, err := c.Read(ctx)
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	for _, field := range []string{`"id":"`, `,"ts":`} {
		if i := strings.Index(s, field); i >= 0 {
			end := i + len(field) + strings.IndexAny(s[i+len(field):], `",}`)
			if field[0] == '"' {
				end += 2 // the closing quote and comma
			}
			s = s[:i] + s[end:]
		}
	}
	fmt.Println(s)
}

// The original chat page speaks plain text: it sends "login:NAME", then its
// messages, and shows every line it receives. It works unchanged.
func Example_plainText() {
	rooms, _ := wsroom.New(&wsroom.Options{WelcomeHistory: -1})
	ts := httptest.NewServer(rooms.Room("lobby"))
	defer ts.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	page, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/chat", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer page.CloseNow()
	page.Write(ctx, websocket.MessageText, []byte("login:黄晓安"))
	page.Write(ctx, websocket.MessageText, []byte(`黄晓安说 :"大家好"`))
	for range 3 {
		_, line, _ := page.Read(ctx)
		fmt.Println(string(line))
	}
	// Output:
	// 在线:【黄晓安】
	// 欢迎【黄晓安】来到聊天室!
	// 黄晓安说 :"大家好"
}

// The server side of a room: who is in it, messages from the server, and
// removing a member.
func ExampleRoom() {
	rooms, _ := wsroom.New(nil)
	ts := httptest.NewServer(rooms.Room("lobby"))
	defer ts.Close()
	defer rooms.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat"
	alice := dialJSON(ctx, url, "alice")
	defer alice.CloseNow()

	lobby := rooms.Room("lobby") // the default room
	names, _ := lobby.Members(ctx)
	fmt.Println("members:", names)
	lobby.Broadcast(ctx, wsroom.Message{Text: "maintenance at noon"})
	printEvent(ctx, alice)
	lobby.Remove(ctx, "alice", "see you")
	_, _, err := alice.Read(ctx)
	fmt.Println(websocket.CloseStatus(err))
	// Output:
	// alice: {"type":"welcome","room":"lobby","name":"alice","members":["alice"],"count":1,"history":[]}
	// members: [alice]
	// {"type":"message","from":"","text":"maintenance at noon"}
	// StatusPolicyViolation
}

// Identify names members from the request, here a header set by an
// authenticating proxy; such members join as soon as they connect.
func ExampleHooks_identify() {
	rooms, _ := wsroom.New(&wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			user := e.Request.Header.Get("X-Forwarded-User")
			if user == "" {
				return wsroom.IdentifyReply{}, &wsroom.RejectError{Status: http.StatusUnauthorized, Message: "log in first"}
			}
			return wsroom.IdentifyReply{Name: user}, nil
		},
	}})
	ts := httptest.NewServer(rooms.Room("lobby"))
	defer ts.Close()
	defer rooms.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat"

	_, resp, err := websocket.Dial(ctx, url, nil)
	fmt.Println(err != nil, resp.StatusCode)

	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		Subprotocols: []string{wsroom.Subprotocol},
		HTTPHeader:   http.Header{"X-Forwarded-User": {"alice"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	printEvent(ctx, c)
	// Output:
	// true 401
	// {"type":"welcome","room":"lobby","name":"alice","members":["alice"],"count":1,"history":[]}
}

// Server.Shutdown closes every WebSocket connection with 1001. Register it
// with http.Server.RegisterOnShutdown, so that http.Server.Shutdown starts
// it, and call it once more to wait for the connections to end:
// http.Server.Shutdown does not wait for hijacked connections.
func ExampleServer_Shutdown() {
	rooms, _ := wsroom.New(nil)
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	srv := &http.Server{Handler: mux}
	srv.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := dialJSON(ctx, "ws://"+ln.Addr().String()+"/chat/r", "alice")
	defer c.CloseNow()
	closed := make(chan websocket.StatusCode, 1)
	go func() { // the client answers the close handshake
		_, _, err := c.Read(ctx)
		closed <- websocket.CloseStatus(err)
	}()

	// On SIGTERM, say:
	if err := srv.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	if err := rooms.Shutdown(ctx); err != nil { // waits for the WebSockets
		log.Fatal(err)
	}
	fmt.Println(<-closed)
	fmt.Println(errors.Is(<-served, http.ErrServerClosed))
	// Output:
	// alice: {"type":"welcome","room":"r","name":"alice","members":["alice"],"count":1,"history":[]}
	// StatusGoingAway
	// true
}

// The echo endpoint sends every message back with its type.
func ExampleServer_Echo() {
	rooms, _ := wsroom.New(nil)
	ts := httptest.NewServer(rooms.Echo())
	defer ts.Close()
	defer rooms.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	typ, b, _ := c.Read(ctx)
	fmt.Println(typ, b)
	// Output:
	// MessageBinary [1 2 3]
}
