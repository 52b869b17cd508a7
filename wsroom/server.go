package wsroom

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// Server serves chat rooms and an echo endpoint over WebSocket. As an
// http.Handler it is the chat endpoint: mounted on a pattern with a {room}
// wildcard (ServeMux or chi) it serves the room the path names, elsewhere
// the default room. ServeHTTP returns when the connection ends.
//
// A Server is safe for concurrent use. Rooms exist while they have members:
// the first join creates a room's state on this server and the last leave
// tears it down. Call Shutdown to close every connection.
type Server struct {
	opts      *Options
	log       *slog.Logger
	stats     counters
	id        string             // tells this server's publications from others'
	inProcess bool               // the store and broker are MemoryStore and MemoryBroker
	memBroker bool               // the broker is a MemoryBroker: it loses nothing
	ctx       context.Context    // the server's life: ends with Shutdown
	cancel    context.CancelFunc // ends ctx
	lease     lease
	fb        fallback // the HTTP fallback's streams and forwarded POSTs

	mu       sync.Mutex
	hubs     map[string]*hub
	conns    map[*wsConn]struct{}
	active   int            // handlers running
	perIP    map[string]int // handlers running, by client address
	shutdown bool
	done     chan struct{} // closed when shutdown and active == 0
	closing  atomic.Bool

	noRoomOnce sync.Once // the log line of a route without a room
	capLog     sync.Once // the log line of the per-address cap
}

var _ http.Handler = (*Server)(nil)

// New returns a Server configured by opts, which may be nil for the
// defaults. It fails with an error wrapping ErrBadOptions when an option is
// invalid.
func New(opts *Options) (*Server, error) {
	o, err := opts.cloneWithDefaults()
	if err != nil {
		return nil, err
	}
	_, memStore := o.Store.(*MemoryStore)
	_, memBroker := o.Broker.(*MemoryBroker)
	// Networked backends get a breaker: while one is failing, calls fail
	// at once. Both report to Metrics, if any.
	if !memStore || o.Metrics != nil {
		b := backend{m: o.Metrics}
		if !memStore {
			b.br = &breaker{}
		}
		o.Store = guardedStore{o.Store, b}
	}
	if !memBroker || o.Metrics != nil {
		b := backend{m: o.Metrics}
		if !memBroker {
			b.br = &breaker{}
		}
		o.Broker = guardedBroker{o.Broker, b}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:      o,
		log:       o.Logger,
		id:        rand.Text(),
		inProcess: memStore && memBroker,
		memBroker: memBroker,
		ctx:       ctx,
		cancel:    cancel,
		hubs:      make(map[string]*hub),
		conns:     make(map[*wsConn]struct{}),
		perIP:     make(map[string]int),
		done:      make(chan struct{}),
	}
	s.lease.init(s)
	return s, nil
}

// ServeHTTP serves the chat endpoint for the room named by
// Options.RoomFromRequest or, by default, the request's {room} path value.
// A request that a router matched on a route without a {room} wildcard
// (r.Pattern set, as ServeMux and chi set it, and no {room} path value) is
// served Options.DefaultRoom.
//
// Where the room cannot be told, the Server refuses with 500 and logs why,
// rather than put every client in one room: under a router that neither
// sets path values nor r.Pattern, such as gin, and on a subtree route
// ("/chat/", "/ws/*") whose rest of the path would name a room. Use the
// router's adapter, Server.Handler, a {room} wildcard,
// Options.RoomFromRequest, or Server.Room for a fixed room.
//
// Unless Options.NoFallback is set, it also serves the HTTP fallback: a GET
// with "Accept: text/event-stream" opens the room's event stream, and a
// POST carries a stream's frames, whatever the room of its route (its
// Wsroom-Token header names the stream).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && s.servePost(w, r) {
		return
	}
	room, ok := s.roomOf(r)
	if !ok {
		s.noRoomOnce.Do(func() {
			s.log.Error("wsroom: cannot tell the room of this request: the route has no {room} wildcard and is not one fixed path; "+
				"use a {room} wildcard, Server.Handler() under a prefix, the router's adapter (wsroom.dev/adapters/...), "+
				"Options.RoomFromRequest, or Server.Room(name) for a fixed room",
				"path", r.URL.Path, "pattern", r.Pattern)
		})
		http.Error(w, "wsroom: the room of this route is unknown (see the server log)", http.StatusInternalServerError)
		return
	}
	if s.isStream(r) {
		s.serveStream(w, r, room)
		return
	}
	s.serveChat(w, r, room)
}

// roomOf names the room of a chat request; ok is false when the route
// gives no way to tell.
func (s *Server) roomOf(r *http.Request) (room string, ok bool) {
	if f := s.opts.RoomFromRequest; f != nil {
		room = f(r)
	} else if room = r.PathValue("room"); room == "" && !fixedRoute(r.Pattern) {
		return "", false
	}
	if room == "" {
		room = s.opts.DefaultRoom
	}
	return room, true
}

// fixedRoute reports whether a router's pattern matches one path: not
// empty (the router says nothing) and not a subtree.
func fixedRoute(pattern string) bool {
	if strings.HasSuffix(pattern, "{$}") {
		return true
	}
	return pattern != "" && !strings.HasSuffix(pattern, "/") && !strings.HasSuffix(pattern, "*") && !strings.HasSuffix(pattern, "...}")
}

