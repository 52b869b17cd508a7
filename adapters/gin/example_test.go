package wsroomgin_test

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
	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/wsroom"
)

// A gin application serves chat and echo under /ws. Its auth middleware
// stores the user with c.Set; the Identify hook reads it with Value and
// names the member after it.
func Example() {
	rooms, err := wsroom.New(&wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			user, ok := wsroomgin.Value(e.Request, "user")
			if !ok {
				return wsroom.IdentifyReply{}, &wsroom.RejectError{Status: http.StatusUnauthorized, Message: "log in"}
			}
			return wsroom.IdentifyReply{Name: user.(string)}, nil // joins at once
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	auth := func(c *gin.Context) { // a stand-in for real sessions
		if user := c.Query("user"); user != "" {
			c.Set("user", user)
		}
	}

	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/health", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	ws := r.Group("/ws", auth)
	ws.GET("/chat/:room", wsroomgin.Chat(rooms))
	ws.GET("/echo", wsroomgin.Echo(rooms))

	srv := httptest.NewServer(r)
	defer srv.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
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
		c, _, err := websocket.Dial(ctx, url+"/chat/general?user="+user, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			log.Fatal(err)
		}
		next(c)
		fmt.Println(user+":", e.Type, e.Room, e.Name)
		return c
	}

	_, resp, _ := websocket.Dial(ctx, url+"/chat/general", nil)
	fmt.Println("without a user:", resp.Status)
	alice := connect("alice")
	defer alice.CloseNow()
	bob := connect("bob")
	defer bob.CloseNow()
	next(alice)
	fmt.Println("alice:", e.Type, e.Name)
	bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hi"}`))
	next(alice)
	fmt.Println("alice:", e.Type, e.From, e.Text)

	echo, _, err := websocket.Dial(ctx, url+"/echo", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer echo.CloseNow()
	echo.Write(ctx, websocket.MessageText, []byte("ping"))
	typ, b, _ := echo.Read(ctx)
	fmt.Println("echo:", typ, string(b))

	// Output:
	// without a user: 401 Unauthorized
	// alice: welcome general alice
	// bob: welcome general bob
	// alice: join bob
	// alice: message bob hi
	// echo: MessageText ping
}
