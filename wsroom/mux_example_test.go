package wsroom_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// An existing application adds chat and echo under /ws in one line; its
// other routes are untouched.
func ExampleServer_Handler() {
	rooms, err := wsroom.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler())) // /ws/chat/{room}, /ws/chat, /ws/echo

	srv := httptest.NewUnstartedServer(mux)
	srv.Config.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })
	srv.Start()
	defer srv.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"

	// next reads the first event of the next frame (a frame may hold
	// several, one per line).
	type event struct {
		Type, Room, Name, From, Text string
		Members                      []string
	}
	next := func(c *websocket.Conn) event {
		_, b, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		var e event
		line, _, _ := strings.Cut(string(b), "\n")
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			log.Fatal(err)
		}
		return e
	}
	join := func(name string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, ws+"/chat/general", &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			log.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name))
		w := next(c)
		fmt.Printf("%s: %s to %s, members %v\n", name, w.Type, w.Room, w.Members)
		return c
	}

	alice := join("alice")
	defer alice.CloseNow()
	bob := join("bob")
	defer bob.CloseNow()
	e := next(alice)
	fmt.Println("alice sees:", e.Type, e.Name)
	bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hello, alice"}`))
	e = next(alice)
	fmt.Println("alice sees:", e.Type, e.From, e.Text)

	echo, _, err := websocket.Dial(ctx, ws+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer echo.CloseNow()
	echo.Write(ctx, websocket.MessageText, []byte("ping"))
	_, b, _ := echo.Read(ctx)
	fmt.Println("echo:", string(b))

	resp, err := http.Get(srv.URL + "/health")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println("health:", string(body))

	// Output:
	// alice: welcome to general, members [alice]
	// bob: welcome to general, members [alice bob]
	// alice sees: join bob
	// alice sees: message bob hello, alice
	// echo: ping
	// health: ok
}