// Room returns a handle on the named room, whether or not anyone is in it.
func (s *Server) Room(name string) *Room {
	return &Room{s: s, name: name}
}

// begin counts a handler in, or answers why not: 503 when the server is
// shutting down or holds MaxConnections, 429 when the client's address
// holds MaxConnectionsPerIP. It returns the client's address, for end.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) (ip string, ok bool) {
	ip = s.opts.ClientIP(r)
	s.mu.Lock()
	status := 0
	switch {
	case s.shutdown:
		status = http.StatusServiceUnavailable
	case s.opts.MaxConnections > 0 && s.active >= s.opts.MaxConnections:
		status = http.StatusServiceUnavailable
	case s.opts.MaxConnectionsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnectionsPerIP:
		status = http.StatusTooManyRequests
	default:
		s.active++
		s.perIP[ip]++
	}
	s.mu.Unlock()
	switch {
	case status == 0:
		return ip, true
	case s.closing.Load():
		http.Error(w, "server shutting down", status)
	case status == http.StatusTooManyRequests:
		s.refused("429")
		s.capLog.Do(func() {
			s.log.Warn("wsroom: a client address reached MaxConnectionsPerIP; behind a reverse proxy, set Options.ClientIP (or raise the cap)", "addr", ip, "cap", s.opts.MaxConnectionsPerIP)
		})
		w.Header().Set("Retry-After", "10")
		http.Error(w, "too many connections from this address", status)
	default:
		s.refused("503")
		w.Header().Set("Retry-After", "10")
		http.Error(w, "the server holds its maximum of connections", status)
	}
	return ip, false
}

func (s *Server) end(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
	if s.shutdown && s.active == 0 {
		close(s.done)
	}
}

// remoteIP is the default Options.ClientIP: the host of r.RemoteAddr.
func remoteIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// register makes a connection known to Shutdown, or closes it with 1001 if
// Shutdown has begun.
func (s *Server) register(c *wsConn) bool {
	s.mu.Lock()
	ok := !s.shutdown
	if ok {
		s.conns[c] = struct{}{}
		s.stats.conns.Add(1)
	}
	s.mu.Unlock()
	if !ok {
		c.conn.Close(websocket.StatusGoingAway, "server shutting down")
	}
	return ok
}

func (s *Server) unregister(c *wsConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.stats.conns.Add(-1)
}

func (s *Server) shuttingDown() bool { return s.closing.Load() }

// Shutdown refuses new connections (503), closes every connection with 1001
// (going away) and waits until all of them have ended and every goroutine
// the Server started has returned, or until ctx is done, in which case it
// returns ctx.Err(). Members leave with ReasonShutdown. Their departures
// are announced, once per room as a presence event, to members on other
// servers only. Shutdown may be called more than once: each call waits for
// the same end.
//
// http.Server.Shutdown does not wait for WebSocket connections, which are
// hijacked; register this Server's Shutdown with
// http.Server.RegisterOnShutdown, and call it again after
// http.Server.Shutdown returns to wait for it (see the package example).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	var conns []*wsConn
	first := !s.shutdown
	if first {
		s.shutdown = true
		s.closing.Store(true)
		for c := range s.conns {
			conns = append(conns, c)
		}
		if s.active == 0 {
			close(s.done)
		}
	}
	s.mu.Unlock()
	if first {
		s.cancel() // what members were doing with the store or a hook ends
	}
	for _, c := range conns {
		c.kill(ReasonShutdown, websocket.StatusGoingAway, "server shutting down", nil)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Every member has left: no reservation needs the lease any more, and
	// no stream the forwarded POSTs.
	s.fb.close()
	s.lease.halt()
	return nil
}

// acquire returns the room's hub, creating and subscribing it if needed,
// and counts the caller in; release counts it out.
func (s *Server) acquire(ctx context.Context, room string) (*hub, error) {
	s.mu.Lock()
	h := s.hubs[room]
	if h == nil {
		if limit := s.opts.MaxRooms; limit > 0 && len(s.hubs) >= limit {
			s.mu.Unlock()
			return nil, errTooManyRooms
		}
		h = newHub(s, room)
		s.hubs[room] = h
		s.stats.rooms.Add(1)
	}
	h.refs++
	s.mu.Unlock()
	if err := h.subscribe(); err != nil {
		s.release(ctx, h)
		return nil, err
	}
	return h, nil
}

func (s *Server) release(ctx context.Context, h *hub) {
	s.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last {
		delete(s.hubs, h.name)
		s.stats.rooms.Add(-1)
	}
	s.mu.Unlock()
	if last {
		h.close(ctx)
	}
}

// membersOf returns the members of this server whose names are reserved
// under the lease id.
func (s *Server) membersOf(id string) []*member {
	s.mu.Lock()
	hubs := make([]*hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		hubs = append(hubs, h)
	}
	s.mu.Unlock()
	var ms []*member
	for _, h := range hubs {
		h.mu.RLock()
		for _, m := range h.members {
			if m.res.Owner.Server == id {
				ms = append(ms, m)
			}
		}
		h.mu.RUnlock()
	}
	return ms
}

// lookup returns the room's hub on this server, if it has one.
func (s *Server) lookup(room string) *hub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hubs[room]
}
