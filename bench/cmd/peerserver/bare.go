package main

import "net/http"

// newBare is the memory floor of coder/websocket: each connection held by
// its handler goroutine blocked in Reader, echoing what it reads (coder's
// echo, coderEcho), on both /chat/{room} and /echo. Nothing else is kept
// per connection.
func newBare() (chat, echo http.Handler, stop func()) {
	h := http.HandlerFunc(coderEcho)
	return h, h, func() {}
}
