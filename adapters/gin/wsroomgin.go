// Package wsroomgin serves a wsroom.Server's chat and echo endpoints on a
// gin engine:
//
//	rooms, err := wsroom.New(nil)
//	wsroomgin.ChatRoutes(r, "/ws/chat/:room", rooms)
//	r.GET("/ws/echo", wsroomgin.Echo(rooms))
//
// ChatRoutes registers Chat for GET (the WebSocket upgrade, and the HTTP
// fallback's event stream), POST (the fallback's frames) and OPTIONS (its
// cross-origin preflight). With r.GET alone, the fallback's POSTs get 404.
//
// Mounting the Server with gin.WrapH does not work: gin tells a handler
// neither the route's parameters nor its pattern, so the Server cannot tell
// the room and refuses every request with 500 (and logs why). Chat gives
// the Server what gin matched: the room parameter, gin's other parameters
// as path values (r.PathValue), and the route (r.Pattern).
//
// # Hooks and gin's context
//
// The Server's hooks get the *http.Request, not the *gin.Context. What
// gin middleware stored with c.Set (an authenticated user, say) is in the
// request's context, for Value to read:
//
//	Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
//		user, ok := wsroomgin.Value(e.Request, "user")
//		...
//	}
//
// # After the upgrade
//
// The handlers return when the connection ends, and abort the chain: no
// handler after them runs. Middleware before them (Logger, Recovery) goes
// on as usual when the connection ends; gin's Logger logs status 101. The
// connection belongs to the Server from the upgrade on: anything a
// middleware writes to the response afterwards is dropped by net/http
// (and logged by it) and never reaches the client.
package wsroomgin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"wsroom.dev/wsroom"
)

// ChatMethods are the methods of the chat endpoint: the WebSocket upgrade
// and the HTTP fallback's stream (GET), its frames (POST) and its
// cross-origin preflight (OPTIONS).
var ChatMethods = []string{http.MethodGet, http.MethodPost, http.MethodOptions}

// ChatRoutes registers Chat on path for every method of ChatMethods.
func ChatRoutes(r gin.IRoutes, path string, s *wsroom.Server, opts ...Option) gin.IRoutes {
	return r.Match(ChatMethods, path, Chat(s, opts...))
}

// Option configures Chat.
type Option func(*config)

type config struct {
	param string
}

// Param names the route parameter that holds the room. Default "room",
// as in "/chat/:room". Chat panics if name is empty.
func Param(name string) Option {
	return func(c *config) { c.param = name }
}

// Chat returns a gin handler serving the chat endpoint of the room named
// by the route's parameter (":room", unless Param says otherwise), or of
// Options.DefaultRoom on a route without it. If the Server has
// Options.RoomFromRequest, that names the room instead.
//
// The handler returns when the connection ends; it aborts the chain. A
// request that is not a WebSocket handshake, or that the Server refuses,
// is answered as the Server answers it (see wsroom.Server.ServeHTTP).
// Chat panics if s is nil.
func Chat(s *wsroom.Server, opts ...Option) gin.HandlerFunc {
	cfg := config{param: "room"}
	for _, o := range opts {
		o(&cfg)
	}
	if s == nil || cfg.param == "" {
		panic("wsroomgin: Chat needs a Server and a parameter name")
	}
	return func(c *gin.Context) {
		c.Abort() // the response is the connection's: no handler after this one
		r := request(c, true)
		for _, p := range c.Params {
			r.SetPathValue(p.Key, p.Value)
		}
		r.SetPathValue("room", c.Param(cfg.param))
		// The route that matched: with it, a route without the parameter
		// serves the default room. gin has none for a NoRoute handler,
		// whose room the Server then cannot tell (500).
		r.Pattern = c.FullPath()
		s.ServeHTTP(c.Writer, r)
	}
}

// Echo returns a gin handler serving the Server's echo endpoint (see
// wsroom.Server.Echo). The handler returns when the connection ends; it
// aborts the chain. Echo panics if s is nil.
func Echo(s *wsroom.Server) gin.HandlerFunc {
	if s == nil {
		panic("wsroomgin: Echo needs a Server")
	}
	h := s.Echo()
	return func(c *gin.Context) {
		c.Abort()
		h.ServeHTTP(c.Writer, request(c, false))
	}
}

// request returns c's request with a copy of c.Keys in its context; a
// deep copy when its path values are to be set, since SetPathValue would
// otherwise write to the request that the caller's middleware holds.
func request(c *gin.Context, deep bool) *http.Request {
	keys := c.Copy().Keys // under gin's lock: a middleware may have started goroutines
	ctx := c.Request.Context()
	if keys != nil {
		ctx = contextWithKeys(ctx, keys)
	}
	if deep {
		return c.Request.Clone(ctx)
	}
	return c.Request.WithContext(ctx)
}
