package main

import (
	"net/http"

	"github.com/coder/websocket"
)

// newBare is the memory floor of coder/websocket: each connection held by
// its handler goroutine blocked in Read, echoing what it reads, on both
// /chat/{room} and /echo. Nothing else is kept per connection.
func newBare() (chat, echo http.Handler, stop func()) {
	h := http.HandlerFunc(bareEcho)
	return h, h, func() {}
}

func bareEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOptions)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(maxMessageSize)
	ctx := r.Context()
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return
		}
	}
}
