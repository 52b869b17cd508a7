package wsroom

import (
	"net/http"
	"net/url"
	"strings"
)

// Handler returns an http.Handler that serves the Server's endpoints at
// paths relative to where it is mounted:
//
//	/chat/{room}  the chat endpoint of the room the path names
//	/chat         the chat endpoint of Options.DefaultRoom
//	/echo         the echo endpoint (see Server.Echo)
//
// Any other path is answered with 404 Not Found. Mounted at the root of an
// http.Server it serves /chat/{room}, /chat and /echo; in an application's
// ServeMux, strip the prefix it is mounted under, as for http.FileServer:
//
//	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
//
// serves /ws/chat/{room}, /ws/chat and /ws/echo, whether the prefix is
// stripped with its trailing slash or without.
//
// The handler is a ServeMux of its own, so the room comes from its
// {room} wildcard as it would under any ServeMux route; Options.RoomFromRequest,
// when set, still has the last word. The chat paths also take the HTTP
// fallback's streams and POSTs (see the package documentation); other
// methods get the Server's own refusal (405 Method Not Allowed). Each call returns a new
// handler; all of them serve the same rooms.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", s)
	mux.Handle("/chat", s)
	mux.Handle("/echo", s.Echo())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/") {
			// http.StripPrefix("/ws/", …) leaves "chat/room"; a ServeMux
			// would redirect that to "/chat/room", out from under the
			// prefix, and WebSocket clients do not follow redirects.
			r = withLeadingSlash(r)
		}
		mux.ServeHTTP(w, r)
	})
}

// withLeadingSlash returns a shallow copy of r whose URL path starts with
// a slash, copying the URL as http.StripPrefix does.
func withLeadingSlash(r *http.Request) *http.Request {
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = new(url.URL)
	*r2.URL = *r.URL
	r2.URL.Path = "/" + r.URL.Path
	if r.URL.RawPath != "" {
		r2.URL.RawPath = "/" + r.URL.RawPath
	}
	return r2
}
