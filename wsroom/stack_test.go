//go:build !race

// The race detector makes every frame bigger, so this runs only without it
// (make test runs it so).

package wsroom_test

import (
	"context"
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestMemberStackStaysSmall checks that a connection's goroutine never needs
// more than the 8 KiB stack a bare coder/websocket connection has: the Go
// runtime seldom gives back a stack that grew, so one deep moment (the
// upgrade, a join, a broadcast) would double every member's idle memory.
// Every goroutine stack is capped at 8 KiB while members join, talk, page
// history, relay binary, echo and leave; going over crashes the test
// binary with the offending stack.
func TestMemberStackStaysSmall(t *testing.T) {
	e := newEnv(t, &wsroom.Options{MaxMessageBytes: 1 << 20})
	// The cap applies to this test's goroutine too, whose JSON decoding
	// needs more than 8 KiB: it keeps the stack the warm-up grows, as no
	// garbage collection runs to shrink it while the cap is on. (A
	// goroutine that ends gives back a grown stack at once, so a new
	// connection's goroutine still starts small.)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for i := range 3 { // warm up pools and the runtime outside the cap
		c, _ := e.join("warm", fmt.Sprint("w", i))
		c.say("warm")
	}
	old := debug.SetMaxStack(8 << 10)
	defer debug.SetMaxStack(old)

	var cs []*client
	for i := range 20 {
		c, w := e.join("r", fmt.Sprint("m", i))
		assert.Equal(t, "joined", fmt.Sprint("m", i), w.Name)
		c.say("hello")
		cs = append(cs, c)
	}
	cs[0].send(map[string]any{"type": "history", "limit": 10})
	cs[0].until("history")
	assert.Success(t, cs[1].c.Write(testContext(t), websocket.MessageBinary, make([]byte, 5000)))
	plain := e.dial("/chat/r", false)
	plain.sendText("login:黄晓安")
	plain.line()
	plain.sendText(`黄晓安说 :"你好"`)
	echo := e.dial("/echo", false)
	for _, n := range []int{10, 5000, 70000} {
		assert.Success(t, echo.c.Write(testContext(t), websocket.MessageBinary, make([]byte, n)))
		_, _, err := echo.readFrame(testContext(t))
		assert.Success(t, err)
	}
	for _, c := range cs[:10] {
		assert.Success(t, c.c.Close(websocket.StatusNormalClosure, ""))
	}
	_, err := e.srv.Room("r").Broadcast(context.Background(), wsroom.Message{Text: "server says"})
	assert.Success(t, err)
	waitFor(t, "ten left", func() bool { return e.srv.Stats().Members == 3+10+1 })
}
