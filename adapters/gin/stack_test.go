//go:build !race

// The race detector makes every frame bigger, so this runs only without it.

package wsroomgin_test

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/internal/wstest"
	"wsroom.dev/wsroom"
)

// TestMemberStackStaysSmall caps goroutine stacks at 8 KiB while members
// join and talk through gin, its Logger and Recovery, an auth middleware
// and the adapter: gin's frames sit under every connection's goroutine
// for its whole life, and a connection must not need more stack under gin
// than under ServeMux (see the wsroom test of the same name).
func TestMemberStackStaysSmall(t *testing.T) {
	rooms := newRooms(t, nil)
	r := gin.New()
	r.Use(gin.LoggerWithWriter(io.Discard), gin.Recovery())
	r.Group("/api/v1", auth).GET("/chat/:room", wsroomgin.Chat(rooms))
	_, ws := wstest.Serve(t, r)
	ctx := wstest.Context(t)
	url := ws + "/api/v1/chat/r"
	join := func(name string) {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
			Subprotocols: []string{wsroom.Subprotocol},
			HTTPHeader:   wstest.User(name),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hi"}`))
		for { // until its own message
			_, b, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), `"text":"hi"`) {
				return
			}
		}
	}
	join("warm")
	old := debug.SetMaxStack(8 << 10)
	defer debug.SetMaxStack(old)
	for i := range 10 {
		join(fmt.Sprint("m", i))
	}
}
