// Package wsroomchi mounts a wsroom.Server on a chi router.
//
// Routes returns a chi router with the chat and echo endpoints, for
// chi's Mount:
//
//	rooms, err := wsroom.New(nil)
//	r.Mount("/ws", wsroomchi.Routes(rooms)) // /ws/chat/{room}, /ws/chat, /ws/echo
//
// and Chat serves the chat endpoint on a route of the application's own,
// with the room in a URL parameter of any name:
//
//	r.With(auth).Get("/teams/{team}/chat", wsroomchi.Chat(rooms, "team"))
//
// Middleware for the WebSocket routes goes where chi puts it: r.Use on the
// parent router, r.With(mw).Mount(...), or r.Group. A value that an
// authentication middleware puts in the request's context reaches the
// Server's hooks as e.Request.Context().
//
// # Middleware
//
// A WebSocket handler returns when the connection ends, so middleware that
// runs after the handler runs then, and a wrapper of the ResponseWriter
// must let the upgrade through (an Unwrap method suffices; the Server
// answers 501 before upgrading behind one that cannot hijack). chi's own
// middleware behaves as follows:
//
//   - Logger, RequestLogger: the line is written when the connection ends,
//     with status 101 and the connection's duration.
//   - Recoverer: leaves the connection alone.
//   - Throttle: counts a connection as one request in flight for as long
//     as it is open, so its limit caps the open WebSockets too: give the
//     WebSocket routes a Throttle of their own, or none.
//   - RequestID, ClientIPFrom* (and the deprecated RealIP): the ID and the
//     client's address are in the request the hooks see.
//   - Compress: leaves the upgrade alone (a 101 response has no body to
//     compress, and its writer passes Hijack through). WebSocket messages
//     are never compressed.
//   - Timeout: the connection outlives the timeout, which bounds the
//     handshake only. When a connection that outlived it ends, Timeout
//     writes its 504 to a hijacked connection: net/http drops it (nothing
//     reaches the client) and logs "http: response.WriteHeader on hijacked
//     connection", unless Logger (whose writer has recorded the 101) is
//     outside Timeout, as in chi's README. To keep the log quiet either
//     way, mount the WebSocket routes outside Timeout.
package wsroomchi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"wsroom.dev/wsroom"
)

// Routes returns a chi router serving s's endpoints at paths relative to
// where it is mounted:
//
//	/chat/{room}  the chat endpoint of the room the path names
//	/chat         the chat endpoint of Options.DefaultRoom
//	/echo         the echo endpoint (wsroom.Server.Echo)
//
// Mount it with r.Mount("/ws", wsroomchi.Routes(rooms)). The router is
// new on each call and may be given more routes; as for any chi router,
// its middleware must be added (Use) before them. Routes panics if s is
// nil.
func Routes(s *wsroom.Server) chi.Router {
	chat := Chat(s, "room")
	r := chi.NewRouter()
	r.Handle("/chat/{room}", chat)
	r.Handle("/chat", chat)
	r.Handle("/echo", s.Echo())
	return r
}

// Chat returns a handler for a chi route that serves the chat endpoint of
// the room named by the route's URL parameter param, or of
// Options.DefaultRoom when the parameter is absent or empty. The handler
// returns when the connection ends. If the Server has
// Options.RoomFromRequest, that names the room instead. Outside chi's
// routing, where no route matched, the Server refuses the request (500)
// as it refuses any request whose room it cannot tell. Chat panics if s
// is nil or param empty.
func Chat(s *wsroom.Server, param string) http.HandlerFunc {
	if s == nil || param == "" {
		panic("wsroomchi: Chat needs a Server and a URL parameter name")
	}
	return func(w http.ResponseWriter, r *http.Request) {
		room := chi.URLParam(r, param)
		if r.PathValue("room") != room || r.Pattern == "" {
			// Say it in the standard library's terms, which the Server
			// reads: the room as the "room" path value, and the route's
			// pattern (a route without a room serves the default room).
			r = r.Clone(r.Context()) // SetPathValue must not write to the caller's request
			r.SetPathValue("room", room)
			if rctx := chi.RouteContext(r.Context()); r.Pattern == "" && rctx != nil {
				r.Pattern = rctx.RoutePattern()
			}
		}
		s.ServeHTTP(w, r)
	}
}
