package wsroomchi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	wsroomchi "wsroom.dev/adapters/chi"
	"wsroom.dev/wsroom"
)

// A chi application mounts chat and echo under /ws; its auth middleware
// says who the user is, and the Identify hook names the member after it.
func Example() {
	type userKey struct{}
	rooms, err := wsroom.New(&wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			user, _ := e.Request.Context().Value(userKey{}).(string)
			return wsroom.IdentifyReply{Name: user}, nil // joins at once
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	auth := func(next http.Handler) http.Handler { // a stand-in for real sessions
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := r.URL.Query().Get("user")
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, user)))
		})
	}

	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer)
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	r.With(auth).Mount("/ws", wsroomchi.Routes(rooms)) // /ws/chat/{room}, /ws/chat, /ws/echo

	srv := httptest.NewServer(r)
	defer srv.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
	var e struct{ Type, Room, Name, From, Text string }
	next := func(c *websocket.Conn) { // the first event of the next frame
		_, b, err := c.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		e.Name, e.From = "", ""
		json.Unmarshal([]byte(line), &e)
	}
	connect := func(user string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, ws+"/chat/general?user="+user, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			log.Fatal(err)
		}
		next(c)
		fmt.Println(user+":", e.Type, e.Room, e.Name)
		return c
	}

	alice := connect("alice")
	defer alice.CloseNow()
	bob := connect("bob")
	defer bob.CloseNow()
	next(alice)
	fmt.Println("alice:", e.Type, e.Name)
	bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hi"}`))
	next(alice)
	fmt.Println("alice:", e.Type, e.From, e.Text)

	echo, _, err := websocket.Dial(ctx, ws+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer echo.CloseNow()
	echo.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	typ, b, _ := echo.Read(ctx)
	fmt.Println("echo:", typ, b)

	// Output:
	// alice: welcome general alice
	// bob: welcome general bob
	// alice: join bob
	// alice: message bob hi
	// echo: MessageBinary [1 2 3]
}
